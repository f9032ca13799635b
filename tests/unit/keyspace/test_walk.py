"""A local tree walked in S3 key order, as s3cmd's walk finds it, in bounded memory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tsd_s3cmd.keyspace.walk import Walk

# Names whose order depends on the "/" after a directory's name: "-" and "." sort
# before "/", "0" after it, and code points beyond ASCII after all of them.
NAMES = ["a", "a-b", "a.txt", "a0", "b", "é", "Z", "sp ace"]


def make(root: Path) -> list[str]:
    """A tree of files and directories named alike; its files' keys."""
    files = []
    for top in NAMES:
        (root / "d" / top).mkdir(parents=True)
        (root / f"{top}.f").write_text("x")
        files.append(f"{top}.f")
        for name in NAMES:
            (root / "d" / top / name).write_text("x")
            files.append(f"d/{top}/{name}")
    (root / "a").mkdir()
    (root / "a" / "in").write_text("x")
    files.append("a/in")
    return files


def walk(**options: object) -> Walk:
    defaults = {
        "key_of": lambda root, name: os.path.join(root, name),
        "decode": os.fsdecode,
        "encode": os.fsencode,
        "prune": lambda root, name: False,
    }
    return Walk(**{**defaults, **options})  # type: ignore[arg-type]


def keys(found: object, top: Path) -> list[str]:
    return [k[len(str(top)) + 1 :] for k, _ in found]  # type: ignore[attr-defined]


def test_every_file_comes_once_in_s3_key_order(tmp_path: Path) -> None:
    files = make(tmp_path)
    found = keys(walk()(str(tmp_path)), tmp_path)
    assert found == sorted(files)  # str order is the order of the keys' UTF-8 bytes
    assert sorted(found, key=lambda k: k.encode()) == found


def test_a_huge_directory_is_sorted_in_runs_on_disk_to_the_same_order(tmp_path: Path) -> None:
    make(tmp_path)
    assert list(walk(run=3)(str(tmp_path))) == list(walk()(str(tmp_path)))


def test_what_the_walk_says_of_each_entry(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_text("x")
    found = dict(walk(with_dirs=True)(str(tmp_path)))
    top = str(tmp_path)
    assert found == {
        f"{top}/sub/": (top, "sub", True),
        f"{top}/sub/f": (f"{top}/sub", "f", False),
    }


def test_a_pruned_directory_is_not_walked(tmp_path: Path) -> None:
    make(tmp_path)
    pruned = walk(prune=lambda root, name: name == "a", with_dirs=True)(str(tmp_path))
    found = keys(pruned, tmp_path)
    assert "a/in" not in found and "a/" not in found and "d/a/" not in found
    assert "a.txt.f" in found  # a file named like it stays


def test_links_to_directories_are_followed_once_and_never_in_a_loop(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "deeper").mkdir(parents=True)
    (outside / "o").write_text("x")
    (outside / "deeper" / "p").write_text("x")
    (outside / "link-in-link").symlink_to(tmp_path / "top" / "real", target_is_directory=True)
    top = tmp_path / "top"
    (top / "real").mkdir(parents=True)
    (top / "real" / "r").write_text("x")
    (top / "linked").symlink_to(outside, target_is_directory=True)
    (top / "real" / "loop").symlink_to(top, target_is_directory=True)
    warned: list[str] = []

    plain = keys(walk(with_dirs=True)(str(top)), top)
    assert plain == ["linked/", "real/", "real/loop/", "real/r"]  # seen, not walked into

    followed = keys(walk(follow_symlinks=True, warn=warned.append)(str(top)), top)
    # As s3cmd: one level of links (not the link inside the linked directory), no loop.
    assert followed == ["linked/deeper/p", "linked/o", "real/r"]
    assert warned == ["Skipping recursively symlinked directory loop"]


def test_a_directory_that_cannot_be_read_holds_nothing(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every directory")
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed" / "f").write_text("x")
    (tmp_path / "closed").chmod(0)
    try:
        assert keys(walk()(str(tmp_path)), tmp_path) == []
    finally:
        (tmp_path / "closed").chmod(0o700)


def test_names_that_are_not_utf8_are_looked_up_as_s3cmd_does(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/bad\xff"
    os.mkdir(raw)
    with open(raw + b"/f", "w") as f:
        f.write("x")

    def decode(name: bytes) -> str:
        return name.decode("utf-8", "replace")

    def encode(name: str) -> bytes:
        return name.encode("utf-8", "replace")

    # The decoded name is another name on disk: s3cmd takes it for a file, then finds no
    # such file; the walk gives it as a file too, and does not go in.
    found = list(walk(decode=decode, encode=encode)(str(tmp_path)))
    assert [(k[len(str(tmp_path)) + 1 :], d[2]) for k, d in found] == [("bad\ufffd", False)]
