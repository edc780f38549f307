"""The unit's two software slots (A/B) and their state, kept in ``DIR/slots/state.json``.

A slot is a folder, ``DIR/slots/a`` or ``DIR/slots/b``, holding one unpacked bundle (the
``edge``, ``dsp_c`` and ``models`` packages and the bundle's ``manifest.json``). A slot that
came with the unit is marked ``factory``: its folder is empty and it runs the software
installed on the unit (the Python package), which flashing never touches. So the unit always
has something bootable, even if the state file were lost.

The rules that keep the unit bootable:

* ``confirmed`` names the slot that passed a health check; flashing only ever writes into the
  other one (:meth:`Slots.install_target`), never into the confirmed slot.
* A flashed slot becomes ``trial``; only the boot manager (:mod:`edge.maint.boot`) confirms it,
  after its health check, or rolls back to the confirmed slot. Nothing is confirmed at upload.
* ``trial_boots`` counts boot attempts of the trial, written *before* each attempt: a trial
  killed mid-check is retried once, then rolled back (:data:`MAX_TRIAL_BOOTS`).
* Every write is atomic (:func:`edge.files.atomic_write`: temp file, fsync, rename, fsync of
  the folder): after a kill or a power cut the file is either the old state or the new one.
* One process at a time changes the state (:meth:`Slots.locked`, an ``flock``).

What changes the software a night runs is also an event in the vitals store, for the night
report and the pulled logs: ``update`` (a trial confirmed), ``update_failed`` (a trial
failed; the unit stays on its release) and ``rollback`` (the operator's, or away from a
damaged slot). They are noted after the state is saved (:func:`edge.store.note_event`: a
journal beside the store that its writer imports), so the boot manager and the agent note
them without opening the store that ``bedside run`` holds.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import BedsideError, fail
from ..files import atomic_write
from ..records import Event
from ..store import STORE_NAME, note_event

__all__ = [
    "MAX_TRIAL_BOOTS",
    "ROLLED_BACK",
    "SLOT_NAMES",
    "Slots",
    "active_slot",
    "factory_state",
    "other",
    "slot_is_factory",
    "summary",
]

SLOT_NAMES = ("a", "b")
#: boot attempts of a trial slot before it is rolled back (a kill mid-check is retried once)
MAX_TRIAL_BOOTS = 2
#: entries kept in the state's history (what happened to the slots, newest last)
HISTORY_LEN = 20
STATE_FORMAT = 1

#: The status of a slot the operator rolled back from (never a rollback's target).
ROLLED_BACK = "rolled back"
STATE_DAMAGED = "E351"
SLOTS_BUSY = "E358"

log = logging.getLogger(__name__)


def _empty_slot() -> dict[str, Any]:
    return {"status": "empty", "version": None, "sha256": None, "installed_utc": None}


def factory_state(version: str) -> dict[str, Any]:
    """The state of a unit never flashed: slot a is the installed software, confirmed."""
    return {
        "format": STATE_FORMAT,
        "confirmed": "a",
        "trial": None,
        "trial_boots": 0,
        "slots": {
            "a": {"status": "factory", "version": version, "sha256": None, "installed_utc": None},
            "b": _empty_slot(),
        },
        "history": [],
    }


def _check_state(state: Any) -> dict[str, Any]:
    """Raise ValueError unless ``state`` is a state this module could have written."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError("not a slot state of format 1")
    slots = state.get("slots")
    if not isinstance(slots, dict) or set(slots) != set(SLOT_NAMES):
        raise ValueError("slots a and b are not both described")
    if state.get("confirmed") not in SLOT_NAMES:
        raise ValueError("no confirmed slot")
    if state.get("trial") not in (None, *SLOT_NAMES) or state.get("trial") == state["confirmed"]:
        raise ValueError("the trial slot is not the other slot")
    if not isinstance(state.get("trial_boots"), int) or not isinstance(state.get("history"), list):
        raise ValueError("trial_boots or history missing")
    for info in slots.values():
        if not isinstance(info, dict) or not isinstance(info.get("status"), str):
            raise ValueError("a slot without a status")
    return state


def other(slot: str) -> str:
    """The other slot's name."""
    return "b" if slot == "a" else "a"


class Slots:
    """The A/B slots under ``state_dir/slots``.

    Args:
        state_dir: the unit's state folder (``--state DIR``).
        factory_version: the installed software's version, recorded for slot a when the
            state file is first made.
        db: the vitals store that updates and rollbacks are noted in (default
            ``state_dir/vitals.db``, the store the agent's log pages read).
    """

    def __init__(
        self,
        state_dir: str | os.PathLike,
        *,
        factory_version: str = "unknown",
        db: str | os.PathLike | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.root = self.state_dir / "slots"
        self.path = self.root / "state.json"
        self.factory_version = factory_version
        self.db = Path(db) if db is not None else self.state_dir / STORE_NAME

    # --- reading ---------------------------------------------------------------------------

    def slot_dir(self, slot: str) -> Path:
        """The folder of ``slot`` (``a`` or ``b``)."""
        if slot not in SLOT_NAMES:
            raise ValueError(f"slot: expected 'a' or 'b', got {slot!r}")
        return self.root / slot

    def load(self) -> dict[str, Any]:
        """The current state (made on first use: the installed software in slot a).

        Raises:
            BedsideError: E351 the state file is damaged (:meth:`recover` repairs it).
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            state = factory_state(self.factory_version)
            self._ensure_dirs()
            self.save(state)
            return state
        try:
            return _check_state(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            fail(
                STATE_DAMAGED,
                f"slot state {self.path.name} is damaged ({exc})",
                "run `bedside boot`: it moves the file aside and starts from the installed one",
            )

    def recover(self, reason: str) -> dict[str, Any]:
        """Replace a damaged state file: the installed (factory) software becomes slot a.

        Both slot folders are kept on disk; only the state that named them is reset, so a
        later flash starts over. The damaged file is kept beside as ``state.json.damaged``.
        """
        with contextlib.suppress(OSError):
            os.replace(self.path, self.path.with_name("state.json.damaged"))
        state = factory_state(self.factory_version)
        state["slots"]["a"]["status"] = "factory"
        _log(
            state, "recovered", f"slot state was damaged ({reason}); back to the installed software"
        )
        self.save(state)
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` atomically (see the module docstring)."""
        _check_state(state)
        self._ensure_dirs()
        atomic_write(self.path, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())

    def _ensure_dirs(self) -> None:
        for slot in SLOT_NAMES:
            (self.root / slot).mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self, *, wait: bool = True) -> Iterator[None]:
        """Hold the slots' lock: one process (agent or boot manager) changes them at a time.

        Raises:
            BedsideError: E358 with ``wait=False`` when another process holds it.
        """
        self._ensure_dirs()
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                fail(
                    SLOTS_BUSY,
                    "the slots are busy: the boot manager or another flash is working on them",
                    "wait until it is done (`bedside-host status`) and try again",
                )
            yield
        finally:
            os.close(fd)  # closing releases the flock

    # --- changing (call these with the lock held) ------------------------------------------

    def install_target(self, state: dict[str, Any]) -> str:
        """The slot a new bundle goes to: always the one that is not confirmed."""
        return other(state["confirmed"])

    def begin_install(self, state: dict[str, Any]) -> str:
        """Mark the target slot as being written (a pending trial there is dropped)."""
        target = self.install_target(state)
        state = copy.deepcopy(state)
        if state["trial"] == target:
            _log(state, "trial_dropped", f"slot {target}: replaced by a new bundle before its boot")
        state["trial"] = None
        state["trial_boots"] = 0
        state["slots"][target] = {**_empty_slot(), "status": "installing"}
        self.save(state)
        return target

    def mark_trial(self, slot: str, *, version: str, sha256: str) -> dict[str, Any]:
        """Record a freshly unpacked bundle in ``slot`` as the next trial boot."""
        state = copy.deepcopy(self.load())
        if slot == state["confirmed"]:
            raise ValueError("the confirmed slot is never a trial")
        state["slots"][slot] = {
            "status": "trial",
            "version": version,
            "sha256": sha256,
            "installed_utc": _utc_now(),
        }
        state["trial"] = slot
        state["trial_boots"] = 0
        _log(state, "installed", f"slot {slot}: version {version}, waiting for its trial boot")
        self.save(state)
        return state

    def count_trial_boot(self, state: dict[str, Any]) -> dict[str, Any]:
        """Count one boot attempt of the trial slot (before it starts)."""
        state = copy.deepcopy(state)
        state["trial_boots"] += 1
        self.save(state)
        return state

    def confirm(self, state: dict[str, Any], detail: str = "") -> dict[str, Any]:
        """The trial passed its health check: it becomes the confirmed slot."""
        state = copy.deepcopy(state)
        slot, previous = state["trial"], state["confirmed"]
        if slot is None:
            raise ValueError("no trial slot to confirm")
        state["slots"][slot]["status"] = "confirmed"
        if state["slots"][previous]["status"] == "confirmed":
            state["slots"][previous]["status"] = "previous"
        state["confirmed"], state["trial"], state["trial_boots"] = slot, None, 0
        version = state["slots"][slot]["version"]
        _log(state, "confirmed", f"slot {slot}: version {version} passed its health check{detail}")
        self.save(state)
        self._note(
            "update",
            f"version {version} (slot {slot}) passed its trial boot and runs from the next "
            f"start; before: {_release(state, previous)}",
        )
        return state

    def fail_trial(self, state: dict[str, Any], reason: str) -> dict[str, Any]:
        """The trial failed: back to the confirmed slot, the trial marked failed."""
        state = copy.deepcopy(state)
        slot = state["trial"]
        if slot is None:
            raise ValueError("no trial slot to fail")
        state["slots"][slot]["status"] = "failed"
        state["slots"][slot]["reason"] = reason
        state["trial"], state["trial_boots"] = None, 0
        _log(state, "rollback", f"slot {slot} rolled back to slot {state['confirmed']}: {reason}")
        self.save(state)
        self._note(
            "update_failed",
            f"version {state['slots'][slot]['version']} (slot {slot}) failed its trial boot "
            f"({reason}); the unit stays on {_release(state, state['confirmed'])}",
        )
        return state

    def abandon_confirmed(self, state: dict[str, Any], reason: str) -> dict[str, Any] | None:
        """The confirmed slot is damaged: confirm the other slot if it holds the previous (or
        the factory) software; None when it does not (the caller keeps what it has)."""
        back = other(state["confirmed"])
        if state["trial"] is not None or state["slots"][back]["status"] not in (
            "previous",
            "factory",
        ):
            return None
        state = copy.deepcopy(state)
        bad = state["confirmed"]
        state["slots"][bad]["status"] = "failed"
        state["slots"][bad]["reason"] = reason
        if state["slots"][back]["status"] == "previous":
            state["slots"][back]["status"] = "confirmed"
        state["confirmed"] = back
        _log(state, "rollback", f"slot {bad} is damaged ({reason}); back to slot {back}")
        self.save(state)
        self._note(
            "rollback",
            f"{_release(state, bad)} is damaged ({reason}); back to {_release(state, back)}",
        )
        return state

    def roll_back(self, state: dict[str, Any]) -> dict[str, Any]:
        """The operator's rollback: drop a pending trial, or go back to the previous slot.

        The slot it leaves is marked ``rolled back``, not ``previous``: a second rollback is
        refused (E353) instead of going forward again to the software just rolled back
        from; flashing that software again brings it back.

        Raises:
            BedsideError: E353 when there is nothing to go back to.
        """
        state = copy.deepcopy(state)
        if state["trial"] is not None:
            slot = state["trial"]
            state["slots"][slot]["status"] = "failed"
            state["slots"][slot]["reason"] = "trial cancelled by rollback"
            state["trial"], state["trial_boots"] = None, 0
            _log(state, "rollback", f"slot {slot}: pending trial cancelled by the operator")
            self.save(state)
            self._note(
                "rollback",
                f"the pending trial of {_release(state, slot)} was cancelled by the operator; "
                f"the unit stays on {_release(state, state['confirmed'])}",
            )
            return state
        back = other(state["confirmed"])
        info = state["slots"][back]
        if info["status"] == ROLLED_BACK:
            fail(
                "E353",
                f"nothing to roll back to: slot {back} (version {info['version']}) is the "
                "software just rolled back from, and a rollback never goes forward",
                "flash that bundle again to return to it",
            )
        if info["status"] not in ("previous", "factory"):
            fail(
                "E353",
                f"nothing to roll back to: slot {back} is {info['status']}",
                "flash a bundle of the software you want instead",
            )
        current = state["slots"][state["confirmed"]]
        if current["status"] != "factory":  # the factory software stays the factory's
            current["status"] = ROLLED_BACK
        if info["status"] == "previous":
            info["status"] = "confirmed"
        left = state["confirmed"]
        state["confirmed"] = back
        _log(state, "rollback", f"back to slot {back} (version {info['version']}) by the operator")
        self.save(state)
        self._note(
            "rollback",
            f"back to {_release(state, back)} by the operator, from {_release(state, left)}; "
            "it runs from the next start",
        )
        return state

    def _note(self, kind: str, detail: str) -> None:
        """Note a change of the software in the vitals store (after the state is saved:
        the state is what boots; a failure to note is logged, never raised)."""
        try:
            note_event(self.db, Event(time.time(), kind, detail[:500]))
        except BedsideError as exc:
            log.warning("the %s was not noted in the vitals store: %s: %s", kind, exc.code, exc)


def active_slot(state: dict[str, Any]) -> str:
    """The slot the next boot starts: the trial if one is pending, else the confirmed one."""
    return state["trial"] or state["confirmed"]


def summary(state: dict[str, Any]) -> dict[str, Any]:
    """What ``status`` shows: per slot its version and status, which is confirmed and active."""
    return {
        "confirmed": state["confirmed"],
        "trial": state["trial"],
        "active": active_slot(state),
        "trial_boots": state["trial_boots"],
        "slots": copy.deepcopy(state["slots"]),
        "last": state["history"][-1] if state["history"] else None,
    }


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _log(state: dict[str, Any], event: str, detail: str) -> None:
    state["history"] = [*state["history"], {"utc": _utc_now(), "event": event, "detail": detail}][
        -HISTORY_LEN:
    ]


def _release(state: dict[str, Any], slot: str) -> str:
    """``version 0.2.0 (slot b)``: a slot's release, for event details."""
    return f"version {state['slots'][slot]['version'] or 'unknown'} (slot {slot})"


def slot_is_factory(state: dict[str, Any], slot: str) -> bool:
    """The slot runs the software installed on the unit (no folder of its own)."""
    return state["slots"][slot]["status"] == "factory"
