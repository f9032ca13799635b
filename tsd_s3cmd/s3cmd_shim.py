"""The one place where tsd-s3cmd reaches into s3cmd.

s3cmd from PyPI has no way to put headers on every request: ``--add-header``
reaches only PUT, copy and bucket-create. TSD refuses any request without
``token`` and ``x-project-select``, so tsd-s3cmd runs s3cmd's own ``s3cmd``
script in this interpreter (no second process, no token on any command line)
with these hooks and fixes:

1. ``S3.S3.S3Request.get_triplet``: every request, retries included, passes
   through it just before it is signed and sent. The hook adds the two headers
   there, so they are covered by the AWS signature and a token renewed during
   a long transfer is used from the next request on.
2. ``optparse.OptionParser``: s3cmd parses its own command line; a subclass
   hands the result (command, arguments, config path) and the parser to
   tsd-s3cmd, so the token type follows s3cmd's reading of the arguments,
   not a copy of it, and so does the resume command's reading of the paths.
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
6. Parallel parts, unless ``--parallel 1``. s3cmd sends one request at a
   time (its multipart code says "TODO use num_processes to thread it").
   ``MultiPartUpload.upload_all_parts`` is replaced by one that hands the
   same ``upload_part``/``copy_part`` calls to parallel.Transfer's workers,
   each reading its part through its own file position; ``S3.object_get`` of
   an object larger than the part size fetches ranges at once into a
   temporary file beside the destination, checks the MD5 as s3cmd does and
   only then moves it into place. Objects s3cmd listed are looked up in the
   sizes ``FileLists.fetch_remote_list`` reported; one named on the command
   line costs a HEAD. Everything smaller, stdin and stdout take s3cmd's own
   path, byte for byte.
7. ``S3.FileLists.fetch_local_list``: a ``sync`` without ``--cache-file``
   keeps s3cmd's MD5 cache in the file the runner chose (md5_cache.py), with
   a HashCache that loads and saves it privately.

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
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from . import tokens
from .errors import EX_BREAK, ConfigError

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from types import CodeType
    from typing import Any, Protocol

    class Hooks(Protocol):
        """What the runner supplies to a run of s3cmd."""

        parallel: int  # parts of one file at once; 1 is s3cmd's own way
        md5_cache: Path | None  # sync's MD5 cache when --cache-file is not given

        def parsed(
            self, options: optparse.Values, args: Sequence[str], parser: optparse.OptionParser
        ) -> None:
            """s3cmd's ``parser`` has parsed its command line (``args[0]`` is the command)."""

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
    return _md5_cache_incompatibility() or _parallel_incompatibility(s3_module, upload)


# What the parallel parts call, and the parameters they pass, by name.
_PARALLEL_CALLS = {
    "MultiPartUpload.upload_part": ("seq", "offset", "chunk_size", "labels", "remote_status"),
    "MultiPartUpload.copy_part": ("seq", "offset", "chunk_size", "labels", "remote_status"),
    "MultiPartUpload.get_parts_information": ("uri", "upload_id"),
    "MultiPartUpload.upload_all_parts": ("extra_label",),
    "S3.object_get": ("uri", "stream", "dest_name", "start_position", "extra_label"),
    "S3.object_info": ("uri",),
    "S3.create_request": ("operation", "uri", "headers"),
    "S3.get_hostname": ("bucket",),
    "S3.format_uri": ("resource",),
    "S3._fail_wait": ("retries",),
}
_S3_MODULE_NAMES = (
    "ConnMan",
    "S3Error",
    "S3DownloadError",
    "S3ResponseError",
    "encode_to_s3",
    "convertHeaderTupleListToDict",
    "parse_attrs_header",
)
_CONFIG_NAMES = (
    "multipart_chunk_size_mb",
    "multipart_copy_chunk_size_mb",
    "progress_meter",
    "progress_class",
    "limitrate",
    "recv_chunk",
    "put_continue",
)


def _parallel_incompatibility(s3_module: Any, upload: Any) -> str | None:
    """Whether the calls and state the parallel parts rely on are still as they were."""
    import inspect

    from S3 import Config, FileLists

    owners = {"MultiPartUpload": upload, "S3": s3_module.S3}
    for qualified, expected in _PARALLEL_CALLS.items():
        owner, _, name = qualified.partition(".")
        function = getattr(owners[owner], name, None)
        try:
            parameters = inspect.signature(function).parameters  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return f"{qualified} is missing"
        missing = [p for p in expected if p not in parameters]
        if missing:
            return f"{qualified} no longer takes {', '.join(missing)}"
    # The loop being replaced must still be the one that sends the parts, and
    # the completion must still send what the parts left in ``parts``.
    names = upload.upload_all_parts.__code__.co_names
    if not {"upload_part", "copy_part", "chunk_size", "src_size"} <= set(names):
        return "MultiPartUpload.upload_all_parts no longer sends parts with upload_part"
    if "parts" not in upload.complete_multipart_upload.__code__.co_names:
        return "MultiPartUpload.complete_multipart_upload no longer reads parts"
    if "recv_file" not in s3_module.S3.object_get.__code__.co_names:
        return "S3.object_get no longer downloads with recv_file"
    for name in _S3_MODULE_NAMES:
        if not hasattr(s3_module, name):
            return f"S3.S3 has no {name}"
    for name in _CONFIG_NAMES:
        if not hasattr(Config.Config, name):
            return f"Config has no {name}"
    if _retries(s3_module.S3, Config.Config) is None:
        return "neither Config.max_retries nor S3._max_retries says how often to retry"
    if not callable(getattr(FileLists, "fetch_remote_list", None)):
        return "S3.FileLists has no fetch_remote_list"
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
            _guarded(hooks.parsed, options, list(positional), self)
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
            _md5_cache_installed(hooks),
            _parallel_installed(hooks.parallel),
        ):
            yield
    finally:
        logging.getLogger().removeFilter(redact)


# -- the MD5 cache -------------------------------------------------------------------


def _md5_cache_incompatibility() -> str | None:
    """Whether s3cmd still reads its MD5 cache the way hook 7 supplies it."""
    from S3 import Config, FileLists, HashCache

    names = FileLists.fetch_local_list.__code__.co_names
    if not {"HashCache", "cache_file"} <= set(names):
        return "FileLists.fetch_local_list no longer keeps its MD5s in a HashCache at cache_file"
    if not hasattr(Config.Config, "cache_file"):
        return "Config has no cache_file"
    if not isinstance(getattr(HashCache.HashCache(), "inodes", None), dict):
        return "HashCache no longer keeps its MD5s in inodes"
    return None


@contextmanager
def _md5_cache_installed(hooks: Hooks) -> Iterator[None]:
    """Hook 7: s3cmd's MD5 cache in ``hooks.md5_cache`` unless ``--cache-file`` names one.

    s3cmd reads ``cache_file`` only while it lists local files
    (``fetch_local_list``); for that while it is set to our file, and the
    HashCache made there is one that keeps the file private. Loading a pickle
    is running code, so it is loaded only from a file of this user's that no
    one else can write, and only as plain data; anything wrong with it is an
    empty cache. It is saved 0600 through a temporary file and a rename: of
    many runs at once (a job array) the last one's file stays, whole. A
    ``--cache-file`` the user gives is s3cmd's alone, as it always was
    (``--cache-file=/dev/null`` is no cache).
    """
    from S3 import Config, FileLists, HashCache

    class PrivateCache(HashCache.HashCache):
        def load(self, f: str) -> None:
            self.inodes = _load_md5s(Path(f))

        def save(self, f: str) -> None:
            import pickle

            _write_private(Path(f), pickle.dumps({"inodes": self.inodes, "version": 1}))

    original_fetch = FileLists.fetch_local_list

    def fetch_local_list(*args: Any, **kwargs: Any) -> Any:
        config = Config.Config()
        if config.cache_file or hooks.md5_cache is None:
            return original_fetch(*args, **kwargs)
        with (
            _patched(config, "cache_file", str(hooks.md5_cache)),
            _patched(FileLists, "HashCache", PrivateCache),
        ):
            return original_fetch(*args, **kwargs)

    with _patched(FileLists, "fetch_local_list", fetch_local_list):
        yield


def _load_md5s(path: Path) -> dict[Any, Any]:
    """The MD5s kept in ``path``: none if it is damaged or others could have written it."""
    import io
    import pickle

    from .private_files import PrivateDir

    class PlainData(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            raise pickle.UnpicklingError(f"{module}.{name} is not plain data")

    try:
        data = PrivateDir(path.parent).read(path.name, "an MD5 cache") or b""
        saved = PlainData(io.BytesIO(data)).load()
        inodes = saved["inodes"] if saved["version"] == 1 else {}
        # {device: {inode: {mtime: {"md5": ..., "size": ...}}}}, as HashCache.add makes it
        for entry in (e for i in inodes.values() for m in i.values() for e in m.values()):
            if not (isinstance(entry["md5"], str) and isinstance(entry["size"], int)):
                raise ValueError(f"an entry is {entry!r}")
    except ConfigError as err:  # exposed, or not a file
        logging.info("Ignoring the MD5 cache: %s", err)
    except Exception:  # damaged: it is only a cache, rebuilt as the files are read
        logging.info("Ignoring the MD5 cache %s: it is damaged", path)
    else:
        return inodes  # type: ignore[no-any-return]
    return {}


# -- parallel parts ------------------------------------------------------------------

MiB = 1024 * 1024
_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


@contextmanager
def _parallel_installed(workers: int) -> Iterator[None]:
    """Hook 6: parts of one file at once; with ``workers`` 1, nothing changes."""
    if workers <= 1:
        yield
        return
    from S3 import S3 as s3_module
    from S3 import FileLists, MultiPart

    upload_class = MultiPart.MultiPartUpload
    original_upload_all = upload_class.upload_all_parts
    original_complete = upload_class.complete_multipart_upload
    original_get = s3_module.S3.object_get
    original_fetch = FileLists.fetch_remote_list
    sizes: dict[str, int] = {}  # the objects s3cmd listed that are worth splitting

    def upload_all_parts(self: Any, extra_label: str = "") -> Any:
        return _upload_parts(self, extra_label, workers, original_upload_all)

    def complete(self: Any) -> Any:
        self.parts = dict(sorted(self.parts.items()))  # parts finish out of order
        return original_complete(self)

    def fetch_remote_list(*args: Any, **kwargs: Any) -> Any:
        found = original_fetch(*args, **kwargs)
        least = _part_size(s3_module.Config())
        for item in found[0].values():
            size = item.get("size")
            if isinstance(size, int) and size > least and "object_uri_str" in item:
                sizes[item["object_uri_str"]] = size
        return found

    def object_get(
        self: Any, uri: Any, stream: Any, dest_name: str, start_position: int = 0,
        extra_label: str = "",
    ) -> Any:
        args = (self, uri, stream, dest_name, start_position, extra_label)
        path = _regular_file(stream)
        if path is None:
            return original_get(*args)
        size = sizes.get(uri.uri())
        if size is None:
            size = int(self.object_info(uri)["headers"]["content-length"])
        if size - start_position <= _part_size(self.config):
            return original_get(*args)
        return _download_parts(self, uri, stream, path, dest_name, start_position, size,
                               extra_label, workers)

    with (
        _patched(upload_class, "upload_all_parts", upload_all_parts),
        _patched(upload_class, "complete_multipart_upload", complete),
        _patched(FileLists, "fetch_remote_list", fetch_remote_list),
        _patched(s3_module.S3, "object_get", object_get),
    ):
        yield


def _part_size(config: Any) -> int:
    return int(config.multipart_chunk_size_mb) * MiB


def _regular_file(stream: Any) -> str | None:
    """The path of the regular file behind ``stream``, else None (stdin, stdout, a pipe)."""
    name = getattr(stream, "name", None)
    if not isinstance(name, (str, bytes)):  # sync's temporary file, opened from a descriptor
        name = getattr(stream, "stream_name", None)
    try:
        held = os.fstat(stream.fileno())
        there = os.stat(name) if isinstance(name, (str, bytes)) else None
    except (AttributeError, OSError, ValueError):
        return None
    if there is None or not stat.S_ISREG(held.st_mode):
        return None
    if (held.st_dev, held.st_ino) != (there.st_dev, there.st_ino):
        return None  # "<stdout>" redirected to a file, say
    return os.fsdecode(name)


def _upload_parts(upload: Any, extra_label: str, workers: int, original: Any) -> Any:
    """s3cmd's upload loop, with the parts sent by several workers at once."""
    from S3.Utils import formatSize

    from . import parallel

    stream = upload.file_stream
    size = upload.src_size
    chunk = upload.chunk_size
    if (
        not upload.upload_id
        or not size
        or size <= chunk
        or (stream is not None and _regular_file(stream) is None)
    ):
        return original(upload, extra_label)  # stdin, one part, or s3cmd's own error
    config = upload.s3.config
    remote = (
        upload.get_parts_information(upload.dst_uri, upload.upload_id)
        if config.put_continue
        else {}
    )
    source = upload.src_uri.uri() if upload.src_uri else stream.stream_name
    destination = upload.dst_uri.uri()
    suffix = f" {extra_label}" if extra_label else ""
    parts = [
        (seq, offset, min(chunk, size - offset))
        for seq, offset in enumerate(range(0, size, chunk), start=1)
    ]
    transfer = parallel.Transfer(min(workers, len(parts)))
    progress = None
    if config.progress_meter:
        labels = {
            "action": "upload" if stream is not None else "remote copy",
            "source": source,
            "destination": destination,
            "extra": f"[{len(parts)} parts, {transfer.workers} at a time]{suffix}",
        }
        progress = parallel.SharedProgress(config.progress_class(labels, size))

    def send(part: tuple[int, int, int]) -> None:
        seq, offset, length = part
        labels = {
            "source": source,
            "destination": destination,
            "extra": "[part {} of {}, {}{}B]{}".format(
                seq, len(parts), *formatSize(length, human_readable=True), suffix
            ),
        }
        method = upload.upload_part if stream is not None else upload.copy_part
        sent = method(seq, offset, length, labels, remote_status=remote.get(seq))
        if sent is None and progress is not None:  # already there: a resumed upload
            progress.add(length)

    try:
        with ExitStack() as patches:
            if stream is not None:
                reader = parallel.PositionalReader(stream.fileno(), stream.stream_name, transfer)
                patches.enter_context(_patched(upload, "file_stream", reader))
            if progress is not None:
                patches.enter_context(_patched(config, "progress_class", progress.part_meter))
            if config.limitrate > 0:  # s3cmd paces each connection: share the rate out
                patches.enter_context(
                    _patched(config, "limitrate", config.limitrate / transfer.workers)
                )
            transfer.run(parts, send)
    except BaseException:
        if progress is not None:
            progress.done("failed")
        if transfer.failed_job is not None:
            seq = transfer.failed_job[0]  # type: ignore[index]
            logging.error(f"Upload of '{source}' part {seq} failed.")
        raise
    if progress is not None:
        progress.done("done")
    logging.debug("MultiPart: Upload finished: %d parts", len(parts))
    return None


def _download_parts(
    s3: Any,
    uri: Any,
    stream: Any,
    path: str,
    dest_name: str,
    start: int,
    size: int,
    extra_label: str,
    workers: int,
) -> dict[str, Any]:
    """Fetch ``uri`` from ``start`` to ``size`` in ranges at once; s3cmd's response dict.

    The ranges go into a temporary file beside ``path``; the download is
    checked against the MD5 s3cmd would check, then moved into place (or, for
    ``--continue``, appended to what is there). Until then ``path`` holds
    nothing that looks complete, and a failed or interrupted download leaves
    it as it was.
    """
    import hashlib
    import time

    from S3 import S3 as s3_module

    from . import parallel

    config = s3.config
    ranges = parallel.split(start, size, _part_size(config), workers)
    transfer = parallel.Transfer(min(workers, len(ranges)), rate=float(config.limitrate))
    directory, name = os.path.split(path)
    tmp_path = os.path.join(directory, f".{name}.tsd-s3cmd-{os.getpid()}-{id(transfer):x}.part")
    fd = os.open(tmp_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    progress = None
    if config.progress_meter:
        labels = {
            "action": "download",
            "source": uri.uri(),
            "destination": dest_name,
            "extra": f"[{len(ranges)} parts, {transfer.workers} at a time]"
            + (f" {extra_label}" if extra_label else ""),
        }
        meter = config.progress_class(labels, size)
        meter.initial_position = meter.current_position = start
        progress = parallel.SharedProgress(meter)
    before = None
    if start:  # --continue: the digest covers what is there, then what arrives
        before = hashlib.md5()
        with open(path, "rb") as there:
            for piece in iter(lambda: there.read(min(MiB, start - there.tell())), b""):
                before.update(piece)
    digest = parallel.OrderedDigest(fd, [(a - start, b - start) for a, b in ranges], before)
    headers: list[dict[str, str] | None] = [None] * len(ranges)

    def fetch(index: int) -> None:
        def write(position: int, data: bytes) -> None:
            os.pwrite(fd, data, position - start)
            digest.written(index, position - start + len(data))
            if progress is not None:
                progress.add(len(data))

        a, b = ranges[index]
        headers[index] = _fetch_range(s3, s3_module, uri, a, b, write, transfer)

    # Until the download is whole and checked, nothing is under the destination
    # name: s3cmd's empty file goes now, and comes back only if s3cmd is to clean up.
    emptied = not start and os.fstat(stream.fileno()).st_size == 0
    if emptied:
        os.unlink(path)
    began = time.time()
    try:
        try:
            transfer.run(range(len(ranges)), fetch, while_waiting=digest.catch_up)
            first = headers[0] or {}
            if any((h or {}).get("etag") != first.get("etag") for h in headers):
                raise s3_module.S3DownloadError(
                    f"{uri.uri()} changed during the download; download it again"
                )
            expected = _expected_md5(first)
            computed = digest.hexdigest()
            if expected and computed != expected:
                raise s3_module.S3DownloadError(
                    f"the MD5 of the data received ({computed}) is not {expected}; "
                    "nothing was written"
                )
            _put_in_place(fd, tmp_path, stream, path, start, emptied)
        except BaseException as err:
            if progress is not None:
                progress.done("failed")
            if emptied and not isinstance(err, KeyboardInterrupt):
                with suppress(FileExistsError):  # s3cmd deletes the file it made
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            raise
    finally:
        os.close(fd)
        with suppress(FileNotFoundError):
            os.unlink(tmp_path)
    if progress is not None:
        progress.done("done")
    elapsed = time.time() - began
    first = dict(headers[0] or {})
    first["content-length"] = str(size - start)
    response: dict[str, Any] = {
        "status": 200,
        "reason": "OK",
        "headers": first,
        "md5": computed,
        "md5match": not expected or computed == expected,
        "elapsed": elapsed,
        "size": size,
        "speed": float(size - start) / elapsed if elapsed else -1.0,
    }
    if "x-amz-meta-s3cmd-attrs" in first:
        response["s3cmd-attrs"] = s3_module.parse_attrs_header(first["x-amz-meta-s3cmd-attrs"])
    return response


def _expected_md5(headers: Mapping[str, str]) -> str | None:
    """The MD5 s3cmd's recv_file checks a download against, or None when there is none."""
    from S3 import S3 as s3_module

    expected = headers.get("etag", "").strip("\"'")
    if "x-amz-meta-s3tools-gpgenc" not in headers and "x-amz-meta-s3cmd-attrs" in headers:
        expected = s3_module.parse_attrs_header(headers["x-amz-meta-s3cmd-attrs"]).get(
            "md5", expected
        )
    if "-" in expected or headers.get("x-amz-server-side-encryption") == "aws:kms":
        return None  # a multipart ETag, or an encrypted object's: not an MD5
    return expected or None


def _put_in_place(
    fd: int, tmp_path: str, stream: Any, path: str, start: int, emptied: bool
) -> None:
    """Move a checked download where s3cmd's stream was writing."""
    if start:  # --continue: append what was missing to what is there
        position = 0
        while True:
            piece = os.pread(fd, MiB, position)
            if not piece:
                break
            stream.write(piece)
            position += len(piece)
        stream.flush()
        return
    # Where the stream's file was (or still is: same inode), with its mode.
    held = os.fstat(stream.fileno())
    if not emptied:
        there = os.stat(path)
        if (held.st_dev, held.st_ino) != (there.st_dev, there.st_ino):
            raise OSError(f"{path} was replaced during the download")
    os.fchmod(fd, stat.S_IMODE(held.st_mode))
    os.replace(tmp_path, path)


def _retries(s3: Any, config: Any) -> int | None:
    """How often s3cmd retries a request: a setting since 2.4, fixed at 5 in 2.3."""
    setting = getattr(config, "max_retries", None)
    return getattr(s3, "_max_retries", None) if setting is None else int(setting)


class _Interrupted(Exception):
    """A range stopped arriving part-way: where it stopped, and why."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position


def _fetch_range(
    s3: Any,
    s3_module: Any,
    uri: Any,
    start: int,
    end: int,
    write: Callable[[int, bytes], None],
    transfer: Any,
) -> dict[str, str]:
    """GET bytes ``start`` to ``end`` (exclusive) of ``uri``; the response's headers.

    Built, signed and sent the way s3cmd's ``recv_file`` does it (so the TSD
    headers are added in ``get_triplet``), on a connection of s3cmd's pool.
    A dropped connection, a 5xx or a 429 is retried as s3cmd retries, from
    where the data stopped; any other answer is s3cmd's ``S3Error``, and an
    error writing the file (a full disk) is raised as it is.
    """
    import http.client
    import time

    retries = _retries(s3, s3.config)
    position = start
    while True:
        transfer.check()
        request = s3.create_request(
            "OBJECT_GET", uri=uri, headers={"range": f"bytes={position}-{end - 1}"}
        )
        method, resource, headers = request.get_triplet()
        conn = None
        try:
            conn = s3_module.ConnMan.get(s3.get_hostname(resource["bucket"]))
            conn.c.putrequest(method, s3.format_uri(resource, conn.path))
            for header, value in headers.items():
                conn.c.putheader(s3_module.encode_to_s3(header), s3_module.encode_to_s3(value))
            conn.c.endheaders()
            answer = conn.c.getresponse()
        except (OSError, http.client.HTTPException) as err:
            failure = str(err) or type(err).__name__
        else:
            response = {
                "status": answer.status,
                "reason": answer.reason,
                "headers": s3_module.convertHeaderTupleListToDict(answer.getheaders()),
            }
            try:
                if answer.status == 206:
                    _receive(answer, position, end, write, transfer, s3.config.recv_chunk)
                    s3_module.ConnMan.put(conn)
                    return response["headers"]
                response["data"] = answer.read()
            except _Interrupted as err:
                position, failure = err.position, str(err)
            except BaseException:
                s3_module.ConnMan.close(conn)
                raise
            else:
                s3_module.ConnMan.put(conn)
                conn = None
                if answer.status not in _RETRIED_STATUSES:
                    raise s3_module.S3Error(response)
                failure = str(s3_module.S3Error(response))
        if conn is not None:
            s3_module.ConnMan.close(conn)
        if not retries:
            logging.warning("Too many failures. Giving up on '%s'", resource["uri"])
            raise s3_module.S3DownloadError(f"Download failed for: {resource['uri']}")
        logging.warning("Retrying failed request: %s (%s)", resource["uri"], failure)
        wait = s3._fail_wait(retries)
        logging.warning("Waiting %d sec...", wait)
        retries -= 1
        time.sleep(wait)


def _receive(
    answer: Any,
    position: int,
    end: int,
    write: Callable[[int, bytes], None],
    transfer: Any,
    piece: int,
) -> None:
    """Read a range's body into ``write``; _Interrupted if the network lets it down."""
    import http.client

    while position < end:
        size = min(piece, end - position)
        transfer.pace(size)
        try:
            data = answer.read(size)
        except (OSError, http.client.HTTPException) as err:
            raise _Interrupted(position, str(err) or type(err).__name__) from err
        if not data:
            raise _Interrupted(position, "EOF from S3!")
        write(position, data)  # a full disk is not the network's fault: raised as it is
        position += len(data)


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


class _Parsed(BaseException):
    """Carries s3cmd's parser and its reading of the command line out of its ``main``."""

    def __init__(
        self, parser: optparse.OptionParser, options: optparse.Values, positional: list[str]
    ) -> None:
        super().__init__("s3cmd's command line")
        self.parser, self.options, self.positional = parser, options, positional


def _parse_only(
    args: Sequence[str], cache_dir: Path | None, prog: str
) -> tuple[_Parsed | None, dict[str, Any]]:
    """Run s3cmd's script until it has parsed ``args``, and stop it there.

    Nothing is read, sent or printed, unless ``args`` are bad: then s3cmd says
    why on stderr, and there is no parse (None). The script's namespace comes
    back too (``get_commands_list`` is in it).
    """

    class OptionParser(optparse.OptionParser):
        def parse_args(self, args: Any = None, values: Any = None) -> Any:
            options, positional = super().parse_args(args, values)
            raise _Parsed(self, options, list(positional))

    path = script_path()
    code = _script_code(path, cache_dir)
    stop_at_parse = _patched(optparse, "OptionParser", OptionParser)
    with _as_script(path, args, prog) as namespace, stop_at_parse:
        try:
            exec(code, namespace)
        except _Parsed as parsed:
            return parsed, namespace
        except SystemExit:
            pass
    return None, namespace


def vocabulary(cache_dir: Path | None = None) -> tuple[list[str], list[tuple[str, bool]]]:
    """s3cmd's commands, and its options with whether each takes a value.

    Read from the installed s3cmd, for shell completion: its
    ``get_commands_list()``, and the parser its ``main`` builds.
    """
    try:
        parsed, namespace = _parse_only([], cache_dir, "s3cmd")
    except Exception:
        parsed, namespace = None, {}
    listing = namespace.get("get_commands_list")
    if parsed is None or not callable(listing):
        raise ConfigError(f"cannot read the commands and options of s3cmd {version()}")
    commands = [entry["cmd"] for entry in listing() if "cmd" in entry]
    options = [
        (name, option.takes_value())
        for option in parsed.parser.option_list
        for name in (*option._long_opts, *option._short_opts)
    ]
    return commands, options


def parse(
    args: Sequence[str], cache_dir: Path | None = None, prog: str = "tsd-s3cmd"
) -> tuple[optparse.Values, list[str]] | None:
    """s3cmd's own reading of ``args``: its options and positional arguments.

    ``--print-token-for`` reads its command line with this, so that options,
    their values and abbreviations count exactly as in a run. None when s3cmd
    stopped before (a bad option: it has said why on stderr).
    """
    check_compatible()
    parsed, _ = _parse_only(args, cache_dir, prog)
    return None if parsed is None else (parsed.options, parsed.positional)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1
