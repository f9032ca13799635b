"""s3cmd's own ``s3cmd`` script, as tsd-s3cmd runs it: found, compiled once, and cached.

tsd-s3cmd runs the script of the installed s3cmd in its own interpreter
(shim.py says why). Two things happen to it on the way:

- **It is compiled once.** Plain s3cmd compiles its 3,700 lines on every
  run, which on a small machine costs more than everything tsd-s3cmd adds.
  The code is kept in the user's cache directory, valid for the script's
  path, size and mtime, the Python version and this module's own file, and
  loaded only from a file that no one else can write (loading code is
  running it).
- **Its transfer loops take their files from tsd-s3cmd.** s3cmd moves the
  files of ``put``, ``get``, ``cp``/``mv`` and the three kinds of ``sync`` in
  seven loops, one file after the other. Each of those loops, and nothing
  else, is changed in one place: ``for key in LIST:`` becomes ``for key in
  __tsd_files__(WHERE, LIST, locals()):``. The body of every loop (what is
  sent, printed, retried or given up) stays s3cmd's, and so does the order
  with ``--parallel 1``; the engine (files.py) hands the loop its files as
  they finish. ``TRANSFER_LOOPS`` names the seven; if the installed s3cmd's
  loops are not exactly these, the code runs unchanged and ``problem`` says
  what differs, which the shim's start-up check turns into a clear error
  whenever files are to move at once.
- **Its command is run through tsd-s3cmd.** ``main`` ends with ``rc =
  cmd_func(args)``; that call becomes ``__tsd_command__(cmd_func, args)``, so
  that a command over a tree can be run a range of keys at a time
  (batches.py). Unhooked, ``command_problem`` says why.
"""

from __future__ import annotations

import builtins
import marshal
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from ..errors import ConfigError

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    import ast
    from types import CodeType
    from typing import Any

# s3cmd's transfer loops (2.3 and 2.4): the function each is in, and the call it moves a file with.
TRANSFER_LOOPS = {
    "cmd_object_put": "object_put",
    "cmd_object_get": "object_get",
    "subcmd_cp_mv": "process_fce",
    "cmd_sync_remote2remote._upload": "object_copy",
    "cmd_sync_remote2local._download": "object_get",
    "cmd_sync_local2remote._child._upload": "object_put",
    "remote_copy": "object_copy",
}
FILES_HOOK = "__tsd_files__"
COMMAND_HOOK = "__tsd_command__"


def script_path() -> Path:
    """The ``s3cmd`` script that belongs to the installed S3 package."""
    beside = Path(sys.executable).parent / "s3cmd"  # a virtualenv, pipx
    if beside.is_file():
        return beside
    import sysconfig

    for scheme in ({}, {"scheme": f"{os.name}_user"}):  # the default, then --user
        with suppress(KeyError):
            candidate = Path(sysconfig.get_path("scripts", **scheme)) / "s3cmd"
            if candidate.is_file():
                return candidate
    from importlib import metadata

    try:
        for file in metadata.distribution("s3cmd").files or ():
            if file.name == "s3cmd" and file.parent.name == "bin":
                located = Path(str(file.locate()))
                if located.is_file():
                    return located
    except metadata.PackageNotFoundError:
        pass
    raise ConfigError("s3cmd is not installed with this Python; reinstall tsd-s3cmd")


class Script:
    """The compiled script, and what is wrong with its transfer loops and with the call
    of its command (None: nothing)."""

    def __init__(
        self, path: Path, code: CodeType, problem: str | None, command_problem: str | None = None
    ) -> None:
        self.path = path
        self.code = code
        self.problem = problem
        self.command_problem = command_problem


_LOADED: dict[tuple[bytes, Path | None], Script] = {}  # this process's loads


def load(cache_dir: Path | None) -> Script:
    """The installed s3cmd's script, compiled, from the cache when it is still the same.

    Once per process and cache directory: one that reads a command line and
    then runs it (``--print-token-for``, completion) reads the cache file once,
    and one given no cache directory compiles once.
    """
    path = script_path()
    st = path.stat()
    ours = os.stat(__file__)
    header = (
        f"tsd-s3cmd\0{sys.version}\0{path}\0{st.st_mtime_ns}\0{st.st_size}\0"
        f"{ours.st_mtime_ns}\0{ours.st_size}\0"
    ).encode()
    key = (header, cache_dir)
    if key not in _LOADED:
        _LOADED[key] = _load(path, header, cache_dir)
    return _LOADED[key]


def _load(path: Path, header: bytes, cache_dir: Path | None) -> Script:
    cached = None
    if cache_dir is not None:
        import hashlib

        cached = cache_dir / f"s3cmd-{hashlib.sha256(header).hexdigest()[:16]}.code"
        try:
            with open(cached, "rb") as f:
                info = os.fstat(f.fileno())
                if info.st_uid == os.geteuid() and not info.st_mode & 0o022:
                    data = f.read()
                    if data.startswith(header):
                        problem, command_problem, code = marshal.loads(data[len(header) :])
                        return Script(path, code, problem, command_problem)
        except (OSError, EOFError, ValueError, TypeError):
            pass
    code, problem, command_problem = _compile(path.read_bytes(), str(path))
    if cached is not None:
        write_private(cached, header + marshal.dumps((problem, command_problem, code)))
    return Script(path, code, problem, command_problem)


def _compile(source: bytes, filename: str) -> tuple[CodeType, str | None, str | None]:
    """The script's code with its command call and its transfer loops hooked; and what
    could not be hooked, and why (the transfer loops, the command call)."""
    import ast

    tree = ast.parse(source, filename)
    command_problem = _hook_command(tree)
    found = _transfer_loops(tree)
    missing = sorted(set(TRANSFER_LOOPS) - set(found))
    unknown = sorted(set(found) - set(TRANSFER_LOOPS))
    if missing or unknown or any(len(loops) != 1 for loops in found.values()):
        what = ", ".join(
            [f"no loop of {w} with {TRANSFER_LOOPS[w]}" for w in missing]
            + [f"a new transfer loop in {w}" for w in unknown]
            + [f"{len(v)} transfer loops in {w}" for w, v in found.items() if len(v) > 1]
        )
        ast.fix_missing_locations(tree)
        problem = f"s3cmd's transfer loops have changed ({what})"
        return compile(tree, filename, "exec"), problem, command_problem
    for where, (loop,) in found.items():
        loop.iter = ast.Call(
            func=ast.Name(id=FILES_HOOK, ctx=ast.Load()),
            args=[
                ast.Constant(value=where),
                loop.iter,
                ast.Call(func=ast.Name(id="locals", ctx=ast.Load()), args=[], keywords=[]),
            ],
            keywords=[],
        )
    ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec"), None, command_problem


def _hook_command(tree: ast.Module) -> str | None:
    """``rc = cmd_func(args)`` in ``main`` becomes ``rc = __tsd_command__(cmd_func, args)``;
    why not, if it cannot be found exactly once."""
    import ast

    calls = [
        node
        for function in tree.body
        if isinstance(function, ast.FunctionDef) and function.name == "main"
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "cmd_func"
        and len(node.args) == 1
        and not node.keywords
    ]
    if len(calls) != 1:
        return f"s3cmd's main runs its command {len(calls)} times as cmd_func(args), not once"
    (call,) = calls
    call.args = [ast.Name(id="cmd_func", ctx=ast.Load()), *call.args]
    call.func = ast.Name(id=COMMAND_HOOK, ctx=ast.Load())
    return None


def _transfer_loops(tree: ast.Module) -> dict[str, list[ast.For]]:
    """Every ``for`` loop whose own body moves a file, by the function it is in."""
    import ast

    calls = set(TRANSFER_LOOPS.values())
    found: dict[str, list[ast.For]] = {}

    def moves_a_file(loop: ast.For) -> bool:
        todo: list[ast.AST] = list(loop.body)
        while todo:
            node = todo.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue  # a function defined in the loop is not the loop
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if name in calls:
                    return True
            todo.extend(ast.iter_child_nodes(node))
        return False

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{where}.{child.name}" if where else child.name)
                continue
            if isinstance(child, ast.For) and where and moves_a_file(child):
                found.setdefault(where, []).append(child)
            visit(child, where)

    visit(tree, "")
    return found


@contextmanager
def patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    """``owner.name`` is ``replacement`` for the length of the block (a run of the script)."""
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def write_private(path: Path, data: bytes) -> None:
    """Best effort: a cache that cannot be written is simply not used next time."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if stat.S_IMODE(path.parent.stat().st_mode) & 0o022:
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with suppress(OSError):
            os.unlink(tmp)


@contextmanager
def namespace(script: Script, args: Sequence[str], prog: str) -> Iterator[dict[str, Any]]:
    """The namespace to run the script in, with its ``sys.argv``.

    s3cmd reads ``sys.argv`` and replaces ``sys.stdout``/``sys.stderr``;
    all three are restored afterwards. ``__tsd_files__`` hands the transfer
    loops their files as listed, unless the shim puts the engine there, and
    ``__tsd_command__`` runs the command once, unless the shim puts batches there.
    """
    saved = sys.argv, sys.stdout, sys.stderr
    sys.argv = [prog, *args]
    try:
        yield {
            "__name__": "__main__",
            "__file__": str(script.path),
            "__builtins__": builtins,
            FILES_HOOK: as_listed,
            COMMAND_HOOK: as_called,
        }
    finally:
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                stream.flush()
        sys.argv, sys.stdout, sys.stderr = saved


def as_listed(where: str, elements: Any, scope: dict[str, Any]) -> Any:
    """A transfer loop's files in s3cmd's own order: s3cmd's way, one after the other."""
    return elements


def as_called(command: Any, args: list[str]) -> Any:
    """s3cmd's command run as s3cmd runs it, once over all its arguments."""
    return command(args)
