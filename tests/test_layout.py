"""The package layout's import rules (docs: /work/shared/DESIGN.md "Layout"), checked by
reading every first-party source file with ``ast``: every import counts, at module level or
inside a function, under ``if TYPE_CHECKING`` or in a ``try``.

- ``dsp_c`` imports nothing of ``edge``, ``host_tools`` or ``models``;
- ``edge`` imports nothing of ``host_tools`` or ``models`` (``models`` and ``host_tools`` may
  import ``edge``);
- ``edge/firmware`` (MicroPython code for the sensor MCU) imports only itself (``sensorfw``
  on the board) and modules MicroPython has;
- no import cycles between first-party modules (a package import is its ``__init__``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dsp_c", "edge", "host_tools", "models")

#: Modules MicroPython provides (the firmware's ``u``-prefixed names included).
MICROPYTHON = frozenset(
    {
        "array",
        "binascii",
        "collections",
        "errno",
        "gc",
        "hashlib",
        "io",
        "json",
        "machine",
        "math",
        "micropython",
        "os",
        "select",
        "struct",
        "sys",
        "time",
        "uarray",
        "ubinascii",
        "uhashlib",
        "uos",
        "uselect",
        "ustruct",
        "utime",
    }
)
#: The name the firmware package has on the board (``/lib/sensorfw``).
FIRMWARE_ON_BOARD = "sensorfw"
#: Files under edge/firmware that never go to the MCU (docs/hardware-engineer.md, "not
#: copied"): a CPython virtual sensor, checked by the edge rules instead.
FIRMWARE_HOST_ONLY = frozenset({"edge.firmware.virtual"})


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to an absolute module name."""

    module: str  #: the importing module
    target: str  #: the imported module (``from a import b``: ``a.b`` if that is a module)
    line: int

    def where(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    """Every first-party module: name -> file (build outputs and caches left out)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[_module_name(path)] = path
    return found


SOURCES = _sources()


def _imports(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package this module is in
                package = module.split(".")
                if not is_package:
                    package = package[:-1]
                if node.level > 1:
                    package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # `from pkg import mod` imports the module pkg.mod; `from mod import name`
                # imports mod (a name in it).
                yield Import(module, sub if sub in SOURCES else base, node.lineno)


IMPORTS = [imp for module, path in SOURCES.items() for imp in _imports(module, path)]


def _top(name: str) -> str:
    return name.partition(".")[0]


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_sources_were_found() -> None:
    for package in PACKAGES:
        assert package in SOURCES, f"{package}/__init__.py not found under {ROOT}"
    assert any(imp.target.startswith("edge.") for imp in IMPORTS)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("dsp_c", ("edge", "host_tools", "models")),
        ("edge", ("host_tools", "models")),
    ],
)
def test_layering(package: str, forbidden: tuple[str, ...]) -> None:
    bad = [
        imp.where()
        for imp in IMPORTS
        if _within(imp.module, package) and _top(imp.target) in forbidden
    ]
    assert not bad, f"{package} must not import {', '.join(forbidden)}:\n" + "\n".join(bad)


def test_firmware_stands_alone() -> None:
    """What goes to the sensor MCU imports itself and MicroPython's modules, nothing else."""
    bad = []
    for imp in IMPORTS:
        if not _within(imp.module, "edge.firmware") or imp.module in FIRMWARE_HOST_ONLY:
            continue
        if imp.target == "__future__":
            bad.append(imp.where() + " (MicroPython has no __future__)")
        elif not (
            _within(imp.target, "edge.firmware")
            or _within(imp.target, FIRMWARE_ON_BOARD)
            or imp.target in MICROPYTHON
        ):
            bad.append(imp.where())
    assert not bad, "edge/firmware must import only itself and MicroPython modules:\n" + "\n".join(
        bad
    )
    for name in FIRMWARE_HOST_ONLY:  # the exemption must not outlive its file
        assert name in SOURCES, f"{name} is gone: drop it from FIRMWARE_HOST_ONLY"


def _graph() -> dict[str, set[str]]:
    """Module -> the first-party modules its imports run. Importing ``a.b.c`` runs
    ``a/__init__`` and ``a/b/__init__`` first, so the parents count too, except a package
    that contains the importer (already running); a compiled module (``dsp_c._bcg_dsp``) is
    a leaf."""
    graph: dict[str, set[str]] = {name: set() for name in SOURCES}
    for imp in IMPORTS:
        parts = imp.target.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            implicit = i < len(parts)  # a parent package of the module named
            if name in SOURCES and not (implicit and _within(imp.module, name)):
                graph[imp.module].add(name)
        graph[imp.module].discard(imp.module)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as its path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles() -> None:
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
