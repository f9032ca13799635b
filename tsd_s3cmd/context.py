"""The program's view of the world outside it, passed in rather than reached for.

As in httpie, one ``Environment`` carries the standard streams, the process
environment, the clock and the config directory into the program, so that
tests run the real code against a temporary home and fake streams.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

PROG = "tsd-s3cmd"


def _config_home(environ: Mapping[str, str]) -> Path:
    xdg = environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says to ignore a relative value.
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    return Path(environ.get("HOME") or os.path.expanduser("~")) / ".config"


@dataclass
class Environment:
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    environ: Mapping[str, str]
    clock: Callable[[], float] = time.time
    config_home: Path = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.config_home is None:
            self.config_home = _config_home(self.environ)

    @classmethod
    def from_process(cls) -> Environment:
        return cls(stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr, environ=os.environ)

    @property
    def config_dir(self) -> Path:
        """Where tsd-s3cmd keeps API keys and tokens."""
        return self.config_home / "tsd-s3cmd"

    @property
    def tacl_config(self) -> Path:
        """tsd-api-client's API keys, reused when tsd-s3cmd has none."""
        return self.config_home / "tacl" / "config"

    @property
    def home(self) -> Path:
        return Path(self.environ.get("HOME") or os.path.expanduser("~"))

    def stdin_is_terminal(self) -> bool:
        try:
            return self.stdin.isatty()
        except (AttributeError, ValueError):
            return False

    def message(self, text: str) -> None:
        """One line for the user on stderr, prefixed with the program name."""
        self.stderr.write(f"{PROG}: {text}\n")
        self.stderr.flush()

    def warn(self, text: str) -> None:
        self.message(f"warning: {text}")
