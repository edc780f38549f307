"""Stores and pulled archives holding several simulated nights, for the nights, report and
trend tests. The nights come from :func:`store_fixtures.night_epochs` (a simulated night's
ground truth as the pipeline would store it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store_fixtures import T0, night_epochs

from edge.sim import Night
from edge.store import Store
from host_tools.archive import Archive

DAY = 86400.0


def write_nights(path: Path, starts: list[float], *, hours: float = 3.0) -> Path:
    """A store with one session per start time (Unix s), each a simulated night of
    ``hours`` with seed = its index + 1; session ids 1, 2, ... in that order."""
    with Store(path) as store:
        for k, start in enumerate(starts):
            epochs, events = night_epochs(Night(seed=k + 1, duration_s=hours * 3600), t0=start)
            store.open_session(
                source=f"sim:{k + 1}", fs=250.0, epoch_s=30.0, software_version="0.1.0",
                t_utc=start,
            )  # fmt: skip
            for e in epochs:
                store.add_epoch(e)
            for e in events:
                store.add_event(e)
            store.close_session(clean=True, t_utc=start + hours * 3600)
    return path


def consecutive_nights(path: Path, n: int = 3, *, hours: float = 3.0) -> Path:
    """``n`` nights starting at 22:30 UTC on consecutive evenings from 2026-11-24."""
    return write_nights(path, [T0 + k * DAY for k in range(n)], hours=hours)


def archive_of(store_path: Path, folder: Path, device_id: str, generations: int = 1) -> Path:
    """Pull ``store_path`` into an archive the way ``logs pull`` files it: every session,
    epoch and event under generation 1 (and again under 2, 3, ... for ``generations`` > 1,
    as a unit whose store started anew and counted its ids from 1 again)."""
    with Store(store_path, readonly=True) as store:
        sessions = [
            (s.id, s.source, s.fs, s.epoch_s, s.software_version, s.started_utc, s.ended_utc,
             s.clean, s.n_epochs, s.n_events)
            for s in store.sessions()
        ]  # fmt: skip
        epochs = [(i, sid, *e.values()) for i, sid, e in _with_sessions(store, "epochs")]
        events = [(i, sid, *e.values()) for i, sid, e in _with_sessions(store, "events")]
    with Archive.create(folder, device_id) as archive:
        for generation in range(1, generations + 1):
            if generation > 1:
                archive.new_generation()
            archive.save_sessions(generation, sessions)
            archive.add_epochs(generation, epochs)
            archive.add_events(generation, events)
        return archive.path


def _with_sessions(store: Store, table: str):
    """``(id, session_id, record)`` of each row (the store's API gives no session ids)."""
    conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        owner = dict(conn.execute(f"SELECT id, session_id FROM {table}").fetchall())
    finally:
        conn.close()
    rows = store.epochs() if table == "epochs" else store.events()
    return [(i, owner[i], record) for i, record in rows]
