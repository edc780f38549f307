"""``logs export``: every unit of an archive as CSV or Parquet tables, pseudonymized.

    result = export("trial-logs/", "out/", fmt="parquet")
    # out/nights.parquet, out/sessions.parquet, out/epochs.parquet, out/events.parquet

The tables hold every unit of the archive side by side, so DuckDB or Spark reads many units
at once (``SELECT device, avg(hr_bpm) FROM 'out/epochs.parquet' GROUP BY device``), and
exports of several archives can be stacked. ``nights`` has one row per night (a session:
its local date and time zone, hours in bed, heart rate, HRV, breathing, coverage), the
figures of :mod:`edge.nights`, the same as the unit's night report. Identifiers are
replaced by pseudonyms:

- ``device``: ``u_`` + 16 hex digits of HMAC-SHA256(key, device id); ``person``: ``p_`` + the
  same of the participant code given to ``logs pull --person`` (empty without one).
- ``source`` is cut to its kind (``serial``, ``sim``, ``replay``): a port or file path can
  name a person or a machine.

The key is 32 random bytes in ``ARCHIVE/export.key`` (mode 0600), made by the first export
and used by every later one, so a unit keeps its pseudonym from export to export; copy it to
another archive folder to give that archive the same pseudonyms. It never leaves the folder:
without it a pseudonym cannot be traced back, and it is never written into an export.

Times are timestamps (UTC instants: Parquet ``TIMESTAMP`` adjusted to UTC, ISO 8601 with
``Z`` in CSV) to the millisecond; values are rounded to what they can tell
(:data:`DECIMALS`, :data:`SIGNIFICANT`): 68.6 bpm, not 68.5894070147492. The columns are
described in docs/field-tester.md ("Columns"). The partitioned dataset for many nights is
:mod:`host_tools.dataset`.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import fail
from edge.nights import Night
from edge.records import EPOCH_SCHEMA, EVENT_SCHEMA

from .archive import Archive, unit_archives
from .parquet import duckdb_connection, write_parquet

__all__ = [
    "DECIMALS",
    "FORMATS",
    "KEY_NAME",
    "SIGNIFICANT",
    "TABLES",
    "ExportResult",
    "export",
    "output_columns",
    "pseudonym",
    "rounded",
    "rounder",
    "table_rows",
]

FORMATS = ("csv", "parquet")
KEY_NAME = "export.key"
_KEY_BYTES = 32
_PREFIX = {"device": "u", "person": "p"}

#: The columns every table starts with: which unit, participant and session a row is of.
_KEYS = (("device", "text"), ("person", "text"), ("generation", "int"), ("session_id", "int"))
#: The exported tables: (column, kind) in order, kinds "text", "int", "real", "bool", "date".
#: Epochs and events: the keys, the unit's row id, then the record's fields (edge.records).
#: A "real" column in :data:`TIMES` is exported as a timestamp.
TABLES = {
    "nights": (
        *_KEYS,
        ("night", "date"),
        ("tz", "text"),
        ("start_utc", "real"),
        ("end_utc", "real"),
        ("hours_recorded", "real"),
        ("hours_in_bed", "real"),
        ("hr_mean_bpm", "real"),
        ("hr_lowest_bpm", "real"),
        ("hr_resting_bpm", "real"),
        ("hrv_rmssd_ms", "real"),
        ("breathing_mean_bpm", "real"),
        ("coverage", "real"),
        ("software_version", "text"),
    ),
    "sessions": (
        *_KEYS,
        ("source_kind", "text"),
        ("fs", "real"),
        ("epoch_s", "real"),
        ("software_version", "text"),
        ("started_utc", "real"),
        ("ended_utc", "real"),
        ("clean", "bool"),
    ),
    "epochs": (*_KEYS, ("epoch_id", "int"), *((f.name, f.kind) for f in EPOCH_SCHEMA)),
    "events": (*_KEYS, ("event_id", "int"), *((f.name, f.kind) for f in EVENT_SCHEMA)),
}
#: Columns of Unix seconds that are exported as timestamps (to the millisecond).
TIMES = frozenset(
    {"start_utc", "end_utc", "started_utc", "ended_utc"}
    | {f.name for f in (*EPOCH_SCHEMA, *EVENT_SCHEMA) if f.check == "time"}
)
#: Decimal places a value is rounded to: a tenth of a bpm, breath or ms says all a
#: ballistocardiogram can; hours to 36 s, shares to 0.1 %.
DECIMALS = {
    "fs": 3,
    "epoch_s": 3,
    "duration_s": 3,
    "quality": 3,
    "hr_bpm": 1,
    "hrv_rmssd_ms": 1,
    "rr_bpm": 1,
    "hours_recorded": 2,
    "hours_in_bed": 2,
    "hr_mean_bpm": 1,
    "hr_lowest_bpm": 1,
    "hr_resting_bpm": 1,
    "breathing_mean_bpm": 1,
    "coverage": 3,
}
#: Significant digits of values whose scale depends on the sensor (motion energy).
SIGNIFICANT = {"motion": 3}
#: Significant digits of a "real" column in neither map (a field added to edge.records).
DEFAULT_SIGNIFICANT = 6
_TIME_DECIMALS = 3  # timestamps to the millisecond


@dataclass
class ExportResult:
    """What an export wrote."""

    units: int = 0
    rows: dict = field(default_factory=dict)  #: table -> rows written
    files: list = field(default_factory=list)  #: paths written

    def summary(self) -> str:
        counts = ", ".join(f"{n} {table}" for table, n in self.rows.items())
        return f"exported {self.units} units: {counts} -> {', '.join(self.files)}"


def pseudonym(key: bytes, kind: str, identifier: str) -> str:
    """The stable pseudonym of ``identifier`` (``kind`` "device" or "person") under ``key``."""
    mac = hmac.new(key, f"{kind}\0{identifier}".encode(), hashlib.sha256).hexdigest()
    return f"{_PREFIX[kind]}_{mac[:16]}"


def load_key(folder: str | os.PathLike, *, create: bool = True) -> bytes:
    """The archive's pseudonym key, made (0600) on first use; E372 if it is unusable."""
    path = Path(folder) / KEY_NAME
    if create and not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another export made it just now: read that one
        except OSError as error:
            fail("E372", f"cannot make the pseudonym key {KEY_NAME} ({error.strerror})", _KEY)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(_KEY_BYTES))
                f.flush()
                os.fsync(f.fileno())
    try:
        key = path.read_bytes()
    except OSError as error:
        fail("E372", f"cannot read the pseudonym key {KEY_NAME} ({error.strerror})", _KEY)
    if len(key) != _KEY_BYTES:
        fail("E372", f"the pseudonym key {KEY_NAME} is damaged ({len(key)} bytes)", _KEY)
    return key


def export(folder: str | os.PathLike, out: str | os.PathLike, *, fmt: str) -> ExportResult:
    """Write ``nights``, ``sessions``, ``epochs`` and ``events`` of every unit in archive
    ``folder`` into the folder ``out`` as ``<table>.csv`` or ``<table>.parquet``.

    Each file is written beside its final name and renamed into place, so a reader never
    sees half an export. Raises E369 (nothing to export), E370 (``out`` cannot be written),
    E371 (Parquet without duckdb), E372 (the key), E361 (a damaged archive).
    """
    if fmt not in FORMATS:
        fail("E370", f"unknown export format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        duckdb_connection().close()  # before any work: fail fast without duckdb (E371)
    paths = archive_paths(folder)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail("E370", f"cannot make the export folder {out.name} ({error.strerror})", _OUT)
    key = load_key(folder)
    result = ExportResult(units=len(paths))
    for table in TABLES:
        target = out / f"{table}.{fmt}"
        rows = (row for path in paths for row in table_rows(path, table, key))
        try:
            if fmt == "parquet":
                n = write_parquet(target, output_columns(table), rounded(table, rows))
            else:
                n = _write_csv(target, table, rows)
        except OSError as error:
            fail("E370", f"cannot write {target.name} ({error.strerror})", _OUT)
        result.rows[table] = n
        result.files.append(str(target))
    return result


def archive_paths(folder: str | os.PathLike) -> list[Path]:
    """The unit archives in ``folder``; E369 when there are none."""
    paths = unit_archives(folder)
    if not paths:
        fail(
            "E369",
            f"no unit logs in {Path(folder).name or folder}",
            "run logs pull first, or point --archive (or $BEDSIDE_ARCHIVE) at its folder",
        )
    return paths


def output_columns(table: str) -> tuple[tuple[str, str], ...]:
    """``table``'s columns with the kinds they are written as (``host_tools.parquet``):
    Unix seconds (:data:`TIMES`) become ``time``."""
    return tuple(
        (name, "time" if name in TIMES and kind == "real" else kind) for name, kind in TABLES[table]
    )


# --- rows -----------------------------------------------------------------------------------


def table_rows(
    path: Path,
    table: str,
    key: bytes,
    sessions: Collection[tuple[int, int]] | None = None,
    *,
    known: Mapping[tuple[int, int], Night] | None = None,
) -> Iterator[tuple]:
    """The rows of ``table`` (:data:`TABLES` order, values as the archive holds them) for
    the unit archive at ``path``, pseudonymized: of every session, or only of ``sessions``
    (``(generation, session_id)`` pairs). ``known``: nights already summarized, by session
    (a night's summary reads all its epochs)."""
    with Archive.open(path) as archive:
        device = pseudonym(key, "device", archive.device_id)
        persons, sources = {}, {}
        for row in archive.rows("sessions"):
            generation, session_id, person = row[0], row[1], row[9]
            persons[generation, session_id] = (
                None if person is None else pseudonym(key, "person", person)
            )
            sources[generation, session_id] = row
        chosen = sorted(sources if sessions is None else set(sessions) & set(sources))
        if table == "sessions":
            for generation, session_id in chosen:
                row = sources[generation, session_id]
                source_kind = row[2].split(":", 1)[0]
                clean = None if row[8] is None else bool(row[8])
                person = persons[generation, session_id]
                yield (device, person, generation, session_id, source_kind, *row[3:8], clean)
        elif table == "nights":
            if sessions is None:
                nights = archive.nights()
            else:
                known = known or {}
                nights = [known.get(k) or archive.night(*k) for k in chosen]
            for night in nights:
                yield _night_row(device, persons.get((night.generation, night.session_id)), night)
        elif sessions is None:
            for row in archive.rows(table):
                yield _record_row(device, persons, row)
        else:
            for generation, session_id in chosen:
                for row in archive.rows(table, generation=generation, session_id=session_id):
                    yield _record_row(device, persons, row)


def _record_row(device: str, persons: dict, row: tuple) -> tuple:
    """An archive's epoch or event row (generation, id, session_id, ...) as exported: the
    session first."""
    generation, row_id, session_id = row[0], row[1], row[2]
    return (device, persons.get((generation, session_id)), generation, session_id, row_id, *row[3:])


def _night_row(device: str, person: str | None, night: Night) -> tuple:
    return (
        device,
        person,
        night.generation,
        night.session_id,
        night.night_date,
        night.tz,
        night.start_utc,
        night.end_utc,
        night.hours_recorded,
        night.hours_in_bed,
        night.hr_mean,
        night.hr_lowest,
        night.hr_resting,
        night.hrv_rmssd_ms,
        night.breathing_mean,
        night.coverage,
        night.software_version,
    )


def rounder(name: str) -> Callable[[float | None], float | None]:
    """The function that rounds values of the "real" column ``name`` for export."""
    if name in TIMES:
        digits = _TIME_DECIMALS
    elif name in DECIMALS:
        digits = DECIMALS[name]
    else:
        significant = SIGNIFICANT.get(name, DEFAULT_SIGNIFICANT)
        return lambda v: None if v is None else float(f"{v:.{significant}g}")
    return lambda v: None if v is None else round(v, digits)


def rounded(table: str, rows: Iterator[tuple]) -> Iterator[tuple]:
    """``rows`` of ``table`` with each "real" value rounded for export (:func:`rounder`)."""
    fixes = [(i, rounder(name)) for i, (name, kind) in enumerate(TABLES[table]) if kind == "real"]
    for row in rows:
        values = list(row)
        for i, fix in fixes:
            values[i] = fix(values[i])
        yield tuple(values)


# --- writers --------------------------------------------------------------------------------


def _write_csv(target: Path, table: str, rows: Iterator[tuple]) -> int:
    """CSV with a header row: NULL an empty field, times ISO 8601 UTC, booleans 0/1.

    Written beside ``target`` and renamed into place when whole."""
    partial = target.with_name(f".{target.name}.partial")
    columns = output_columns(table)
    text = [_csv_text(kind) for _, kind in columns]
    n = 0
    try:
        with partial.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow([name for name, _ in columns])
            for row in rounded(table, rows):
                w.writerow([fmt(v) for fmt, v in zip(text, row, strict=True)])
                n += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return n


def _csv_text(kind: str) -> Callable:
    if kind == "time":
        return lambda v: "" if v is None else iso_utc(v)
    if kind == "bool":
        return lambda v: "" if v is None else int(v)
    if kind == "date":
        return lambda v: "" if v is None else v.isoformat()
    return lambda v: "" if v is None else v


def iso_utc(t_utc: float) -> str:
    """Unix seconds as ISO 8601 UTC to the millisecond: ``2026-11-24T22:30:00.000Z``."""
    moment = datetime.datetime.fromtimestamp(round(t_utc, _TIME_DECIMALS), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_OUT = "choose an --out folder you can write, on a disk with room"
_KEY = "restore export.key from a backup (pseudonyms change with a new key) or move it away"
