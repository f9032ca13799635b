"""Shares of a key space: stable, fair, and read from a Slurm array task's environment."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tsd_s3cmd.keyspace.shards import Shard, ShardError, parse, share_of

KEYS = [f"d{i // 100:02d}/f{i:05d}.txt" for i in range(400)]


def test_every_key_is_in_exactly_one_share_and_the_shares_are_fair() -> None:
    shares = [[k for k in KEYS if Shard(i, 4).contains(k)] for i in range(4)]
    assert sorted(k for share in shares for k in share) == sorted(KEYS)
    assert all(60 <= len(share) <= 140 for share in shares), [len(s) for s in shares]


def test_the_share_is_the_same_in_every_process() -> None:
    # Python's own hash() of a str changes from process to process; ours must not.
    code = "from tsd_s3cmd.keyspace.shards import share_of; print(share_of('a/ü b.txt', 7))"
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout  # fmt: skip
        assert int(out) == share_of("a/ü b.txt", 7)
    assert [share_of(k, 4) for k in ("a", "b", "c", "d")] == [3, 1, 3, 3]  # fixed forever


@pytest.mark.parametrize(
    ("value", "expected"), [("0/4", (0, 4)), ("3/4", (3, 4)), ("0/1", (0, 1)), ("SLURM", None)]
)
def test_k_of_n(value: str, expected: tuple[int, int] | None) -> None:
    env = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3"}
    shard = parse(value, env)
    assert (shard.index, shard.count) == (expected or (2, 4))


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("4/4", "must be 0 to 3"),
        ("0/0", "at least one share"),
        ("x/3", "takes K/N"),
        ("1", "takes K/N"),
        ("-1/3", "must be 0 to 2"),
        ("slurm", "SLURM_ARRAY_TASK_ID is not set"),
    ],
)
def test_a_share_that_cannot_be_is_refused_with_what_would_do(value: str, says: str) -> None:
    with pytest.raises(ShardError, match=says):
        parse(value, {})


@pytest.mark.parametrize(
    ("task", "first", "last", "step", "expected"),
    [
        ("0", "0", "3", None, (0, 4)),
        ("3", "0", "3", "1", (3, 4)),
        ("7", "1", "10", "3", (2, 4)),  # --array=1-10:3 is 1, 4, 7, 10
        ("5", "5", "5", None, (0, 1)),
    ],
)
def test_a_slurm_task_is_its_place_in_the_array(
    task: str, first: str, last: str, step: str | None, expected: tuple[int, int]
) -> None:
    env = {"SLURM_ARRAY_TASK_ID": task, "SLURM_ARRAY_TASK_MIN": first,
           "SLURM_ARRAY_TASK_MAX": last}  # fmt: skip
    if step is not None:
        env["SLURM_ARRAY_TASK_STEP"] = step
    assert parse("slurm", env) == Shard(*expected)


def test_an_array_of_uneven_tasks_needs_k_of_n() -> None:
    env = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0",
           "SLURM_ARRAY_TASK_MAX": "5", "SLURM_ARRAY_TASK_COUNT": "3"}  # --array=0,2,5
    with pytest.raises(ShardError, match="evenly spaced"):
        parse("slurm", env)
