"""The nights of a store or of a pulled log archive: one summary per session, by local date.

    db = open_readonly("vitals.db")                  # or "archive/units/<device_id>.sqlite"
    for night in list_nights(db, since=date(2026, 12, 1)):
        print(night.night_date, night.hr_resting, night.coverage)
    night = summarize_night(db, session_id=3)
    epochs, events = night_records(db, night)        # what the report draws

The one implementation of the per-night figures: the night report, its trend page, the
``bedside nights`` list and the field tester's export all read them here. The figures are
:func:`edge.summary.summarize`'s (in bed, coverage, the lowest and resting heart rate are
defined there), so a night's numbers are the same wherever they are shown.

Both files hold ``sessions``, ``epochs`` and ``events`` tables with the record columns of
:mod:`edge.records`; an archive (``host_tools.archive``) adds a ``generation`` column (a
unit's store that started anew counts its session ids from 1 again), told apart here by
the schema, so the functions take any read-only :mod:`sqlite3` connection to either.

A night's date is the local date of the evening it began, in the session's time zone
(``sessions.tz``; ``UTC`` where the column is missing or empty): a night that began between
00:00 and 11:59 local belongs to the day before. It began at its first epoch (the session's
start where it has none), which is also right for a session opened before its first data.
"""

from __future__ import annotations

import datetime
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import fail
from .records import EPOCH_FIELDS, EVENT_FIELDS, Epoch, Event
from .summary import NightSummary, summarize

__all__ = [
    "ARCHIVE_SUFFIX",
    "ARCHIVE_UNITS",
    "Night",
    "archive_unit_files",
    "last_night",
    "list_nights",
    "local_time",
    "night_date_of",
    "night_records",
    "open_readonly",
    "session_label",
    "summarize_night",
    "time_zone",
]

#: A pulled log archive folder keeps each unit's file as ``DIR/units/<device_id>.sqlite``
#: (written by ``host_tools.archive``, which takes this layout from here: the unit's code
#: does not import the laptop's).
ARCHIVE_UNITS = "units"
ARCHIVE_SUFFIX = ".sqlite"
#: A night that begins before this local hour belongs to the evening before.
NOON = 12
_SQLITE_MAGIC = b"SQLite format 3\x00"
_OFFSET = re.compile(r"(?:UTC)?([+-])(\d{1,2}):?(\d{2})?")


@dataclass(frozen=True)
class Night:
    """One session's night as the report, the trend page and the export show it.

    Heart rates are bpm, breathing breaths/min; ``None`` = no trustworthy value.
    """

    session_id: int
    night_date: datetime.date  #: local date of the evening the night began (module doc)
    tz: str  #: the session's time zone (``sessions.tz``), ``"UTC"`` when not recorded
    start_utc: float  #: ``sessions.started_utc``
    end_utc: float | None  #: ``sessions.ended_utc`` (None while open or after a kill)
    hours_in_bed: float  #: epochs in bed (:attr:`edge.records.Epoch.in_bed`)
    hr_mean: float | None  #: over epochs with a heart rate, weighted by length
    hr_lowest: float | None  #: lowest 5 min median in bed (:mod:`edge.summary`)
    hr_resting: float | None  #: 10th percentile of in-bed epoch heart rates
    hrv_rmssd_ms: float | None  #: median RMSSD of the epochs with one
    breathing_mean: float | None
    coverage: float | None  #: share of the time in bed with a heart rate (None: never in bed)
    software_version: str  #: ``sessions.software_version``
    generation: int | None = None  #: an archive's store generation; None for a unit's store
    n_epochs: int = 0
    source: str = ""  #: ``sessions.source`` (``sim:42``, ``serial:/dev/serial0``, ...)
    hours_recorded: float = 0.0  #: sum of the epochs' lengths
    first_epoch_utc: float | None = None  #: when its data begins (None without epochs)

    @property
    def session_name(self) -> str:
        """The session as a person names it: ``3``, or ``2/3`` (generation 2) in an archive."""
        return session_label(self.session_id, self.generation)

    def as_dict(self) -> dict:
        """JSON-ready values (``bedside nights --json``): the date as ``YYYY-MM-DD``."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["night_date"] = self.night_date.isoformat()
        return out


def open_readonly(path: str | os.PathLike) -> sqlite3.Connection:
    """Open a unit's store or a pulled archive file to read; nothing is written or moved.

    Raises:
        BedsideError: E263 when the file is missing, not SQLite, or has no vitals tables.
    """
    path = Path(path)
    if not path.is_file():
        fail("E263", f"{path.name}: no such store or archive file", "check the path (--db)")
    try:
        with path.open("rb") as f:
            magic = f.read(16)
    except OSError as error:
        fail("E263", f"{path.name}: cannot read ({error.strerror})", "check the path (--db)")
    if magic != _SQLITE_MAGIC:
        fail("E263", f"{path.name}: not a vitals store or log archive", "check the path (--db)")
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
        conn.execute("PRAGMA busy_timeout = 5000")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
    except sqlite3.Error as error:
        fail("E263", f"{path.name}: cannot be read ({error})", "check the path (--db)")
    if not {"sessions", "epochs", "events"} <= tables:
        conn.close()
        fail("E263", f"{path.name}: has no vitals (another application's file)", "check --db")
    return conn


def archive_unit_files(folder: str | os.PathLike) -> list[Path]:
    """The unit files of a pulled log archive folder, by name (none: an empty list)."""
    units = Path(folder) / ARCHIVE_UNITS
    return sorted(p for p in units.glob(f"*{ARCHIVE_SUFFIX}") if p.is_file())


def list_nights(
    db: sqlite3.Connection,
    *,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
) -> list[Night]:
    """Every session's :class:`Night` whose date is within ``[since, until]`` (both
    inclusive, either open), by date and then start time."""
    nights = [
        _summarize(db, row)
        for row in _session_rows(db)
        if _in_range(_date_of_row(db, row), since, until)
    ]
    return sorted(nights, key=lambda n: (n.night_date, n.start_utc))


def last_night(db: sqlite3.Connection) -> Night | None:
    """The :class:`Night` of the session with epochs that began last (the latest
    generation's on a tie), or None; only that session's epochs are read."""
    rows = sorted(_session_rows(db), key=lambda r: (r["started_utc"], r["generation"] or 0))
    for row in reversed(rows):
        where, args = _where(db, "epochs", row["id"], row["generation"])
        if db.execute(f"SELECT 1 FROM epochs WHERE {where} LIMIT 1", args).fetchone():
            return _summarize(db, row)
    return None


def session_label(session_id: int, generation: int | None) -> str:
    """A session as a person names it: ``3``, or ``2/3`` (generation 2) in an archive."""
    return str(session_id) if generation is None else f"{generation}/{session_id}"


def summarize_night(
    db: sqlite3.Connection, session_id: int, *, generation: int | None = None
) -> Night:
    """The :class:`Night` of one session. In an archive ``generation`` picks the store
    generation (default: the latest that has the session).

    Raises:
        BedsideError: E264 if there is no such session (the message lists those there are).
    """
    rows = [r for r in _session_rows(db) if r["id"] == session_id]
    if generation is not None:
        rows = [r for r in rows if r["generation"] == generation]
    if not rows:
        have = ", ".join(session_label(r["id"], r["generation"]) for r in _session_rows(db))
        have = have or "none"
        fail("E264", f"{_file_name(db)}: no session {session_id}", f"sessions there: {have}")
    return _summarize(db, rows[-1])


def night_records(db: sqlite3.Connection, night: Night) -> tuple[list[Epoch], list[Event]]:
    """The epochs and events of ``night``'s session, in time order."""
    key = (night.session_id, night.generation)
    epochs = [Epoch(*row) for row in _records(db, "epochs", EPOCH_FIELDS, *key)]
    events = [Event(*row) for row in _records(db, "events", EVENT_FIELDS, *key)]
    epochs.sort(key=lambda e: e.t_utc)
    events.sort(key=lambda e: e.t_utc)
    return epochs, events


def local_time(t_utc: float, tz: str) -> datetime.datetime:
    """``t_utc`` (Unix seconds) as an aware datetime in the zone ``tz`` (an IANA name such
    as ``Europe/Berlin``, or an offset such as ``+01:00``; anything else counts as UTC)."""
    return datetime.datetime.fromtimestamp(t_utc, time_zone(tz))


def night_date_of(t_utc: float, tz: str) -> datetime.date:
    """The date of the night that began at ``t_utc``: its local date, or the day before
    when it began before noon."""
    local = local_time(t_utc, tz)
    day = local.date()
    return day - datetime.timedelta(days=1) if local.hour < NOON else day


def time_zone(tz: str) -> datetime.tzinfo:
    """The zone a ``sessions.tz`` text names: an IANA name, an offset ``+HH:MM``, else UTC."""
    if tz and tz.upper() != "UTC":
        match = _OFFSET.fullmatch(tz.strip())
        if match:
            sign = -1 if match.group(1) == "-" else 1
            minutes = int(match.group(2)) * 60 + int(match.group(3) or 0)
            return datetime.timezone(sign * datetime.timedelta(minutes=minutes), tz)
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # a name this machine does not know: UTC, as for a session without one
    return datetime.UTC


# --- internals -------------------------------------------------------------------------------


def _file_name(db: sqlite3.Connection) -> str:
    """The name of the file ``db`` reads (for messages)."""
    return Path(db.execute("PRAGMA database_list").fetchone()[2]).name


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _session_rows(db: sqlite3.Connection) -> list[dict]:
    """The sessions as dicts, ``generation`` None and ``tz`` "UTC" where a file has none."""
    have = _columns(db, "sessions")
    generation = "generation" if "generation" in have else "NULL"
    tz = "tz" if "tz" in have else "NULL"
    cursor = db.execute(
        f"SELECT {generation} AS generation, id, source, software_version, started_utc, "
        f"ended_utc, {tz} AS tz FROM sessions ORDER BY {generation}, id"
    )
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["tz"] = row["tz"] or "UTC"
    return rows


def _where(db: sqlite3.Connection, table: str, session_id: int, generation: int | None):
    if "generation" in _columns(db, table):
        return "session_id = ? AND generation = ?", (session_id, generation)
    return "session_id = ?", (session_id,)


def _records(
    db: sqlite3.Connection,
    table: str,
    fields: tuple[str, ...],
    session_id: int,
    generation: int | None,
) -> sqlite3.Cursor:
    where, args = _where(db, table, session_id, generation)
    return db.execute(f"SELECT {', '.join(fields)} FROM {table} WHERE {where} ORDER BY id", args)


def _date_of_row(db: sqlite3.Connection, row: dict) -> datetime.date:
    where, args = _where(db, "epochs", row["id"], row["generation"])
    first = db.execute(f"SELECT MIN(t_utc) FROM epochs WHERE {where}", args).fetchone()[0]
    return night_date_of(row["started_utc"] if first is None else first, row["tz"])


def _in_range(day: datetime.date, since: datetime.date | None, until: datetime.date | None):
    return (since is None or day >= since) and (until is None or day <= until)


def _summarize(db: sqlite3.Connection, row: dict) -> Night:
    epochs = sorted(
        (Epoch(*r) for r in _records(db, "epochs", EPOCH_FIELDS, row["id"], row["generation"])),
        key=lambda e: e.t_utc,
    )
    s: NightSummary = summarize(epochs, session_id=row["id"])
    return Night(
        session_id=row["id"],
        night_date=night_date_of(
            row["started_utc"] if s.start_utc is None else s.start_utc, row["tz"]
        ),
        tz=row["tz"],
        start_utc=row["started_utc"],
        end_utc=row["ended_utc"],
        hours_in_bed=s.hours_in_bed,
        hr_mean=s.hr_mean_bpm,
        hr_lowest=s.hr_lowest_bpm,
        hr_resting=s.hr_resting_bpm,
        hrv_rmssd_ms=s.hrv_rmssd_median_ms,
        breathing_mean=s.rr_mean_bpm,
        coverage=s.hr_coverage,
        software_version=row["software_version"],
        generation=row["generation"],
        n_epochs=s.n_epochs,
        source=row["source"],
        hours_recorded=s.hours_recorded,
        first_epoch_utc=s.start_utc,
    )
