"""docs/field-tester.md's heart-rate commands, run as written: each shown output is what the
command prints (up to a "..." line, which stands for the rest). The recordings are those of
../shared/data, so the test skips where that folder is not beside the project."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "field-tester.md"
SHARED = ROOT.parent / "shared" / "data"


def _examples() -> list[tuple[str, list[str]]]:
    """(command, the lines shown after it) for every ``$ python -m edge.eval.heart_rate``."""
    out: list[tuple[str, list[str]]] = []
    inside = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
            current = None
        elif inside and line.startswith("$ "):
            current = (line[2:], [])
            out.append(current)
        elif inside and current is not None and line.strip():
            current[1].append(line)
    return [(cmd, shown) for cmd, shown in out if cmd.startswith("python -m edge.eval.heart_rate")]


def test_the_doc_shows_the_commands() -> None:
    assert len(_examples()) >= 4


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the project")
@pytest.mark.parametrize("command, shown", _examples(), ids=lambda v: str(v)[-40:])
def test_each_command_prints_what_the_doc_shows(command: str, shown: list[str]) -> None:
    argv = shlex.split(command)
    assert argv[0] == "python"
    done = subprocess.run(
        [sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    printed = (done.stdout + done.stderr).splitlines()
    if shown and shown[-1] == "...":
        shown = shown[:-1]
        printed = printed[: len(shown)]
    assert printed == shown
