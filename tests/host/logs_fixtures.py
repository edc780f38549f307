"""A unit's state folder with vitals and logs to pull, and the rows on both sides in one
shape, for the log pull and export tests and the bench (the virtual unit itself, the keys
and the fault proxy are conftest.py's).

The vitals are 1 s epochs drawn at random the way the pipeline reports them (a state per
epoch, rates only where the state allows one, a reason wherever there is none, values at
full float precision so nothing compresses by luck), written through the real store.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edge.link import Client
from edge.records import Epoch, Event
from edge.store import Store
from host_tools.archive import Archive, unit_archives

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_559_400.0  # 2026-11-24 22:30 UTC
_REASON = {"empty": "empty bed", "motion": "motion", "poor": "poor signal"}


def vitals(n: int, *, seed: int, t0: float = T0) -> list[Epoch]:
    """``n`` epochs of 1 s, random but plausible (see the module docstring)."""
    rng = np.random.default_rng(seed)
    states = rng.choice(["empty", "motion", "poor", "good"], size=n, p=[0.1, 0.05, 0.15, 0.7])
    hr, rr = 62 + rng.normal(0, 4, n), 15 + rng.normal(0, 2, n)
    hrv, motion, quality = np.abs(rng.normal(40, 8, n)), rng.lognormal(0, 0.6, n), rng.random(n)
    out = []
    for k in range(n):
        state = str(states[k])
        good = state == "good"
        out.append(
            Epoch(
                t_utc=t0 + k,
                duration_s=1.0,
                state=state,
                quality=float(quality[k]),
                hr_bpm=float(hr[k]) if good else None,
                hrv_rmssd_ms=float(hrv[k]) if good else None,
                rr_bpm=float(rr[k]) if state in ("good", "poor") else None,
                motion=float(motion[k]),
                beats=int(hr[k] / 60 + 0.5) if good else 0,
                hr_reason=None if good else _REASON[state],
                rr_reason=None if state in ("good", "poor") else _REASON[state],
            )
        )
    return out


def record(state: Path, n_epochs: int, *, seed: int = 1, sessions: int = 1, t0: float = T0) -> None:
    """Add ``sessions`` sessions holding ``n_epochs`` epochs in all (and a few events each)
    to the unit's store ``state/vitals.db``, as ``bedside run`` would."""
    per = -(-n_epochs // sessions)
    epochs = vitals(n_epochs, seed=seed, t0=t0)
    with Store(state / "vitals.db") as store:
        for s in range(sessions):
            part = epochs[s * per : (s + 1) * per]
            if not part:
                break
            store.open_session(
                source=f"replay:/home/trial/P017-night{s}.npz",
                fs=250,
                epoch_s=1,
                software_version="0.1.0",
                t_utc=part[0].t_utc,
            )
            store.add_event(Event(part[0].t_utc, "bed_entry", "someone lay down"))
            for k in range(0, len(part), 3600):
                for e in part[k : k + 3600]:
                    store.add_epoch(e)
                store.commit()
            store.add_event(Event(part[-1].t_utc, "bed_exit", ""))
            store.close_session(clean=True, t_utc=part[-1].t_utc + 1)


def write_log(state: Path, name: str, lines: int, *, start: int = 0) -> None:
    """Append ``lines`` numbered lines to the unit's log file ``state/logs/name``."""
    folder = state / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "a", encoding="utf-8") as f:
        f.writelines(
            f"2026-11-25T10:{i // 60:02d}:{i % 60:02d}Z INFO line {i}\n"
            for i in range(start, start + lines)
        )


def unit_rows(state: Path) -> tuple[list[tuple], list[tuple]]:
    """The unit's epochs and events as ``(session_id, id, values...)``, in id order."""
    with Store(state / "vitals.db", readonly=True) as store:
        epochs, events = [], []
        for s in store.sessions():
            epochs += [(s.id, i, *e.values()) for i, e in store.epochs(session_id=s.id)]
            events += [
                (s.id, i, e.t_utc, e.kind, e.detail) for i, e in store.events(session_id=s.id)
            ]
    return sorted(epochs, key=lambda r: r[1]), sorted(events, key=lambda r: r[1])


def archive_rows(folder: Path, generation: int = 1) -> tuple[list[tuple], list[tuple]]:
    """The archive's epochs and events in the shape of :func:`unit_rows` (one unit)."""
    (path,) = unit_archives(folder)
    with Archive.open(path) as archive:
        epochs = [(r[2], r[1], *r[3:]) for r in archive.rows("epochs") if r[0] == generation]
        events = [(r[2], r[1], *r[3:]) for r in archive.rows("events") if r[0] == generation]
    return epochs, events


def connect(url: str, key, **kwargs) -> Client:
    """An authenticated client."""
    client = Client.open(url, **kwargs)
    client.authenticate(key)
    return client


def wait_for(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


def write_archive(
    folder: Path,
    device_id: str = "bcg-test-1",
    *,
    nights: int = 2,
    epochs: int = 120,
    person: str | None = None,
) -> Path:
    """An archive as ``logs pull --person PERSON`` files it, without a unit: ``nights``
    closed sessions of ``epochs`` 1 s epochs each (:func:`vitals`, seed = the night's
    number), one per evening from :data:`T0`, each with a bed entry and a bed exit."""
    sessions, epoch_rows, event_rows = [], [], []
    for night in range(nights):
        session_id, t0 = night + 1, T0 + night * 86400.0
        part = vitals(epochs, seed=night + 1, t0=t0)
        first = len(epoch_rows) + 1
        epoch_rows += [(first + k, session_id, *e.values()) for k, e in enumerate(part)]
        for t, kind in ((t0, "bed_entry"), (t0 + epochs - 1, "bed_exit")):
            event_rows.append((len(event_rows) + 1, session_id, t, kind, ""))
        sessions.append(
            (session_id, f"sim:{session_id}", 250.0, 1.0, "0.1.0", t0, t0 + epochs, 1.0, epochs, 2)
        )
    with Archive.create(folder, device_id) as archive:
        if person is not None:
            archive.set_meta("person", person)
        archive.save_sessions(1, sessions)
        archive.add_epochs(1, epoch_rows)
        archive.add_events(1, event_rows)
        return archive.path
