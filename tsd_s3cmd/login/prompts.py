"""Asking a person for credentials: at the terminal when there is one, else on stdin.

At a terminal the password and one-time code are read without echo. Without
one (a script, a batch job) the answers are read as lines from stdin, in the
order the questions are asked, byte by byte so that nothing after them is
consumed. With nothing to read the run fails at once, and an open but silent
stdin fails after ``STDIN_TIMEOUT`` seconds: a batch job never hangs on a
question nobody will answer.
"""

from __future__ import annotations

import os
import select
from collections.abc import Sequence

from ..context import Environment
from ..errors import UsageError
from .auth_api import Credentials

STDIN_TIMEOUT = 30.0


class NothingToRead(UsageError):
    """No terminal, and stdin gave no answer."""


class Prompter:
    def __init__(
        self,
        env: Environment,
        why: str,
        stdin_is_data: bool = False,
        lines: str = "user name, password and one-time code",
    ) -> None:
        """``why`` completes "cannot ask for ..." in the error when nobody can answer,
        ``lines`` says which answers stdin may give instead.

        ``stdin_is_data``: the command reads its payload from stdin (``put -``),
        so answers must come from the terminal or not at all.
        """
        self.env = env
        self.why = why
        self.stdin_is_data = stdin_is_data
        self.lines = lines
        self._tty = None if env.stdin_is_terminal() else self._open_tty_if_needed()

    def _open_tty_if_needed(self):  # type: ignore[no-untyped-def]
        if not self.stdin_is_data:
            return None
        try:
            return open("/dev/tty", "r+", encoding="utf-8")
        except OSError:
            return None

    @property
    def interactive(self) -> bool:
        return self.env.stdin_is_terminal() or self._tty is not None

    def _nobody(self) -> NothingToRead:
        if self.stdin_is_data:
            return NothingToRead(
                f"cannot ask for {self.why}: stdin carries the data to upload and there is no "
                "terminal; log in first (for example: tsd-s3cmd --print-token-for put >/dev/null)"
            )
        return NothingToRead(
            f"cannot ask for {self.why}: there is no terminal and nothing on stdin; run it at "
            f"a terminal once (the login is cached), or give {self.lines} as lines on stdin"
        )

    # -- primitives ---------------------------------------------------------

    def _terminal_streams(self):  # type: ignore[no-untyped-def]
        if self._tty is not None:
            return self._tty, self._tty
        return self.env.stdin, self.env.stderr

    def ask(self, question: str, default: str | None = None) -> str:
        """One visible answer; at a terminal an empty answer takes ``default``."""
        if self.interactive:
            reader, writer = self._terminal_streams()
            suffix = f" [{default}]" if default else ""
            writer.write(f"{question}{suffix}: ")
            writer.flush()
            line = reader.readline()
            if not line:
                raise self._nobody()
            return line.strip() or (default or "")
        return self._stdin_line()

    def ask_secret(self, question: str) -> str:
        """One answer read without echo at a terminal."""
        if self.interactive:
            import getpass

            _, writer = self._terminal_streams()
            try:
                return getpass.getpass(f"{question}: ", stream=writer).strip()
            except EOFError:
                raise self._nobody() from None
        return self._stdin_line()

    def choose(self, question: str, choices: Sequence[tuple[str, str]], default: str) -> str:
        """A numbered menu; the answer may be the number or the name."""
        names = [name for name, _ in choices]
        if self.interactive:
            _, writer = self._terminal_streams()
            writer.write(f"{question}\n")
            for number, (name, label) in enumerate(choices, 1):
                writer.write(f"  {number}) {name:<8} {label}\n")
        answer = self.ask(f"Choose 1-{len(choices)}", default)
        if answer.isdigit() and 1 <= int(answer) <= len(choices):
            return names[int(answer) - 1]
        if answer in names:
            return answer
        raise UsageError(f"'{answer}' is not one of 1-{len(choices)} or {', '.join(names)}")

    def credentials(self, what: str, user_default: str | None = None) -> Credentials:
        """User name, password and one-time code, in that order."""
        if self.interactive:
            _, writer = self._terminal_streams()
            writer.write(f"Log in to {what}\n")
        user = self.ask("User name", user_default)
        password = self.ask_secret("Password")
        otp = self.ask_secret("One-time code")
        if not (user and password and otp):
            raise UsageError("user name, password and one-time code are all needed")
        return Credentials(user, password, otp)

    def _stdin_line(self) -> str:
        """Read one line from stdin without reading past it, or fail."""
        stdin = self.env.stdin
        if self.stdin_is_data:
            raise self._nobody()
        try:
            fd = stdin.fileno()
        except (AttributeError, OSError, ValueError):
            line = stdin.readline()  # an in-memory stream in unit tests
            if not line:
                raise self._nobody() from None
            return line.rstrip("\r\n")
        data = bytearray()
        while not data.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], STDIN_TIMEOUT)
            if not ready:
                raise self._nobody()
            chunk = os.read(fd, 1)
            if not chunk:
                if data:
                    break
                raise self._nobody()
            data += chunk
        return data.decode("utf-8", errors="replace").rstrip("\r\n")
