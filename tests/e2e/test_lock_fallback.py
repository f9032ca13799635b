"""Job arrays on file systems that cannot ``flock``: one login, one refresh, one warning each.

The missing lock is simulated in the real processes by an ``LD_PRELOAD``
library, compiled here, whose ``flock`` fails with ENOSYS as on Lustre
mounted without ``-o flock``; its second build also fails POSIX record locks
with ENOLCK, as on NFS without a lock daemon, which leaves the lock file.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import BIN
from .conftest import DEMO, Tsd

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code

_PRELOAD = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/file.h>

int flock(int fd, int operation) { (void)fd; (void)operation; errno = ENOSYS; return -1; }

#ifdef NO_RECORD_LOCKS
static int is_lock(int cmd) {
    return cmd == F_SETLK || cmd == F_SETLKW || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
}
#define FAIL_LOCKS(name) \
int name(int fd, int cmd, ...) { \
    va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap); \
    if (is_lock(cmd)) { errno = ENOLCK; return -1; } \
    static int (*real)(int, int, ...); \
    if (!real) real = (int (*)(int, int, ...))dlsym(RTLD_NEXT, #name); \
    return real(fd, cmd, arg); \
}
FAIL_LOCKS(fcntl)
FAIL_LOCKS(fcntl64)
#endif
"""

# What each simulated file system lacks, and the warning that says which lock is used instead.
MISSING = {
    "flock": ([], "using POSIX record locks instead"),
    "flock and record locks": (["-DNO_RECORD_LOCKS"], "using a lock file instead"),
}
PROCESSES = 8


@pytest.fixture(scope="module", params=list(MISSING))
def without_locks(request, tmp_path_factory) -> tuple[dict[str, str], str]:  # type: ignore[no-untyped-def]
    """The environment that takes the locks away, and the warning expected."""
    flags, warning = MISSING[request.param]
    directory = tmp_path_factory.mktemp("preload")
    source = directory / "nolock.c"
    source.write_text(_PRELOAD)
    library = directory / "nolock.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", *flags, "-o", str(library), str(source), "-ldl"], check=True
    )
    return {"LD_PRELOAD": str(library)}, warning


def run_together(tsd: Tsd, extra_env: dict[str, str], *args: str) -> list[str]:
    """Start PROCESSES tsd-s3cmd at once, each with the credentials on stdin; their stderr."""
    credentials = tsd.home / "credentials.txt"
    credentials.write_text(DEMO)
    procs = []
    for _ in range(PROCESSES):
        with credentials.open("rb") as stdin:
            procs.append(
                subprocess.Popen(
                    [str(BIN / "tsd-s3cmd"), *args],
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env={**tsd.env, **extra_env},
                    cwd=tsd.home,
                    start_new_session=True,
                )
            )
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()
        errors.append(err.decode())
    return errors


def check_warned_at_most_once_each(errors: list[str], warning: str, config_dir: Path) -> None:
    """A process that found the new token cached took no lock, and has nothing to say."""
    warned = 0
    for err in errors:
        warnings = [line for line in err.splitlines() if "on a file system without" in line]
        assert len(warnings) <= 1 and all(warning in line for line in warnings), err
        assert "Traceback" not in err
        warned += len(warnings)
    assert warned >= 1
    assert [p.name for p in config_dir.iterdir() if p.name.startswith(".lock.")] == []


@pytest.mark.slow
def test_processes_started_together_after_logout_log_in_once(make_tsd, without_locks) -> None:  # type: ignore[no-untyped-def]
    extra_env, warning = without_locks
    tsd = make_tsd(export=False)
    tsd.register()
    tsd.ok("ls", "s3://export-bucket", input=DEMO, extra_env=extra_env)
    tsd.ok("--logout", extra_env=extra_env)
    logins = len(tsd.auth_calls("token"))
    errors = run_together(tsd, extra_env, "ls", "s3://export-bucket")
    assert len(tsd.auth_calls("token")) == logins + 1
    check_warned_at_most_once_each(errors, warning, tsd.config_dir)


@pytest.mark.slow
def test_processes_started_together_share_one_refresh(make_tsd, without_locks) -> None:  # type: ignore[no-untyped-def]
    extra_env, warning = without_locks
    tsd = make_tsd("--token-lifetime", "2", export=False)
    tsd.register()
    tsd.ok("ls", "s3://export-bucket", input=DEMO, extra_env=extra_env)
    time.sleep(2.5)  # the cached access token has expired; its refresh token has not
    tsd.emulator.settings(token_lifetime=600)
    logins, refreshes = len(tsd.auth_calls("token")), len(tsd.auth_calls("refresh"))
    errors = run_together(tsd, extra_env, "ls", "s3://export-bucket")
    assert len(tsd.auth_calls("refresh")) == refreshes + 1
    assert len(tsd.auth_calls("token")) == logins
    check_warned_at_most_once_each(errors, warning, tsd.config_dir)
