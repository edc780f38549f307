"""``make arm64`` (deploy/arm64/check.py): the parts that need no arm64 root file system.

The tools check and its one-line message, the arguments, the Debian mirror taken from this
machine's apt sources, the step runner's failure line, the way a script enters the board (a
private mount namespace, a clean environment), the vitals comparison, and docs/install.md
giving the same commands the check runs. The real check is ``make arm64`` itself.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.records import Epoch, Event
from edge.store import Store

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "arm64" / "check.py"
_spec = importlib.util.spec_from_file_location("arm64_check", SCRIPT)
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def run_script(*args: str, path: str, cwd: Path) -> subprocess.CompletedProcess:
    """The script as ``make arm64`` runs it, with ``PATH`` replaced."""
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd
    )


# --- tools and arguments ----------------------------------------------------------------------


@pytest.mark.parametrize("args", [("--no-apt",), ()])
def test_missing_tools_stop_with_one_line_saying_how_to_install_them(tmp_path, args) -> None:
    """No debootstrap or qemu, and either apt-get is not allowed (--no-apt) or there is none
    on PATH (so it cannot install them): one line, exit 1, nothing built."""
    cache = tmp_path / "cache"
    done = run_script("--cache", str(cache), *args, path=str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        "make arm64: debootstrap and qemu-aarch64-static not found: "
        "apt-get install debootstrap qemu-user-static binfmt-support (as root)\n"
    )
    assert not (cache / "base").exists()


def test_tools_present_pass_the_check(tmp_path) -> None:
    """With both commands on PATH (stand-ins: only their presence is checked here)."""
    for tool in ("debootstrap", "qemu-aarch64-static"):
        (tmp_path / tool).write_text("#!/bin/sh\n")
        (tmp_path / tool).chmod(0o755)
    done = run_script(
        "--no-apt", "--tools-only", "--cache", str(tmp_path / "c"), path=str(tmp_path), cwd=tmp_path
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_a_cache_that_is_a_file_is_refused_in_one_line(tmp_path) -> None:
    (tmp_path / "file").write_text("")
    done = run_script("--cache", str(tmp_path / "file"), path=str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == f"make arm64: --cache {tmp_path / 'file'} is a file: give a folder\n"


def test_an_unknown_argument_is_refused(tmp_path) -> None:
    done = run_script("--bogus", path=str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "unrecognized arguments: --bogus" in done.stderr


# --- the Debian mirror ------------------------------------------------------------------------


def test_the_mirror_is_this_machines_bookworm_source(tmp_path) -> None:
    sources = tmp_path / "sources.list.d"
    sources.mkdir()
    (sources / "a-node.sources").write_text(  # read first: not bookworm
        "Types: deb\nURIs: http://elsewhere.invalid/node\nSuites: nodistro\n"
    )
    (sources / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n"
    )
    assert check.debian_mirror([sources]) == "http://mirror.invalid/debian"
    one_line = tmp_path / "sources.list"
    one_line.write_text(
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb [arch=amd64] http://old.invalid/debian bookworm main\n"
    )
    assert check.debian_mirror([tmp_path / "none", one_line]) == "http://old.invalid/debian"


def test_no_bookworm_source_stops_with_one_line(tmp_path) -> None:
    (tmp_path / "sources.list").write_text("deb http://mirror.invalid/debian trixie main\n")
    with pytest.raises(check.StopError) as stop:
        check.debian_mirror([tmp_path / "sources.list"])
    assert stop.value.line.startswith("make arm64: no Debian bookworm mirror")
    assert "ARM64_MIRROR=URL" in stop.value.line


# --- steps ------------------------------------------------------------------------------------


def test_a_failed_step_names_itself_and_its_log(tmp_path) -> None:
    log = tmp_path / "install.log"
    with pytest.raises(check.StopError) as stop:
        check.run_step("install", ["sh", "-c", "echo compiling; exit 3"], log, timeout_s=30)
    assert stop.value.line == 'make arm64: step "install" failed (exit 3)'
    assert stop.value.log == log
    assert "compiling\n[exit 3," in log.read_text()


def test_a_step_out_of_time_says_so(tmp_path) -> None:
    log = tmp_path / "tests.log"
    with pytest.raises(check.StopError) as stop:
        check.run_step("tests", ["sh", "-c", "echo started; sleep 5"], log, timeout_s=0.5)
    assert stop.value.line == 'make arm64: step "tests" timed out after 0.5 s'
    assert "started" in log.read_text()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"
)
def test_a_board_script_runs_with_a_clean_environment_and_its_own_mounts(tmp_path) -> None:
    """Entered at / (this machine as the 'board'): the same commands as on the arm64 one.

    None of this machine's settings (pip's find-links, ...) reaches it, /proc is there, and
    the mounts it made are gone when it ends.
    """
    os.environ["PIP_FIND_LINKS"] = "/nowhere"
    try:
        out = check.Board(Path("/"), tmp_path).run(
            "probe", 'echo "[$PIP_FIND_LINKS] $HOME $TZ"; test -r /proc/self/status', timeout_s=60
        )
    finally:
        del os.environ["PIP_FIND_LINKS"]
    assert out == "[] /root UTC\n"
    assert (tmp_path / "probe.log").read_text().startswith("$ unshare --mount")
    with pytest.raises(check.StopError, match='step "probe" failed'):
        check.Board(Path("/"), tmp_path).run("probe", "false", timeout_s=60)


# --- the vitals comparison --------------------------------------------------------------------


def _store(path: Path, t0: float, hr: float) -> Path:
    with Store(str(path)) as store:
        store.open_session(
            source="sim:42", fs=250.0, epoch_s=30.0, software_version="0.1.0", t_utc=t0, tz="UTC"
        )
        for k in range(3):
            store.add_epoch(
                Epoch(
                    t_utc=t0 + 30.0 * k,
                    duration_s=30.0,
                    state="good",
                    quality=0.9,
                    hr_bpm=hr + k,
                    hrv_rmssd_ms=None,
                    rr_bpm=15.0,
                    motion=1.5,
                    beats=30,
                    hr_reason=None,
                    rr_reason="few breaths",
                )
            )
        store.add_event(Event(t_utc=t0 + 90.0, kind="shutdown"))
        store.commit()
        store.close_session(clean=True, t_utc=t0 + 90.0)
    return path


def test_the_same_vitals_at_another_wall_clock_time_compare_equal(tmp_path) -> None:
    (tmp_path / "logs").mkdir()
    board = _store(tmp_path / "board.db", 1_795_559_400.0, 60.0)
    here = _store(tmp_path / "x86.db", 1_795_600_000.25, 60.0)
    line = check.compare_vitals(board, here)
    assert line == "3 epochs and 1 events, identical bit for bit (times from the first epoch)"


def test_a_heart_rate_one_bit_apart_is_a_difference(tmp_path) -> None:
    (tmp_path / "logs").mkdir()
    board = _store(tmp_path / "board.db", 1_795_559_400.0, float.fromhex("0x1.e000000000001p+5"))
    here = _store(tmp_path / "x86.db", 1_795_559_400.0, 60.0)
    with pytest.raises(check.StopError) as stop:
        check.compare_vitals(board, here)
    assert stop.value.line == 'make arm64: step "compare vitals" failed: a record differs'
    assert "0x1.e000000000001p+5" in (tmp_path / "logs" / "compare-vitals.log").read_text()


# --- docs/install.md --------------------------------------------------------------------------


def _as_written(argv: list[str], platforms: list[str]) -> str:
    """``argv`` (python -m pip ...) as docs/install.md writes it: ``pip``, shell quoting, the
    globs bare and the platform flags as ``$PLATFORMS``."""
    words = ["pip"] + [w if "*" in w else shlex.quote(w) for w in argv[3:]]
    return " ".join(words).replace(" ".join(platforms), "$PLATFORMS")


def test_install_md_gives_the_commands_the_check_runs() -> None:
    """The board's apt packages, the laptop's two downloads (its PLATFORMS line run by bash)
    and the board's offline install: the same words as the check runs."""
    doc = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    text = " ".join(doc.replace("\\\n", " ").split())
    assert "sudo apt-get install -y " + " ".join(check.BOARD_APT_PACKAGES) in text
    line = re.search(r"^PLATFORMS=.*$", doc, re.M).group(0)
    platforms = subprocess.run(
        ["bash", "-c", line + "; echo $PLATFORMS"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert platforms[:2] == ["--platform", "manylinux_2_36_aarch64"]
    assert platforms == check.platform_flags()[: len(platforms)]
    first, second = check.download_commands("bedside-bcg-0.1.0.tar.gz", "wheels")
    assert _as_written(first, platforms) in text
    assert _as_written(second, platforms) in text
    assert f"sudo python3 -m venv {check.VENV}" in text
    assert "sudo " + check.offline_install("bedside-bcg-0.1.0.tar.gz") in text


def test_a_failed_step_prints_its_logs_tail_then_one_line(tmp_path, monkeypatch, capsys) -> None:
    """What make arm64 shows for a step that failed on the board: the log's last 25 lines,
    then the one line naming the step and the log; exit 1."""

    def failing_check(cache: Path, logs: Path, *, rebuild: bool) -> int:
        command = ["sh", "-c", "seq 1 40; echo 'No matching distribution found for numpy'; exit 1"]
        check.run_step("install", command, logs / "install.log", timeout_s=30)
        return 0

    monkeypatch.setattr(check, "check", failing_check)
    monkeypatch.setattr(check, "ensure_tools", lambda **_: None)
    monkeypatch.setattr(check, "ensure_binfmt", lambda: None)
    assert check.main(["--cache", str(tmp_path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f'make arm64: step "install" failed (exit 1); log: {tmp_path / "logs" / "install.log"}'
    )
    assert err[-3] == "  | No matching distribution found for numpy"
    assert err[-2].startswith("  | [exit 1, ")
    assert len(err) == 26 and err[0] == "  | 18"  # lines 18-40, the error, the exit
