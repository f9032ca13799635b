"""As many requests at once as the link rewards, and fewer when the gateway says slow down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import Tsd
from .test_many_files import log_in, most_at_once, requests_since

pytestmark = pytest.mark.s3cmd  # every test here runs s3cmd's code


@pytest.fixture
def loggedin(tsd: Tsd) -> Tsd:
    return log_in(tsd, "tree")


def small_tree(root: Path, count: int, size: int = 100) -> list[str]:
    names = [f"d{i // 100:02d}/f{i:05d}.txt" for i in range(count)]
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode().ljust(size, b"."))
    return names


@pytest.mark.slow
def test_a_gateway_that_says_slow_down_gets_fewer_requests_and_every_file(
    loggedin: Tsd, tmp_path: Path
) -> None:
    """2,000 files against a gateway that serves 8 at once: every file stored once, the
    slow-downs resent unseen (no retry lines, no failure), one line that says so."""
    tsd = loggedin
    names = small_tree(tmp_path / "up", 2000)
    # Each body takes 50 ms to arrive (100 bytes at 2,000 B/s), so that requests overlap
    # however busy the machine is: the budget starts at 10 places, above the gateway's 8.
    # (Served at once, as on an idle loopback, they ended before the ninth began whenever
    # the client's own loop was the slower side, and the gateway never had to say slow down.)
    tsd.emulator.settings(slow_down_above=8, link_rate=2000)
    since = len(tsd.emulator.s3_log())
    done = tsd.ok("sync", f"{tmp_path / 'up'}/", "s3://tree/slowed/")
    log = requests_since(tsd, since)
    slowed = [e for e in log if e["status"] == 503]
    stored = [e["path"] for e in log if e["method"] == "PUT" and e["status"] == 200]
    assert sorted(stored) == sorted(f"/tree/slowed/{name}" for name in names)
    assert 0 < len(slowed) <= 200, len(slowed)
    assert "Retrying failed request" not in done.stderr and "Giving up" not in done.stderr
    summary = re.findall(r"the gateway asked (\d+) times? to slow down", done.stderr)
    assert summary == [str(len(slowed))], done.stderr
    assert done.stdout.count("upload: ") == 2000


@pytest.mark.slow
def test_more_than_ten_at_once_while_the_link_rewards_it(loggedin: Tsd, tmp_path: Path) -> None:
    """Over a slow link each small request takes a while: the budget grows past 10
    unless --parallel sets the most."""
    tsd = loggedin
    small_tree(tmp_path / "up", 300, size=2000)
    tsd.emulator.settings(link_rate=20_000)  # 0.1 s a file's body
    since = len(tsd.emulator.s3_log())
    tsd.ok("sync", f"{tmp_path / 'up'}/", "s3://tree/grown/")
    puts = [e for e in requests_since(tsd, since) if e["method"] == "PUT"]
    assert len(puts) == 300
    assert most_at_once(puts) > 10

    since = len(tsd.emulator.s3_log())
    tsd.ok("--parallel", "8", "sync", f"{tmp_path / 'up'}/", "s3://tree/capped/")
    puts = [e for e in requests_since(tsd, since) if e["method"] == "PUT"]
    assert len(puts) == 300
    assert most_at_once(puts) <= 8
