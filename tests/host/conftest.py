"""Fixtures for the host tools' tests: a virtual unit as a subprocess, keys, a fault proxy.

    def test_something(paired_unit, fault_proxy):
        unit, key = paired_unit                      # a running unit, this host's key paired
        proxy = fault_proxy(unit.url, Faults(drop=0.05))
        with Client.open(proxy.url, timeout_s=0.3, retries=8) as client:
            client.authenticate(key)
            ...
        unit.kill()                                  # kill -9, as a power cut would
        unit.start()                                 # same state dir, same URL

The unit runs ``python -m host_tools sim`` (the real agent, every handler module) in its own
process, so a test can kill it at the worst moment.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.link import Client
from edge.link.auth import add_authorized
from edge.maint.agent import Agent
from host_tools.keys import HostKey

# Test modules here import the proxy as `from faultproxy import FaultProxy, Faults`.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from faultproxy import FaultProxy, Faults  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class UnitProcess:
    """A virtual unit (``bedside-host sim``) in a subprocess."""

    def __init__(self, state: Path, *, sensor: bool = False, pairing: bool = True, extra=()):
        self.state = state
        self.sensor = sensor
        self.pairing = pairing
        self.extra = list(extra)
        self.listen = "127.0.0.1:0"
        self.url: str | None = None
        self.device_id: str | None = None
        self.proc: subprocess.Popen | None = None

    def start(self) -> UnitProcess:
        """Start (or restart, on the same URL) and wait for its URL line."""
        command = [sys.executable, "-m", "host_tools", "sim", "--state", str(self.state)]
        command += ["--listen", self.listen, "--json", *self.extra]
        if not self.sensor:
            command.append("--no-sensor")
        if self.pairing:
            command.append("--pairing")
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        # The sim prints its URL line first, at once; a sim that hangs fails the test.
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            err = self.proc.stderr.read()
            raise RuntimeError(f"the virtual unit did not start: {err.strip()}")
        info = json.loads(line)
        self.url, self.device_id = info["url"], info["device_id"]
        self.listen = self.url.removeprefix("socket://")  # a restart keeps the URL
        return self

    def kill(self) -> None:
        """kill -9: nothing gets to clean up."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int | None:
        """SIGTERM and wait: a clean stop; returns the exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def open_pairing(self) -> None:
        """Press the unit's pairing button (it creates DIR/pairing)."""
        (self.state / "pairing").touch()


@pytest.fixture
def start_unit(tmp_path: Path) -> Iterator[Callable[..., UnitProcess]]:
    """Factory: ``start_unit(sensor=False, pairing=True, state=None)`` -> a running unit."""
    units: list[UnitProcess] = []

    def start(*, sensor: bool = False, pairing: bool = True, state: Path | None = None, extra=()):
        unit = UnitProcess(
            state or tmp_path / f"unit{len(units)}", sensor=sensor, pairing=pairing, extra=extra
        )
        units.append(unit)
        return unit.start()

    yield start
    for unit in units:
        unit.stop()
        for stream in (unit.proc.stdout, unit.proc.stderr):
            stream.close()


@pytest.fixture
def unit(start_unit) -> UnitProcess:
    """A running virtual unit (no sensor) with its pairing window open."""
    return start_unit()


@pytest.fixture
def keys_dir(tmp_path: Path, monkeypatch) -> Path:
    """An empty keys directory, also the default one ($BEDSIDE_KEYS) for CLI runs."""
    path = tmp_path / "keys"
    monkeypatch.setenv("BEDSIDE_KEYS", str(path))
    return path


@pytest.fixture
def host_key(keys_dir: Path) -> HostKey:
    """This host's key, made in ``keys_dir``."""
    return HostKey.generate(keys_dir, name="test-host")


@pytest.fixture
def paired_unit(unit: UnitProcess, host_key: HostKey) -> tuple[UnitProcess, HostKey]:
    """A running unit with ``host_key`` authorized (its pairing window used up)."""
    with Client.open(unit.url) as client:
        client.authorize(host_key, "test-host")
    return unit, host_key


@pytest.fixture
def local_agent(tmp_path: Path) -> Iterator[Agent]:
    """An in-process agent (built-in commands only) serving on a local socket.

    Tests add commands with ``local_agent.command(...)`` and connect to ``local_agent.url``."""
    agent = Agent("listen://127.0.0.1:0", state_dir=tmp_path / "agent-state", modules=())
    thread = threading.Thread(target=agent.serve_forever, daemon=True)
    thread.start()
    yield agent
    agent.stop()
    thread.join(timeout=5)


@pytest.fixture
def local_paired(local_agent: Agent, host_key: HostKey) -> tuple[Agent, HostKey]:
    """``local_agent`` with ``host_key`` in its authorized_hosts."""
    add_authorized(local_agent.keys_dir / "authorized_hosts", host_key.public)
    return local_agent, host_key


@pytest.fixture
def tty_pair() -> Iterator[tuple[str, str]]:
    """Two pseudo-terminals bridged back to back: (the unit's device path, the host's).

    Each side opens its path with pyserial (termios, raw mode), as with a USB cable: unlike
    a socket, reopening it tells the other side nothing."""
    (unit_master, unit_slave), (host_master, host_slave) = os.openpty(), os.openpty()
    stop = threading.Event()

    def bridge() -> None:
        pairs = {unit_master: host_master, host_master: unit_master}
        while not stop.is_set():
            ready, _, _ = select.select(list(pairs), [], [], 0.05)
            for fd in ready:
                try:
                    os.write(pairs[fd], os.read(fd, 65536))
                except OSError:
                    return

    thread = threading.Thread(target=bridge, daemon=True)
    thread.start()
    yield os.ttyname(unit_slave), os.ttyname(host_slave)
    stop.set()
    thread.join(timeout=2)
    for fd in (unit_master, unit_slave, host_master, host_slave):
        os.close(fd)


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """Factory: ``fault_proxy(target_url, Faults(...), seed=0)`` -> a started FaultProxy."""
    proxies: list[FaultProxy] = []

    def make(target: str, faults: Faults | None = None, *, seed: int = 0) -> FaultProxy:
        proxy = FaultProxy(target, faults, seed=seed)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


__all__ = ["Faults", "UnitProcess"]
