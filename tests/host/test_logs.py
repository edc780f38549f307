"""Log retrieval and export: the page format, the unit's log commands, the archive, and
pull / pull again / export against a virtual unit (the real agent in a subprocess)."""

from __future__ import annotations

import csv
import json
import math
import os
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import BedsideError
from edge.link import Client
from edge.log_pages import (
    EPOCH_COLUMNS,
    EVENT_COLUMNS,
    SESSION_COLUMNS,
    decode_page,
    digest,
    encode_fitting,
    encode_page,
    session_columns,
)
from edge.maint.logs import LogSource
from edge.records import Event
from edge.store import Store
from host_tools.archive import Archive, unit_archives
from host_tools.export import KEY_NAME, TIMES, export, iso_utc, pseudonym, rounder
from host_tools.logs import pull
from host_tools.parquet import duckdb_connection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from logs_fixtures import (  # noqa: E402
    ROOT,
    T0,
    archive_rows,
    connect,
    record,
    unit_rows,
    write_log,
)

# --- the page format ------------------------------------------------------------------------

_real = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))
_text = st.one_of(st.none(), st.text(max_size=30))
_epoch_row = st.tuples(
    st.integers(-(2**62), 2**62),
    st.integers(0, 2**40),
    _real,
    _real,
    _text,
    _real,
    _real,
    _real,
    _real,
    _real,
    st.integers(0, 10**6),
    _text,
    _text,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_epoch_row, max_size=40))
def test_page_round_trip_is_exact(rows):
    assert decode_page(EPOCH_COLUMNS, encode_page(EPOCH_COLUMNS, rows)) == rows


@settings(max_examples=30, deadline=None)
@given(st.lists(_epoch_row, min_size=1, max_size=300), st.integers(300, 6000))
def test_encode_fitting_takes_a_prefix_that_fits(rows, budget):
    try:
        blob, n = encode_fitting(EPOCH_COLUMNS, rows, budget)
    except BedsideError as error:  # one row alone is larger than the budget
        assert error.code == "E366"
        assert len(encode_page(EPOCH_COLUMNS, rows[:1])) > budget
        return
    assert 1 <= n <= len(rows) and len(blob) <= budget
    assert decode_page(EPOCH_COLUMNS, blob) == rows[:n]


def test_a_damaged_page_is_refused_never_misread():
    rows = [
        (i, 1, 1.5e9 + i, 1.0, "good", 0.5, 60.0 + i, None, 14.0, 0.1, 1, None, "x")
        for i in range(1, 200)
    ]
    blob = encode_page(EPOCH_COLUMNS, rows)
    raw = zlib.decompress(blob)
    damaged = [
        blob[: len(blob) // 2],  # truncated
        blob + b"extra",  # trailing bytes
        blob[:10] + bytes([blob[10] ^ 0xFF]) + blob[11:],  # a flipped byte
        zlib.compress(raw[:-8]),  # a column block short
        zlib.compress(raw.replace(b'"v": 1', b'"v": 9')),  # another format
        b"not a page",
        _page_with_header({"v": 1, "n": 0, "columns": [[n, k] for n, k in EPOCH_COLUMNS]}),
        _page_with_header({"v": 1, "n": 1, "columns": [[n, k, True] for n, k in EPOCH_COLUMNS]}),
        _page_with_header({"v": 1, "n": -1, "columns": [[n, k, 0] for n, k in EPOCH_COLUMNS]}),
        _page_with_header([1, 2]),
    ]
    for bad in damaged:
        with pytest.raises(BedsideError) as info:
            decode_page(EPOCH_COLUMNS, bad)
        assert info.value.code == "E362"
    with pytest.raises(BedsideError, match="columns"):
        decode_page(EVENT_COLUMNS, blob)  # another table's page
    bomb = zlib.compress(b"\0" * (65 * 2**20))
    with pytest.raises(BedsideError, match="beyond"):
        decode_page(EPOCH_COLUMNS, bomb)


def _page_with_header(header) -> bytes:
    text = json.dumps(header).encode()
    return zlib.compress(struct.pack(">I", len(text)) + text)


# --- the unit's log commands ----------------------------------------------------------------


def _all_pages(source: LogSource, command: str, session_id: int, budget: int) -> list[tuple]:
    columns = EPOCH_COLUMNS if command == "epochs" else EVENT_COLUMNS
    rows, since = [], 0
    while True:
        reply, blob = getattr(source, command)(
            {"session_id": session_id, "since_id": since, "max_bytes": budget}, b""
        )
        assert len(blob) <= budget and reply["sha256"] == digest(blob)
        page = decode_page(columns, blob)
        assert len(page) == reply["n"]
        rows += page
        if not reply["more"]:
            return rows
        since = reply["last_id"]


def test_handlers_page_every_row_within_the_frame(tmp_path):
    record(tmp_path, 3000, sessions=2)
    source = LogSource(tmp_path)
    expected_epochs, expected_events = unit_rows(tmp_path)
    epochs = _all_pages(source, "epochs", 1, 2048) + _all_pages(source, "epochs", 2, 2048)
    assert [(r[1], r[0], *r[2:]) for r in epochs] == expected_epochs
    events = _all_pages(source, "events", 1, 300) + _all_pages(source, "events", 2, 300)
    assert [(r[1], r[0], *r[2:]) for r in events] == expected_events


def test_handlers_refuse_bad_requests_and_paths(tmp_path):
    record(tmp_path, 10)
    write_log(tmp_path, "runtime.log", 5)
    (tmp_path / "logs" / "secret.log").symlink_to(tmp_path / "vitals.db")
    source = LogSource(tmp_path)
    for args in (
        {},
        {"session_id": 1, "since_id": -1, "max_bytes": 4096},
        {"session_id": 1, "since_id": 0, "max_bytes": 10},
        {"session_id": "1", "since_id": 0, "max_bytes": 4096},
    ):
        with pytest.raises(BedsideError) as info:
            source.epochs(args, b"")
        assert info.value.code == "E365"
    for name in ("../vitals.db", "/etc/passwd.log", "logs/../../x.log", "vitals.db"):
        with pytest.raises(BedsideError) as info:
            source.read({"name": name, "ident": "x", "offset": 0, "max_bytes": 4096})
        assert info.value.code == "E367"
    listed = source.files({}, b"")[0]["files"]
    assert [f["name"] for f in listed] == ["runtime.log"]  # the symlink is not served
    reply, blob = source.read({"name": "secret.log", "ident": "x", "offset": 0, "max_bytes": 4096})
    assert reply["gone"] and blob == b""


def test_a_unit_that_never_recorded_serves_nothing(tmp_path):
    source = LogSource(tmp_path)
    reply, blob = source.sessions({"since_id": 0, "max_bytes": 4096})
    assert reply["n"] == 0 and decode_page(SESSION_COLUMNS, blob) == []
    assert source.files({}, b"") == ({"files": []}, b"")


def test_log_lines_only_whole_and_followed_through_rotation(tmp_path):
    write_log(tmp_path, "runtime.log", 100)
    with open(tmp_path / "logs" / "runtime.log", "a") as f:
        f.write("a line being writ")  # no newline yet
    source = LogSource(tmp_path)
    (entry,) = source.files({}, b"")[0]["files"]
    reply, blob = source.read({**entry, "offset": 0, "max_bytes": 512})
    got = zlib.decompress(blob)
    assert len(blob) <= 512 and got.endswith(b"\n") and reply["next_offset"] == len(got)
    # Rotation: the same file under its new name keeps its identity (and offset).
    os.rename(tmp_path / "logs" / "runtime.log", tmp_path / "logs" / "runtime.log.1")
    write_log(tmp_path, "runtime.log", 3, start=1000)
    files = {f["name"]: f for f in source.files({}, b"")[0]["files"]}
    assert files["runtime.log.1"]["ident"] == entry["ident"] != files["runtime.log"]["ident"]
    reply, _ = source.read({**entry, "offset": 0, "max_bytes": 512})
    assert reply["gone"]  # "runtime.log" is now another file


# --- the archive ----------------------------------------------------------------------------


def _epoch(i: int, session: int = 1) -> tuple:
    return (i, session, 1.5e9 + i, 1.0, "good", 0.9, 60.0, 40.0, 15.0, 0.1, 1, None, None)


def test_archive_refuses_rows_that_do_not_follow_its_cursor(tmp_path):
    with Archive.create(tmp_path, "unit-1") as archive:
        archive.add_epochs(1, [_epoch(1), _epoch(2)])
        for rows in (
            [_epoch(2)],
            [_epoch(3), _epoch(3)],
            [_epoch(5), _epoch(4)],
            [_epoch(6, session=0)],
        ):
            with pytest.raises(BedsideError) as info:
                archive.add_epochs(1, rows)
            assert info.value.code == "E363"
        assert archive.count("epochs") == 2 and archive.cursor("epochs", 1) == (1, 2)
        with pytest.raises(BedsideError) as info:
            Archive.create(tmp_path, "unit-1")  # a second pull of the same unit
        assert info.value.code == "E364"
    with pytest.raises(BedsideError) as info:
        Archive.create(tmp_path, "../escape")
    assert info.value.code == "E368"
    foreign = tmp_path / "units" / "unit-2.sqlite"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(BedsideError) as info:
        Archive.create(tmp_path, "unit-2")
    assert info.value.code == "E361"


# --- end to end: a virtual unit ---------------------------------------------------------------


@pytest.fixture
def filled_unit(paired_unit):
    """A paired virtual unit whose store holds two sessions and whose log has 2000 lines."""
    unit, key = paired_unit
    record(unit.state, 4000, sessions=2)
    write_log(unit.state, "runtime.log", 2000)
    return unit, key


def test_pull_pull_again_and_export(filled_unit, tmp_path):
    proc, key = filled_unit
    archive = tmp_path / "archive"
    with connect(proc.url, key) as client:
        first = pull(client, archive, person="P017")
        second = pull(client, archive)
    assert (first.epochs, first.events, first.sessions, first.log_lines) == (4000, 4, 2, 2000)
    # The second pull asks for the session list and the newest session's rows; nothing else.
    assert second.nothing_new and second.pages == 3 and second.link_bytes < 1000
    assert archive_rows(archive) == unit_rows(proc.state)
    (path,) = unit_archives(archive)
    (ident,) = _idents(path)
    with Archive.open(path) as a:
        assert a.log_text(ident) == (proc.state / "logs" / "runtime.log").read_bytes()

    # The unit records more, and its log is rotated after 10 more lines: only that travels,
    # the rotated file's tail from where the last pull stopped.
    record(proc.state, 500, seed=9, t0=2e9)
    logs = proc.state / "logs"
    write_log(proc.state, "runtime.log", 10, start=2000)
    os.rename(logs / "runtime.log", logs / "runtime.log.1")
    write_log(proc.state, "runtime.log", 5, start=5000)
    with connect(proc.url, key) as client:
        third = pull(client, archive)
    assert (third.epochs, third.events, third.sessions, third.log_lines) == (500, 2, 1, 15)
    assert archive_rows(archive) == unit_rows(proc.state)
    with Archive.open(path) as a:
        texts = sorted(a.log_text(i) for i in _idents(path))
    assert texts == sorted((logs / name).read_bytes() for name in ("runtime.log", "runtime.log.1"))

    out_csv, out_pq = tmp_path / "csv", tmp_path / "pq"
    export(archive, out_csv, fmt="csv")
    export(archive, out_pq, fmt="parquet")
    epochs, events = unit_rows(proc.state)
    device = proc_device(path)
    key_bytes = (archive / KEY_NAME).read_bytes()
    expected_device = pseudonym(key_bytes, "device", device)
    # The unit's values, rounded as the export rounds them; times as timestamps.
    expected = [(expected_device, 1, *_exported(EPOCH_COLUMNS, r)) for r in epochs]
    assert _csv_epochs(out_csv / "epochs.csv") == expected
    assert _parquet_rows(out_pq / "epochs.parquet", EPOCH_COLUMNS) == expected
    with open(out_csv / "events.csv", newline="") as f:
        got = [
            (
                r["device"],
                int(r["session_id"]),
                int(r["event_id"]),
                r["t_utc"],
                r["kind"],
                r["detail"],
            )
            for r in csv.DictReader(f)
        ]
    expected_events = [_exported(EVENT_COLUMNS, r) for r in events]
    assert got == [(expected_device, *r) for r in expected_events]
    assert [r[2:] for r in _parquet_rows(out_pq / "events.parquet", EVENT_COLUMNS)] == (
        expected_events
    )
    with open(out_csv / "sessions.csv", newline="") as f:
        sessions = list(csv.DictReader(f))
    assert {s["source_kind"] for s in sessions} == {"replay"}
    persons = [s["person"] for s in sessions]
    assert persons == [pseudonym(key_bytes, "person", "P017")] * 3  # --person is remembered

    # Nothing identifying, nor the key, is in any exported byte; pseudonyms are stable.
    for out in (out_csv, out_pq):
        for f in out.iterdir():
            data = f.read_bytes()
            for secret in (
                device.encode(),
                b"P017",
                key_bytes,
                key_bytes.hex().encode(),
                b"/home/trial",
            ):
                assert secret not in data, (f.name, secret)
    export(archive, tmp_path / "again", fmt="csv")
    assert (tmp_path / "again" / "epochs.csv").read_bytes() == (out_csv / "epochs.csv").read_bytes()
    assert oct((archive / KEY_NAME).stat().st_mode & 0o777) == "0o600"


def test_an_unauthenticated_host_gets_nothing(filled_unit, tmp_path):
    proc, _ = filled_unit
    with Client.open(proc.url) as client:
        for command in ("logs.sessions", "logs.epochs", "logs.events", "logs.files", "logs.read"):
            with pytest.raises(BedsideError) as info:
                client.call(command, {"session_id": 1, "since_id": 0, "max_bytes": 4096})
            assert info.value.code.startswith("E32"), info.value
        with pytest.raises(BedsideError):
            pull(client, tmp_path / "archive")
    # The CLI with a key the unit does not know: an error line, no rows archived.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BEDSIDE_KEYS": str(tmp_path / "other-keys")}
    subprocess.run(
        [sys.executable, "-m", "host_tools", "keys", "init"],
        env=env,
        check=True,
        capture_output=True,
    )
    run = _cli(["logs", "pull", "--port", proc.url, "--archive", str(tmp_path / "a2")], env)
    assert run.returncode == 1 and run.stderr.startswith("error E32"), run.stderr
    assert not unit_archives(tmp_path / "a2") or _count(tmp_path / "a2") == 0


def test_cli_pull_and_export(filled_unit, keys_dir, tmp_path):
    proc, _ = filled_unit
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BEDSIDE_KEYS": str(keys_dir)}
    archive = str(tmp_path / "archive")
    args = ["logs", "pull", "--port", proc.url, "--archive", archive, "--json"]
    first = json.loads(_cli(args, env).stdout)
    # Without --archive: $BEDSIDE_ARCHIVE (the same folder, so nothing new).
    again = _cli(["logs", "pull", "--port", proc.url], {**env, "BEDSIDE_ARCHIVE": archive})
    assert first["epochs"] == 4000 and not first["nothing_new"]
    assert again.returncode == 0 and "nothing new" in again.stdout, again.stderr
    out = tmp_path / "out"
    run = _cli(["logs", "export", "--archive", archive, "--format", "csv", "--out", str(out)], env)
    assert run.returncode == 0 and (out / "epochs.csv").exists(), run.stderr
    bad = _cli(["logs", "export", "--archive", str(tmp_path), "--out", str(out)], env)
    assert bad.returncode == 1 and bad.stderr.startswith("error E369")


def test_a_new_store_on_the_unit_is_a_new_generation(paired_unit, tmp_path):
    proc, key = paired_unit
    state = proc.state
    record(state, 300)
    with connect(proc.url, key) as client:
        pull(client, tmp_path / "archive")
    # The store is moved aside (damaged) and a new one starts: ids count from 1 again.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{state / 'vitals.db'}{suffix}").unlink(missing_ok=True)
    record(state, 200, seed=5, t0=2e9)
    with Store(state / "vitals.db") as store:
        store.add_event(Event(2e9 + 500, "store_recovered", "moved aside"))
    with connect(proc.url, key) as client:
        result = pull(client, tmp_path / "archive")
    assert result.new_store and result.epochs == 200
    assert archive_rows(tmp_path / "archive", generation=2)[0] == unit_rows(state)[0]
    assert len(archive_rows(tmp_path / "archive", generation=1)[0]) == 300


def test_the_units_time_zone_reaches_the_archive_and_its_nights(paired_unit, tmp_path):
    proc, key = paired_unit
    with Store(proc.state / "vitals.db") as store:
        store.open_session(
            source="sim:1", fs=250, epoch_s=30, software_version="0.1.0", t_utc=T0,
            tz="Europe/Berlin",
        )  # fmt: skip
        store.close_session(clean=True, t_utc=T0 + 60)
    with connect(proc.url, key) as client:
        pull(client, tmp_path / "archive")
    (path,) = unit_archives(tmp_path / "archive")
    with Archive.open(path) as archive:
        (night,) = archive.nights()
    assert night.tz == "Europe/Berlin"


def test_hosts_and_units_of_either_age_read_each_others_session_pages(tmp_path):
    record(tmp_path, 10)
    source = LogSource(tmp_path)
    # An older host asks without "with": the columns it knows, and the reply names none.
    reply, blob = source.sessions({"since_id": 0, "max_bytes": 4096})
    assert reply["with"] == [] and len(decode_page(SESSION_COLUMNS, blob)[0]) == 10
    # A newer host names the time zone: it comes last, and the reply says so.
    reply, blob = source.sessions({"since_id": 0, "max_bytes": 4096, "with": ["tz", "later"]})
    assert reply["with"] == ["tz"]
    (row,) = decode_page(session_columns(reply["with"]), blob)
    assert (
        row[:10]
        == decode_page(SESSION_COLUMNS, source.sessions({"since_id": 0, "max_bytes": 4096})[1])[0]
    )
    assert isinstance(row[10], str) and row[10]
    with pytest.raises(BedsideError) as info:
        source.sessions({"since_id": 0, "max_bytes": 4096, "with": "tz"})
    assert info.value.code == "E365"


def test_an_archive_of_version_1_is_read_as_it_is_and_migrated_by_its_writer(tmp_path):
    folder = tmp_path / "archive"
    with Archive.create(folder, "unit-1") as archive:
        path = archive.path
    # Make it what version 1 wrote: no tz column.
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE sessions DROP COLUMN tz")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    with Archive.open(path) as archive:  # a reader takes it as it is
        assert archive.sessions() == []
    with Archive.create(folder, "unit-1") as archive:
        row = (1, "sim:1", 250.0, 30.0, "0.1.0", T0, T0 + 60, 1.0, 2, 0, "+01:00")
        archive.save_sessions(1, [row])
        (night,) = archive.nights()
    assert night.tz == "+01:00"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()


# --- helpers --------------------------------------------------------------------------------


def _idents(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT ident FROM log_files")]


def proc_device(path: Path) -> str:
    with Archive.open(path) as a:
        return a.device_id


def _count(folder: Path) -> int:
    (path,) = unit_archives(folder)
    with Archive.open(path) as a:
        return a.count("epochs") + a.count("events")


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "host_tools", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _number(text: str, kind: str):
    if text == "":
        return None
    return int(text) if kind == "int" else float(text)


def _exported(columns, row: tuple) -> tuple:
    """A unit row (session_id, id, values...) as the export writes it: reals rounded,
    Unix seconds as ISO 8601 UTC text."""
    out = []
    for (name, kind), value in zip(columns, row, strict=True):
        if name in TIMES and value is not None:
            value = iso_utc(value)
        elif kind == "real":
            value = rounder(name)(value)
        out.append(value)
    return tuple(out)


def _csv_epochs(path: Path) -> list[tuple]:
    """(device, generation, session_id, id, values...) from the CSV, typed back (times stay
    text)."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            values = []
            for name, kind in EPOCH_COLUMNS[2:]:
                text = row[name]
                typed = kind == "text" or name in TIMES
                values.append((text or None) if typed else _number(text, kind))
            out.append(
                (
                    row["device"],
                    int(row["generation"]),
                    int(row["session_id"]),
                    int(row["epoch_id"]),
                    *values,
                )
            )
    return out


def _parquet_rows(path: Path, columns) -> list[tuple]:
    """(device, generation, session_id, id, values...) read back by DuckDB; timestamps as
    ISO 8601 UTC text, and they must be real UTC timestamps in the file."""
    con = duckdb_connection()
    try:
        id_column = "epoch_id" if columns is EPOCH_COLUMNS else "event_id"
        described = con.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()
        kinds = {name: kind for name, kind, *_ in described}
        names = ["device", "generation", "session_id", id_column, *(n for n, _ in columns[2:])]
        shown = [f"strftime({n}, '%Y-%m-%dT%H:%M:%S.%gZ')" if n in TIMES else n for n in names]
        rows = con.execute(f"SELECT {', '.join(shown)} FROM '{path}'").fetchall()
    finally:
        con.close()
    assert all(kinds[n] == "TIMESTAMP WITH TIME ZONE" for n in names if n in TIMES), kinds
    assert all(not (isinstance(v, float) and math.isnan(v)) for r in rows for v in r)
    return rows


def test_the_page_layout_of_epochs_follows_the_store_fields() -> None:
    """The wire layout spells the columns with their kinds; it must name the store's
    epoch fields, in order, after id and session_id (rows are built from Epoch.values())."""
    from edge.log_pages import EPOCH_COLUMNS
    from edge.records import EPOCH_FIELDS

    assert tuple(name for name, _ in EPOCH_COLUMNS) == ("id", "session_id", *EPOCH_FIELDS)


def test_the_progress_bar_follows_a_total_that_grows(capsys) -> None:
    """Rows the unit writes while a pull runs raise the total the puller reports: the bar
    takes the new total and never shows more than 100 %."""
    from host_tools.logs import _Bars

    with _Bars(enabled=True) as bars:
        bars.update("epochs", 5, 10)
        bars.update("epochs", 12, 12)  # two more epochs written meanwhile
        assert bars._bar.total == 12
        bars.update("events", 1, 3)  # the next stream: a bar of its own
        assert bars._bar.total == 3
    assert "12/12" in capsys.readouterr().err
