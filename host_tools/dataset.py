"""``logs export --dataset DIR``: a Hive-partitioned Parquet dataset of every night, appended
as new pulls arrive; ``bedside-host query`` asks it questions in SQL (DuckDB).

    result = export_dataset("trial-logs/", "trial-dataset/")   # again after each pull
    print(query("trial-dataset/", "SELECT device, night, hr_mean_bpm FROM nights"))

Layout (the tables and columns of :mod:`host_tools.export`, less ``device`` and ``night``,
which are the partition folders)::

    DIR/nights/device=u_9184a7be73e2e9f8/night=2026-11-24/part-0.parquet
    DIR/sessions/device=.../night=.../part-0.parquet
    DIR/epochs/device=.../night=.../part-0.parquet
    DIR/events/device=.../night=.../part-0.parquet
    DIR/_bedside_dataset.json      what was written from which sessions (readers skip "_" names)

A night is a unit's sessions whose night date (:mod:`edge.nights`: the local date of the
evening it began) is that date. Each export compares every archived session with what the
dataset was last written from (its rows, last row id, end and person) and writes only the
nights that are new or changed: a night that grew is rewritten whole, in place, under the
same file name, so a row is never in the dataset twice. A night's files are written under
hidden names and renamed into place together once all are whole
(:func:`host_tools.parquet.stage_parquet`), and the record of what was written follows each
night: an export killed at any moment leaves a dataset every reader can read, and the next
export redoes what was missing.

The files are standard Parquet (timestamps are UTC instants), the folders ``key=value``
Hive partitions: DuckDB reads them here, Spark and Trino the same folder unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import fail
from edge.files import atomic_write

from .archive import Archive
from .export import (
    TABLES,
    archive_paths,
    load_key,
    output_columns,
    pseudonym,
    rounded,
    table_rows,
)
from .parquet import duckdb_connection, publish, stage_parquet

try:
    import fcntl
except ImportError:  # Windows: no flock (two exports into one dataset are not stopped)
    fcntl = None

__all__ = [
    "DATASET_ENV",
    "MANIFEST",
    "PARTITIONS",
    "DatasetResult",
    "export_dataset",
    "query",
    "table_glob",
]

#: The file recording what the dataset was written from.
MANIFEST = "_bedside_dataset.json"
#: The partition columns, in folder order: they are not inside the files.
PARTITIONS = ("device", "night")
#: The environment variable naming the dataset folder for ``bedside-host query``.
DATASET_ENV = "BEDSIDE_DATASET"
_FORMAT = 1
_LOCK = ".lock"
_PART = "part-0.parquet"


@dataclass
class DatasetResult:
    """What one dataset export did."""

    dataset: str
    units: int = 0
    nights_written: int = 0  #: nights new in the dataset
    nights_rewritten: int = 0  #: nights that had grown (or changed) and were written again
    nights_removed: int = 0  #: nights left without sessions (a session's date moved)
    nights_unchanged: int = 0
    rows: dict = field(default_factory=dict)  #: table -> rows written

    def summary(self) -> str:
        """One line for the terminal."""
        if not (self.nights_written or self.nights_rewritten or self.nights_removed):
            return (
                f"dataset {self.dataset}: {self.units} units, nothing new "
                f"({self.nights_unchanged} nights up to date)"
            )
        counts = ", ".join(f"{n} {table}" for table, n in self.rows.items())
        return (
            f"dataset {self.dataset}: {self.units} units, {self.nights_written} new nights, "
            f"{self.nights_rewritten} rewritten, {self.nights_unchanged} unchanged ({counts})"
        )

    def as_json(self) -> dict:
        """The fields as a JSON-ready dict."""
        return dict(self.__dict__)


def export_dataset(
    folder: str | os.PathLike,
    dataset: str | os.PathLike,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> DatasetResult:
    """Bring the dataset ``dataset`` up to date with the archive in ``folder``;
    ``on_progress(done, total)`` counts the epochs written.

    Raises E369 (an empty archive), E372 (the pseudonym key), E394 (the dataset folder
    cannot be written), E395 (it was written with another key or by a newer version),
    E396 (another export is writing it), E371 (no duckdb), E361 (a damaged archive).
    """
    on_progress = on_progress or (lambda done, total: None)
    paths = archive_paths(folder)
    key = load_key(folder)
    con = duckdb_connection()  # before any work: fail fast without duckdb (E371)
    root = Path(dataset)
    result = DatasetResult(dataset=str(dataset), units=len(paths))
    result.rows = dict.fromkeys(TABLES, 0)
    try:
        try:
            root.mkdir(parents=True, exist_ok=True)
            lock = os.open(root / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            fail(
                "E394", f"cannot make the dataset folder {root.name} ({error.strerror})", _WRITABLE
            )
        try:
            _lock(lock, root)
            manifest = _load_manifest(root, _key_id(key))
            _save_manifest(root, manifest)  # first: the folder is a dataset from now on
            _remove_leftovers(root)
            plans = [_plan(path, key, manifest) for path in paths]
            total = sum(plan.rows for plan in plans)
            done = 0

            def advance(n: int) -> None:
                nonlocal done
                done += n
                on_progress(done, max(total, done))

            for plan in plans:
                _export_unit(con, plan, key, root, manifest, result, advance)
        except OSError as error:
            fail("E394", f"cannot write the dataset {root.name} ({error.strerror})", _WRITABLE)
        finally:
            os.close(lock)  # also drops the flock
    finally:
        con.close()
    return result


def table_glob(dataset: str | os.PathLike, table: str) -> str:
    """The glob of ``table``'s files in the dataset (``DIR/table/*/*/*.parquet``)."""
    return str(Path(dataset) / table / "*" / "*" / "*.parquet")


def query(dataset: str | os.PathLike, sql: str) -> tuple[list[str], list[tuple]]:
    """Run ``sql`` (DuckDB) on the dataset, whose tables are views named as in
    :data:`host_tools.export.TABLES`; returns the column names and the rows.

    Timestamps come back as ISO 8601 UTC text (``2026-11-24T22:30:00.000Z``), dates as
    ``YYYY-MM-DD``. Raises E398 (no dataset there), E397 (the SQL failed), E371.
    """
    root = Path(dataset)
    if not (root / MANIFEST).is_file():
        fail(
            "E398",
            f"no dataset in {root.name or root}",
            "run bedside-host logs export --dataset DIR first, or pass --dataset",
        )
    con = duckdb_connection()
    import duckdb  # there: duckdb_connection() raised E371 without it

    try:
        for table in TABLES:
            if any(root.glob(f"{table}/*/*/*.parquet")):
                con.execute(f"CREATE VIEW {table} AS {_read(root, table)}")
        try:
            relation = con.sql(sql)
            if relation is None:  # a statement without a result
                return [], []
            names = relation.columns
            shown = ", ".join(
                _as_text(name, str(kind)) for name, kind in zip(names, relation.types, strict=True)
            )
            rows = relation.project(shown).fetchall()
        except duckdb.Error as error:  # the user's SQL: a parser, binder, catalog... error
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            fail(
                "E397",
                f"the query failed: {first}",
                "check the SQL; tables: nights, sessions, epochs, events (docs/field-tester.md)",
            )
    finally:
        con.close()
    return list(names), rows


# --- one unit ---------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What one unit's archive has that the dataset has not: its sessions' fingerprints
    now, and those that changed since the manifest (new, grown, ended, or gone)."""

    path: Path
    device: str
    now: dict[str, list]
    changed: set[str]
    gone: set[str]

    @property
    def rows(self) -> int:
        """Epochs of the changed sessions: the work ahead, for the progress bar."""
        return sum(self.now[name][0] for name in self.changed)


def _plan(path: Path, key: bytes, manifest: dict) -> _Plan:
    with Archive.open(path) as archive:
        device = pseudonym(key, "device", archive.device_id)
        now = _fingerprints(archive, key)
    before = manifest["units"].get(device, {})
    changed = {name for name, fp in now.items() if before.get(name, {}).get("fp") != fp}
    gone = set(before) - set(now)  # never, unless an archive file was replaced
    return _Plan(path, device, now, changed, gone)


def _export_unit(
    con, plan: _Plan, key: bytes, root: Path, manifest: dict, result: DatasetResult, advance
) -> None:
    """Write the nights of one unit's archive that are new or changed since the manifest."""
    path, device, now, changed = plan.path, plan.device, plan.now, plan.changed
    before: dict = manifest["units"].setdefault(device, {})
    dates = {name: before[name]["night"] for name in now if name not in changed}
    with Archive.open(path) as archive:
        summaries = {_split(name): archive.night(*_split(name)) for name in changed}
    for name in changed:
        dates[name] = summaries[_split(name)].night_date.isoformat()
    touched = {dates[n] for n in changed} | {
        before[n]["night"] for n in changed | plan.gone if n in before
    }
    nights = defaultdict(list)
    for name, night in dates.items():
        nights[night].append(name)
    known = {entry["night"] for entry in before.values()}
    result.nights_unchanged += len(set(nights) - touched)
    for night in sorted(touched):
        names = nights.get(night, [])
        if names:
            sessions = {_split(n) for n in names}
            staged = []
            try:
                for table in TABLES:
                    rows = table_rows(path, table, key, sessions, known=summaries)
                    hidden, target, n = _stage_partition(con, root, table, device, night, rows)
                    staged.append((hidden, target))
                    result.rows[table] += n
                    if table == "epochs":
                        advance(n)
            except BaseException:
                for hidden, _ in staged:
                    hidden.unlink(missing_ok=True)
                raise
            for hidden, target in staged:  # the night's tables change together
                publish(hidden, target)
            if night in known:
                result.nights_rewritten += 1
            else:
                result.nights_written += 1
        else:
            for table in TABLES:
                shutil.rmtree(_partition(root, table, device, night), ignore_errors=True)
            result.nights_removed += 1
        # What this night was written from, recorded once its files are all in place.
        for name in [n for n, entry in before.items() if entry["night"] == night]:
            del before[name]
        before.update({n: {"night": night, "fp": now[n]} for n in names})
        _save_manifest(root, manifest)


def _stage_partition(
    con, root: Path, table: str, device: str, night: str, rows
) -> tuple[Path, Path, int]:
    """Stage ``rows`` of ``table`` (:func:`host_tools.export.table_rows`) for the partition
    ``device``/``night``, without the partition columns: (hidden file, its target, rows)."""
    folder = _partition(root, table, device, night)
    folder.mkdir(parents=True, exist_ok=True)
    columns = output_columns(table)
    keep = [i for i, (name, _) in enumerate(columns) if name not in PARTITIONS]
    inside = (tuple(row[i] for i in keep) for row in rounded(table, rows))
    target = folder / _PART
    hidden, n = stage_parquet(target, [columns[i] for i in keep], inside, con=con)
    return hidden, target, n


def _fingerprints(archive: Archive, key: bytes) -> dict[str, list]:
    """``"generation/session_id" -> what changes when a pull adds to that session``."""
    epochs = archive.session_counts("epochs")
    events = archive.session_counts("events")
    out = {}
    for row in archive.rows("sessions"):
        generation, session_id = row[0], row[1]
        ended, clean, person = row[7], row[8], row[9]
        out[f"{generation}/{session_id}"] = [
            *epochs.get((generation, session_id), (0, 0)),
            *events.get((generation, session_id), (0, 0)),
            ended,
            clean,
            None if person is None else pseudonym(key, "person", person),
        ]
    return out


def _split(name: str) -> tuple[int, int]:
    generation, session_id = name.split("/")
    return int(generation), int(session_id)


def _partition(root: Path, table: str, device: str, night: str) -> Path:
    return root / table / f"device={device}" / f"night={night}"


# --- the manifest, the lock, leftovers ----------------------------------------------------------


def _key_id(key: bytes) -> str:
    """Names the pseudonym key without giving it away: another key, other pseudonyms."""
    return hmac.new(key, b"dataset key id", hashlib.sha256).hexdigest()[:16]


def _load_manifest(root: Path, key_id: str) -> dict:
    path = root / MANIFEST
    if not path.exists():
        if any(root.glob("*/device=*")):
            fail("E395", f"{root.name} holds Parquet files but no {MANIFEST}", _NEW_FOLDER)
        return {"format": _FORMAT, "key_id": key_id, "units": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        fmt, written_with = manifest["format"], manifest["key_id"]
        if not isinstance(manifest["units"], dict):
            raise TypeError("units")
    except (ValueError, KeyError, TypeError) as error:
        fail("E395", f"{root.name}/{MANIFEST} is damaged ({error})", _NEW_FOLDER)
    if fmt > _FORMAT:
        fail("E395", f"{root.name} was written by a newer bedside-host", "update bedside-host")
    if written_with != key_id:
        fail(
            "E395",
            f"{root.name} was written with another pseudonym key (export.key)",
            "export into a new --dataset folder, or use the archive whose export.key made it",
        )
    return manifest


def _save_manifest(root: Path, manifest: dict) -> None:
    data = json.dumps(manifest, indent=1, sort_keys=True).encode()
    atomic_write(root / MANIFEST, data, mode=0o644)


def _lock(fd: int, root: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fail(
            "E396",
            f"another export is writing the dataset {root.name}",
            "wait for it to finish, then export again",
        )


def _remove_leftovers(root: Path) -> None:
    """Hidden files of an export that was killed (readers never list them)."""
    for leftover in root.glob("*/device=*/night=*/.*.tmp-*"):
        leftover.unlink(missing_ok=True)


# --- reading ------------------------------------------------------------------------------------


def _read(root: Path, table: str) -> str:
    """The DuckDB expression that reads ``table`` with its partition columns typed."""
    pattern = table_glob(root, table).replace("'", "''")
    return (
        f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = true, "
        "hive_types = {'device': VARCHAR, 'night': DATE})"
    )


def _as_text(name: str, kind: str) -> str:
    """A result column as it is printed: times as ISO 8601 UTC text (so Python needs no
    time zone package), dates as text, decimals as floats."""
    quoted = '"' + name.replace('"', '""') + '"'
    if kind.startswith("TIMESTAMP"):
        return f"strftime({quoted}, '%Y-%m-%dT%H:%M:%S.%gZ') AS {quoted}"
    if kind == "DATE":
        return f"CAST({quoted} AS VARCHAR) AS {quoted}"
    if kind.startswith("DECIMAL"):  # 1.5 in SQL is a DECIMAL: a plain number for JSON
        return f"CAST({quoted} AS DOUBLE) AS {quoted}"
    return quoted


_WRITABLE = "choose a --dataset folder you can write, on a disk with room"
_NEW_FOLDER = "export into a new --dataset folder (or move this one away)"
