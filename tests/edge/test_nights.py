"""The nights of a store or an archive: dates by the evening, figures from the summary,
the same nights from a unit's store and from its pulled archive."""

from __future__ import annotations

import datetime
import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from edge.errors import BedsideError
from edge.nights import (
    list_nights,
    night_date_of,
    night_records,
    open_readonly,
    summarize_night,
)
from edge.records import Event
from edge.store import Store
from edge.summary import summarize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nights_fixtures import DAY, archive_of, consecutive_nights, write_nights  # noqa: E402
from store_fixtures import T0  # noqa: E402
from test_store import epoch, session  # noqa: E402

NOV = datetime.date(2026, 11, 24)


@pytest.fixture(scope="module")
def three_nights(tmp_path_factory) -> Path:
    return consecutive_nights(tmp_path_factory.mktemp("nights") / "vitals.db")


def test_each_session_is_a_night_with_the_summary_figures(three_nights):
    db = open_readonly(three_nights)
    nights = list_nights(db)
    assert [n.session_id for n in nights] == [1, 2, 3]
    assert [n.night_date for n in nights] == [NOV + datetime.timedelta(days=k) for k in range(3)]
    with Store(three_nights, readonly=True) as store:
        zones = {info.id: info.tz or "UTC" for info in store.sessions()}
        for night in nights:
            epochs = [e for _, e in store.epochs(session_id=night.session_id)]
            s = summarize(epochs)
            assert night.hours_in_bed == pytest.approx(s.hours_in_bed) and night.hours_in_bed > 1
            assert night.hr_mean == pytest.approx(s.hr_mean_bpm)
            assert night.breathing_mean == pytest.approx(s.rr_mean_bpm)
            assert night.hrv_rmssd_ms == pytest.approx(s.hrv_rmssd_median_ms)
            assert night.coverage == pytest.approx(s.hr_coverage)
            assert night.hr_lowest <= night.hr_resting <= night.hr_mean
            assert night.tz == zones[night.session_id]  # the store's sessions.tz
            assert (night.software_version, night.generation) == ("0.1.0", None)
            assert night.start_utc == epochs[0].t_utc and night.n_epochs == len(epochs)
    assert summarize_night(db, 2) == nights[1]
    d = json.loads(json.dumps(nights[0].as_dict()))
    assert d["night_date"] == "2026-11-24" and d["session_id"] == 1


def test_since_and_until_are_inclusive_dates(three_nights):
    db = open_readonly(three_nights)
    day = datetime.timedelta(days=1)
    assert [n.session_id for n in list_nights(db, since=NOV + day)] == [2, 3]
    assert [n.session_id for n in list_nights(db, until=NOV + day)] == [1, 2]
    assert [n.session_id for n in list_nights(db, since=NOV + day, until=NOV + day)] == [2]
    assert list_nights(db, since=NOV + 5 * day) == []


def test_a_night_begun_after_midnight_belongs_to_the_evening_before():
    assert night_date_of(T0, "UTC") == NOV  # 22:30
    assert night_date_of(T0 + 3 * 3600, "UTC") == NOV  # 01:30 the next day
    assert night_date_of(T0 + 13.5 * 3600, "UTC") == NOV + datetime.timedelta(days=1)  # 12:00
    # 22:30 UTC is 07:30 in Tokyo the next morning: the Tokyo night of the 24th
    assert night_date_of(T0, "Asia/Tokyo") == NOV
    assert night_date_of(T0, "+09:00") == NOV
    assert night_date_of(T0 - 12 * 3600, "Asia/Tokyo") == NOV  # 19:30 Tokyo
    assert night_date_of(T0 + 2 * 3600, "America/New_York") == NOV  # 19:30 New York
    assert night_date_of(T0, "Not/AZone") == night_date_of(T0, "UTC")


def test_the_time_zone_column_when_the_store_has_one(three_nights, tmp_path):
    copy = tmp_path / "tz.db"
    shutil.copy(three_nights, copy)
    conn = sqlite3.connect(copy)
    if "tz" not in {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}:
        conn.execute("ALTER TABLE sessions ADD COLUMN tz TEXT")  # a store of schema 1
    conn.execute("UPDATE sessions SET tz = NULL WHERE id != 2")  # recorded before the column
    conn.execute("UPDATE sessions SET tz = 'Pacific/Kiritimati' WHERE id = 2")
    conn.commit()
    conn.close()
    nights = list_nights(open_readonly(copy))
    # 22:30 UTC is 12:30 the next day at UTC+14: the night of the next day there.
    assert [(n.tz, n.night_date) for n in nights] == [
        ("UTC", NOV),
        ("Pacific/Kiritimati", NOV + datetime.timedelta(days=2)),
        ("UTC", NOV + datetime.timedelta(days=2)),
    ]


def test_the_night_starts_at_its_first_epoch_not_an_early_session_start(tmp_path):
    """A session opened at 11:00 whose data begins at 22:30 is that evening's night."""
    path = tmp_path / "v.db"
    with Store(path) as store:
        session(store, T0 - 11.5 * 3600)
        store.add_epoch(epoch(0))
        store.close_session(clean=True, t_utc=T0 + 30)
    (night,) = list_nights(open_readonly(path))
    assert night.night_date == NOV and night.start_utc == T0 - 11.5 * 3600


def test_a_pulled_archive_gives_the_same_nights(three_nights, tmp_path):
    path = archive_of(three_nights, tmp_path / "archive", "unit-7")
    from_store = list_nights(open_readonly(three_nights))
    from_archive = list_nights(open_readonly(path))
    assert [n.generation for n in from_archive] == [1, 1, 1]
    # The archive keeps no time zone yet (its sessions table has no tz): its nights are
    # dated in UTC, which is this store's zone too.
    assert {n.tz for n in from_archive} == {"UTC"}
    assert [without_generation_and_zone(n) for n in from_archive] == [
        without_generation_and_zone(n) for n in from_store
    ]
    night = from_archive[0]
    epochs, events = night_records(open_readonly(path), night)
    assert epochs == night_records(open_readonly(three_nights), from_store[0])[0]
    assert [e.kind for e in events] and all(isinstance(e, Event) for e in events)


def test_an_archive_with_two_store_generations_keeps_them_apart(three_nights, tmp_path):
    path = archive_of(three_nights, tmp_path / "archive", "unit-7", generations=2)
    db = open_readonly(path)
    nights = list_nights(db)
    assert [(n.generation, n.session_id) for n in nights] == [
        (1, 1), (2, 1), (1, 2), (2, 2), (1, 3), (2, 3),
    ]  # fmt: skip
    assert summarize_night(db, 2).generation == 2  # the latest generation by default
    assert summarize_night(db, 2, generation=1).generation == 1
    one = night_records(db, summarize_night(db, 1, generation=1))[0]
    assert len(one) == nights[0].n_epochs  # not both generations' epochs
    with pytest.raises(BedsideError) as err:
        summarize_night(db, 9)
    assert err.value.code == "E264" and "1/1, 1/2, 1/3, 2/1" in str(err.value)


def test_a_session_without_epochs_is_a_night_without_values(tmp_path):
    path = tmp_path / "v.db"
    with Store(path) as store:
        session(store, T0)
        store.close_session(clean=True, t_utc=T0 + 60)
    (night,) = list_nights(open_readonly(path))
    assert night.night_date == NOV and night.n_epochs == 0 and night.hours_in_bed == 0
    assert night.hr_mean is None and night.hr_resting is None and night.coverage is None


def test_files_that_hold_no_nights_are_refused(tmp_path):
    with pytest.raises(BedsideError) as err:
        open_readonly(tmp_path / "missing.db")
    assert err.value.code == "E263"
    (tmp_path / "notes.db").write_text("hello")
    with pytest.raises(BedsideError) as err:
        open_readonly(tmp_path / "notes.db")
    assert err.value.code == "E263"
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(BedsideError) as err:
        open_readonly(foreign)
    assert err.value.code == "E263" and "another application" in str(err.value)
    assert (tmp_path / "notes.db").read_text() == "hello"


def test_nights_out_of_order_in_the_store_are_listed_by_date(tmp_path):
    path = write_nights(tmp_path / "v.db", [T0 + DAY, T0], hours=1.0)
    nights = list_nights(open_readonly(path))
    assert [(n.session_id, n.night_date) for n in nights] == [
        (2, NOV),
        (1, NOV + datetime.timedelta(days=1)),
    ]


def without_generation_and_zone(night):
    import dataclasses

    return dataclasses.replace(night, generation=None, tz="UTC")


def test_the_archive_layout_is_the_pullers(three_nights, tmp_path):
    """The puller writes where edge.nights looks: the files it makes are the ones listed."""
    from edge.nights import archive_unit_files

    folder = tmp_path / "archive"
    for unit in ("b-unit", "a-unit"):
        archive_of(three_nights, folder, unit)
    (folder / "units" / "notes.txt").write_text("x")
    assert [p.stem for p in archive_unit_files(folder)] == ["a-unit", "b-unit"]
    assert archive_unit_files(tmp_path / "none") == []
