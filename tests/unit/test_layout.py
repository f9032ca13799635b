"""The package's layout is its architecture: which part may import which.

Read from the source with ``ast`` (nothing is imported), so that a move that
breaks a rule fails here, with the import that breaks it, before a reader
meets it. The rules are the README's "Layout" section.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tsd_s3cmd"
SHARED = {"tsd_s3cmd", "tsd_s3cmd.errors", "tsd_s3cmd.environments", "tsd_s3cmd.context"}
# What each part may import of tsd-s3cmd besides itself and the shared pieces.
MAY_IMPORT = {
    "tsd_s3cmd.engine": set(),
    "tsd_s3cmd.keyspace": set(),
    "tsd_s3cmd.login": set(),
    "tsd_s3cmd.bridge": {"tsd_s3cmd.engine", "tsd_s3cmd.keyspace", "tsd_s3cmd.login"},
    "tsd_s3cmd.emulator": set(),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The tsd_s3cmd modules that ``path`` imports, at any depth of its code."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tsd_s3cmd"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("tsd_s3cmd"):
                target = node.module
            else:
                continue
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names if (
                PACKAGE.parent / (f"{target}.{a.name}".replace(".", "/") + ".py")
            ).exists())  # fmt: skip
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {
    name: {t for t in _imports(path) if t in MODULES and t != name}
    for name, path in MODULES.items()
}


def _part(module: str) -> str:
    return ".".join(module.split(".")[:2])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _part(m) in MAY_IMPORT))
def test_each_part_imports_only_what_lies_below_it(module: str) -> None:
    part = _part(module)
    allowed = {part} | MAY_IMPORT[part] | (set() if part == "tsd_s3cmd.emulator" else SHARED)
    wrong = sorted(t for t in GRAPH[module] if _part(t) not in allowed and t not in allowed)
    assert wrong == [], f"{module} imports {wrong}"


def test_the_emulator_imports_nothing_of_the_client() -> None:
    wrong = {
        m: sorted(t for t in GRAPH[m] if not t.startswith("tsd_s3cmd.emulator"))
        for m in MODULES
        if m.startswith("tsd_s3cmd.emulator")
    }
    assert {m: t for m, t in wrong.items() if t} == {}


def test_the_shared_pieces_import_nothing_of_the_package() -> None:
    assert {m: sorted(GRAPH[m]) for m in SHARED - {"tsd_s3cmd"} if GRAPH[m]} == {}


def test_no_modules_import_each_other_in_a_circle() -> None:
    state: dict[str, int] = {}  # 1 on the path being walked, 2 done

    def walk(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target] if target in path else [module, target]
            if target not in state and (circle := walk(target, [*path, target])):
                return circle
        state[module] = 2
        return None

    for module in sorted(MODULES):
        if module not in state:
            assert walk(module, [module]) is None


def test_the_top_level_holds_at_most_twelve_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
