"""docs/hardware-engineer.md's "Build, flash, check" block, run as written (issue 17, item 1).

The commands are read from the markdown, not copied here: from fresh keys in a temporary
home folder (no key of the repository is used) to a confirmed flash and a rollback, against
the virtual unit the block itself starts. Only the virtual unit's port (7000 in the doc: a
free one here, as several test runs share the machine) and its state folder are swapped.
Each command must exit 0 and print what the doc shows, up to the values that differ from
run to run (numbers, keys, ids, names; the stage lines of a flash are the doc's or fewer,
in its order, as a trial stage shorter than one poll of the unit is not seen).
"""

from __future__ import annotations

import os
import re
import select
import shlex
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "hardware-engineer.md"
SECTION = "### Build, flash, check"
DOC_PORT, DOC_STATE, DOC_HOME = "127.0.0.1:7000", "/tmp/unit", "/home/ana"
#: A line of ``flash`` that shows a stage: "   4.8 s  unit: trial boot: health check".
STAGE_LINE = re.compile(r"^\s*\d+\.\d s  ")


def doc_steps(section: str = SECTION) -> list[tuple[str, list[str]]]:
    """(command, the lines the doc shows after it) of the first code block in ``section``."""
    text = DOC.read_text(encoding="utf-8")
    block = text[text.index(section) :].split("```")[1]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip() and steps:
            steps[-1][1].append(line)
    return steps


def shape(line: str) -> str:
    """``line`` without what differs from run to run."""
    if "━" in line:
        return "PROGRESS BAR"
    line = re.sub(r"SHA256:[A-Za-z0-9+/]{16}", "SHA256:FP", line)
    line = re.sub(r"bcg-[0-9a-f]{12}", "bcg-ID", line)
    line = re.sub(r"[A-Za-z0-9+/]{40,}={0,2}", "KEY", line)
    line = re.sub(r"\S+@\S+", "NAME", line)
    return re.sub(r"\d+(\.\d+)?", "N", line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    rest = iter(whole)
    return all(any(item == other for other in rest) for item in part)


def assert_prints_as_shown(command: str, printed: list[str], shown: list[str]) -> None:
    printed, shown = [shape(x) for x in printed], [shape(x) for x in shown]
    stages = [x for x in printed if STAGE_LINE.match(x)]
    shown_stages = [x for x in shown if STAGE_LINE.match(x)]
    assert bool(stages) == bool(shown_stages), (command, printed)
    assert is_subsequence(stages, shown_stages), (command, stages, shown_stages)
    others = [x for x in printed if not STAGE_LINE.match(x)]
    assert others == [x for x in shown if not STAGE_LINE.match(x)], command


def test_the_section_starts_from_nothing_and_flashes() -> None:
    commands = [command for command, _ in doc_steps()]
    assert commands[0] == "bedside-host keys init"
    assert any(c.startswith("bedside-host sim ") and c.endswith("&") for c in commands)
    assert any(c.startswith("bedside-host flash ") for c in commands)


def test_build_flash_check_runs_as_written(tmp_path: Path) -> None:
    port, state, home, work = free_port(), tmp_path / "unit", tmp_path / "home", tmp_path / "w"
    home.mkdir()
    work.mkdir()
    env = {**os.environ, "HOME": str(home), "USER": "ana", "PYTHONPATH": str(ROOT)}
    for name in ("BEDSIDE_KEYS", "XDG_CONFIG_HOME", "BEDSIDE_PORT"):
        env.pop(name, None)  # the keys go where the doc says: ~/.config/bedside-host/keys
    ours = {DOC_PORT: f"127.0.0.1:{port}", DOC_STATE: str(state)}

    def here(text: str) -> str:
        for doc, local in ours.items():
            text = text.replace(doc, local)
        return text

    def as_in_doc(text: str) -> str:
        for doc, local in ours.items():
            text = text.replace(local, doc)
        return text.replace(str(home), DOC_HOME)

    background: list[subprocess.Popen] = []
    try:
        for command, shown in doc_steps():
            argv = shlex.split(here(command), comments=True)
            assert argv[0] == "bedside-host", command
            argv = [sys.executable, "-m", "host_tools", *argv[1:]]  # what bedside-host runs
            if argv[-1] == "&":
                proc = subprocess.Popen(
                    argv[:-1], cwd=work, env=env, stdout=subprocess.PIPE, text=True
                )
                background.append(proc)
                ready, _, _ = select.select([proc.stdout], [], [], 60)
                first = proc.stdout.readline() if ready else ""
                assert_prints_as_shown(command, [as_in_doc(first.rstrip("\n"))], shown)
                continue
            done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
            assert done.returncode == 0, (command, done.stderr)
            printed = as_in_doc(done.stderr + done.stdout).splitlines()
            assert_prints_as_shown(command, printed, shown)
    finally:
        for proc in background:
            proc.terminate()
            proc.wait(timeout=20)
            proc.stdout.close()
    # The flash really happened on the unit the doc started, with the laptop's release key.
    assert (home / ".config/bedside-host/keys/release.pub").read_text() == (
        state / "keys" / "release.pub"
    ).read_text()
    assert (state / "slots" / "b" / "manifest.json").exists()
