"""docs/field-tester.md's commands, run as written: each shown output is what the command
prints (up to a "..." line, which stands for the rest). The heart-rate commands read the
recordings of ../shared/data, so they skip where that folder is not beside the project; the
export and query commands run on an archive like the pull's in the doc (three nights of 1 s
epochs, ``--person P017``), pseudonyms (made with a new key each time) and the home folder
aside."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "field-tester.md"
SHARED = ROOT.parent / "shared" / "data"


def _commands() -> list[tuple[str, list[str]]]:
    """(command, the lines shown after it) for every ``$ `` line of the doc."""
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
    return out


def _examples() -> list[tuple[str, list[str]]]:
    """The ``python -m edge.eval.heart_rate`` commands."""
    return [(c, s) for c, s in _commands() if c.startswith("python -m edge.eval.heart_rate")]


def _export_examples() -> list[tuple[str, list[str]]]:
    """The commands on an archive: ``logs export``, ``query`` and a look at their files."""
    wanted = ("bedside-host logs export", "bedside-host query", "head ")
    return [(c, s) for c, s in _commands() if c.startswith(wanted)]


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


_PSEUDONYM = re.compile(r"\b([up])_[0-9a-f]{16}\b")


def test_the_export_commands_print_what_the_doc_shows(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "host"))
    from logs_fixtures import write_archive

    home = tmp_path / "home"
    write_archive(home / "trial-logs", "bcg-8bb19db84db5", nights=3, epochs=28800, person="P017")
    examples = _export_examples()
    assert any("--dataset" in c for c, _ in examples) and any("query" in c for c, _ in examples)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home)}
    for command, shown in examples:
        argv = [str(home / a[2:]) if a.startswith("~/") else a for a in shlex.split(command)]
        if argv[0] == "bedside-host":
            argv = [sys.executable, "-m", "host_tools", *argv[1:]]
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stderr)
        printed = _PSEUDONYM.sub(r"\1_…", done.stdout.replace(str(home), "~")).splitlines()
        assert printed == [_PSEUDONYM.sub(r"\1_…", line) for line in shown], command
