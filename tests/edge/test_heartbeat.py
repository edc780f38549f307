"""The runtime's heartbeat: `bedside run` says it records; the agent tells recording, stopped
(E392) and not responding (E393) apart, for a clean stop, a kill -9 and a hang alike."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from edge.heartbeat import (
    BEAT_EVERY_S,
    STALE_AFTER_S,
    Heartbeat,
    _pid_alive,
    heartbeat_path,
    runtime_status,
)
from edge.version import software_version

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_559_400.0


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_no_heartbeat_is_no_runtime_and_no_problem(tmp_path):
    status = runtime_status(tmp_path / "vitals.db")
    assert (status["state"], status["problem"]) == ("not started", None)


def test_a_beating_runtime_records_and_a_silent_live_one_hangs(tmp_path):
    db = tmp_path / "vitals.db"
    mono, wall = Clock(), Clock(T0)
    beat = Heartbeat(db, release="0.2.0", source="sim:4", clock=mono, wall_clock=wall)
    beat.beat()
    status = runtime_status(db, now=T0 + 5, monotonic=mono)  # this process: alive
    assert (status["state"], status["problem"], status["release"]) == ("recording", None, "0.2.0")
    assert status["text"] == (
        f"recording since 2026-11-24 22:30:00 UTC (release 0.2.0, sim:4, pid {os.getpid()})"
    )
    mono.t, wall.t = BEAT_EVERY_S / 2, T0 + 5  # too soon: not written again
    beat.beat()
    assert json.loads(heartbeat_path(db).read_text())["beat_utc"] == T0
    mono.t, wall.t = BEAT_EVERY_S, T0 + BEAT_EVERY_S
    beat.beat()
    assert json.loads(heartbeat_path(db).read_text())["beat_utc"] == T0 + BEAT_EVERY_S
    mono.t = BEAT_EVERY_S + STALE_AFTER_S + 1
    hung = runtime_status(db, now=T0 + BEAT_EVERY_S + STALE_AFTER_S + 1, monotonic=mono)
    assert (hung["state"], hung["problem"]) == ("not responding", "E393")
    assert hung["text"].startswith("error E393: the runtime (release 0.2.0, pid ")
    assert "— restart it" in hung["text"]


def test_a_step_of_the_wall_clock_does_not_make_a_live_runtime_hang(tmp_path, monkeypatch):
    """A board without a real-time clock sets its time from the network after boot: the wall
    clock jumps an hour while the runtime beats on. The beat's age is read on the monotonic
    clock of this boot; a beat of another boot (a pid reused after a reboot) on the wall."""
    db = tmp_path / "vitals.db"
    mono, wall = Clock(100.0), Clock(T0)
    Heartbeat(db, release="0.2.0", source="sim:4", clock=mono, wall_clock=wall).beat()
    mono.t += 5.0
    stepped = runtime_status(db, now=T0 + 3600.0, monotonic=mono)
    assert (stepped["state"], stepped["problem"]) == ("recording", None)
    mono.t += STALE_AFTER_S  # and a real hang is still one
    assert runtime_status(db, now=T0 + 3600.0, monotonic=mono)["problem"] == "E393"
    monkeypatch.setattr("edge.heartbeat._boot_id", lambda: "another boot")
    assert runtime_status(db, now=T0 + 5.0, monotonic=mono)["state"] == "recording"
    assert runtime_status(db, now=T0 + 3600.0, monotonic=mono)["problem"] == "E393"


def test_a_stopped_runtime_is_e392_with_its_reason(tmp_path):
    db = tmp_path / "vitals.db"
    beat = Heartbeat(db, release="0.2.0", source="sim:4", wall_clock=Clock(T0))
    beat.beat()
    beat.stopped("end of source")
    status = runtime_status(db, now=T0 + 1)
    assert (status["state"], status["problem"]) == ("stopped", "E392")
    assert status["text"] == (
        "error E392: the runtime (release 0.2.0) stopped at 2026-11-24 22:30:00 UTC: end of "
        "source; the unit is not recording — start it again (systemctl restart bedside; the "
        "virtual unit starts the next night by itself)"
    )


def test_a_runtime_whose_process_is_gone_or_defunct_has_stopped(tmp_path):
    db = tmp_path / "vitals.db"
    Heartbeat(db, release="0.2.0", source="sim:4").beat()
    gone = runtime_status(db, pid_alive=lambda pid: False)
    assert (gone["state"], gone["problem"]) == ("stopped", "E392")
    assert "ended without stopping" in gone["text"]
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # exits; not reaped yet
    deadline = time.monotonic() + 10
    while _pid_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(child.pid)  # a zombie is not a runtime
    assert child.wait() == 0
    assert _pid_alive(os.getpid())


def test_an_unreadable_heartbeat_is_a_problem_and_an_unwritable_one_no_crash(tmp_path):
    db = tmp_path / "vitals.db"
    heartbeat_path(db).write_text("{not json")
    assert runtime_status(db)["problem"] == "E392"
    heartbeat_path(db).write_bytes(b"")  # a beat (not synced) lost to a power cut
    assert runtime_status(db)["problem"] == "E392"
    Heartbeat(tmp_path / "missing" / "vitals.db", release="x", source="y").beat()  # logged only


def test_beats_are_not_synced_but_the_stop_is(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    heartbeat = Heartbeat(tmp_path / "vitals.db", release="0.1.0", source="sim:1")
    heartbeat.beat()
    assert synced == []  # every 10 s all night: no fsync to wear the SD card
    heartbeat.stopped("end of source")
    assert len(synced) == 2  # the file and its folder
    assert runtime_status(tmp_path / "vitals.db")["state"] == "stopped"


def _run(db: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--source", "sim:2", "--db", str(db), "--quiet"]
        + list(extra),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_bedside_run_beats_while_it_records_and_says_why_it_stopped(tmp_path):
    db = tmp_path / "vitals.db"
    run = _run(db, "--speed", "max", "--duration", "2m", "--no-gate")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    status = runtime_status(db)
    assert (status["state"], status["reason"]) == ("stopped", "duration reached")
    assert status["release"] == software_version() and status["pid"] == run.pid


def test_a_runtime_killed_mid_night_shows_as_stopped(tmp_path):
    db = tmp_path / "vitals.db"
    run = _run(db, "--speed", "realtime")
    try:
        deadline = time.monotonic() + 60
        while runtime_status(db)["state"] != "recording" and time.monotonic() < deadline:
            assert run.poll() is None, run.stderr.read()
            time.sleep(0.2)
        assert runtime_status(db)["state"] == "recording"
        run.send_signal(signal.SIGKILL)
        run.wait()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        run.stdout.close()
        run.stderr.close()
    status = runtime_status(db)
    assert (status["state"], status["problem"]) == ("stopped", "E392")
    assert f"pid {run.pid}) ended without stopping" in status["text"]
