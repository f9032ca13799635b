"""The auth API failing: bounded retries with backoff, then one clear line naming the host."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import DEMO, Tsd
from .test_errors import one_line
from .test_long_running import (
    MiB,
    bucket_and_file,
    printed_resume,
    start,
    stored_parts,
    wait_for,
)


class Broken(http.server.BaseHTTPRequestHandler):
    """An auth API that fails in the way the server's ``mode`` says."""

    def _fail(self) -> None:
        self.server.calls += 1  # type: ignore[attr-defined]
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode == "500":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif mode == "slow":
            time.sleep(3)
        elif mode == "close":
            self.close_connection = True  # no answer at all

    do_GET = do_POST = _fail

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broken_api() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    server.daemon_threads = True
    server.calls = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.apart  # bounds the time the tries take from above
@pytest.mark.parametrize("mode", ["500", "slow", "close"])
def test_auth_api_faults_end_in_one_line_after_three_tries(
    tsd: Tsd, broken_api: http.server.ThreadingHTTPServer, mode: str
) -> None:
    broken_api.mode = mode  # type: ignore[attr-defined]
    env = {"TSD_API_URL": f"http://127.0.0.1:{broken_api.server_port}",
           "TSD_S3CMD_HTTP_TIMEOUT": "1"}  # fmt: skip
    began = time.monotonic()
    result = tsd.run("--register", "--env", "prod", input=DEMO, extra_env=env)
    elapsed = time.monotonic() - began
    one_line(result, 75, "cannot reach the TSD API at 127.0.0.1", "tried 3 times")
    assert broken_api.calls == 3  # type: ignore[attr-defined]
    assert elapsed < 15, elapsed  # 3 tries of at most 1 s, 1.5 s of backoff, start-up
    assert not (tsd.config_dir / "credentials.json").exists()


def patient_s3cfg(tsd: Tsd) -> str:
    """The user's s3cfg with s3cmd retrying twice (3 s, then 6 s) instead of five times.

    s3cmd 2.3 has no max_retries setting: it always retries five times (45 s of
    waiting per request)."""
    path = tsd.home / "retry.s3cfg"
    path.write_text((tsd.home / ".s3cfg").read_text() + "max_retries = 2\n")
    path.chmod(0o600)
    return str(path)


@pytest.mark.s3cmd
@pytest.mark.slow
def test_s3_faults_mid_upload_retried_or_resumable(tsd: Tsd, tmp_path: Path) -> None:
    data = bucket_and_file(tsd, "faulty", tmp_path / "faulty.bin", 30 * MiB)
    cfg = patient_s3cfg(tsd)
    # One part at a time, as plain s3cmd: test_parallel.py has the parallel case.
    put = ["-c", cfg, "--parallel", "1", "--multipart-chunk-size-mb=5", "--limit-rate=6m", "put",
           str(data)]

    # A few failures: s3cmd's own retries carry the upload through.
    proc = start(tsd, *put, "s3://faulty/few.bin")
    wait_for(lambda: len(stored_parts(tsd)) >= 1)
    tsd.emulator.faults(fail_next=1, status=503)
    tsd.emulator.faults(drop_next=1)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    failed = [e for e in tsd.emulator.s3_log() if e["status"] == 503]
    assert len(failed) == 1
    assert tsd.emulator.object("faulty", "few.bin") == data.read_bytes()

    # Many: a clear error, the resume command, and the resume sends only what is missing.
    since = len(tsd.emulator.s3_log())
    proc = start(tsd, *put, "s3://faulty/many.bin")
    wait_for(lambda: len(stored_parts(tsd, since)) >= 2)
    # 500, not 503: after each 503 s3cmd 2.3 sends five times slower, so five
    # retries of a 5 MiB part take many minutes; a 500 it retries at full speed.
    tsd.emulator.faults(fail_next=1000, status=500)
    _, err = proc.communicate(timeout=120)
    stderr = err.decode()
    assert proc.returncode != 0 and "Traceback" not in stderr
    resume = printed_resume(stderr)
    stored = set(stored_parts(tsd, since))
    tsd.emulator.faults(fail_next=0)
    after = len(tsd.emulator.s3_log())
    tsd.ok(*resume)
    assert not set(stored_parts(tsd, after)) & stored
    assert tsd.emulator.object("faulty", "many.bin") == data.read_bytes()
