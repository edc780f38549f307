"""docs/reliability.md's fault table names tests that exist: every ``path::test`` (a ``*``
matching a name's end; a bare file name, the one test file of that name; a bare ``::test``,
the row's last file) is a test function in that file, and every file it names is there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"


def _rows() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Fault table", 1)[1].split("\n## ", 1)[0]
    return [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]


def _references(cell: str) -> list[tuple[Path, str | None]]:
    out: list[tuple[Path, str | None]] = []
    current: Path | None = None
    for ref in re.findall(r"`([^`]+)`", cell):
        path, _, test = ref.partition("::")
        if path.startswith("make "):
            continue
        if "/" in path:
            current = ROOT / path
        elif path:  # a file named before in the table: the one test file of that name
            found = list((ROOT / "tests").rglob(path))
            assert len(found) == 1, f"{ref!r}: {len(found)} files of that name under tests/"
            current = found[0]
        assert current is not None, f"{ref!r}: no file to look in"
        out.append((current, test or None))
    return out


def test_the_table_has_rows() -> None:
    assert len(_rows()) >= 15


def test_every_test_the_table_names_exists() -> None:
    for row in _rows():
        cell = row.rstrip(" |").rsplit(" | ", 1)[1]
        refs = _references(cell)
        assert refs, f"a row without a test: {row[:60]}"
        for path, test in refs:
            assert path.is_file(), f"{path.relative_to(ROOT)} (in: {row[:60]})"
            if test is None:
                continue
            names = re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.M)
            pattern = re.escape(test).replace(r"\*", r"\w*") + "$"
            assert any(re.match(pattern, n) for n in names), f"{path.name}::{test}"
