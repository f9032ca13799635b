"""Run the real ``tsd-s3cmd`` process against the emulator, in a temporary home."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from ..conftest import BIN, Emulator, launch_emulator, private_env, stop_emulator
from ..slurm import Slurm, slurm_missing

DEMO = "p11-demo\ndemo-password\n123456\n"
NOEXPORT = "p11-noexport\ndemo-password\n123456\n"
ALICE = "p22-alice\nalice-pw\n654321\n"  # in p22-export-group, in the two_projects fixture


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


@dataclass
class Tsd:
    """A user's shell: a home with ~/.s3cfg pointing at an emulator."""

    env: dict[str, str]
    home: Path
    emulator: Emulator
    calls: list[list[str]] = field(default_factory=list)

    @property
    def config_dir(self) -> Path:
        return Path(self.env["XDG_CONFIG_HOME"]) / "tsd-s3cmd"

    def run(
        self,
        *args: str,
        input: str | None = None,
        extra_env: dict[str, str] | None = None,
        timeout: float = 180,
        cwd: Path | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> Result:
        """Run tsd-s3cmd; stdin is ``input``, or closed (empty) when None.

        ``preexec_fn`` runs in the child before exec: limits and privileges.
        """
        env = {**self.env, **(extra_env or {})}
        self.calls.append(list(args))
        proc = subprocess.run(
            [str(BIN / "tsd-s3cmd"), *args],
            input=(input or "").encode(),
            capture_output=True,
            env=env,
            timeout=timeout,
            cwd=cwd or self.home,
            start_new_session=True,  # no controlling terminal, as in a batch job
            preexec_fn=preexec_fn,
        )
        return Result(
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )

    def ok(self, *args: str, **kwargs) -> Result:  # type: ignore[no-untyped-def]
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, f"{args} -> {result.returncode}\n{result.stderr}"
        return result

    def register(self, credentials: str = DEMO, *extra: str) -> Result:
        return self.ok("--register", "--env", "prod", *extra, input=credentials)

    def auth_calls(self, kind: str = "token") -> list[dict]:
        """Auth API requests of one kind: api_key, token, basic, refresh, secret."""
        paths = {
            "api_key": "/api_key",
            "token": "/auth/tsd/token",
            "basic": "/auth/basic/token",
            "refresh": "/auth/refresh/token",
            "secret": "/auth/clients/secret",
        }
        return [
            e
            for e in self.emulator.log()
            if e["kind"] == "auth" and e["path"].endswith(paths[kind])
        ]


@contextmanager
def member_home(root: Path, exported: dict[str, bytes]) -> Iterator[Tsd]:
    """A home under ``root`` registered for p11 as p11-demo with both token types cached,
    on an emulator of its own whose export-bucket holds ``exported``; stopped after."""
    env = private_env(root)
    export = root / "export"
    for name, data in exported.items():
        (export / name).parent.mkdir(parents=True, exist_ok=True)
        (export / name).write_bytes(data)
    user = Path(env["HOME"])
    emulator = launch_emulator(env, user / ".s3cfg", "--export-dir", str(export))
    try:
        tsd = Tsd(env={**env, "TSD_API_URL": emulator.url}, home=user, emulator=emulator)
        tsd.register()
        tsd.ok("--print-token-for", "put", input=DEMO)
        tsd.ok("--print-token-for", "get", input=DEMO)
        yield tsd
    finally:
        stop_emulator(emulator.process)


@pytest.fixture
def make_tsd(
    start_emulator: Callable[..., Emulator], clean_env: dict[str, str], tmp_path: Path
) -> Callable[..., Tsd]:
    """A home whose ~/.s3cfg points at a new emulator started with ``args``."""

    def make(*args: str, export: bool = True, ca: Path | None = None) -> Tsd:
        """``ca``: serve https, and write the test CA's certificate there."""
        home = Path(clean_env["HOME"])
        emulator_args = list(args)
        export_dir = tmp_path / "export"
        if export:
            (export_dir / "sub dir").mkdir(parents=True, exist_ok=True)
            (export_dir / "results.csv").write_bytes(b"id,value\n1,42\n")
            (export_dir / "sub dir" / "r\u00e9sum\u00e9 notes.txt").write_text(
                "export me\n", encoding="utf-8"
            )
            (export_dir / "big.bin").write_bytes(os.urandom(7 * 1024 * 1024 + 11))
            emulator_args += ["--export-dir", str(export_dir)]
        emulator = start_emulator(*emulator_args, s3cfg=home / ".s3cfg", ca=ca)
        env = {**clean_env, "TSD_API_URL": emulator.url}
        tsd = Tsd(env=env, home=home, emulator=emulator)
        emulator.extra["export_dir"] = export_dir
        return tsd

    return make


@pytest.fixture
def tsd(make_tsd: Callable[..., Tsd]) -> Tsd:
    return make_tsd()


@pytest.fixture
def two_projects(
    start_emulator: Callable[..., Emulator], clean_env: dict[str, str], tmp_path: Path
) -> Tsd:
    """A user with no ~/.s3cfg; the emulator has p11 and p22 (alice may export)."""
    emulator = start_emulator(
        "--user", "p22-alice:alice-pw:654321:export", s3cfg=tmp_path / "emulator.s3cfg"
    )
    env = {**clean_env, "TSD_API_URL": emulator.url}
    return Tsd(env=env, home=Path(clean_env["HOME"]), emulator=emulator)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Slurm:
    """The local Slurm cluster that .ci/slurm starts (tests/slurm.py says how to use it).

    Without one the test skips, saying what is missing and how to start it:
    tests never start daemons themselves.
    """
    missing = slurm_missing()
    if missing:
        pytest.skip(missing)
    return Slurm(tmp_path_factory.mktemp("slurm"))
