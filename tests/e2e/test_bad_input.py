"""Bad input of every kind, through the real CLI, one table.

Each case starts from a home that is registered for p11, holds fresh
s3import and s3export tokens, and has a working ``~/.s3cfg``; it then breaks
one thing and runs one command. Every case checks the same promises: the exit
status, exactly one error line (ours or s3cmd's) when the command fails and at
most one warning of ours when it succeeds, no traceback, no temporary file
left behind, the logins made, and every file unchanged (good or broken) but
those the case says it rewrites, which must then be whole.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..conftest import Emulator, closed_port, launch_emulator, private_env, stop_emulator
from .conftest import DEMO, Tsd
from .test_errors import forged_jwt

EX_USAGE, EX_IOERR, EX_NOPERM, EX_CONFIG = 64, 74, 77, 78
EX_CONNECTIONREFUSED = 111  # s3cmd's own status when the S3 server is not there
FAR = 4_000_000_000  # a time long after every test run
BUCKET = "odd-names"


@dataclass
class Home:
    """The case's home, and the ways a case breaks it."""

    tsd: Tsd
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)
    preexec: Callable[[], None] | None = None

    @property
    def config(self) -> Path:
        return self.tsd.config_dir

    @property
    def s3cfg(self) -> Path:
        return self.tsd.home / ".s3cfg"

    def json(self, name: str) -> dict:
        return json.loads((self.config / name).read_text())

    def write(self, name: str, data: bytes | str | dict) -> None:
        path = self.config / name
        if isinstance(data, dict):
            data = json.dumps(data)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        path.chmod(0o600)

    def edit_token(self, **fields: object) -> None:
        """Change fields of p11's cached s3export token (the one ``ls`` uses)."""
        cache = self.json("tokens.json")
        cache["prod"]["p11"]["s3export"].update(fields)
        self.write("tokens.json", cache)

    def forget_tokens(self) -> None:
        (self.config / "tokens.json").unlink()

    def local(self, name: str, data: bytes = b"odd but fine\n") -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path


def truncated(home: Home, name: str) -> None:
    good = (home.config / name).read_bytes()
    home.write(name, good[: len(good) // 2])


def without_read_override() -> None:
    """In the child: drop root's power to read any file, so that modes count again."""
    if os.geteuid() != 0:
        return  # modes already count
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def disk_full_after(size: int) -> Callable[[], None]:
    """In the child: writes past ``size`` bytes fail with EFBIG, as on a full disk."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, do not kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...] = ()
    setup: Callable[[Home], object] = lambda home: None
    stdin: str = ""
    changes: tuple[str, ...] = ()  # files the run rewrites, and must leave whole
    logins: int = 0  # logins the run must make
    uploads: tuple[tuple[str, str], ...] = ()  # (local name, its key in s3://odd-names)


def token(project: str, exp: int, kind: str = "s3export") -> str:
    return forged_jwt({"proj": project, "exp": exp, "name": kind})




CASES = [
    # credentials.json: an API key cannot be re-derived, so damage is an error.
    Case(
        "credentials-malformed", ("ls",), EX_CONFIG, ("credentials.json is corrupt", "--register"),
        lambda h: (h.forget_tokens(), h.write("credentials.json", "{not json")),
    ),
    Case(
        "credentials-truncated", ("ls",), EX_CONFIG, ("credentials.json is corrupt",),
        lambda h: (h.forget_tokens(), truncated(h, "credentials.json")),
    ),
    Case(
        "credentials-empty", ("ls",), EX_CONFIG, ("credentials.json is corrupt",),
        lambda h: (h.forget_tokens(), h.write("credentials.json", b"")),
    ),
    Case(
        "credentials-binary", ("ls",), EX_CONFIG, ("credentials.json is corrupt",),
        lambda h: (h.forget_tokens(), h.write("credentials.json", b"\x89PNG\r\n\x1a\n\x00\xff")),
    ),
    Case(
        "credentials-wrong-shape", ("ls",), EX_CONFIG, ("credentials.json is corrupt",),
        lambda h: (h.forget_tokens(), h.write("credentials.json", {"prod": {"p11": "key"}})),
    ),
    Case(
        "api-key-garbage", ("ls",), EX_NOPERM, ("TSD refused the login for p11", "api key"),
        lambda h: (
            h.forget_tokens(),
            h.write("credentials.json", {"prod": {"p11": {"api_key": "garbage", "user": None}}}),
        ),
        DEMO, logins=1,
    ),
    # tokens.json is only a cache: damage costs one login and one warning.
    Case(
        "tokens-malformed", ("ls",), 0, ("tokens.json is corrupt",),
        lambda h: h.write("tokens.json", "{not json"), DEMO, ("tokens.json",), logins=1,
    ),
    Case(
        "tokens-truncated", ("ls",), 0, ("tokens.json is corrupt",),
        lambda h: truncated(h, "tokens.json"), DEMO, ("tokens.json",), logins=1,
    ),
    Case(
        "tokens-empty", ("ls",), 0, ("tokens.json is corrupt",),
        lambda h: h.write("tokens.json", b""), DEMO, ("tokens.json",), logins=1,
    ),
    Case(
        "tokens-binary", ("ls",), 0, ("tokens.json is corrupt",),
        lambda h: h.write("tokens.json", bytes(range(256))), DEMO, ("tokens.json",), logins=1,
    ),
    Case(
        "tokens-wrong-shape", ("ls",), 0, ("tokens.json has unreadable entries",),
        lambda h: h.write("tokens.json", {"prod": {"p11": {"s3export": [1, 2]}}}),
        DEMO, ("tokens.json",), logins=1,
    ),
    Case(
        "tokens-garbage-token", ("ls",), 0, ("not p11's",),
        lambda h: h.edit_token(token="garbage", expires=FAR), DEMO, ("tokens.json",), logins=1,
    ),
    Case(
        "tokens-expired", ("ls",), 0, (),
        lambda h: h.edit_token(token=token("p11", 1000), expires=1000, refresh_expires=1000),
        DEMO, ("tokens.json",), logins=1,
    ),
    Case(
        "tokens-wrong-project", ("ls",), 0, ("not p11's",),
        lambda h: h.edit_token(token=token("p12", FAR), expires=FAR),
        DEMO, ("tokens.json",), logins=1,
    ),
    Case(
        "uploads-binary", ("--status",), 0, ("uploads.json is corrupt",),
        lambda h: h.write("uploads.json", b"\xff\xfe\x00garbage"),
    ),
    Case(
        "uploads-empty", ("--status",), 0, ("uploads.json is corrupt",),
        lambda h: h.write("uploads.json", b""),
    ),
    Case(
        "uploads-malformed-during-a-multipart-put",
        ("--multipart-chunk-size-mb=5", "put", "six.bin", f"s3://{BUCKET}/"), 0,
        ("uploads.json is corrupt",),
        lambda h: (h.write("uploads.json", "[1, 2"), h.local("six.bin", b"6" * (6 << 20))),
        changes=("uploads.json",), uploads=(("six.bin",) * 2,),
    ),
    # A token handed in through the environment is used as it is, or refused.
    Case(
        "env-token-garbage", ("ls",), EX_USAGE, ("TSD_S3CMD_TOKEN is not a TSD token",),
        lambda h: h.env.update(TSD_S3CMD_TOKEN="garbage"),
    ),
    Case(
        "env-token-expired", ("ls",), EX_NOPERM, ("TSD_S3CMD_TOKEN has expired",),
        lambda h: h.env.update(TSD_S3CMD_TOKEN=token("p11", 1000)),
    ),
    Case(
        "env-token-wrong-project", ("--project", "p11", "ls"), EX_USAGE,
        ("TSD_S3CMD_TOKEN is for p12, not p11",),
        lambda h: h.env.update(TSD_S3CMD_TOKEN=token("p12", FAR)),
    ),
    # Environments, projects and users.
    Case("unknown-environment", ("--env", "staging", "ls"), EX_USAGE, ("'staging' is not one of",)),
    Case("malformed-project", ("--project", "11", "ls"), EX_USAGE, ("'11' is not a project name",)),
    Case(
        "project-with-shell-characters", ("--project", "p11;rm -rf ~", "ls"), EX_USAGE,
        ("is not a project name",),
    ),
    Case(
        "unregistered-project", ("--project", "p99", "ls"), EX_CONFIG,
        ("p99 (prod) is not registered", "--register --env prod --project p99"),
    ),
    Case(
        "user-of-another-project", ("--register", "--env", "prod", "--project", "p11"), EX_USAGE,
        ("belongs to p12, not p11",), stdin="p12-alice\npw\n123\n",
    ),
    Case(
        "wrong-password", ("--register", "--env", "prod"), EX_NOPERM,
        ("TSD refused the registration for p11", "401"), stdin="p11-demo\nwrong\n123456\n",
    ),
    Case(
        "wrong-one-time-code", ("ls",), EX_NOPERM, ("TSD refused the login for p11",),
        Home.forget_tokens, "p11-demo\ndemo-password\n000000\n", logins=1,
    ),
    Case(
        "empty-credentials", ("ls",), EX_USAGE, ("are all needed",), Home.forget_tokens, "\n\n\n"
    ),
    # ~/.s3cfg
    Case(
        "s3cfg-missing", ("ls",), EX_CONFIG, ("no s3cmd config at",),
        lambda h: h.s3cfg.unlink(),
    ),
    Case(
        "s3cfg-unreadable", ("ls",), EX_CONFIG, ("permission denied",),
        lambda h: (h.s3cfg.chmod(0), setattr(h, "preexec", without_read_override)),
    ),
    Case(
        "s3cfg-binary", ("ls",), EX_CONFIG, ("is not a text file",),
        lambda h: h.s3cfg.write_bytes(b"\xff\xfe\x00\x01" * 64),
    ),
    Case(
        "s3cfg-malformed", ("ls",), EX_CONFIG, ("has no host_base, access_key, secret_key",),
        lambda h: h.s3cfg.write_text("[default\nthis is not = = an ini file\n"),
    ),
    Case(
        "s3cfg-is-a-directory", ("ls",), EX_CONFIG, ("is a directory",),
        lambda h: (h.s3cfg.unlink(), h.s3cfg.mkdir()),
    ),
    Case(
        "s3cfg-given-is-missing", ("-c", "/nonexistent/s3cfg", "ls"), EX_CONFIG,
        ("no s3cmd config at /nonexistent/s3cfg",),
    ),
    Case(
        "s3cfg-closed-port", ("ls",), EX_CONNECTIONREFUSED, ("Connection refused",),
        lambda h: h.s3cfg.write_text(
            h.s3cfg.read_text().replace(h.tsd.emulator.url[7:], f"127.0.0.1:{closed_port()}")
        ),
    ),
    # Directories where files are expected.
    Case(
        "tokens-is-a-directory", ("ls",), EX_CONFIG, ("tokens.json is not a regular file",),
        lambda h: (h.forget_tokens(), (h.config / "tokens.json").mkdir()),
    ),
    Case(
        "config-dir-is-a-file", ("ls",), EX_CONFIG, ("Not a directory",),
        lambda h: (shutil.rmtree(h.config), h.config.write_text("not a directory\n")),
    ),
    Case(
        "put-a-directory", ("put", "a-directory", f"s3://{BUCKET}/"), EX_USAGE, ("--recursive",),
        lambda h: (h.tmp / "a-directory").mkdir(),
    ),
    # A full disk while writing the cache or the registration.
    Case(
        "disk-full-at-login", ("ls",), 0, ("could not write", "tokens.json", "new login"),
        lambda h: (
            h.edit_token(token=token("p11", 1000), expires=1000, refresh_expires=1000),
            setattr(h, "preexec", disk_full_after(64)),
        ),
        DEMO, logins=1,
    ),
    Case(
        "disk-full-at-registration", ("--register", "--env", "prod"), EX_IOERR,
        ("could not write", "credentials.json"),
        lambda h: setattr(h, "preexec", disk_full_after(64)), DEMO,
    ),
    # Odd file names are not bad input: they must simply work.
    Case(
        "name-with-spaces", ("put", "my data file.txt", f"s3://{BUCKET}/"), 0,
        setup=lambda h: h.local("my data file.txt"), uploads=(("my data file.txt",) * 2,),
    ),
    Case(
        "name-with-newline", ("put", "two\nlines.txt", f"s3://{BUCKET}/"), 0,
        setup=lambda h: h.local("two\nlines.txt"), uploads=(("two\nlines.txt", "two^Jlines.txt"),),
    ),
    Case(
        "name-in-unicode", ("put", "r\u00e9sum\u00e9 \u2713 \u6570\u636e.txt", f"s3://{BUCKET}/"),
        0, setup=lambda h: h.local("r\u00e9sum\u00e9 \u2713 \u6570\u636e.txt"),
        uploads=(("r\u00e9sum\u00e9 \u2713 \u6570\u636e.txt",) * 2,),
    ),
    Case(
        "name-with-leading-dash", ("put", "--", "-dash.txt", f"s3://{BUCKET}/"), 0,
        setup=lambda h: h.local("-dash.txt"), uploads=(("-dash.txt",) * 2,),
    ),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, Path]]:
    """One emulator for the table, and a home to copy: registered, both tokens cached."""
    root = tmp_path_factory.mktemp("bad-input")
    env = private_env(root)
    home = Path(env["HOME"])
    emulator = launch_emulator(env, home / ".s3cfg")
    try:
        template = Tsd(env={**env, "TSD_API_URL": emulator.url}, home=home, emulator=emulator)
        template.register()
        template.ok("mb", f"s3://{BUCKET}", input=DEMO)
        template.ok("ls", input=DEMO)
        yield emulator, home
    finally:
        stop_emulator(emulator.process)


def snapshot(paths: list[Path]) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths if p.is_file()}


def is_error(line: str) -> bool:
    """An error line of tsd-s3cmd's own, or of s3cmd's."""
    return line.startswith("ERROR: ") or (
        line.startswith("tsd-s3cmd: ") and not line.startswith("tsd-s3cmd: warning: ")
    )


# Cases that end before any of s3cmd's code is loaded: the s3cmd 2.3.0 pass
# need not run them again. The others are marked s3cmd (tests/conftest.py).
BEFORE_S3CMD = {
    "disk-full-at-registration", "env-token-expired", "env-token-garbage",
    "env-token-wrong-project", "malformed-project", "project-with-shell-characters",
    "unknown-environment", "uploads-binary", "uploads-empty", "user-of-another-project",
    "wrong-password",
}  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=() if c.id in BEFORE_S3CMD else pytest.mark.s3cmd)
     for c in CASES],
)  # fmt: skip
def test_bad_input(case: Case, shared: tuple[Emulator, Path], tmp_path: Path) -> None:
    emulator, template = shared
    env = private_env(tmp_path)
    home = Path(env["HOME"])
    shutil.copytree(template, home, dirs_exist_ok=True, symlinks=True)
    tsd = Tsd(env={**env, "TSD_API_URL": emulator.url}, home=home, emulator=emulator)
    h = Home(tsd=tsd, tmp=tmp_path / "work")
    h.tmp.mkdir()
    watched = [h.config / n for n in ("credentials.json", "tokens.json", "uploads.json")]
    watched.append(h.s3cfg)
    case.setup(h)
    broken = snapshot(watched)
    logins = len(tsd.auth_calls("token"))

    result = tsd.run(
        *case.args, input=case.stdin, extra_env=h.env, cwd=h.tmp, preexec_fn=h.preexec, timeout=120
    )

    assert result.returncode == case.code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.lines if is_error(line)]
    ours = [line for line in result.lines if line.startswith("tsd-s3cmd: ")]
    if case.code:
        assert len(errors) == 1 and len(ours) <= 1, result.stderr
        message = errors[0]
    else:
        assert not errors and len(ours) == (1 if case.says else 0), result.stderr
        message = ours[0] if ours else ""
    for needle in case.says:
        assert needle in message, (needle, result.stderr)
    assert len(tsd.auth_calls("token")) - logins == case.logins, result.stderr
    after = snapshot(watched)
    for path, data in broken.items():  # good or bad, what the run may not touch is as it was
        if path.name not in case.changes:
            assert after.get(path) == data, f"{path.name} changed"
    for name in case.changes:  # rewritten, and whole
        assert isinstance(json.loads((h.config / name).read_text()), dict), name
    if h.config.is_dir():
        assert not [p.name for p in h.config.iterdir() if p.name.endswith(".tmp")]
    for name, key in case.uploads:
        assert emulator.object(BUCKET, key) == (h.tmp / name).read_bytes(), name
