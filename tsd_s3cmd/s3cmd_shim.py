"""The one place where tsd-s3cmd reaches into s3cmd.

s3cmd from PyPI has no way to put headers on every request: ``--add-header``
reaches only PUT, copy and bucket-create. TSD refuses any request without
``token`` and ``x-project-select``, so tsd-s3cmd runs s3cmd's own ``s3cmd``
script in this interpreter (no second process, no token on any command line)
with four hooks and one fix:

1. ``S3.S3.S3Request.get_triplet``: every request, retries included, passes
   through it just before it is signed and sent. The hook adds the two headers
   there, so they are covered by the AWS signature and a token renewed during
   a long transfer is used from the next request on.
2. ``optparse.OptionParser``: s3cmd parses its own command line; a subclass
   hands the result (command, arguments, config path) to tsd-s3cmd, so the
   token type follows s3cmd's reading of the arguments, not a copy of it.
   It also replaces s3cmd's default config (``~/.s3cfg``) with the project's
   stored one when there is one, so that ``-c FILE`` still wins; and, for
   shell completion, it hands over the parser itself (``vocabulary``).
3. ``S3.MultiPart.MultiPartUpload``: starting and finishing a multipart upload
   are reported, so an interrupted upload can be resumed with ``--upload-id``.
4. A logging filter that removes tokens and the S3 access key (in the
   ``Authorization`` header) from s3cmd's ``--debug`` output.
5. ``S3.S3Uri.S3UriFile``: s3cmd's pattern for a local path stops at the first
   newline, so ``put $'a\\nb'`` says "Nothing to upload" and ``get s3://b/k
   $'a\\nb'`` writes to ``a``. The same pattern with ``re.DOTALL`` keeps the
   whole name (s3cmd then stores the newline as ``^J``, as it does when it
   walks a directory).

The script is compiled once and its code kept in the user's cache directory
(validated by the script's path, size and mtime and the Python version): plain
s3cmd compiles its 3,700 lines on every run, which on a small machine costs
more than everything tsd-s3cmd adds.

``check_compatible`` runs before every s3cmd run. It verifies that the hooks
still hold for the installed s3cmd, in particular that every method of
``S3.S3.S3`` that talks HTTP goes through ``get_triplet``. A future s3cmd that
sent a request another way would otherwise go out without the headers; this
way it gives a clear error instead.
"""

from __future__ import annotations

import builtins
import logging
import marshal
import optparse
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from . import tokens
from .errors import EX_BREAK, ConfigError

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from types import CodeType
    from typing import Any, Protocol

    class Hooks(Protocol):
        """What the runner supplies to a run of s3cmd."""

        def parsed(self, options: optparse.Values, args: Sequence[str]) -> None:
            """s3cmd has parsed its command line (``args[0]`` is the command)."""

        def headers(self) -> Mapping[str, str]:
            """Extra headers for the request about to be signed."""

        def upload_started(self, upload_id: str, destination: str, source: str) -> None: ...

        def upload_finished(self, upload_id: str) -> None: ...


TESTED_VERSIONS = "2.3 and 2.4"
_HTTP_CALLS = frozenset({"request", "putrequest", "endheaders", "getresponse"})


class _Abort(BaseException):
    """Carries an error of a hook out of s3cmd.

    s3cmd catches ``Exception`` broadly (to retry, or to print a bug report
    with a traceback); an error of ours, or an OSError from our own files,
    must pass through all of that untouched, as a KeyboardInterrupt does.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _guarded(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except Exception as err:
        raise _Abort(err) from err


# s3cmd's advice after a failed part ends in "<argv0> --upload-id ID put ...", a
# command that cannot be run as printed; the runner prints the complete one.
_HALF_ADVICE = re.compile(r"\. Use\n.*?\nto continue the upload\.", re.S)


# The access key in a signature v4 Authorization header (compiled at the first
# log record: most runs have none).
_CREDENTIAL = r"(Credential=)[^/\s'\",]+"


class _Redact(logging.Filter):
    """Clean s3cmd's log records: tokens and the access key redacted
    (``--debug`` prints every header), and its incomplete resume advice cut."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = re.sub(_CREDENTIAL, r"\1<access key>", tokens.redact(message))
        cleaned = _HALF_ADVICE.sub(".", cleaned).lstrip("\n")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def version() -> str:
    try:
        from S3 import PkgInfo
    except ImportError:
        return "not installed"
    return str(PkgInfo.version)


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


def check_compatible() -> None:
    """Fail clearly, before any request, if the hooks do not fit this s3cmd."""
    problem = _incompatibility()
    if problem:
        raise ConfigError(
            f"the installed s3cmd {version()} does not work with tsd-s3cmd ({problem}); "
            f"install a tested release ({TESTED_VERSIONS}): pip install 's3cmd>=2.3,<2.5'"
        )


def _incompatibility() -> str | None:
    try:
        from S3 import S3 as s3_module
        from S3 import MultiPart, S3Uri
    except ImportError as err:
        return f"cannot import it: {err}"
    request = getattr(s3_module, "S3Request", None)
    client = getattr(s3_module, "S3", None)
    if request is None or client is None:
        return "S3.S3 has no S3Request or S3 class"
    triplet = getattr(request, "get_triplet", None)
    if triplet is None or "sign" not in triplet.__code__.co_names:
        return "S3Request.get_triplet no longer signs the request"
    for name, value in vars(client).items():
        names = getattr(getattr(value, "__code__", None), "co_names", ())
        if _HTTP_CALLS & set(names) and "get_triplet" not in names:
            return f"S3.{name} sends requests without S3Request.get_triplet"
    if not isinstance(getattr(S3Uri.S3UriFile, "_re", None), re.Pattern):
        return "S3Uri.S3UriFile has no _re pattern"
    upload = getattr(MultiPart, "MultiPartUpload", None)
    for method in ("initiate_multipart_upload", "complete_multipart_upload", "abort_upload"):
        if not callable(getattr(upload, method, None)):
            return f"MultiPartUpload.{method} is missing"
    return None


@contextmanager
def _patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextmanager
def _hooks_installed(hooks: Hooks, default_config: Path | None) -> Iterator[None]:
    from S3 import S3 as s3_module
    from S3 import MultiPart, S3Uri

    file_pattern = S3Uri.S3UriFile._re
    whole_names = re.compile(file_pattern.pattern, file_pattern.flags | re.DOTALL)
    original_triplet = s3_module.S3Request.get_triplet

    def get_triplet(self: Any) -> Any:
        self.headers.update(_guarded(hooks.headers))
        return original_triplet(self)

    class OptionParser(optparse.OptionParser):
        def parse_args(self, args: Any = None, values: Any = None) -> Any:
            if default_config is not None:
                if self.defaults.get("config") is None:
                    raise _Abort(ConfigError(_NO_DEFAULT_CONFIG))
                self.defaults["config"] = str(default_config)
            options, positional = super().parse_args(args, values)
            _guarded(hooks.parsed, options, list(positional))
            return options, positional

    upload_class = MultiPart.MultiPartUpload
    original_initiate = upload_class.initiate_multipart_upload
    original_complete = upload_class.complete_multipart_upload
    original_abort = upload_class.abort_upload

    def initiate(self: Any) -> Any:
        upload_id = original_initiate(self)
        stream = getattr(self, "file_stream", None)
        source = getattr(stream, "stream_name", None)
        # A copy between buckets, or an upload from stdin, cannot be resumed.
        if upload_id and source and source != "<stdin>":
            _guarded(hooks.upload_started, upload_id, self.dst_uri.uri(), source)
        return upload_id

    def complete(self: Any) -> Any:
        response = original_complete(self)
        _guarded(hooks.upload_finished, self.upload_id)
        return response

    def abort(self: Any) -> Any:
        response = original_abort(self)
        _guarded(hooks.upload_finished, self.upload_id)
        return response

    redact = _Redact()
    logging.getLogger().addFilter(redact)
    try:
        with (
            _patched(s3_module.S3Request, "get_triplet", get_triplet),
            _patched(optparse, "OptionParser", OptionParser),
            _patched(upload_class, "initiate_multipart_upload", initiate),
            _patched(upload_class, "complete_multipart_upload", complete),
            _patched(upload_class, "abort_upload", abort),
            _patched(S3Uri.S3UriFile, "_re", whole_names),
        ):
            yield
    finally:
        logging.getLogger().removeFilter(redact)


def _script_code(path: Path, cache_dir: Path | None) -> CodeType:
    """The compiled s3cmd script, from the cache when it is still the same script."""
    source = path.read_bytes()
    st = path.stat()
    header = f"tsd-s3cmd\0{sys.version}\0{path}\0{st.st_mtime_ns}\0{st.st_size}\0".encode()
    cached = None
    if cache_dir is not None:
        import hashlib

        cached = cache_dir / f"s3cmd-{hashlib.sha256(header).hexdigest()[:16]}.code"
        try:
            with open(cached, "rb") as f:
                # Loading code is running it: only from a file no one else can write.
                info = os.fstat(f.fileno())
                if info.st_uid == os.geteuid() and not info.st_mode & 0o022:
                    data = f.read()
                    if data.startswith(header):
                        return marshal.loads(data[len(header) :])
        except (OSError, EOFError, ValueError, TypeError):
            pass
    code = compile(source, str(path), "exec")
    if cached is not None:
        _write_private(cached, header + marshal.dumps(code))
    return code


def _write_private(path: Path, data: bytes) -> None:
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


_NO_DEFAULT_CONFIG = (
    "this s3cmd has no default config file that tsd-s3cmd can replace with the project's "
    f"stored one; pass the config with -c, or install a tested s3cmd ({TESTED_VERSIONS})"
)


@contextmanager
def _as_script(path: Path, args: Sequence[str], prog: str) -> Iterator[dict[str, Any]]:
    """The namespace to run s3cmd's script in, with its ``sys.argv``.

    s3cmd reads ``sys.argv`` and replaces ``sys.stdout``/``sys.stderr``;
    all three are restored afterwards.
    """
    saved = sys.argv, sys.stdout, sys.stderr
    sys.argv = [prog, *args]
    try:
        yield {"__name__": "__main__", "__file__": str(path), "__builtins__": builtins}
    finally:
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                stream.flush()
        sys.argv, sys.stdout, sys.stderr = saved


def run(
    args: Sequence[str],
    hooks: Hooks,
    cache_dir: Path | None = None,
    prog: str = "tsd-s3cmd",
    default_config: Path | None = None,
) -> int:
    """Run s3cmd with ``args`` in this interpreter; its exit status.

    ``default_config`` replaces s3cmd's default config (``~/.s3cfg``): it is
    used unless ``args`` name another. A TsdError raised by a hook is
    re-raised here, after s3cmd has unwound, as is any other exception of a
    hook.
    """
    check_compatible()
    path = script_path()
    code = _script_code(path, cache_dir)
    try:
        with _as_script(path, args, prog) as namespace, _hooks_installed(hooks, default_config):
            exec(code, namespace)
        return 0
    except SystemExit as exit_:
        return _exit_status(exit_.code)
    except _Abort as abort:
        raise abort.error from None
    except KeyboardInterrupt:
        return EX_BREAK


class _Parser(BaseException):
    """Carries s3cmd's option parser out of its ``main``, before anything is parsed."""

    def __init__(self, parser: optparse.OptionParser) -> None:
        super().__init__("s3cmd's option parser")
        self.parser = parser


def vocabulary(cache_dir: Path | None = None) -> tuple[list[str], list[tuple[str, bool]]]:
    """s3cmd's commands, and its options with whether each takes a value.

    Read from the installed s3cmd, for shell completion: its
    ``get_commands_list()``, and the parser its ``main`` builds, taken at the
    moment it would parse (so nothing is read, sent or printed).
    """

    class OptionParser(optparse.OptionParser):
        def parse_args(self, args: Any = None, values: Any = None) -> Any:
            raise _Parser(self)

    path = script_path()
    code = _script_code(path, cache_dir)
    parser = None
    replaced = _patched(optparse, "OptionParser", OptionParser)
    with _as_script(path, [], "s3cmd") as namespace, replaced:
        try:
            exec(code, namespace)
        except _Parser as found:
            parser = found.parser
        except (Exception, SystemExit):
            parser = None
    listing = namespace.get("get_commands_list")
    if parser is None or not callable(listing):
        raise ConfigError(f"cannot read the commands and options of s3cmd {version()}")
    commands = [entry["cmd"] for entry in listing() if "cmd" in entry]
    options = [
        (name, option.takes_value())
        for option in parser.option_list
        for name in (*option._long_opts, *option._short_opts)
    ]
    return commands, options


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1
