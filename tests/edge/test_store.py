"""The vitals store: round trips, sessions, readers, validation and size-bounded retention."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import quality
from edge import store as store_module
from edge.errors import BedsideError
from edge.records import EVENT_KINDS, STATES, Epoch, Event
from edge.sim import State
from edge.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_fixtures import T0  # noqa: E402


def epoch(i: int, epoch_s: float = 30.0, **changes) -> Epoch:
    """A good epoch ``i`` epochs after T0 (values vary with ``i`` so rows differ)."""
    base = Epoch(
        t_utc=T0 + i * epoch_s,
        duration_s=epoch_s,
        state="good",
        quality=0.9,
        hr_bpm=55.0 + (i % 20),
        hrv_rmssd_ms=40.0 + (i % 7),
        rr_bpm=12.0 + (i % 5),
        motion=0.5,
        beats=28,
        hr_reason=None,
        rr_reason=None,
    )
    return dataclasses.replace(base, **changes)


def session(store: Store, t: float = T0, epoch_s: float = 30.0) -> int:
    return store.open_session(
        source="sim:1", fs=250.0, epoch_s=epoch_s, software_version="0.1.0", t_utc=t
    )


def test_states_match_the_simulator_and_the_quality_gate():
    assert STATES == tuple(s.label for s in State)
    assert quality.STATES == STATES


def test_epochs_and_events_round_trip_with_their_ids(tmp_path):
    path = tmp_path / "v.db"
    written = [
        epoch(0),
        epoch(1, state="empty", hr_bpm=None, hrv_rmssd_ms=None, rr_bpm=None, motion=None,
              beats=0, hr_reason="empty bed", rr_reason="empty bed"),
        epoch(2, hrv_rmssd_ms=None, hr_reason="few beats"),
    ]  # fmt: skip
    events = [Event(T0, "bed_entry"), Event(T0 + 45, "sensor_gap", "12 s lost")]
    with Store(path) as store:
        sid = session(store)
        for e in written:
            store.add_epoch(e)
        for e in events:
            store.add_event(e)
        assert store.pending == 5
        assert list(store.epochs()) == []  # buffered, not yet committed
        store.commit()
        assert store.pending == 0
        store.close_session(clean=True, t_utc=T0 + 90)
    with Store(path, readonly=True) as store:
        rows = list(store.epochs())
        assert [e for _, e in rows] == written
        assert [i for i, _ in rows] == [1, 2, 3]
        assert [e for _, e in store.events(session_id=sid)] == events
        assert [e for _, e in store.epochs(since_id=2)] == written[2:]
        (info,) = store.sessions()
        assert (info.id, info.source, info.clean, info.ended_utc) == (sid, "sim:1", True, T0 + 90)
        assert (info.n_epochs, info.n_events) == (3, 2)


def test_readers_page_through_many_rows_and_filter_by_session(tmp_path):
    with Store(tmp_path / "v.db") as store:
        first = session(store)
        for i in range(5000):
            store.add_epoch(epoch(i, 1.0))
        store.close_session(clean=True, t_utc=T0 + 5000)
        second = session(store, T0 + 6000)
        for i in range(6000, 6010):
            store.add_epoch(epoch(i, 1.0))
        store.commit()
        assert sum(1 for _ in store.epochs(session_id=first)) == 5000
        ids = [i for i, _ in store.epochs()]
        assert ids == sorted(ids) and len(set(ids)) == 5010
        assert [e.t_utc for _, e in store.epochs(session_id=second)] == [
            T0 + i for i in range(6000, 6010)
        ]
        assert [i for i, _ in store.epochs(since_id=ids[-3])] == ids[-2:]


def test_a_reader_sees_committed_rows_while_the_writer_runs(tmp_path):
    path = tmp_path / "v.db"
    with Store(path) as writer:
        session(writer)
        writer.add_epoch(epoch(0))
        writer.commit()
        writer.add_epoch(epoch(1))  # not committed
        with Store(path, readonly=True) as reader:
            assert len(list(reader.epochs())) == 1
            with pytest.raises(BedsideError) as err:
                reader.add_epoch(epoch(2))
            assert err.value.code == "E266"


def test_a_killed_session_gives_a_restart_event_and_is_marked_unclean(tmp_path):
    path = tmp_path / "v.db"
    store = Store(path)
    first = session(store)
    store.add_epoch(epoch(0))
    store.close()  # no close_session: as after kill -9 or a power cut
    with Store(path) as store:
        second = session(store, T0 + 100)
        (restart,) = [e for _, e in store.events(session_id=second)]
        assert restart.kind == "restart" and f"session {first}" in restart.detail
        info = store.sessions()[0]
        assert info.clean is False and info.ended_utc == T0 + 30  # the end of its last epoch
        store.close_session(clean=False, t_utc=T0 + 200)
        third = session(store, T0 + 300)
        assert [e.kind for _, e in store.events(session_id=third)] == ["restart"]
        store.close_session(clean=True, t_utc=T0 + 400)
        fourth = session(store, T0 + 500)
        assert list(store.events(session_id=fourth)) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"state": "asleep"}, "state"),
        ({"quality": 1.5}, "quality"),
        ({"hr_bpm": math.nan}, "hr_bpm"),
        ({"rr_bpm": math.inf}, "rr_bpm"),
        ({"hr_bpm": None}, "without a reason"),
        ({"rr_bpm": None, "rr_reason": ""}, "without a reason"),
        ({"duration_s": 0}, "duration_s"),
        ({"duration_s": 301}, "300"),
        ({"beats": -1}, "beats"),
        ({"beats": 2.5}, "beats"),
        ({"t_utc": -5}, "1970"),
        ({"motion": "high"}, "motion"),
    ],
)
def test_a_bad_epoch_is_refused_at_once_and_nothing_is_buffered(tmp_path, change, words):
    with Store(tmp_path / "v.db") as store:
        session(store)
        with pytest.raises(BedsideError) as err:
            store.add_epoch(epoch(0, **change))
        assert err.value.code == "E265" and words in str(err.value)
        assert store.pending == 0


def test_bad_events_and_misuse_have_clear_codes(tmp_path):
    with Store(tmp_path / "v.db") as store:
        with pytest.raises(BedsideError) as err:
            store.add_epoch(epoch(0))
        assert err.value.code == "E266" and "open_session" in str(err.value)
        session(store)
        with pytest.raises(BedsideError) as err:
            store.add_event(Event(T0, "posture"))
        assert err.value.code == "E265" and "bed_entry" in str(err.value)
        with pytest.raises(BedsideError) as err:
            session(store)
        assert err.value.code == "E266"
    with pytest.raises(BedsideError) as err:
        Store(tmp_path / "w.db", max_bytes=1000)
    assert err.value.code == "E265"


def test_every_event_kind_is_accepted(tmp_path):
    with Store(tmp_path / "v.db") as store:
        session(store)
        for i, kind in enumerate(EVENT_KINDS):
            store.add_event(Event(T0 + i, kind, f"detail {i}"))
        store.commit()
        assert [e.kind for _, e in store.events()] == list(EVENT_KINDS)


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
maybe = st.none() | finite


@st.composite
def epochs(draw) -> Epoch:
    hr, rr = draw(maybe), draw(maybe)
    return Epoch(
        t_utc=draw(st.floats(0, 4e9)),
        duration_s=draw(st.floats(0.001, 300)),
        state=draw(st.sampled_from(STATES)),
        quality=draw(st.floats(0, 1)),
        hr_bpm=hr,
        hrv_rmssd_ms=draw(maybe),
        rr_bpm=rr,
        motion=draw(maybe),
        beats=draw(st.integers(0, 10**6)),
        hr_reason=draw(st.text(min_size=1, max_size=20)) if hr is None else draw(st.none()),
        rr_reason=draw(st.text(min_size=1, max_size=20)) if rr is None else None,
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(epochs(), max_size=30), st.lists(st.integers(0, 30), max_size=4))
def test_any_valid_epochs_come_back_bit_for_bit_whatever_the_batches(tmp_path_factory, rows, cuts):
    path = tmp_path_factory.mktemp("prop") / "v.db"
    with Store(path) as store:
        session(store)
        for i, row in enumerate(rows):
            store.add_epoch(row)
            if i in cuts:
                store.commit()
        store.commit()
        back = [e for _, e in store.epochs()]
    assert back == rows  # floats exactly, None as None, text as text


def _fill_nights(store: Store, nights: int, epochs_per_night: int, epoch_s: float = 30.0):
    for n in range(nights):
        start = n * 86400
        session(store, T0 + start, epoch_s)
        for i in range(epochs_per_night):
            store.add_epoch(epoch(int(start / epoch_s) + i, epoch_s))
            if i % 200 == 199:
                store.commit()
        store.add_event(Event(T0 + start, "bed_entry", f"night {n}"))
        store.close_session(clean=True, t_utc=T0 + start + epochs_per_night * epoch_s)


def test_retention_keeps_the_file_under_max_bytes_over_many_nights(tmp_path):
    path = tmp_path / "v.db"
    max_bytes = 2**20
    sizes = []
    with Store(path, max_bytes=max_bytes) as store:
        for _ in range(6):
            _fill_nights(store, 10, 960)  # 60 nights of 8 h at 30 s epochs, ~4 MB of rows
            sizes.append(store.size_bytes())
            assert store.size_bytes() <= max_bytes
        sessions = store.sessions()
        assert store.integrity_check() == "ok"
    assert max(sizes) <= max_bytes
    # The oldest whole nights went; the newest are complete and ids never went back.
    assert 2 <= len(sessions) < 60
    assert sessions[-1].id == 60
    assert all(s.n_epochs == 960 and s.n_events == 1 for s in sessions)
    with Store(path, readonly=True) as store:
        ids = [i for i, _ in store.epochs()]
        assert ids == sorted(ids) and ids[-1] == 60 * 960
        assert (path.stat().st_size) <= max_bytes


def test_retention_waits_for_the_high_water_mark_then_prunes_to_the_low_one(tmp_path):
    """A commit deletes nothing while the rows fit under _PRUNE_HIGH of the page budget; the
    commit that passes it prunes down to _PRUNE_LOW. (With the comparison flipped, every
    commit pruned from _PRUNE_LOW on, and the hard bound alone stopped the file: the other
    retention tests passed.)"""
    with Store(tmp_path / "v.db", max_bytes=2**20) as store:
        budget = store._budget_pages
        high, low = store_module._PRUNE_HIGH * budget, store_module._PRUNE_LOW * budget
        assert high - low >= 5  # room between the marks to tell them apart
        session(store, T0, 1.0)
        added, used = 0, []
        while store.sessions()[-1].n_epochs == added:  # nothing deleted yet
            used.append(store._used_pages())
            for _ in range(40):  # under a page a commit
                store.add_epoch(epoch(added, 1.0))
                added += 1
            store.commit()
        assert high - 2 < max(used) <= high  # filled to the high-water mark
        assert store._used_pages() <= low  # then pruned to the low one, at once
        assert store.sessions()[-1].n_epochs < added


def test_retention_trims_a_long_running_session_from_its_oldest_epochs(tmp_path):
    max_bytes = 2**20
    with Store(tmp_path / "v.db", max_bytes=max_bytes) as store:
        session(store, T0, 1.0)
        store.add_event(Event(T0, "bed_entry"))
        total = 40000  # about 2.5 MB of rows in one session at 1 s epochs
        for i in range(total):
            store.add_epoch(epoch(i, 1.0))
            if i % 120 == 119:  # a batch every 2 minutes
                store.commit()
                assert store.size_bytes() <= max_bytes
        store.commit()
        kept = [e.t_utc for _, e in store.epochs()]
        assert 1000 < len(kept) < total
        # A contiguous run of the newest epochs, none of the last batch lost.
        assert kept == [T0 + i for i in range(total - len(kept), total)]
        assert list(store.events()) == []  # the bed_entry was older than every epoch kept
        assert store.integrity_check() == "ok"


def test_a_batch_larger_than_the_room_left_makes_room_and_goes_in_whole(tmp_path):
    """The hard bound (max_page_count) stops the batch; old nights go and it is retried."""
    max_bytes = 2**20
    with Store(tmp_path / "v.db", max_bytes=max_bytes) as store:
        _fill_nights(store, 9, 960)
        before = store.sessions()
        session(store, T0 + 30 * 86400, 1.0)
        for i in range(6000):  # ~400 kB in one transaction, more than the room left
            store.add_epoch(epoch(i, 1.0))
        store.commit()
        assert store.pending == 0 and store.size_bytes() <= max_bytes
        after = store.sessions()
        assert after[-1].n_epochs == 6000
        assert after[0].id > before[0].id  # the oldest nights made the room
        assert store.integrity_check() == "ok"


def test_lowering_max_bytes_shrinks_the_file_on_the_next_open(tmp_path):
    path = tmp_path / "v.db"
    with Store(path) as store:
        _fill_nights(store, 20, 960)
    big = path.stat().st_size
    with Store(path, max_bytes=2**20) as store:
        assert store.size_bytes() <= 2**20 < big
        assert store.sessions()[-1].id == 20 and store.integrity_check() == "ok"


def test_the_file_is_wal_with_full_sync_and_ours(tmp_path):
    path = tmp_path / "v.db"
    store = Store(path)
    try:
        conn = store._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x42434756
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental


# --- schema versions: an old store opens and is migrated --------------------------------------

#: The sessions table of schema version 1 (stores made before sessions.tz), verbatim.
_SESSIONS_V1 = """CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    fs REAL NOT NULL,
    epoch_s REAL NOT NULL,
    software_version TEXT NOT NULL,
    started_utc REAL NOT NULL,
    ended_utc REAL,
    clean INTEGER
)"""


def _store_of_schema_1(path: Path) -> None:
    """A store as schema version 1 made it, with one closed session and an epoch."""
    with Store(path) as store:  # the epochs and events tables have not changed since
        session(store)
        store.add_epoch(epoch(0))
        store.close_session(clean=True, t_utc=T0 + 30)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "BEGIN; CREATE TABLE old AS SELECT id, source, fs, epoch_s, software_version, "
        f"started_utc, ended_utc, clean FROM sessions; DROP TABLE sessions; {_SESSIONS_V1};"
        "INSERT INTO sessions SELECT * FROM old; DROP TABLE old; PRAGMA user_version = 1; COMMIT;"
    )
    conn.close()


def test_a_store_of_schema_1_is_read_as_it_is_and_migrated_by_its_writer(tmp_path):
    path = tmp_path / "v.db"
    _store_of_schema_1(path)
    with Store(path, readonly=True) as store:  # a reader changes nothing
        (old,) = store.sessions()
        assert (old.software_version, old.tz, old.n_epochs) == ("0.1.0", None, 1)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    with Store(path) as store:
        sid = store.open_session(
            source="sim:2",
            fs=250.0,
            epoch_s=30.0,
            software_version="0.2.0",
            t_utc=T0 + 3600,
            tz="Europe/Berlin",
        )
        store.add_epoch(epoch(200))
        store.close_session(clean=True, t_utc=T0 + 3700)
        assert [(s.id, s.software_version, s.tz) for s in store.sessions()] == [
            (1, "0.1.0", None),
            (sid, "0.2.0", "Europe/Berlin"),
        ]
        assert [e for _, e in store.epochs(session_id=1)] == [epoch(0)]  # nothing lost
        assert store.integrity_check() == "ok"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_module._SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(sessions)")]
    conn.close()
    assert columns[-1] == "tz"
    with Store(tmp_path / "fresh.db"):
        pass
    with sqlite3.connect(tmp_path / "fresh.db") as conn:  # a migrated file is a fresh one
        assert [row[1] for row in conn.execute("PRAGMA table_info(sessions)")] == columns
    conn.close()


def test_a_session_records_the_units_time_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "America/St_Johns")  # a half-hour zone with summer time
    with Store(tmp_path / "v.db") as store:
        session(store)
        store.close_session(clean=True, t_utc=T0 + 60)
        store.open_session(
            source="sim:1", fs=250.0, epoch_s=30.0, software_version="x", t_utc=T0, tz="+05:30"
        )
        assert [s.tz for s in store.sessions()] == ["America/St_Johns", "+05:30"]


# --- events other processes note: the journal beside the store ---------------------------------


def test_events_noted_while_the_writer_holds_the_store_join_its_session(tmp_path):
    path = tmp_path / "v.db"
    with Store(path) as store:
        sid = session(store)
        # The boot manager and the agent never take the writer's lock: this returns at once.
        journal = store_module.note_event(path, Event(T0 + 5, "update", "version 0.2.0"))
        store_module.note_event(path, Event(T0 + 6, "rollback", "back to 0.1.0"))
        assert journal == store_module.pending_events_path(path) and journal.stat().st_size
        store.commit()  # the writer imports them at its next commit
        assert [(e.kind, e.detail) for _, e in store.events(session_id=sid)] == [
            ("update", "version 0.2.0"),
            ("rollback", "back to 0.1.0"),
        ]
        assert journal.stat().st_size == 0


def test_events_noted_without_a_store_wait_for_the_next_session(tmp_path):
    path = tmp_path / "unit" / "v.db"
    note = Event(T0, "update_failed", "version 0.2.0 (slot b) failed its trial boot")
    store_module.note_event(path, note)  # no store yet, not even its folder
    assert not path.exists()
    with Store(path) as store:
        sid = session(store, t=T0 + 60)
        assert [(e.kind, e.detail) for _, e in store.events(session_id=sid)] == [
            ("update_failed", note.detail)
        ]


def test_an_import_cut_short_is_done_again_without_duplicates(tmp_path):
    path = tmp_path / "v.db"
    journal = store_module.pending_events_path(path)
    store_module.note_event(path, Event(T0, "update", "version 0.2.0"))
    kept = journal.read_bytes()
    with Store(path) as store:
        session(store)
    # Killed after the import's commit, before the journal was emptied: it is read again;
    # a line torn by a writer killed mid-write is dropped (its event was never acknowledged).
    journal.write_bytes(kept + b'{"t_utc": 1795559460.0, "kind": "rollb')
    store_module.note_event(path, Event(T0 + 9, "rollback", "back to 0.1.0"))
    with Store(path) as store:
        assert [(e.t_utc, e.kind) for _, e in store.events()] == [
            (T0, "update"),
            (T0 + 9, "rollback"),
        ]
    assert journal.stat().st_size == 0


def test_a_damaged_store_keeps_the_noted_events_for_the_new_one(tmp_path):
    path = tmp_path / "v.db"
    path.write_bytes(b"not a database at all" * 100)
    store_module.note_event(path, Event(T0, "rollback", "back to 0.1.0"))  # never opens it
    with Store(path) as store:
        assert store.recovered_to is not None
        assert {e.kind for _, e in store.events()} == {"store_recovered", "rollback"}


def test_a_bad_event_is_refused_before_the_journal_and_an_unwritable_one_is_e260(tmp_path):
    with pytest.raises(BedsideError) as bad:
        store_module.note_event(tmp_path / "v.db", Event(T0, "upgrade"))
    assert bad.value.code == "E265"
    assert not store_module.pending_events_path(tmp_path / "v.db").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BedsideError) as unwritable:
        store_module.note_event(blocker / "v.db", Event(T0, "update"))
    assert unwritable.value.code == "E260" and "update" in str(unwritable.value)
