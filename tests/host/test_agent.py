"""The unit's agent: identity, handler modules, limits, and `bedside agent` as a service."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.errors import BedsideError
from edge.heartbeat import Heartbeat
from edge.link import Client
from edge.maint.agent import HANDLER_MODULES, Agent
from edge.store import STORE_NAME, Store
from host_tools.virtual_unit import VirtualUnit

ROOT = Path(__file__).resolve().parents[2]


def test_device_identity_is_made_once_and_kept(tmp_path) -> None:
    first = Agent("listen://127.0.0.1:0", state_dir=tmp_path, hardware="rev-b", modules=())
    first.port.close()
    again = Agent("listen://127.0.0.1:0", state_dir=tmp_path, hardware="other", modules=())
    again.port.close()
    assert first.identity["device_id"] == again.identity["device_id"]
    assert again.identity["hardware"] == "rev-b"
    assert json.loads((tmp_path / "device.json").read_text())["device_id"].startswith("bcg-")


def test_damaged_state_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "device.json").write_text("{not json")
    with pytest.raises(BedsideError) as info:
        Agent("listen://127.0.0.1:0", state_dir=tmp_path, modules=())
    assert info.value.code == "E384"


def test_command_names_are_unique(local_agent) -> None:
    with pytest.raises(ValueError):
        local_agent.command("identify")(lambda args, data: ({}, b""))


def test_installed_handler_modules_are_registered(tmp_path) -> None:
    agent = Agent("listen://127.0.0.1:0", state_dir=tmp_path)
    agent.port.close()
    for module in HANDLER_MODULES:
        if importlib.util.find_spec(module) is None:
            continue
        # Each module adds commands under its own prefix, all behind authentication.
        prefix = {"edge.maint.flash": "flash.", "edge.maint.logs": "logs."}[module]
        names = [n for n in agent._handlers if n.startswith(prefix)]
        assert names, module
        assert all(agent._handlers[n][1] for n in names), module


def test_reply_larger_than_the_frame_is_an_error_not_a_hang(local_paired) -> None:
    agent, key = local_paired

    @agent.command("test.huge")
    def huge(args, data):
        return {}, b"x" * (agent.max_frame + 10)

    with Client.open(agent.url) as client:
        client.authenticate(key)
        with pytest.raises(BedsideError) as info:
            client.call("test.huge")
        assert info.value.code == "E304"


def test_bedside_agent_serves_and_stops_cleanly_on_sigterm(tmp_path, host_key) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "agent", "--port", "listen://127.0.0.1:0"]
        + ["--state", str(tmp_path / "unit")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("bedside agent: bcg-"), proc.stderr.read()
        url = line.split(" on ")[1].strip()
        with Client.open(url) as client:
            assert client.identify()["hardware"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


def test_virtual_unit_runs_the_runtime_on_the_simulated_sensor(tmp_path) -> None:
    unit = VirtualUnit(tmp_path / "unit", speed="1000x", pairing=True)
    thread = unit.serve_in_thread()
    try:
        with Client.open(unit.url) as client:
            assert client.identify()["hardware"] == "sim"
        db = tmp_path / "unit" / "vitals.db"
        deadline = time.monotonic() + 60
        epochs = 0
        while time.monotonic() < deadline and epochs == 0:
            time.sleep(0.5)
            if db.exists():
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    try:
                        epochs = conn.execute("SELECT count(*) FROM epochs").fetchone()[0]
                    except sqlite3.OperationalError:
                        epochs = 0
        assert epochs > 0, (tmp_path / "unit" / "logs" / "runtime.log").read_text()[-2000:]
    finally:
        unit.stop()
        thread.join(timeout=20)
    assert unit.runtime is not None and unit.runtime.poll() is not None  # stopped with it


def _proc_state(pid: int) -> str | None:
    """The process state letter of ``pid`` ("Z": defunct), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return None


def test_virtual_unit_records_night_after_night_and_reaps_each_runtime(tmp_path) -> None:
    state = tmp_path / "unit"
    unit = VirtualUnit(state, speed="max", night_length="1m", seed=3)
    first = unit.runtime
    thread = unit.serve_in_thread()
    log = state / "logs" / "runtime.log"
    try:
        deadline = time.monotonic() + 180
        while unit.nights < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert unit.nights >= 2, log.read_text()[-2000:]
        assert first.returncode == 0 and _proc_state(first.pid) is None  # reaped, not "Z"
        with Client.open(unit.url) as client:  # between nights or in the next one
            assert client.identify()["runtime_state"] in ("recording", "stopped")
    finally:
        unit.stop()
        thread.join(timeout=20)
    assert unit.runtime.poll() is not None and not unit._supervisor.is_alive()
    with Store(state / STORE_NAME, readonly=True) as store:
        sessions = store.sessions()
    # One after another: each night its own clean session (a second runtime on the store at
    # the same time would have failed on its lock, E267), each with the next seed.
    assert [s.source for s in sessions[:2]] == ["sim:3", "sim:4"]
    assert all(s.clean for s in sessions[:2]), log.read_text()[-2000:]
    text = log.read_text()
    assert "E267" not in text and "virtual unit: night 1 ended (exit 0" in text


def test_identify_tells_whether_the_runtime_records(tmp_path) -> None:
    state = tmp_path / "unit"
    agent = Agent("listen://127.0.0.1:0", state_dir=state, modules=())
    thread = threading.Thread(target=agent.serve_forever, daemon=True)
    thread.start()
    try:
        with Client.open(agent.url) as client:
            assert client.identify()["runtime_state"] == "not started"
            heartbeat = Heartbeat(state / STORE_NAME, release="0.2.0", source="sim:1")
            heartbeat.beat()
            info = client.identify()
            assert info["runtime_state"] == "recording" and "release 0.2.0" in info["runtime"]
            heartbeat.stopped("end of source")
            info = client.identify()
    finally:
        agent.stop()
        thread.join(timeout=5)
    assert info["runtime_state"] == "stopped"
    assert info["runtime"].startswith("error E392: the runtime (release 0.2.0) stopped at ")
