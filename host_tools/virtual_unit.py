"""A virtual unit on this laptop: the real agent, and the real runtime on the simulated sensor.

``bedside-host sim --state DIR`` runs what a unit runs, with a state directory of its own:

- the maintenance agent (:class:`edge.maint.agent.Agent`, with every handler module
  installed) on a local TCP socket; hosts connect with ``socket://127.0.0.1:PORT``, the same
  code path as a cable;
- the unit's runtime in a child process: the boot manager (``bedside boot``) when the unit
  software has one, else ``bedside run --source sim:SEED`` writing ``DIR/vitals.db``. A
  simulated night ends (8 h of signal, at ``--speed``); then, as systemd restarts the service
  on a unit, the next night starts through the boot manager again (so a slot confirmed
  since runs from then on), one after another, each with the next seed. The exited runtime
  is reaped at once (never left defunct); a runtime that keeps failing within seconds is
  started again after a growing pause (up to a minute). ``status`` shows whether it records
  (``runtime``, from its heartbeat: :mod:`edge.heartbeat`).

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
import time
from pathlib import Path
from typing import TextIO

from edge.errors import fail
from edge.link.auth import PublicKey
from edge.maint.agent import PAIRING_FILE, Agent, PairingWindow
from edge.maint.flash import install_release_key
from edge.store import STORE_NAME

__all__ = ["VirtualUnit"]

log = logging.getLogger(__name__)

SIM_FAILED = "E383"
#: Seconds from a night's end to the next start (systemd's RestartSec on a unit) ...
RESTART_S = 2.0
#: ... doubled after each runtime that failed within FAILING_RUN_S, up to RESTART_MAX_S.
FAILING_RUN_S = 10.0
RESTART_MAX_S = 60.0


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
        release_key: PublicKey | None = None,
        trace: TextIO | None = None,
        night_length: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.seed = seed
        self.speed = speed
        #: Each night's length (``bedside run --duration``, e.g. "2m"); None: the sim's 8 h.
        self.night_length = night_length
        #: Nights whose runtime has ended so far.
        self.nights = 0
        try:
            (self.state_dir / "keys").mkdir(parents=True, exist_ok=True)
            (self.state_dir / "logs").mkdir(exist_ok=True)
            if pairing:  # the virtual unit's "pairing button": its disk is right here
                PairingWindow(self.state_dir / PAIRING_FILE).press()
            if release_key is not None:  # provisioned at its console, as in the factory
                install_release_key(self.state_dir, release_key)
        except OSError as exc:
            fail(SIM_FAILED, f"cannot use the state directory: {exc}", "pass a writable --state")
        self.agent = Agent(
            f"listen://{listen}", state_dir=self.state_dir, hardware="sim", trace=trace
        )
        self.runtime: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._runtime_lock = threading.Lock()  # starting a runtime vs. stopping the unit
        self._supervisor: threading.Thread | None = None
        if sensor:
            self._start_runtime()
            self._supervisor = threading.Thread(
                target=self._run_nights, name="virtual-unit-nights", daemon=True
            )
            self._supervisor.start()

    @property
    def url(self) -> str:
        """What a host passes as ``--port``."""
        return self.agent.url

    def runtime_command(self, night: int = 0) -> list[str]:
        """The unit's runtime for its ``night``-th night (seed + night): the boot manager
        (trial, health check, then ``bedside run`` from the confirmed slot) when installed,
        else ``bedside run`` directly."""
        source = f"sim:{self.seed + night}"
        run = ["--source", source, "--speed", self.speed, "--db", str(self.state_dir / STORE_NAME)]
        if self.night_length is not None:
            run += ["--duration", self.night_length]
        run.append("--quiet")
        edge = [sys.executable, "-m", "edge"]
        if importlib.util.find_spec("edge.maint.boot") is not None:
            return [*edge, "boot", "--state", str(self.state_dir), "--source", source, "--", *run]
        return [*edge, "run", *run]

    @property
    def _runtime_log(self) -> Path:
        return self.state_dir / "logs" / "runtime.log"

    def _start_runtime(self) -> None:
        with open(self._runtime_log, "ab") as out:
            self.runtime = subprocess.Popen(
                self.runtime_command(self.nights),
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

    def _run_nights(self) -> None:
        """Wait for each night's runtime to end (reaping it), then start the next one."""
        pause = RESTART_S
        while True:
            runtime, started = self.runtime, time.monotonic()
            code = runtime.wait()  # reaps it: an ended runtime is never left defunct
            ran_s = time.monotonic() - started
            self.nights += 1
            if self._stopping.is_set():
                return
            failing = code != 0 and ran_s < FAILING_RUN_S
            pause = min(2 * pause, RESTART_MAX_S) if failing else RESTART_S
            with open(self._runtime_log, "a", encoding="utf-8") as out:
                out.write(
                    f"virtual unit: night {self.nights} ended (exit {code} after {ran_s:.1f} s);"
                    f" the next one starts in {pause:g} s\n"
                )
            if self._stopping.wait(pause):
                return
            with self._runtime_lock:
                if self._stopping.is_set():
                    return
                self._start_runtime()

    def _stop_runtime(self) -> None:
        self._stopping.set()
        with self._runtime_lock:  # no new night starts from here on
            runtime = self.runtime
        if runtime is not None and runtime.poll() is None:
            runtime.terminate()  # bedside run saves the night so far on SIGTERM
            try:
                runtime.wait(timeout=10)
            except subprocess.TimeoutExpired:
                runtime.kill()
                runtime.wait()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
