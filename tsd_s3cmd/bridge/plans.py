"""What each of s3cmd's transfer loops will call for a file, worked out ahead of the loop.

files.Ahead runs a file's transfer before s3cmd's loop gets to the file, so
it must know the call that loop's body will make: ``object_put`` with the
file's name, its URI and its headers, and so on. ``Plans`` has one method per
loop of script.TRANSFER_LOOPS, each reading what that body reads (the
loop's own variables, the items of s3cmd's file lists) the way it reads it.
When the body then makes its call, transfers compares it with the
plan (``call_match``), so a plan that came out otherwise costs only time:
the body makes its call itself, as without tsd-s3cmd. ``incompatibility``,
part of the shim's start-up check, verifies that each loop's function still
has the variables its plan reads.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Mapping

TYPE_CHECKING = False  # typing is not loaded at run time; see cli.py
if TYPE_CHECKING:
    from typing import Any, Protocol

    from ..engine.files import Planned

    class Engine(Protocol):
        """What a plan needs of transfers.Engine."""

        namespace: dict[str, Any]
        config: Any

        def run_original(self, name: str, *args: Any, **kwargs: Any) -> Any: ...

        def download(self, s3: Any, uri: Any, destination: str, size: int | None) -> Any: ...

        def discard(self, fetched: Any) -> None: ...


# The calls s3cmd's loops move a file with (process_fce, in cp and mv, is one of them).
FILE_CALLS = ("object_put", "object_copy", "object_move", "object_modify")
# What each transfer loop's body works with, by name (its own variables).
LOOP_NAMES = {
    "cmd_object_put": ("local_list", "s3"),
    "cmd_object_get": ("remote_list", "s3"),
    "subcmd_cp_mv": ("remote_list", "process_fce"),
    "cmd_sync_remote2remote._upload": ("src_list", "s3"),
    "cmd_sync_remote2local._download": ("remote_list", "s3"),
    "cmd_sync_local2remote._child._upload": ("local_list", "s3"),
    "remote_copy": ("copy_pairs", "destination_base", "metadata_update", "s3"),
}


def incompatibility(code: Any) -> str | None:
    """Whether each transfer loop's function still has the variables its plan reads."""
    functions = {}
    todo = [("", code)]
    while todo:
        prefix, co = todo.pop()
        for const in co.co_consts:
            if inspect.iscode(const):
                name = f"{prefix}.{const.co_name}" if prefix else const.co_name
                functions[name] = const
                todo.append((name, const))
    for where, needed in LOOP_NAMES.items():
        co = functions.get(where)
        have = set(co.co_varnames + co.co_freevars + co.co_cellvars) if co else set()
        missing = [n for n in needed if n not in have]
        if missing:
            return f"s3cmd's {where} no longer has {', '.join(missing)}"
    return None


def frozen(headers: Any) -> tuple[tuple[str, str], ...]:
    """Headers as a value that compares equal however they were built (s3cmd's SortedDict)."""
    return tuple(sorted((str(k), str(v)) for k, v in dict(headers or {}).items()))


def call_match(name: str, arguments: Mapping[str, Any]) -> tuple[Any, ...]:
    """What identifies a file call of s3cmd's loop (the label aside)."""
    if name == "object_put":
        return (name, arguments["filename"], arguments["uri"].uri(),
                frozen(arguments["extra_headers"]))  # fmt: skip
    return (
        name,
        arguments["src_uri"].uri(),
        arguments["dst_uri"].uri(),
        frozen(arguments["extra_headers"]),
        arguments["src_size"],
    )


class Plans:
    """The call each transfer loop's body will make for a file, worked out from its variables.

    One method per loop of script.TRANSFER_LOOPS, each reading what
    that loop's body reads the way it reads it. None means: leave this file to
    s3cmd (stdin and stdout, encryption, an existing file s3cmd will decide
    about). A plan that cannot be made (s3cmd's items look other than
    expected) is no plan either: the body then makes its call itself.
    """

    def __init__(self, engine: Engine, scope: dict[str, Any]) -> None:
        from S3.S3Uri import S3Uri

        self.engine = engine
        self.scope = scope
        self.config = engine.config
        self.S3Uri = S3Uri

    def guarded(self, plan: Callable[[Any], Planned | None]) -> Callable[[Any], Planned | None]:
        def careful(element: Any) -> Planned | None:
            try:
                return plan(element)
            except Exception as err:  # s3cmd's own way for this file, as without tsd-s3cmd
                logging.debug("tsd-s3cmd: no plan for %r (%s: %s)", element,
                              type(err).__name__, err)  # fmt: skip
                return None

        return careful

    def size_of(self, where: str) -> Callable[[Any], int]:
        listing = self.scope[LOOP_NAMES[where][0]]

        def size(element: Any) -> int:
            item = self._item(listing, element)
            value = item.get("size", 0) if isinstance(item, dict) else 0
            return value if isinstance(value, int) and value > 0 else 0

        return size

    @staticmethod
    def _item(listing: Any, element: Any) -> Any:
        if isinstance(element, tuple):  # remote_copy's pairs: (key, item) or 2.3's 4-tuples
            return element[1] if len(element) == 2 else element[0]
        return listing[element]

    def _attr_headers(self, item: Any, key: str, md5: str | None) -> Any:
        from copy import copy

        headers = copy(self.config.extra_headers)
        headers.update(self.engine.namespace["_build_attr_header"](item, key, md5))
        return headers

    # -- uploads --

    def _put(self, listing: Any, key: str) -> Planned | None:
        from ..engine.files import Planned

        item = listing[key]
        filename = item["full_name"]
        if key == "-" or filename == "-" or self.config.encrypt:
            return None
        uri = self.S3Uri(item["remote_uri"])
        try:
            md5 = listing.get_md5(key)
        except OSError:
            md5 = None
        headers = self._attr_headers(item, key, md5)
        s3 = self.scope["s3"]
        return Planned(
            ("object_put", filename, uri.uri(), frozen(headers)),
            lambda: self.engine.run_original("object_put", s3, filename, uri, headers),
            size=int(item.get("size") or 0),
        )

    def plan_cmd_object_put(self, key: str) -> Planned | None:
        return self._put(self.scope["local_list"], key)

    def plan_cmd_sync_local2remote__child__upload(self, key: str) -> Planned | None:
        return self._put(self.scope["local_list"], key)

    # -- downloads --

    def _get(self, item: Any, decides_existing: bool) -> Planned | None:
        from ..engine.files import Planned

        destination = item.get("local_filename")
        if (
            not destination
            or destination == "-"
            or item.get("is_dir")
            or item.get("mark_failed")
            or destination.endswith(("/", os.sep))
        ):
            return None
        config = self.config
        exists = decides_existing and os.path.lexists(destination)
        if exists and (config.get_continue or not config.force):
            return None  # --continue, --skip-existing or a refusal: s3cmd decides
        os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
        uri = self.S3Uri(item["object_uri_str"])
        size = item.get("size")
        s3 = self.scope["s3"]
        engine = self.engine
        return Planned(
            ("object_get", uri.uri(), destination),
            lambda: engine.download(s3, uri, destination, size if isinstance(size, int) else None),
            size=size if isinstance(size, int) else 0,
            discard=engine.discard,
        )

    def plan_cmd_object_get(self, key: str) -> Planned | None:
        return self._get(self.scope["remote_list"][key], decides_existing=True)

    def plan_cmd_sync_remote2local__download(self, key: str) -> Planned | None:
        return self._get(self.scope["remote_list"][key], decides_existing=False)

    # -- copies --

    def _copy(self, name: str, s3: Any, src: str, dst: str, headers: Any, size: Any) -> Planned:
        from ..engine.files import Planned

        src_uri, dst_uri = self.S3Uri(src), self.S3Uri(dst)
        return Planned(
            (name, src_uri.uri(), dst_uri.uri(), frozen(headers), size),
            lambda: self.engine.run_original(
                name, s3, src_uri, dst_uri, headers, src_size=size, extra_label=""
            ),
            size=size if isinstance(size, int) else 0,
        )

    def plan_subcmd_cp_mv(self, key: str) -> Planned | None:
        from copy import copy

        item = self.scope["remote_list"][key]
        process = self.scope["process_fce"]
        name = getattr(process, "__name__", "")
        if name not in FILE_CALLS:
            return None
        return self._copy(name, process.__self__, item["object_uri_str"], item["dest_name"],
                          copy(self.config.extra_headers), item.get("size"))  # fmt: skip

    def plan_cmd_sync_remote2remote__upload(self, key: str) -> Planned | None:
        from copy import copy

        item = self.scope["src_list"][key]
        return self._copy("object_copy", self.scope["s3"], item["object_uri_str"],
                          item["target_uri"], copy(self.config.extra_headers),
                          item.get("size"))  # fmt: skip

    def plan_remote_copy(self, element: Any) -> Planned | None:
        from copy import copy

        scope = self.scope
        base, s3 = scope["destination_base"], scope["s3"]
        if len(element) == 2:  # 2.4: (relative name, item)
            relative, item = element
            source, md5 = item["copy_src"], item["md5"]
        else:  # 2.3: (item, source, destination, md5)
            item, source, relative, md5 = element
        headers = copy(self.config.extra_headers)
        if scope["metadata_update"]:
            headers = self._attr_headers(item, relative, md5)
            headers["content-type"] = s3.content_type(filename=item["full_name"])
        return self._copy("object_copy", s3, base + source, base + relative, headers,
                          item.get("size", 0))  # fmt: skip
