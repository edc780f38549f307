"""edge.records is the one place the epoch and event fields are declared: the store, the log
pages, the archive and the export all derive their columns from it."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge import log_pages, records, store
from edge.records import EPOCH_SCHEMA, EVENT_SCHEMA, Epoch, Event, Field, column, record_fields
from host_tools import archive, export

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_559_400.0

#: sha256 of each schema's CREATE text, by schema version: files made under a version must
#: still open, so a change of the text (a new field, too) needs a new version and a migration.
_STORE_SCHEMA = {
    1: "80e270126322a46f87f8b4c0c37eb8cdfa7d480c5d721cb3e74dda1f80ebf69e",
    2: "b6842493555fc0fafcbf429806efd156273b89c153a71155bbf6d331d5241d56",  # + sessions.tz
}
_ARCHIVE_SCHEMA = {
    1: "1173a102ead271ce97be7b8acee242c2161ba1ac5a5bf8ac69cf2025a1324cbe",
    2: "75412ad3048dabf35c7cb874f1676cd92cd68323b693257f49a7eeb26dd96742",  # + sessions.tz
}


def _table_info(path: Path, table: str) -> list[tuple[str, str, bool]]:
    """(name, SQL type, nullable) of each column of ``table`` in the SQLite file ``path``."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
    conn.close()
    return [(r[1], r[2], not r[3]) for r in rows]


def _sql(schema: tuple[Field, ...]) -> list[tuple[str, str, bool]]:
    return [(f.name, f.sql_type, f.nullable) for f in schema]


def _kinds(schema: tuple[Field, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((f.name, f.kind) for f in schema)


def test_every_consumer_has_the_records_columns(tmp_path):
    with store.Store(tmp_path / "v.db"):
        pass
    for table, schema in (("epochs", EPOCH_SCHEMA), ("events", EVENT_SCHEMA)):
        assert _table_info(tmp_path / "v.db", table)[2:] == _sql(schema)
    assert log_pages.EPOCH_COLUMNS == (("id", "int"), ("session_id", "int"), *_kinds(EPOCH_SCHEMA))
    assert log_pages.EVENT_COLUMNS == (("id", "int"), ("session_id", "int"), *_kinds(EVENT_SCHEMA))
    with archive.Archive.create(tmp_path / "arch", "unit-1") as unit:
        path = unit.path
    for table, schema, columns in (
        ("epochs", EPOCH_SCHEMA, log_pages.EPOCH_COLUMNS),
        ("events", EVENT_SCHEMA, log_pages.EVENT_COLUMNS),
    ):
        assert _table_info(path, table)[3:] == _sql(schema)  # after generation, id, session_id
        assert archive.COLUMNS[table].split(", ") == [name for name, _ in columns]
    assert export.TABLES["epochs"][5:] == _kinds(EPOCH_SCHEMA)  # after the keys and epoch_id
    assert export.TABLES["events"][5:] == _kinds(EVENT_SCHEMA)


def test_the_schemas_are_the_ones_files_were_made_with():
    """Stores and archives on disk keep their CREATE text: a change needs a schema version."""
    digest = hashlib.sha256(store._SCHEMA.encode()).hexdigest()
    assert digest == _STORE_SCHEMA.get(store._SCHEMA_VERSION), "bump the store's _SCHEMA_VERSION"
    digest = hashlib.sha256(archive._SCHEMA.encode()).hexdigest()
    assert digest == _ARCHIVE_SCHEMA.get(archive._SCHEMA_VERSION), "bump the archive's version"


def test_fields_are_read_off_the_dataclasses():
    assert [f.name for f in EPOCH_SCHEMA] == [f.name for f in dataclasses.fields(Epoch)]
    hr = next(f for f in EPOCH_SCHEMA if f.name == "hr_bpm")
    assert (hr.kind, hr.nullable, hr.reason, hr.sql) == ("real", True, "hr_reason", "hr_bpm REAL")
    state = next(f for f in EPOCH_SCHEMA if f.name == "state")
    assert (state.choices, state.sql) == (records.STATES, "state TEXT NOT NULL")
    assert next(f for f in EPOCH_SCHEMA if f.name == "beats").sql == "beats INTEGER NOT NULL"
    assert next(f for f in EVENT_SCHEMA if f.name == "kind").choices == records.EVENT_KINDS
    assert Event(T0, "bed_entry").values() == (T0, "bed_entry", "")
    for record, schema in ((Epoch, EPOCH_SCHEMA), (Event, EVENT_SCHEMA)):
        assert all(f"{f.name}: {f.doc}" in record.__doc__ for f in schema)


def test_a_field_must_be_declared_with_its_kind():
    @dataclasses.dataclass(frozen=True)
    class Plain:
        x: float

    @dataclasses.dataclass(frozen=True)
    class Listy:
        x: list = column("not a column type")

    with pytest.raises(TypeError, match="records.column"):
        record_fields(Plain)
    with pytest.raises(TypeError, match="float, int or str"):
        record_fields(Listy)
    with pytest.raises(ValueError, match="kind"):
        Field("x", "blob", False, "")
    with pytest.raises(ValueError, match="check"):
        Field("x", "real", False, "", check="sometimes")


# Run in a fresh interpreter: the records get one more field each (as if declared in
# edge/records.py) before any consumer is imported, and nothing else is edited.
_ONE_MORE_FIELD = """
import csv, dataclasses, math
from pathlib import Path

import edge.records as r


@dataclasses.dataclass(frozen=True)
class Epoch(r.Epoch):
    spo2: float | None = r.column("oxygen saturation (%).", reason="hr_reason")


@dataclasses.dataclass(frozen=True)
class Event(r.Event):
    code: str | None = r.column("a machine-readable detail.", default=None)


r.Epoch, r.Event = Epoch, Event
r.EPOCH_SCHEMA, r.EVENT_SCHEMA = r.record_fields(Epoch), r.record_fields(Event)
r.EPOCH_FIELDS = tuple(f.name for f in r.EPOCH_SCHEMA)
r.EVENT_FIELDS = tuple(f.name for f in r.EVENT_SCHEMA)

from edge.errors import BedsideError
from edge.log_pages import EPOCH_COLUMNS, EVENT_COLUMNS, SESSION_COLUMNS, decode_page, encode_page
from edge.store import Store
from host_tools.archive import Archive
from host_tools.export import export

tmp, T0 = Path(TMP), 1_795_559_400.0
written = [
    Epoch(T0, 30.0, "good", 0.9, 61.0, 40.0, 14.0, 0.5, 30, None, None, 97.5),
    Epoch(T0 + 30, 30.0, "empty", 0.1, None, None, None, None, 0, "empty bed", "empty bed", None),
]
with Store(tmp / "v.db") as store:
    sid = store.open_session(source="sim:1", fs=250, epoch_s=30, software_version="t", t_utc=T0)
    for epoch in written:
        store.add_epoch(epoch)
    store.add_event(Event(T0, "bed_entry", "in bed", "E1"))
    for bad, words in ((math.nan, "spo2: nan is not finite"), ("high", "spo2: expected")):
        try:
            store.add_epoch(dataclasses.replace(written[0], spo2=bad))
            raise AssertionError("a bad spo2 was stored")
        except BedsideError as error:
            assert error.code == "E265" and words in str(error), error
    store.close_session(clean=True, t_utc=T0 + 60)
    assert [e for _, e in store.epochs()] == written
    assert [e for _, e in store.events()] == [Event(T0, "bed_entry", "in bed", "E1")]
    epochs = [(i, sid, *e.values()) for i, e in store.epochs()]
    events = [(i, sid, *e.values()) for i, e in store.events()]
    sessions = [
        (s.id, s.source, s.fs, s.epoch_s, s.software_version, s.started_utc, s.ended_utc,
         float(s.clean), s.n_epochs, s.n_events)
        for s in store.sessions()
    ]
assert EPOCH_COLUMNS[-1] == ("spo2", "real") and EVENT_COLUMNS[-1] == ("code", "text")
assert decode_page(EPOCH_COLUMNS, encode_page(EPOCH_COLUMNS, epochs)) == epochs
assert decode_page(EVENT_COLUMNS, encode_page(EVENT_COLUMNS, events)) == events

with Archive.create(tmp / "arch", "unit-1") as unit:
    unit.save_sessions(1, decode_page(SESSION_COLUMNS, encode_page(SESSION_COLUMNS, sessions)))
    unit.add_epochs(1, epochs)
    unit.add_events(1, events)
    assert list(unit.rows("epochs")) == [(1, *row) for row in epochs]
    assert list(unit.rows("events")) == [(1, *row) for row in events]

export(tmp / "arch", tmp / "out", fmt="csv")
with open(tmp / "out" / "epochs.csv", newline="") as f:
    table = list(csv.DictReader(f))
assert list(table[0])[-2:] == ["rr_reason", "spo2"], list(table[0])
assert [row["spo2"] for row in table] == ["97.5", ""]
with open(tmp / "out" / "events.csv", newline="") as f:
    assert [row["code"] for row in csv.DictReader(f)] == ["E1"]
print("one more field: carried by the store, the pages, the archive and the export")
"""


def test_one_more_field_in_the_records_reaches_every_consumer(tmp_path):
    script = f"TMP = {str(tmp_path)!r}\n" + textwrap.dedent(_ONE_MORE_FIELD)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "carried by the store" in done.stdout
