"""Shares of a key space: which keys one task of a job array moves (``--shard K/N``).

A key belongs to share ``hash(key) mod N``, by a hash that is the same on
every machine, Python version and run (BLAKE2b of the key's UTF-8 bytes, not
Python's ``hash``, which changes from process to process). The key is the
one the command compares by: the path relative to the command's source, on
the local side and the remote side alike. So a file and its object are
always in the same share, a share deletes (``--delete-removed``) only what
is its own, and N tasks together do exactly what one unsharded command does.

``--shard slurm`` reads K and N from a Slurm job array task's environment,
whatever the array's first index and step (``--array=1-10:3``: tasks 1, 4,
7, 10 are shares 0 to 3 of 4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

SLURM = "slurm"


class ShardError(ValueError):
    """A ``--shard`` value that cannot be: the message says why and what would do."""


class Shard:
    """Share ``index`` of ``count``."""

    def __init__(self, index: int, count: int) -> None:
        if count < 1:
            raise ShardError(f"--shard needs at least one share, not {count}")
        if not 0 <= index < count:
            raise ShardError(
                f"--shard {index}/{count}: the share must be 0 to {count - 1} "
                f"(K of K/N counts from 0)"
            )
        self.index = index
        self.count = count

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Shard) and (self.index, self.count) == (other.index, other.count)

    def __hash__(self) -> int:
        return hash((self.index, self.count))

    def contains(self, key: str) -> bool:
        return share_of(key, self.count) == self.index


def share_of(key: str, count: int) -> int:
    """The share of ``count`` that ``key`` belongs to."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def parse(value: str, environ: Mapping[str, str]) -> Shard:
    """``K/N``, or ``slurm`` for the Slurm array task that runs us; ShardError if it cannot be."""
    if value.strip().lower() == SLURM:
        return from_slurm(environ)
    index, slash, count = value.partition("/")
    try:
        if not slash:
            raise ValueError
        return Shard(int(index), int(count))
    except ShardError:
        raise
    except ValueError:
        raise ShardError(
            f"--shard takes K/N (share K of N, counting from 0, e.g. 0/4) or 'slurm', "
            f"not {value!r}"
        ) from None


def from_slurm(environ: Mapping[str, str]) -> Shard:
    """This array task's share: its index among the array's tasks, of how many there are."""
    task = environ.get("SLURM_ARRAY_TASK_ID", "").strip()
    if not task:
        raise ShardError(
            "--shard slurm works in a task of a Slurm job array (sbatch --array=...), and "
            "SLURM_ARRAY_TASK_ID is not set here; outside an array, give the share as K/N"
        )
    try:
        task_id = int(task)
        first = int(environ.get("SLURM_ARRAY_TASK_MIN", task))
        last = int(environ.get("SLURM_ARRAY_TASK_MAX", task))
        step = int(environ.get("SLURM_ARRAY_TASK_STEP", "1") or 1)
        tasks = int(environ.get("SLURM_ARRAY_TASK_COUNT", "").strip() or 0)
    except ValueError:
        raise ShardError(
            "--shard slurm: Slurm's SLURM_ARRAY_TASK_* variables are not numbers"
        ) from None
    count = (last - first) // step + 1 if step > 0 else 0
    if step < 1 or (task_id - first) % step or (tasks and int(tasks) != count):
        raise ShardError(
            "--shard slurm needs an array of evenly spaced tasks (--array=0-3, or 1-10:3); "
            "for another array, give each task its share as K/N"
        )
    return Shard((task_id - first) // step, count)
