"""The vitals store: epochs and events of every session in one SQLite file.

    store = Store("vitals.db")                    # creates, or opens, checks and migrates
    sid = store.open_session(source="sim:42", fs=250, epoch_s=30,
                             software_version="0.1.0", t_utc=time.time())  # tz: the unit's
    store.add_epoch(epoch); store.add_event(Event(t, "bed_entry"))
    store.commit()                                # one transaction, on disk when it returns
    store.close_session(clean=True, t_utc=time.time()); store.close()

Durability: WAL journal with ``synchronous=FULL``, so a commit that returned survives kill -9
and a power cut; rows are buffered in memory and written in one transaction per
:meth:`Store.commit`. A file that is damaged, not SQLite, or another application's database
is never written to: it is renamed aside (``PATH.corrupt-<UTC stamp>``, with its ``-wal``),
a fresh store starts and a ``store_recovered`` event says so. Retention is bounded by size:
before the file would pass ``max_bytes`` the oldest sessions (then the oldest committed rows
of the current one) are deleted and their pages reused; ``PRAGMA max_page_count`` makes the
bound hard. Row ids only ever increase, so a reader can resume from the last id it saw.

One writer per file (an advisory lock, E267); any number of readers
(``Store(path, readonly=True)``), also while the writer runs.

Events of other processes (the boot manager's update or failed trial, the agent's
rollback) never wait for that lock: :func:`note_event` appends them, fsynced, to a small
journal beside the store (``vitals.db.events``, JSON lines under an ``flock``), and the
writer imports it into the events table when it opens the store and at each commit (in one
transaction, then empties it). A store that cannot be opened (locked, damaged, full, not
yet made) therefore never stops a boot nor loses its event; an import cut short by a kill
is done again, and an event the table already holds (same time, kind and detail) is not
added twice.

Schema versions (``PRAGMA user_version``), each file migrated in place when the writer
opens it (readers read either): 1 the first; 2 adds ``sessions.tz``, the unit's time zone
at the session's start (:func:`edge.localzone.unit_time_zone`: an IANA name such as
``Europe/Berlin``, else an offset such as ``+01:00``; NULL in sessions made before).
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .errors import BedsideError, fail
from .localzone import unit_time_zone
from .records import (
    EPOCH_FIELDS,
    EPOCH_SCHEMA,
    EVENT_FIELDS,
    EVENT_SCHEMA,
    MAX_EPOCH_S,
    Epoch,
    Event,
    Field,
    sql_columns,
)

__all__ = [
    "STORE_NAME",
    "DEFAULT_MAX_BYTES",
    "MIN_MAX_BYTES",
    "SessionInfo",
    "Store",
    "note_event",
    "pending_events_path",
]

log = logging.getLogger(__name__)

#: The store's file name in the unit's state folder (`bedside run`, the agent, the boot manager).
STORE_NAME = "vitals.db"
DEFAULT_MAX_BYTES = 256 * 2**20
#: The smallest size bound accepted: a few nights of 30 s epochs.
MIN_MAX_BYTES = 2**20

_APPLICATION_ID = 0x42434756  # "BCGV": tells our file from another application's SQLite file
_SCHEMA_VERSION = 2
#: What takes a file of schema version N to N + 1 (run in one transaction with the new
#: user_version): new columns go at the end, where a fresh file has them too.
_MIGRATIONS = {1: ("ALTER TABLE sessions ADD COLUMN tz TEXT",)}
_PENDING_EVENTS_SUFFIX = ".events"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_READ_PAGE = 4096  # rows per query when iterating, so no read transaction stays open long
_PRUNE_HIGH, _PRUNE_LOW = 0.95, 0.92  # prune when used pages pass HIGH x budget, down to LOW
_WAL_MAX_BYTES = 4 * 2**20


def _marks(n: int) -> str:
    return ", ".join("?" * n)


# The epochs' and events' columns after id and session_id are their records' fields.
_SCHEMA = f"""
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    fs REAL NOT NULL,
    epoch_s REAL NOT NULL,
    software_version TEXT NOT NULL,
    started_utc REAL NOT NULL,
    ended_utc REAL,           -- NULL while open, and after a kill until the next session
    clean INTEGER,            -- 1 clean shutdown, 0 not, NULL while open
    tz TEXT                   -- the unit's time zone at the start, NULL before schema 2
);
CREATE TABLE epochs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL,
{sql_columns(EPOCH_SCHEMA)}
);
CREATE INDEX epochs_by_session ON epochs(session_id);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER,       -- NULL between sessions, then the next session adopts it
{sql_columns(EVENT_SCHEMA)}
);
CREATE INDEX events_by_session ON events(session_id);
"""
_EPOCH_COLUMNS = ", ".join(EPOCH_FIELDS)
_EVENT_COLUMNS = ", ".join(EVENT_FIELDS)
_INSERT_EPOCH = (
    f"INSERT INTO epochs (session_id, {_EPOCH_COLUMNS}) VALUES ({_marks(1 + len(EPOCH_FIELDS))})"
)
_INSERT_EVENT = (
    f"INSERT INTO events (session_id, {_EVENT_COLUMNS}) VALUES ({_marks(1 + len(EVENT_FIELDS))})"
)


@dataclass(frozen=True)
class SessionInfo:
    """One run of the pipeline as the store knows it.

    ``ended_utc`` and ``clean`` are ``None`` while the session is open, and for a session
    that was killed until the next one starts (which marks it ``clean=False``). ``tz`` is
    the unit's time zone at its start (an IANA name or ``+HH:MM``), ``None`` for a session
    recorded before the store had the column.
    """

    id: int
    source: str
    fs: float
    epoch_s: float
    software_version: str
    started_utc: float
    ended_utc: float | None
    clean: bool | None
    n_epochs: int
    n_events: int
    tz: str | None = None


class Store:
    """The vitals store at ``path`` (see the module docstring).

    Args:
        path: the SQLite file; made (with its folder) if missing.
        max_bytes: size bound of the file and its WAL together (at least 1 MiB).
        readonly: open an existing store to read (the report, the log puller): nothing is
            checked, moved or written; a missing, damaged or foreign file is E263.

    Raises:
        BedsideError: E260 the path cannot be written, E263 (readonly) not a readable store,
            E265 a bad argument, E267 another process writes this store.
    """

    def __init__(
        self, path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES, readonly: bool = False
    ) -> None:
        self.path = Path(path)
        self.readonly = bool(readonly)
        self.recovered_to: Path | None = None  #: where a damaged file was moved, if it was
        self._session_id: int | None = None
        self._epochs: list[tuple] = []
        self._events: list[tuple] = []
        self._lock_fd: int | None = None
        self._conn: sqlite3.Connection | None = None
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
            fail("E265", f"max_bytes: expected a whole number, got {max_bytes!r}", "pass bytes")
        if max_bytes < MIN_MAX_BYTES:
            fail("E265", f"max_bytes: {max_bytes} is below {MIN_MAX_BYTES}", "allow more room")
        self.max_bytes = max_bytes
        if self.readonly:
            self._conn = _open_readonly(self.path)
            return
        self._lock_fd = _lock(self.path)
        try:
            problem = _diagnose(self.path)
            if problem is not None:
                os.close(self._lock_fd)
                self.recovered_to = _move_aside(self.path)
                self._lock_fd = _lock(self.path)
            self._conn = self._open_writer()
            if problem is not None:
                detail = f"{problem}; moved aside to {self.recovered_to.name}, new store started"
                recovered = Event(time.time(), "store_recovered", detail)
                self._events.append((None, *_record_row("event", Event, EVENT_SCHEMA, recovered)))
                self.commit()
            self._import_pending_events()
        except BaseException:
            self._release()
            raise

    # --- writing ---------------------------------------------------------------------------

    def open_session(
        self,
        *,
        source: str,
        fs: float,
        epoch_s: float,
        software_version: str,
        t_utc: float,
        tz: str | None = None,
    ) -> int:
        """Start a session and return its id (committed at once).

        ``software_version`` is the release whose code records it (:mod:`edge.version`);
        ``tz`` the unit's time zone, by default :func:`edge.localzone.unit_time_zone` at
        ``t_utc``. A ``restart`` event is recorded when the previous session did not end
        cleanly (the process was killed or lost power, or ended with ``clean=False``);
        events recorded between sessions (``store_recovered``, those other processes noted)
        join this session.
        """
        conn = self._writer()
        if self._session_id is not None:
            fail("E266", f"session {self._session_id} is still open", "call close_session first")
        t_utc = _time("t_utc", t_utc)
        fs, epoch_s = _positive("fs", fs), _positive("epoch_s", epoch_s)
        tz = unit_time_zone(t_utc) if tz is None else str(tz)
        self.commit()
        with _transaction(conn, self.path):
            last = conn.execute(
                "SELECT id, ended_utc, clean FROM sessions ORDER BY id DESC LIMIT 1"
            ).fetchone()
            restart = None
            if last is not None and last[1] is None:
                end = conn.execute(
                    "SELECT MAX(t_utc + duration_s) FROM epochs WHERE session_id = ?", (last[0],)
                ).fetchone()[0]
                conn.execute(
                    "UPDATE sessions SET ended_utc = COALESCE(?, started_utc), clean = 0 "
                    "WHERE id = ?",
                    (end, last[0]),
                )
                when = "no data" if end is None else f"last data at {_utc_text(end)}"
                restart = f"session {last[0]} ended without a clean shutdown ({when})"
            elif last is not None and last[2] == 0:
                restart = f"session {last[0]} ended with an error"
            cur = conn.execute(
                "INSERT INTO sessions (source, fs, epoch_s, software_version, started_utc, tz) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (str(source), fs, epoch_s, str(software_version), t_utc, tz),
            )
            sid = int(cur.lastrowid)
            conn.execute("UPDATE events SET session_id = ? WHERE session_id IS NULL", (sid,))
            if restart is not None:
                row = _record_row("event", Event, EVENT_SCHEMA, Event(t_utc, "restart", restart))
                conn.execute(_INSERT_EVENT, (sid, *row))
        self._session_id = sid
        return sid

    @property
    def session_id(self) -> int | None:
        """The open session's id, or ``None``."""
        return self._session_id

    def add_epoch(self, epoch: Epoch) -> None:
        """Buffer an epoch of the open session (written by the next :meth:`commit`).

        Raises E265 for an epoch that breaks the contract (unknown state, a value that is
        not finite, a missing value without a reason), E266 without an open session.
        """
        self._writer()
        row = _record_row("epoch", Epoch, EPOCH_SCHEMA, epoch)
        self._epochs.append((self._open_session(), *row))

    def add_event(self, event: Event) -> None:
        """Buffer an event of the open session (or, between sessions, of the next one)."""
        self._writer()
        row = _record_row("event", Event, EVENT_SCHEMA, event)
        self._events.append((self._session_id, *row))

    @property
    def pending(self) -> int:
        """Rows buffered and not yet committed."""
        return len(self._epochs) + len(self._events)

    def commit(self) -> None:
        """Write the buffer in one transaction; on disk when this returns.

        On failure nothing of the batch is written and the buffer is kept, so a later
        call retries it: E261 the disk (or the size bound) is full, E262 an I/O error,
        E267 the file is locked. Events other processes left (:func:`note_event`) are
        imported first, in their own transaction.
        """
        conn = self._writer()
        self._import_pending_events()
        if not self._epochs and not self._events:
            return
        for attempt in range(3):
            try:
                with _transaction(conn, self.path):
                    before = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'epochs'")
                    last_committed = (before.fetchone() or (0,))[0]
                    conn.executemany(_INSERT_EPOCH, self._epochs)
                    conn.executemany(_INSERT_EVENT, self._events)
                    pruned = self._used_pages() > _PRUNE_HIGH * self._budget_pages
                    if pruned:
                        self._prune(int(_PRUNE_LOW * self._budget_pages), last_committed)
            except BedsideError as error:
                # The size bound, not the disk, stopped the batch: make room and retry.
                if error.code != "E261" or attempt == 2 or not self._near_bound():
                    raise
                with _transaction(conn, self.path):
                    self._prune(int(_PRUNE_LOW * self._budget_pages) - self._batch_pages(), None)
                self._checkpoint()
                continue
            self._epochs.clear()
            self._events.clear()
            if pruned:  # a prune touches many pages: hand the WAL's room back at once
                self._checkpoint()
            return

    def close_session(self, *, clean: bool, t_utc: float) -> None:
        """Commit what is buffered, then mark the open session ended."""
        conn = self._writer()
        sid = self._open_session()
        t_utc = _time("t_utc", t_utc)
        self.commit()
        with _transaction(conn, self.path):
            conn.execute(
                "UPDATE sessions SET ended_utc = ?, clean = ? WHERE id = ?",
                (t_utc, 1 if clean else 0, sid),
            )
        self._session_id = None

    def close(self) -> None:
        """Commit what is buffered and close; safe to call twice.

        If the commit fails the store stays open (the error is raised), so the caller can
        retry; an open session stays open and the next one records a ``restart``.
        """
        if self._conn is None:
            return
        if not self.readonly:
            self.commit()
        self._release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:  # already failing: do not hide that error behind a commit error
            try:
                self.close()
            except BedsideError:
                self._release()

    # --- reading ---------------------------------------------------------------------------

    def sessions(self) -> list[SessionInfo]:
        """Every session still in the store, oldest first."""
        conn = self._reader()
        counts = {}
        try:
            for table in ("epochs", "events"):
                rows = conn.execute(f"SELECT session_id, COUNT(*) FROM {table} GROUP BY session_id")
                counts[table] = dict(rows.fetchall())
            # A store of schema 1 opened read-only (not migrated) has no tz column.
            columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
            tz = "tz" if "tz" in columns else "NULL"
            rows = conn.execute(
                "SELECT id, source, fs, epoch_s, software_version, started_utc, ended_utc, "
                f"clean, {tz} FROM sessions ORDER BY id"
            ).fetchall()
        except sqlite3.Error as error:
            raise _store_error(error, self.path) from error
        return [
            SessionInfo(
                *row[:7],
                clean=None if row[7] is None else bool(row[7]),
                n_epochs=counts["epochs"].get(row[0], 0),
                n_events=counts["events"].get(row[0], 0),
                tz=row[8],
            )
            for row in rows
        ]

    def epochs(
        self, *, session_id: int | None = None, since_id: int = 0
    ) -> Iterator[tuple[int, Epoch]]:
        """``(id, Epoch)`` of committed epochs with ``id > since_id``, in id order."""
        for row in self._rows("epochs", _EPOCH_COLUMNS, session_id, since_id):
            yield row[0], Epoch(*row[1:])

    def events(
        self, *, session_id: int | None = None, since_id: int = 0
    ) -> Iterator[tuple[int, Event]]:
        """``(id, Event)`` of committed events with ``id > since_id``, in id order."""
        for row in self._rows("events", _EVENT_COLUMNS, session_id, since_id):
            yield row[0], Event(*row[1:])

    def integrity_check(self) -> str:
        """SQLite's full ``PRAGMA integrity_check``: ``"ok"`` or what is wrong."""
        rows = self._reader().execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)

    def size_bytes(self) -> int:
        """Bytes on disk: the file and its WAL."""
        wal = _sidecar(self.path, "-wal")
        return sum(p.stat().st_size for p in (self.path, wal) if p.exists())

    # --- internals -------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        if self._conn is None:
            fail("E266", f"{self.path.name}: the store is closed", "open it again")
        return self._conn

    def _writer(self) -> sqlite3.Connection:
        conn = self._reader()
        if self.readonly:
            fail("E266", f"{self.path.name}: opened read-only", "open it without readonly")
        return conn

    def _open_session(self) -> int:
        if self._session_id is None:
            fail("E266", "no session is open", "call open_session first")
        return self._session_id

    def _rows(self, table: str, columns: str, session_id: int | None, since_id: int):
        conn = self._reader()
        where = "id > ?" + ("" if session_id is None else " AND session_id = ?")
        sql = f"SELECT id, {columns} FROM {table} WHERE {where} ORDER BY id LIMIT {_READ_PAGE}"
        last = int(since_id)
        while True:
            args = (last,) if session_id is None else (last, int(session_id))
            try:
                rows = conn.execute(sql, args).fetchall()
            except sqlite3.Error as error:
                raise _store_error(error, self.path) from error
            yield from rows
            if len(rows) < _READ_PAGE:
                return
            last = rows[-1][0]

    def _open_writer(self) -> sqlite3.Connection:
        conn = _connect(self.path, readonly=False)
        try:
            fresh = conn.execute("PRAGMA application_id").fetchone()[0] != _APPLICATION_ID
            if fresh:  # auto_vacuum only takes effect before the first table
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                fail("E260", f"{self.path.name}: WAL mode unavailable", "use a local disk")
            conn.execute("PRAGMA synchronous = FULL")
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            # Room kept for the WAL: checkpointed (and truncated back) at a quarter of it, so
            # the rest holds the largest batch; the file gets what is left.
            wal_bytes = min(_WAL_MAX_BYTES, self.max_bytes // 4)
            conn.execute(f"PRAGMA journal_size_limit = {wal_bytes // 4}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {max(1, wal_bytes // 4 // page)}")
            self._page_size = page
            self._budget_pages = (self.max_bytes - wal_bytes) // page
            if fresh:
                with _transaction(conn, self.path):
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            else:
                _migrate(conn, self.path)
            self._conn = conn
            if self._used_pages() > self._budget_pages:  # max_bytes was lowered
                with _transaction(conn, self.path):
                    self._prune(int(_PRUNE_LOW * self._budget_pages), None)
                conn.executescript("PRAGMA incremental_vacuum;")  # steps to the end
                self._checkpoint()
            conn.execute(f"PRAGMA max_page_count = {self._budget_pages}")
            return conn
        except sqlite3.Error as error:
            conn.close()
            raise _store_error(error, self.path) from error
        except BaseException:
            conn.close()
            raise

    def _used_pages(self) -> int:
        conn = self._conn
        return (
            conn.execute("PRAGMA page_count").fetchone()[0]
            - conn.execute("PRAGMA freelist_count").fetchone()[0]
        )

    def _near_bound(self) -> bool:
        """Whether the batch would reach the size bound (else the disk itself is full)."""
        page_count = self._conn.execute("PRAGMA page_count").fetchone()[0]
        return page_count + self._batch_pages() >= self._budget_pages

    def _batch_pages(self) -> int:
        # Generous: a row of the buffer takes far less than 200 bytes.
        return (len(self._epochs) + len(self._events)) * 200 // self._page_size + 8

    def _prune(self, target_pages: int, last_committed: int | None) -> None:
        """Delete the oldest rows until at most ``target_pages`` are in use.

        Whole sessions other than the open one go first, oldest first; then the open
        session's oldest committed epochs (never rows of the batch being written: only
        ids up to ``last_committed``) and the events before the first epoch kept.
        """
        conn = self._conn
        while self._used_pages() > target_pages:
            oldest = conn.execute(
                "SELECT id FROM sessions WHERE id IS NOT ? ORDER BY id LIMIT 1",
                (self._session_id,),
            ).fetchone()
            if oldest is not None:
                for table in ("epochs", "events"):
                    conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (oldest[0],))
                conn.execute("DELETE FROM sessions WHERE id = ?", oldest)
                continue
            if last_committed is None:
                last_committed = self._epochs_committed_max()
            first, n = conn.execute(
                "SELECT MIN(id), COUNT(*) FROM epochs WHERE id <= ?", (last_committed,)
            ).fetchone()
            if not n:
                return  # only the batch itself is left: max_page_count will refuse it
            cut = first + max(64, n // 8)
            conn.execute("DELETE FROM epochs WHERE id < ?", (cut,))
            kept = conn.execute("SELECT MIN(t_utc) FROM epochs").fetchone()[0]
            if kept is not None:
                conn.execute(
                    "DELETE FROM events WHERE t_utc < ? AND session_id IS ?",
                    (kept, self._session_id),
                )

    def _import_pending_events(self) -> None:
        """Move the events other processes left beside the store (:func:`note_event`) into
        it: they join the open session, or the next one. A failure (a full disk) leaves
        them in the journal for the next commit; it never stops the writer."""
        path = pending_events_path(self.path)
        try:
            if path.stat().st_size == 0:  # one stat per commit when there is nothing
                return
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return
        except OSError as error:
            log.warning("%s: cannot read the pending events (%s)", path.name, error.strerror)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a writer appends a line at a time under it
            with os.fdopen(os.dup(fd), "rb") as f:
                lines = f.read().splitlines()
            rows = [row for row in map(_pending_row, lines) if row is not None]
            conn = self._conn
            if rows:
                with _transaction(conn, self.path):
                    for row in rows:
                        # An import cut short after its commit runs again: skip what is in.
                        held = conn.execute(
                            "SELECT 1 FROM events WHERE t_utc = ? AND kind = ? AND detail = ? "
                            "LIMIT 1",
                            row,
                        ).fetchone()
                        if held is None:
                            conn.execute(_INSERT_EVENT, (self._session_id, *row))
            os.ftruncate(fd, 0)
            os.fsync(fd)
        except BedsideError as error:
            log.warning("pending events kept for the next commit: %s: %s", error.code, error)
        except OSError as error:
            log.warning("%s: cannot empty the pending events (%s)", path.name, error.strerror)
        finally:
            os.close(fd)  # drops the flock

    def _checkpoint(self) -> None:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass  # a busy reader: the next automatic checkpoint does it

    def _epochs_committed_max(self) -> int:
        return self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM epochs").fetchone()[0]

    def _release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_fd is not None:  # after the connection: closing an fd of the file
            os.close(self._lock_fd)  # drops this process's POSIX locks on it
            self._lock_fd = None


# --- events of other processes ----------------------------------------------------------


def pending_events_path(db: str | os.PathLike) -> Path:
    """The journal beside the store at ``db`` where :func:`note_event` leaves events."""
    return _sidecar(Path(db), _PENDING_EVENTS_SUFFIX)


def note_event(db: str | os.PathLike, event: Event) -> Path:
    """Leave ``event`` for the store at ``db``: its writer imports it at its next open or
    commit (see the module docstring). For processes that are not the store's writer (the
    boot manager, the agent): the store itself is not opened, so neither its lock, its
    state nor a full store can stop the caller. On disk (fsynced) when this returns.

    Returns the journal's path. Raises E265 for an event that breaks the contract, E260
    when the journal cannot be written.
    """
    t_utc, kind, detail = _record_row("event", Event, EVENT_SCHEMA, event)
    line = json.dumps({"t_utc": t_utc, "kind": kind, "detail": detail}) + "\n"
    path = pending_events_path(db)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # the importer reads and empties it under the lock
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = "\n" + line  # after a line torn by a killed writer: not glued to it
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        dir_fd = os.open(path.parent, os.O_RDONLY)  # a new journal's name, durable too
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as error:
        fail(
            "E260",
            f"{path.name}: cannot note the {kind} event ({error.strerror})",
            "check the state folder is writable",
        )
    return path


def _pending_row(line: bytes) -> tuple | None:
    """An event row from a journal line; None (and a warning) for a line that is not one
    (only a writer killed mid-line leaves such a line: its event was never acknowledged)."""
    try:
        doc = json.loads(line)
        return _record_row("event", Event, EVENT_SCHEMA, Event(**doc))
    except (ValueError, TypeError, BedsideError) as error:
        log.warning("a pending event that is not one was dropped (%s): %r", error, line[:200])
        return None


# --- helpers --------------------------------------------------------------------------------


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring a store of an older schema version to :data:`_SCHEMA_VERSION`, a version a
    transaction: a kill mid-way leaves a file of one version or the next."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    while version < _SCHEMA_VERSION:
        with _transaction(conn, path):
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        version += 1


@contextmanager
def _transaction(conn: sqlite3.Connection, path: Path) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any error, sqlite errors mapped."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        raise _store_error(error, path) from error
    try:
        yield
        conn.execute("COMMIT")
    except BaseException as error:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite may have rolled back already
        if isinstance(error, sqlite3.Error):
            raise _store_error(error, path) from error
        raise


def _store_error(error: sqlite3.Error, path: Path) -> BedsideError:
    code = getattr(error, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    name = path.name
    if primary == sqlite3.SQLITE_FULL:
        return BedsideError(
            "E261",
            f"{name}: the disk or the store's size bound is full, nothing of the batch was "
            "written (it is kept in memory) — free disk space; the next commit retries it",
        )
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return BedsideError(
            "E267", f"{name}: the store is locked by another process — stop the other writer"
        )
    if primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        return BedsideError(
            "E260", f"{name}: cannot write the store ({error}) — check the folder's permissions"
        )
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return BedsideError(
            "E263", f"{name}: the store is damaged ({error}) — restart the unit to move it aside"
        )
    return BedsideError(
        "E262",
        f"{name}: the store could not be written ({error}); the batch is kept in memory "
        "— check the disk (dmesg); the next commit retries",
    )


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    target = f"file:{quote(str(path))}?mode=ro" if readonly else str(path)
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
    conn = sqlite3.connect(target, uri=readonly, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _open_readonly(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        fail("E263", f"{path.name}: no such store", "check the path (--db)")
    try:
        with path.open("rb") as f:
            magic = f.read(16)
        if magic != _SQLITE_MAGIC:
            fail("E263", f"{path.name}: not a vitals store (not SQLite)", "check the path (--db)")
        conn = _connect(path, readonly=True)
        app = conn.execute("PRAGMA application_id").fetchone()[0]
    except OSError as error:
        fail("E263", f"{path.name}: cannot read ({error.strerror})", "check the path")
    except sqlite3.Error as error:
        raise _store_error(error, path) from error
    if app != _APPLICATION_ID:
        conn.close()
        fail("E263", f"{path.name}: another application's SQLite file", "check the path (--db)")
    return conn


def _lock(path: Path) -> int:
    """Check the path can be written and hold the one-writer lock on it (flock)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            fail("E260", f"{path.name}: is a folder", "give a file path for the store (--db)")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        fail(
            "E260",
            f"{path.name}: cannot write the store ({error.strerror})",
            "check the folder exists and is writable, or choose another --db",
        )
    if not os.access(path.parent, os.W_OK):  # the WAL and its index live beside the file
        os.close(fd)
        fail("E260", f"{path.name}: its folder is read-only", "choose a writable folder (--db)")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        fail("E267", f"{path.name}: another process is writing this store", "stop it first")
    return fd


def _diagnose(path: Path) -> str | None:
    """``None`` if ``path`` is empty or a healthy store of ours, else what is wrong with it."""
    if path.stat().st_size == 0:
        return None
    with path.open("rb") as f:
        magic = f.read(16)
    if magic != _SQLITE_MAGIC:
        return "not an SQLite file"
    had = {suffix for suffix in ("-wal", "-shm") if _sidecar(path, suffix).exists()}
    problem = _inspect(path)
    if problem is not None:  # looking made an empty WAL and index: not part of the evidence
        for suffix in {"-wal", "-shm"} - had:
            _sidecar(path, suffix).unlink(missing_ok=True)
    return problem


def _inspect(path: Path) -> str | None:
    try:  # read-only: a foreign file's WAL is neither checkpointed nor deleted by looking
        conn = _connect(path, readonly=True)
    except sqlite3.Error as error:
        return f"cannot be opened ({error})"
    try:
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT COUNT(*) FROM sqlite_schema").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if app != _APPLICATION_ID:
            return None if app == 0 and tables == 0 else "another application's SQLite file"
        if version > _SCHEMA_VERSION:
            return f"written by a newer version (schema {version})"
        check = conn.execute("PRAGMA quick_check").fetchall()
        if [r[0] for r in check] != ["ok"]:
            return f"damaged ({check[0][0]})"
        return None
    except sqlite3.Error as error:
        return f"damaged ({error})"
    finally:
        conn.close()


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _move_aside(path: Path) -> Path:
    """Rename ``path`` (and its -wal, -shm) to ``PATH.corrupt-<UTC stamp>``; never overwrite."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = _sidecar(path, f".corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = _sidecar(path, f".corrupt-{stamp}-{n}")
        n += 1
    try:
        # The WAL goes along under the name SQLite expects, so the copy opens as it was;
        # left behind, it would be replayed into the new store.
        for suffix in ("-wal", "-shm"):
            if _sidecar(path, suffix).exists():
                os.rename(_sidecar(path, suffix), _sidecar(aside, suffix))
        os.rename(path, aside)
    except OSError as error:
        fail(
            "E260",
            f"{path.name}: is damaged and cannot be moved aside ({error.strerror})",
            "move it away by hand, then start again",
        )
    return aside


def _record_row(what: str, record_type: type, schema: tuple[Field, ...], record) -> tuple:
    """The values of ``record`` (an Epoch or Event) as the store writes them, in column order,
    each checked as its field asks (:mod:`edge.records`); E265 for one that breaks the contract."""
    name = record_type.__name__
    if not isinstance(record, record_type):
        fail("E265", f"expected an {name}, got {type(record).__name__}", f"pass an {name}")
    row = tuple(_field_value(what, f, getattr(record, f.name)) for f in schema)
    for f, value in zip(schema, row, strict=True):
        if f.reason is not None and value is None and not getattr(record, f.reason):
            fail("E265", f"{what} {f.name} is None without a reason", f"set {f.reason}")
    return row


def _field_value(what: str, f: Field, value):
    if value is None and f.nullable:
        return None
    if f.kind == "text":
        if not f.choices:
            return str(value)
        if value not in f.choices:
            fail("E265", f"{what} {f.name} {value!r} is unknown", f"use one of {f.choices}")
        return value
    if f.kind == "int":  # a count
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            fail(
                "E265",
                f"{what} {f.name} must be a whole number >= 0, got {value!r}",
                f"count {f.name}",
            )
        return int(value)
    if f.check == "time":
        return _time(f.name, value)
    if f.check == "duration":
        duration = _positive(f.name, value)
        if duration > MAX_EPOCH_S:
            fail(
                "E265",
                f"{what} {f.name} {duration:g} s is above {MAX_EPOCH_S:g} s",
                "use shorter epochs",
            )
        return duration
    number = _number(f.name, value)
    if f.check == "probability" and not 0.0 <= number <= 1.0:
        fail("E265", f"{what} {f.name} {number:g} is outside 0..1", "pass a probability")
    return number


def _number(name: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        fail("E265", f"{name}: expected a number, got {value!r}", "pass a number or None")
    if not math.isfinite(out):
        fail("E265", f"{name}: {out} is not finite", "store None and the reason instead")
    return out


def _positive(name: str, value) -> float:
    out = _number(name, value)
    if out <= 0:
        fail("E265", f"{name}: must be positive, got {out:g}", "pass a positive number")
    return out


def _time(name: str, value) -> float:
    out = _number(name, value)
    if out < 0:
        fail("E265", f"{name}: {out:g} is before 1970", "pass Unix seconds UTC")
    return out


def _utc_text(t_utc: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t_utc))
