"""The laptop's log archive: what ``logs pull`` copied from each unit, one SQLite file per unit.

    archive = Archive.create(folder, device_id)       # or Archive.open(path) to read
    with archive:
        archive.add_epochs(generation, rows)           # rows and their cursor in one transaction

Layout of the archive folder::

    DIR/units/<device_id>.sqlite   one unit's sessions, epochs, events, log files, cursors
    DIR/export.key                 the pseudonyms' secret (made by the first export)

One file per unit: pulls from several units at once never wait for each other, a damaged
file costs one unit, and one unit's data is one file to send. ``logs export`` reads them all.

Every batch of rows is written in the same transaction as the cursor it advances (WAL,
``synchronous=FULL``): a pull killed at any moment leaves the archive at the end of the last
page it committed, and the next pull asks for the rows after it. A batch that does not start
after the cursor is refused whole (E363), so no row is ever stored twice.

A unit's store can start anew (a damaged file is moved aside) and count its ids from 1
again: each such store is a ``generation``, and rows are keyed by (generation, id).
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from edge.errors import BedsideError, fail
from edge.log_pages import EPOCH_COLUMNS, EVENT_COLUMNS
from edge.nights import (
    ARCHIVE_SUFFIX,
    ARCHIVE_UNITS,
    Night,
    archive_unit_files,
    list_nights,
    summarize_night,
)
from edge.records import EPOCH_SCHEMA, EVENT_SCHEMA, sql_columns

try:
    import fcntl

    from edge.files import fsync_dir  # POSIX only, like fcntl
except ImportError:  # Windows: no flock, and a folder cannot be opened to fsync it
    fcntl = None
    fsync_dir = None

__all__ = ["ARCHIVE_ENV", "Archive", "SessionRow", "default_archive_dir", "unit_archives"]

#: The folder layout, ``DIR/units/<device_id>.sqlite``: edge.nights reads archives as well.
UNITS_DIR, SUFFIX = ARCHIVE_UNITS, ARCHIVE_SUFFIX
#: The environment variable naming the archive folder (see :func:`default_archive_dir`).
ARCHIVE_ENV = "BEDSIDE_ARCHIVE"
#: Device ids that can name an archive file as they are.
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_APPLICATION_ID = 0x42434741  # "BCGA": tells an archive from another SQLite file
_SCHEMA_VERSION = 2
#: What each version after the first adds, run in order by the writer that opens an older
#: archive (a reader takes it as it is: a missing column reads as unknown).
_MIGRATIONS = {2: "ALTER TABLE sessions ADD COLUMN tz TEXT"}

# The epochs' and events' columns after the unit's id and session_id are their records'
# fields (edge.records).
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cursors (
    generation INTEGER NOT NULL,
    stream TEXT NOT NULL,           -- 'epochs' or 'events'
    session_id INTEGER NOT NULL,    -- the session of the last row copied
    last_id INTEGER NOT NULL,       -- the unit's id of the last row copied
    PRIMARY KEY (generation, stream)
);
CREATE TABLE sessions (
    generation INTEGER NOT NULL,
    id INTEGER NOT NULL,
    source TEXT NOT NULL,
    fs REAL NOT NULL,
    epoch_s REAL NOT NULL,
    software_version TEXT NOT NULL,
    started_utc REAL NOT NULL,
    ended_utc REAL,
    clean INTEGER,
    person TEXT,                    -- the participant the unit was with when first pulled
    unit_epochs INTEGER NOT NULL,   -- rows the unit had at the last pull (for progress)
    unit_events INTEGER NOT NULL,
    tz TEXT,                        -- the unit's time zone (NULL: a unit that did not say)
    PRIMARY KEY (generation, id)
);
CREATE TABLE epochs (
    generation INTEGER NOT NULL,
    id INTEGER NOT NULL,
    session_id INTEGER NOT NULL,
{sql_columns(EPOCH_SCHEMA)},
    PRIMARY KEY (generation, id)
);
CREATE TABLE events (
    generation INTEGER NOT NULL,
    id INTEGER NOT NULL,
    session_id INTEGER NOT NULL,
{sql_columns(EVENT_SCHEMA)},
    PRIMARY KEY (generation, id)
);
CREATE TABLE log_files (
    ident TEXT PRIMARY KEY,         -- digest of the file's first line: survives rotation
    name TEXT NOT NULL,             -- its name when last seen
    offset INTEGER NOT NULL         -- bytes copied
);
CREATE TABLE log_chunks (
    ident TEXT NOT NULL,
    offset INTEGER NOT NULL,
    data BLOB NOT NULL,             -- whole lines, as the unit wrote them
    PRIMARY KEY (ident, offset)
);
CREATE TABLE pulls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_utc REAL NOT NULL,
    ended_utc REAL,
    epochs INTEGER NOT NULL DEFAULT 0,
    events INTEGER NOT NULL DEFAULT 0,
    log_bytes INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0
);
"""
#: The columns each table's rows are read and written with, after the generation: epochs and
#: events as the unit's pages carry them (edge.log_pages).
COLUMNS = {
    "epochs": ", ".join(name for name, _ in EPOCH_COLUMNS),
    "events": ", ".join(name for name, _ in EVENT_COLUMNS),
    "sessions": "id, source, fs, epoch_s, software_version, started_utc, ended_utc, clean, person",
}


@dataclass(frozen=True)
class SessionRow:
    """A session as the archive holds it (``unit_*``: the unit's row counts at the last pull)."""

    generation: int
    id: int
    source: str
    started_utc: float
    ended_utc: float | None
    unit_epochs: int
    unit_events: int


class Archive:
    """One unit's archive file. Use :meth:`create` to pull into it, :meth:`open` to read it.

    A writer holds an exclusive lock on the file for its lifetime (a second pull of the same
    unit gets E364); readers (exports) need none.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, lock_fd: int | None) -> None:
        self.path = path
        self._conn = conn
        self._lock_fd = lock_fd

    @classmethod
    def create(cls, folder: str | os.PathLike, device_id: str) -> Archive:
        """Open (making it if needed) the archive of unit ``device_id`` in ``folder`` to write."""
        if not isinstance(device_id, str) or not DEVICE_ID.fullmatch(device_id):
            fail(
                "E368",
                f"the unit's device id {device_id!r} cannot name an archive file",
                "give the unit a device id of letters, digits, '.', '_' and '-'",
            )
        path = Path(folder) / UNITS_DIR / f"{device_id}{SUFFIX}"
        try:
            _make_folders(path.parent)
            if not path.exists():
                _create_empty(path, device_id)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            fail("E360", f"cannot write the archive {path.name} ({error.strerror})", _WRITABLE)
        try:
            if fcntl is not None:  # Windows has no flock: two pulls of one unit are not stopped
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            fail(
                "E364",
                f"another pull of unit {device_id} is writing its archive",
                "wait for it to finish, then pull again",
            )
        conn = None
        try:
            conn = _connect(path, readonly=False)
            archive = cls(path, conn, fd)
            archive._prepare(device_id)
        except BaseException:
            if conn is not None:
                conn.close()
            os.close(fd)
            raise
        return archive

    @classmethod
    def open(cls, path: str | os.PathLike) -> Archive:
        """Open an existing archive file to read (E361 if it is not one)."""
        path = Path(path)
        try:
            conn = _connect(path, readonly=True)
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as error:
            raise _archive_error(error, path) from error
        if app != _APPLICATION_ID or version > _SCHEMA_VERSION:
            conn.close()
            fail("E361", f"{path.name} is not a log archive this version reads", _ASIDE)
        return cls(path, conn, None)

    def close(self) -> None:
        """Close the file and drop the lock; safe to call twice."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- what is there ----------------------------------------------------------------------

    @property
    def device_id(self) -> str:
        """The unit's device id (the real one: exports replace it by a pseudonym)."""
        return self.meta("device_id") or self.path.stem

    @property
    def generation(self) -> int:
        """The unit store's generation rows are filed under now (see the module docstring)."""
        return int(self.meta("generation") or 1)

    def meta(self, key: str) -> str | None:
        """A value of the archive's ``meta`` table (device_id, generation, person), or None."""
        row = self._query("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def cursor(self, stream: str, generation: int) -> tuple[int, int]:
        """``(session_id, last_id)`` of the last ``stream`` row copied; ``(0, 0)`` before any."""
        row = self._query(
            "SELECT session_id, last_id FROM cursors WHERE generation = ? AND stream = ?",
            (generation, stream),
        ).fetchone()
        return (0, 0) if row is None else (row[0], row[1])

    def sessions(self, generation: int | None = None) -> list[SessionRow]:
        """The sessions archived (of one generation, or all), in order."""
        where = "" if generation is None else "WHERE generation = ?"
        rows = self._query(
            "SELECT generation, id, source, started_utc, ended_utc, unit_epochs, unit_events "
            f"FROM sessions {where} ORDER BY generation, id",
            () if generation is None else (generation,),
        ).fetchall()
        return [SessionRow(*row) for row in rows]

    def count(self, table: str, generation: int | None = None) -> int:
        """Rows archived in ``table`` ("epochs", "events", "sessions")."""
        if table not in ("epochs", "events", "sessions"):
            raise ValueError(f"unknown table {table!r}")
        where = "" if generation is None else " WHERE generation = ?"
        args = () if generation is None else (generation,)
        return self._query(f"SELECT COUNT(*) FROM {table}{where}", args).fetchone()[0]

    def count_in_session(self, table: str, generation: int, session_id: int) -> int:
        """Rows archived in ``table`` ("epochs" or "events") of one session."""
        if table not in ("epochs", "events"):
            raise ValueError(f"unknown table {table!r}")
        return self._query(
            f"SELECT COUNT(*) FROM {table} WHERE generation = ? AND session_id = ?",
            (generation, session_id),
        ).fetchone()[0]

    def rows(
        self, table: str, *, generation: int | None = None, session_id: int | None = None
    ) -> Iterator[tuple]:
        """Every row of ``table`` ("epochs", "events", "sessions") with its generation first,
        in (generation, id) order, read in slices so memory stays flat; only those of one
        ``generation`` and, for epochs and events, one ``session_id`` when given."""
        where, args = "", ()
        if generation is not None:
            where, args = " AND generation = ?", (generation,)
            if session_id is not None and table != "sessions":
                where, args = f"{where} AND session_id = ?", (*args, session_id)
        sql = (
            f"SELECT generation, {COLUMNS[table]} FROM {table} "
            f"WHERE (generation, id) > (?, ?){where} ORDER BY generation, id LIMIT 4096"
        )
        last = (0, 0)
        while True:
            batch = self._query(sql, (*last, *args)).fetchall()
            yield from batch
            if len(batch) < 4096:
                return
            last = batch[-1][:2]

    def session_counts(self, table: str) -> dict[tuple[int, int], tuple[int, int]]:
        """``(generation, session_id) -> (rows, last id)`` of ``table`` ("epochs" or
        "events"), for every session that has rows there: what changes as a pull adds rows."""
        if table not in ("epochs", "events"):
            raise ValueError(f"unknown table {table!r}")
        rows = self._query(
            f"SELECT generation, session_id, COUNT(*), MAX(id) FROM {table} "
            "GROUP BY generation, session_id"
        ).fetchall()
        return {(g, s): (n, last) for g, s, n, last in rows}

    def nights(self) -> list[Night]:
        """Every archived session's :class:`edge.nights.Night` (the night report's figures),
        by night date and start; ``generation`` tells a new store's sessions apart."""
        return self._nights(list_nights)

    def night(self, generation: int, session_id: int) -> Night:
        """The :class:`edge.nights.Night` of one archived session."""
        return self._nights(summarize_night, session_id, generation=generation)

    def log_offset(self, ident: str) -> int:
        """Bytes of log file ``ident`` copied so far."""
        row = self._query("SELECT offset FROM log_files WHERE ident = ?", (ident,)).fetchone()
        return 0 if row is None else row[0]

    def log_text(self, ident: str) -> bytes:
        """Everything copied of log file ``ident``, in order."""
        rows = self._query(
            "SELECT data FROM log_chunks WHERE ident = ? ORDER BY offset", (ident,)
        ).fetchall()
        return b"".join(r[0] for r in rows)

    # --- writing ----------------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        """Set a ``meta`` value (committed at once)."""
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    def new_generation(self) -> int:
        """Start filing rows under a new generation (the unit's store started anew)."""
        generation = self.generation + 1
        self.set_meta("generation", str(generation))
        return generation

    def save_sessions(self, generation: int, rows: Sequence[tuple]) -> None:
        """Insert or update sessions (rows of ``edge.log_pages.SESSION_COLUMNS``, then the
        time zone when the unit sent it).

        A session's end and counts change on the unit; its person stays the one it was
        first archived with.
        """
        person = self.meta("person")
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO sessions (generation, id, source, fs, epoch_s, software_version, "
                "started_utc, ended_utc, clean, person, unit_epochs, unit_events, tz) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (generation, id) DO UPDATE SET ended_utc = excluded.ended_utc, "
                "clean = excluded.clean, unit_epochs = excluded.unit_epochs, "
                "unit_events = excluded.unit_events, tz = COALESCE(excluded.tz, tz)",
                [
                    (
                        generation,
                        *r[:7],
                        None if r[7] is None else int(r[7]),
                        person,
                        r[8],
                        r[9],
                        r[10] if len(r) > 10 else None,
                    )
                    for r in rows
                ],
            )

    def add_epochs(self, generation: int, rows: Sequence[tuple]) -> None:
        """Store epoch rows (``EPOCH_COLUMNS`` order) and advance the cursor past them."""
        self._add("epochs", generation, rows)

    def add_events(self, generation: int, rows: Sequence[tuple]) -> None:
        """Store event rows (``EVENT_COLUMNS`` order) and advance the cursor past them."""
        self._add("events", generation, rows)

    def add_log_chunk(self, ident: str, name: str, offset: int, data: bytes) -> None:
        """Store bytes of log file ``ident`` that start at ``offset``, the file's cursor."""
        with self._transaction() as conn:
            row = conn.execute("SELECT offset FROM log_files WHERE ident = ?", (ident,)).fetchone()
            have = 0 if row is None else row[0]
            if offset != have:
                _out_of_step(f"log {name}: bytes from {offset}, the archive has {have}")
            if data:
                conn.execute("INSERT INTO log_chunks VALUES (?, ?, ?)", (ident, offset, data))
            conn.execute(
                "INSERT INTO log_files VALUES (?, ?, ?) ON CONFLICT (ident) DO UPDATE "
                "SET name = excluded.name, offset = excluded.offset",
                (ident, name, offset + len(data)),
            )

    def start_pull(self) -> int:
        """Record that a pull started; returns its id for :meth:`end_pull`."""
        with self._transaction() as conn:
            cur = conn.execute("INSERT INTO pulls (started_utc) VALUES (?)", (time.time(),))
            return int(cur.lastrowid)

    def end_pull(
        self, pull_id: int, *, epochs: int, events: int, log_bytes: int, complete: bool
    ) -> None:
        """Record what a pull copied, and whether it reached the end."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE pulls SET ended_utc = ?, epochs = ?, events = ?, log_bytes = ?, "
                "complete = ? WHERE id = ?",
                (time.time(), epochs, events, log_bytes, int(complete), pull_id),
            )

    # --- internals --------------------------------------------------------------------------

    def _add(self, table: str, generation: int, rows: Sequence[tuple]) -> None:
        if not rows:
            return
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT session_id, last_id FROM cursors WHERE generation = ? AND stream = ?",
                (generation, table),
            ).fetchone()
            session_id, last_id = (0, 0) if row is None else row
            for r in rows:  # ids rise, and sessions never go back
                if r[0] <= last_id or r[1] < session_id:
                    _out_of_step(
                        f"{table}: row {r[0]} of session {r[1]} does not follow row {last_id} "
                        f"of session {session_id}"
                    )
                last_id, session_id = r[0], r[1]
            columns = COLUMNS[table]
            marks = ", ".join("?" * (columns.count(",") + 2))
            conn.executemany(
                f"INSERT INTO {table} (generation, {columns}) VALUES ({marks})",
                [(generation, *r) for r in rows],
            )
            conn.execute(
                "INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?)",
                (generation, table, session_id, last_id),
            )

    def _prepare(self, device_id: str) -> None:
        conn = self._conn
        try:
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_schema").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as error:
            raise _archive_error(error, self.path) from error
        if app == 0 and tables == 0:  # an empty file
            self._initialise(device_id)
        elif app != _APPLICATION_ID or version > _SCHEMA_VERSION:
            fail("E361", f"{self.path.name} is not a log archive this version reads", _ASIDE)
        elif self.meta("device_id") != device_id:
            fail("E361", f"{self.path.name} holds another unit's logs", _ASIDE)
        elif version < _SCHEMA_VERSION:
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        """Bring an archive of an older ``version`` to this one, in one transaction."""
        with self._transaction() as c:
            for step in range(version + 1, _SCHEMA_VERSION + 1):
                c.execute(_MIGRATIONS[step])
            c.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def _initialise(self, device_id: str) -> None:
        """The schema and the unit's id, in an empty file."""
        self._conn.execute("PRAGMA journal_mode = WAL")
        with self._transaction() as c:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)
            c.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            c.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            c.execute("INSERT INTO meta VALUES ('device_id', ?)", (device_id,))
            c.execute("INSERT INTO meta VALUES ('generation', '1')")

    def _nights(self, summary, *args, **kwargs):
        """``summary(connection, ...)`` of :mod:`edge.nights`, with the archive's errors."""
        if self._conn is None:
            raise BedsideError("E360", f"{self.path.name}: the archive is closed — open it again")
        try:
            return summary(self._conn, *args, **kwargs)
        except sqlite3.Error as error:
            raise _archive_error(error, self.path) from error

    def _query(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        if self._conn is None:
            raise BedsideError("E360", f"{self.path.name}: the archive is closed — open it again")
        try:
            return self._conn.execute(sql, args)
        except sqlite3.Error as error:
            raise _archive_error(error, self.path) from error

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise _archive_error(error, self.path) from error
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise _archive_error(error, self.path) from error
            raise


def _create_empty(path: Path, device_id: str) -> None:
    """Make a complete, empty archive at ``path`` in one step: built and fsynced beside it,
    then linked into place. A pull killed or cut off before its first commit leaves no
    archive rather than an unfinished file that every reader refuses (E361; found by
    ``make crashcheck``); when another pull made it first, that one stays."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")  # not an archive's name
    try:
        os.close(os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600))
        conn = _connect(tmp, readonly=False)
        try:
            Archive(tmp, conn, None)._initialise(device_id)
        finally:
            conn.close()  # the last connection: the WAL is checkpointed into the file
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    if fsync_dir is not None:  # the new name survives a power cut
        fsync_dir(path.parent)


def _make_folders(folder: Path) -> None:
    """``mkdir -p`` (0700: health data), each new folder's name fsynced in its parent: else
    a power cut after a pull can take the new archive folder, every row in it, away (SQLite
    syncs only the folder its own files are in; found by ``make crashcheck``)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for new in reversed(missing):
        new.mkdir(mode=0o700, exist_ok=True)
        if fsync_dir is not None:
            fsync_dir(new.parent)


def default_archive_dir() -> Path:
    """The archive folder when ``--archive`` is not given: ``$BEDSIDE_ARCHIVE``, else
    ``~/bedside-archive``."""
    if os.environ.get(ARCHIVE_ENV):
        return Path(os.environ[ARCHIVE_ENV])
    return Path.home() / "bedside-archive"


def unit_archives(folder: str | os.PathLike) -> list[Path]:
    """The archive files in ``folder``, by name."""
    return archive_unit_files(folder)


_WRITABLE = "check the archive folder (--archive) exists and is writable, and the disk has room"
_ASIDE = "move the file out of the archive folder; the next pull starts that unit afresh"


def _out_of_step(what: str):
    fail(
        "E363",
        f"the unit's rows do not follow the archive ({what})",
        "nothing was written; pull again, and report it if it repeats",
    )


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        if not path.is_file():
            fail("E361", f"{path.name}: no such archive", "check the path (--archive)")
        target = f"file:{quote(str(path))}?mode=ro"
        conn = sqlite3.connect(target, uri=True, isolation_level=None)
    else:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA synchronous = FULL")  # a committed page survives a power cut
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _archive_error(error: sqlite3.Error, path: Path) -> BedsideError:
    code = getattr(error, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return BedsideError("E361", f"{path.name}: the archive is damaged ({error}) — {_ASIDE}")
    return BedsideError("E360", f"{path.name}: cannot use the archive ({error}) — {_WRITABLE}")
