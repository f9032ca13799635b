"""The program's view of the world outside it, passed in rather than reached for.

As in httpie, one ``Environment`` carries the standard streams, the process
environment, the clock and the config directory into the program, so that
tests run the real code against a temporary home and fake streams.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

PROG = "tsd-s3cmd"

# typing costs a start-up this tool does not otherwise pay; see cli.py.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO


class Environment:
    def __init__(
        self,
        stdin: TextIO,
        stdout: TextIO,
        stderr: TextIO,
        environ: Mapping[str, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.environ = environ
        self.clock = clock

    @classmethod
    def from_process(cls) -> Environment:
        return cls(sys.stdin, sys.stdout, sys.stderr, os.environ)

    @property
    def home(self) -> Path:
        return Path(self.environ.get("HOME") or os.path.expanduser("~"))

    @property
    def config_home(self) -> Path:
        xdg = self.environ.get("XDG_CONFIG_HOME", "")
        # The XDG spec says to ignore a relative value.
        return Path(xdg) if os.path.isabs(xdg) else self.home / ".config"

    @property
    def cache_home(self) -> Path:
        xdg = self.environ.get("XDG_CACHE_HOME", "")
        return Path(xdg) if os.path.isabs(xdg) else self.home / ".cache"

    @property
    def config_dir(self) -> Path:
        """Where tsd-s3cmd keeps API keys and tokens."""
        return self.config_home / "tsd-s3cmd"

    @property
    def tacl_config(self) -> Path:
        """tsd-api-client's API keys, reused when tsd-s3cmd has none."""
        return self.config_home / "tacl" / "config"

    def stdin_is_terminal(self) -> bool:
        try:
            return self.stdin.isatty()
        except (AttributeError, ValueError):
            return False

    def message(self, text: str) -> None:
        """A message for the user on stderr, prefixed with the program name."""
        self.stderr.write(f"{PROG}: {text}\n")
        self.stderr.flush()

    def warn(self, text: str) -> None:
        self.message(f"warning: {text}")
