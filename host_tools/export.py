"""``logs export``: every unit of an archive as CSV or Parquet tables, pseudonymized.

    result = export("trial-logs/", "out/", fmt="parquet")
    # out/sessions.parquet, out/epochs.parquet, out/events.parquet: one row per unit row

The tables hold every unit of the archive side by side, so DuckDB or Spark reads many units
at once (``SELECT device, avg(hr_bpm) FROM 'out/epochs.parquet' GROUP BY device``), and
exports of several archives can be stacked. Identifiers are replaced by pseudonyms:

- ``device``: ``u_`` + 16 hex digits of HMAC-SHA256(key, device id); ``person``: ``p_`` + the
  same of the participant code given to ``logs pull --person`` (empty without one).
- ``source`` is cut to its kind (``serial``, ``sim``, ``replay``): a port or file path can
  name a person or a machine.

The key is 32 random bytes in ``ARCHIVE/export.key`` (mode 0600), made by the first export
and used by every later one, so a unit keeps its pseudonym from export to export; copy it to
another archive folder to give that archive the same pseudonyms. It never leaves the folder:
without it a pseudonym cannot be traced back, and it is never written into an export.
Times stay exact Unix seconds UTC; values are the unit's own, bit for bit.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import BedsideError, fail
from edge.records import EPOCH_SCHEMA, EVENT_SCHEMA

from .archive import Archive, unit_archives

__all__ = ["FORMATS", "KEY_NAME", "TABLES", "ExportResult", "export", "pseudonym"]

FORMATS = ("csv", "parquet")
KEY_NAME = "export.key"
_KEY_BYTES = 32
_PREFIX = {"device": "u", "person": "p"}
_BATCH = 65536  # rows per Parquet row group and per read from the archive

#: The columns every table starts with: which unit, participant and session a row is of.
_KEYS = (("device", "text"), ("person", "text"), ("generation", "int"), ("session_id", "int"))
#: The exported tables: (column, type) in order; types "text", "int", "real", "bool". Epochs
#: and events: the keys, the unit's row id, then the record's fields (edge.records).
TABLES = {
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
    """Write ``sessions``, ``epochs`` and ``events`` of every unit in archive ``folder``
    into the folder ``out`` as ``<table>.csv`` or ``<table>.parquet``.

    Each file is written beside its final name and renamed into place, so a reader never
    sees half an export. Raises E369 (nothing to export), E370 (``out`` cannot be written),
    E371 (Parquet without pyarrow), E372 (the key), E361 (a damaged archive).
    """
    if fmt not in FORMATS:
        fail("E370", f"unknown export format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    writer = _write_parquet if fmt == "parquet" else _write_csv
    if fmt == "parquet":
        _pyarrow()  # before any work: fail fast without it
    paths = unit_archives(folder)
    if not paths:
        fail("E369", f"no unit logs in {Path(folder).name or folder}", "run logs pull first")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail("E370", f"cannot make the export folder {out.name} ({error.strerror})", _OUT)
    key = load_key(folder)
    result = ExportResult(units=len(paths))
    for table, columns in TABLES.items():
        target = out / f"{table}.{fmt}"
        partial = out / f".{table}.{fmt}.partial"
        try:
            n = writer(partial, columns, _table_rows(paths, table, key))
            os.replace(partial, target)
        except OSError as error:
            partial.unlink(missing_ok=True)
            fail("E370", f"cannot write {target.name} ({error.strerror})", _OUT)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        result.rows[table] = n
        result.files.append(str(target))
    return result


# --- rows -----------------------------------------------------------------------------------


def _table_rows(paths: list[Path], table: str, key: bytes) -> Iterator[tuple]:
    """The export rows of ``table`` for every unit, pseudonymized."""
    for path in paths:
        with Archive.open(path) as archive:
            device = pseudonym(key, "device", archive.device_id)
            persons = {}
            for row in archive.rows("sessions"):
                generation, session_id, person = row[0], row[1], row[9]
                persons[generation, session_id] = (
                    None if person is None else pseudonym(key, "person", person)
                )
                if table == "sessions":
                    source_kind = row[2].split(":", 1)[0]
                    clean = None if row[8] is None else bool(row[8])
                    yield (
                        device,
                        persons[generation, session_id],
                        generation,
                        session_id,
                        source_kind,
                        *row[3:8],
                        clean,
                    )
            if table == "sessions":
                continue
            for row in archive.rows(table):
                # row: generation, id, session_id, ...; the export puts the session first.
                generation, row_id, session_id = row[0], row[1], row[2]
                person = persons.get((generation, session_id))
                yield (device, person, generation, session_id, row_id, *row[3:])


# --- writers --------------------------------------------------------------------------------


def _write_csv(path: Path, columns: tuple, rows: Iterator[tuple]) -> int:
    """CSV with a header row; NULL is an empty field, floats are written exactly (repr)."""
    n = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([name for name, _ in columns])
        for row in rows:
            w.writerow(["" if v is None else (int(v) if isinstance(v, bool) else v) for v in row])
            n += 1
        f.flush()
        os.fsync(f.fileno())
    return n


def _write_parquet(path: Path, columns: tuple, rows: Iterator[tuple]) -> int:
    pa, pq = _pyarrow()
    types = {"text": pa.string(), "int": pa.int64(), "real": pa.float64(), "bool": pa.bool_()}
    schema = pa.schema([(name, types[kind]) for name, kind in columns])
    n = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as w:
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) == _BATCH:
                w.write_table(_arrow_table(pa, schema, batch))
                n += len(batch)
                batch = []
        if batch or n == 0:
            w.write_table(_arrow_table(pa, schema, batch))
            n += len(batch)
    return n


def _arrow_table(pa, schema, rows: list[tuple]):
    names = schema.names
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.table(
        {
            name: pa.array(list(col), schema.field(name).type)
            for name, col in zip(names, cols, strict=True)
        },
        schema=schema,
    )


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        raise BedsideError(
            "E371",
            f"Parquet export needs pyarrow ({error}) — pip install 'bedside-bcg[host]', "
            "or export --format csv",
        ) from error
    return pa, pq


_OUT = "choose an --out folder you can write, on a disk with room"
_KEY = "restore export.key from a backup (pseudonyms change with a new key) or move it away"
