"""The runtime's heartbeat: how the agent (and ``bedside-host status``) knows that
``bedside run`` is recording.

``bedside run`` keeps a small JSON file beside its store, ``vitals.db.runtime``: its pid,
its release, its source, when it started and when it last went round its loop (every
:data:`BEAT_EVERY_S` of wall time), and, when it stops, when and why. The agent, another
process, reads it (:func:`runtime_status`) and tells three cases apart:

- recording: the file says running, its pid is alive and its last beat is recent;
- stopped (E392): the file says stopped (the night ended, a sensor failed, SIGTERM), or
  says running but its pid is gone (killed with -9, a crash, a power cut);
- not responding (E393): its pid is alive, but no beat for :data:`STALE_AFTER_S` (a hang).

The age of the last beat is read on the monotonic clock, which all processes of one boot
share: a wall clock that steps (a board without a real-time clock setting its time from the
network after boot) does not make a live runtime look hung. A heartbeat of another boot, or
of a runtime that wrote no monotonic time, is aged by the wall clock.

Without the file no runtime has run with that store ("not started": the virtual unit's
``--no-sensor``). Writes are atomic (:func:`edge.files.atomic_write`); a heartbeat that
cannot be written is logged once and never stops the recording.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .files import atomic_write

__all__ = [
    "BEAT_EVERY_S",
    "RUNTIME_NOT_RESPONDING",
    "RUNTIME_STOPPED",
    "STALE_AFTER_S",
    "Heartbeat",
    "heartbeat_path",
    "runtime_status",
]

log = logging.getLogger(__name__)

#: Wall seconds between two beats (a loop of the pipeline takes well under a second).
BEAT_EVERY_S = 10.0
#: No beat for this long from a live pid: the runtime hangs.
STALE_AFTER_S = 60.0
RUNTIME_STOPPED = "E392"
RUNTIME_NOT_RESPONDING = "E393"
_SUFFIX = ".runtime"


def heartbeat_path(db: str | os.PathLike) -> Path:
    """The heartbeat file of the runtime that writes the store at ``db``."""
    db = Path(db)
    return db.with_name(db.name + _SUFFIX)


class Heartbeat:
    """The heartbeat ``bedside run`` keeps while it records into the store at ``db``.

    Args:
        db: the vitals store.
        release: the release of the running code (:func:`edge.version.software_version`).
        source: the source's name.
        clock, wall_clock: monotonic and Unix clocks (replaceable in tests).
    """

    def __init__(
        self,
        db: str | os.PathLike,
        *,
        release: str,
        source: str,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = heartbeat_path(db)
        self._clock, self._wall = clock, wall_clock
        self._doc: dict[str, Any] = {
            "state": "running",
            "pid": os.getpid(),
            "release": release,
            "source": source,
            "started_utc": wall_clock(),
            "boot_id": _boot_id(),  # whose monotonic clock beat_mono is on
        }
        self._last: float | None = None
        self._failing = False

    def beat(self) -> None:
        """Say "still recording" (written at most every :data:`BEAT_EVERY_S`)."""
        now = self._clock()
        if self._last is not None and now - self._last < BEAT_EVERY_S:
            return
        self._last = now
        # Not synced: a beat every 10 s must not wear the SD card (two fsyncs each); after a
        # power cut an old or empty file reads as "stopped", which the runtime then was.
        self._write(durable=False, beat_utc=self._wall(), beat_mono=now)

    def stopped(self, reason: str) -> None:
        """Say the runtime stopped, and why ("end of source", "stopped by SIGTERM", ...)."""
        now = self._wall()
        self._write(state="stopped", beat_utc=now, stopped_utc=now, reason=reason)

    def _write(self, durable: bool = True, **changes: Any) -> None:
        self._doc.update(changes)
        try:
            atomic_write(self.path, (json.dumps(self._doc) + "\n").encode(), durable=durable)
        except OSError as exc:
            if not self._failing:  # a full or read-only disk: said once, recording goes on
                log.warning("cannot write the heartbeat %s: %s", self.path.name, exc.strerror)
            self._failing = True
        else:
            self._failing = False


def runtime_status(
    db: str | os.PathLike,
    *,
    now: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    pid_alive: Callable[[int], bool] | None = None,
) -> dict[str, Any]:
    """What the runtime of the store at ``db`` is doing, from its heartbeat.

    Returns ``{"state", "text", "problem", ...the heartbeat's fields}``: ``state`` is
    ``"recording"``, ``"stopped"``, ``"not responding"`` or ``"not started"``; ``text`` one
    line for a person (for a problem, its ``error E3..: what — what to do`` line);
    ``problem`` the code (:data:`RUNTIME_STOPPED`, :data:`RUNTIME_NOT_RESPONDING`) or None.
    ``now`` (Unix s), ``monotonic`` and ``pid_alive`` replace the clocks and the process
    check (tests).
    """
    now = time.time() if now is None else now
    alive = _pid_alive if pid_alive is None else pid_alive
    try:
        doc = json.loads(heartbeat_path(db).read_bytes())
        pid = int(doc["pid"])
        beat_utc = float(doc.get("beat_utc", doc["started_utc"]))
        if doc["state"] not in ("running", "stopped"):
            raise ValueError(doc["state"])
    except FileNotFoundError:
        return {
            "state": "not started",
            "text": "not started (no runtime has recorded into this unit's store)",
            "problem": None,
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _problem(
            {},
            "stopped",
            RUNTIME_STOPPED,
            f"the runtime's heartbeat is unreadable ({exc})",
            "restart the runtime (systemctl restart bedside)",
        )
    release = f"release {doc.get('release', 'unknown')}"
    if doc["state"] == "stopped":
        return _problem(
            doc,
            "stopped",
            RUNTIME_STOPPED,
            f"the runtime ({release}) stopped at {_utc(doc.get('stopped_utc', beat_utc))}: "
            f"{doc.get('reason', 'no reason given')}; the unit is not recording",
            "start it again (systemctl restart bedside; the virtual unit starts the next "
            "night by itself)",
        )
    if not alive(pid):
        return _problem(
            doc,
            "stopped",
            RUNTIME_STOPPED,
            f"the runtime ({release}, pid {pid}) ended without stopping (killed, crashed or "
            f"a power cut; last beat {_utc(beat_utc)}); the unit is not recording",
            "see its log (journalctl -u bedside) and start it again (systemctl restart bedside)",
        )
    age = now - beat_utc
    beat_mono, boot = doc.get("beat_mono"), _boot_id()
    if isinstance(beat_mono, int | float) and boot is not None and doc.get("boot_id") == boot:
        age = monotonic() - beat_mono  # this boot's clock: no step of the wall clock in it
    if age > STALE_AFTER_S:
        return _problem(
            doc,
            "not responding",
            RUNTIME_NOT_RESPONDING,
            f"the runtime ({release}, pid {pid}) has not gone round its loop for "
            f"{age:.0f} s (last beat {_utc(beat_utc)}); it hangs",
            "restart it (systemctl restart bedside) and send its log (journalctl -u bedside)",
        )
    text = (
        f"recording since {_utc(float(doc['started_utc']))} ({release}, "
        f"{doc.get('source', '?')}, pid {pid})"
    )
    return {**doc, "state": "recording", "text": text, "problem": None}


def _problem(doc: dict[str, Any], state: str, code: str, what: str, todo: str) -> dict[str, Any]:
    """The status of a runtime with a problem: its line is ``error CODE: what — todo``."""
    return {**doc, "state": state, "text": f"error {code}: {what} — {todo}", "problem": code}


def _utc(t_utc: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t_utc))


def _boot_id() -> str | None:
    """This boot's id (Linux), which tells whether a monotonic time came from this boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _pid_alive(pid: int) -> bool:
    """A process with this pid exists and is not a zombie (an exited child not yet reaped
    is gone for our purpose)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): kill's answer stands
    return stat.rpartition(")")[2].split()[0] != "Z"
