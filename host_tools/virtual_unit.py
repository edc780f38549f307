"""A virtual unit on this laptop: the real agent, and the real runtime on the simulated sensor.

``bedside-host sim --state DIR`` runs what a unit runs, with a state directory of its own:

- the maintenance agent (:class:`edge.maint.agent.Agent`, with every handler module
  installed) on a local TCP socket; hosts connect with ``socket://127.0.0.1:PORT``, the same
  code path as a cable;
- the unit's runtime in a child process: the boot manager (``bedside boot``) when the unit
  software has one, else ``bedside run --source sim:SEED`` writing ``DIR/vitals.db``.

Nothing of the laptop's own state is touched; the state directory is the unit's disk.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TextIO

from edge.errors import fail
from edge.maint.agent import PAIRING_FILE, Agent, PairingWindow
from edge.store import STORE_NAME

__all__ = ["VirtualUnit"]

log = logging.getLogger(__name__)

SIM_FAILED = "E383"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the runtime child gets SIGTERM when the sim dies, even by kill -9."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class VirtualUnit:
    """One virtual unit: start it, read :attr:`url`, :meth:`serve_forever`, :meth:`stop`."""

    def __init__(
        self,
        state_dir: Path,
        *,
        listen: str = "127.0.0.1:0",
        seed: int = 1,
        sensor: bool = True,
        speed: str = "realtime",
        pairing: bool = False,
        trace: TextIO | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.seed = seed
        self.speed = speed
        try:
            (self.state_dir / "keys").mkdir(parents=True, exist_ok=True)
            (self.state_dir / "logs").mkdir(exist_ok=True)
            if pairing:  # the virtual unit's "pairing button": its disk is right here
                PairingWindow(self.state_dir / PAIRING_FILE).press()
        except OSError as exc:
            fail(SIM_FAILED, f"cannot use the state directory: {exc}", "pass a writable --state")
        self.agent = Agent(
            f"listen://{listen}", state_dir=self.state_dir, hardware="sim", trace=trace
        )
        self.runtime: subprocess.Popen | None = None
        if sensor:
            self._start_runtime()

    @property
    def url(self) -> str:
        """What a host passes as ``--port``."""
        return self.agent.url

    def runtime_command(self) -> list[str]:
        """The unit's runtime: the boot manager (trial, health check, then ``bedside run``
        from the confirmed slot) when installed, else ``bedside run`` directly."""
        source = f"sim:{self.seed}"
        run = ["--source", source, "--speed", self.speed, "--db", str(self.state_dir / STORE_NAME)]
        run.append("--quiet")
        edge = [sys.executable, "-m", "edge"]
        if importlib.util.find_spec("edge.maint.boot") is not None:
            return [*edge, "boot", "--state", str(self.state_dir), "--source", source, "--", *run]
        return [*edge, "run", *run]

    def _start_runtime(self) -> None:
        log_path = self.state_dir / "logs" / "runtime.log"
        with open(log_path, "ab") as out:
            self.runtime = subprocess.Popen(
                self.runtime_command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                env={**os.environ, "BEDSIDE_STATE": str(self.state_dir)},
            )

    def serve_forever(self) -> None:
        """Serve hosts until :meth:`stop` (or SIGTERM/SIGINT from the sim command)."""
        try:
            self.agent.serve_forever()
        finally:
            self._stop_runtime()

    def serve_in_thread(self) -> threading.Thread:
        """Serve in a daemon thread (tests that want the unit in-process)."""
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.agent.stop()

    def _stop_runtime(self) -> None:
        if self.runtime is None or self.runtime.poll() is not None:
            return
        self.runtime.terminate()  # bedside run saves the night so far on SIGTERM
        try:
            self.runtime.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.runtime.kill()
            self.runtime.wait()
