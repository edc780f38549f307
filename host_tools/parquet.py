"""Parquet files from rows of Python values, written by DuckDB: the laptop's one Parquet writer.

    write_parquet(Path("out/epochs.parquet"), (("t", "time"), ("hr", "real")), rows)
    with duckdb_connection() as con:                  # DuckDB, times shown in UTC
        con.sql("SELECT * FROM 'out/epochs.parquet'").show()

DuckDB writes the files and answers queries on them (``bedside-host query``), so the host
extra needs one package, not two. Column kinds and the Parquet types they become:

==========  =====================  ====================================================
kind        Python value in        Parquet (DuckDB) type
==========  =====================  ====================================================
``text``    str                    BYTE_ARRAY UTF8 (VARCHAR)
``int``     int                    INT64 (BIGINT)
``real``    float                  DOUBLE
``bool``    bool                   BOOLEAN
``date``    datetime.date          INT32 DATE
``time``    float, Unix seconds    INT64 TIMESTAMP(MICROS, isAdjustedToUTC): a UTC instant
==========  =====================  ====================================================

These are the standard types: Spark reads ``time`` as TIMESTAMP, Trino's Hive connector as
``timestamp``. ``None`` is NULL in every kind.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from edge.errors import BedsideError

try:
    from edge.files import fsync_dir
except ImportError:  # Windows: a folder cannot be opened to fsync it
    fsync_dir = None

__all__ = ["KINDS", "duckdb_connection", "publish", "stage_parquet", "write_parquet"]

#: Column kinds and the SQL type each becomes (see the module docstring).
KINDS = {
    "text": "VARCHAR",
    "int": "BIGINT",
    "real": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "time": "TIMESTAMPTZ",
}
#: Rows handed to DuckDB at a time, and rows per Parquet row group.
BATCH = 65536


def duckdb_connection():
    """A new in-memory DuckDB connection that shows times in UTC; E371 without duckdb."""
    try:
        import duckdb
    except ImportError as error:
        raise BedsideError(
            "E371",
            f"Parquet needs duckdb ({error}) — pip install 'bedside-bcg[host]', "
            "or export --format csv",
        ) from error
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ is shown (and cast to text) in UTC
    return con


def write_parquet(
    target: Path, columns: Sequence[tuple[str, str]], rows: Iterable[tuple], *, con=None
) -> int:
    """Write ``rows`` (tuples in ``columns`` order) to the Parquet file ``target``.

    The file is written beside ``target`` under a hidden name (which no Parquet reader
    lists: Spark, Hive and Trino skip names starting with ``.``, DuckDB's ``*.parquet``
    glob does not match it), fsynced, and renamed into place: a reader sees the old file or
    the new one, whole, even if the process is killed meanwhile. ``con``: a connection of
    :func:`duckdb_connection` to reuse (many small files); default a new one. Returns the
    rows written.
    """
    hidden, n = stage_parquet(target, columns, rows, con=con)
    publish(hidden, target)
    return n


def stage_parquet(
    target: Path, columns: Sequence[tuple[str, str]], rows: Iterable[tuple], *, con=None
) -> tuple[Path, int]:
    """The first half of :func:`write_parquet`: the file written and fsynced under its
    hidden name beside ``target``; returns that name (for :func:`publish`) and the rows.
    Several files staged, then published one after the other, change together but for a
    moment."""
    for name, kind in columns:
        if kind not in KINDS:
            raise ValueError(f"column {name}: kind {kind!r} is not one of {tuple(KINDS)}")
    hidden = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    own = con is None
    con = duckdb_connection() if own else con
    try:
        n = _fill(con, columns, rows)
        con.execute(
            f"COPY (SELECT * EXCLUDE (_row) FROM export ORDER BY _row) TO '{_quoted(hidden)}' "
            f"(FORMAT PARQUET, COMPRESSION zstd, ROW_GROUP_SIZE {BATCH})"
        )
        fd = os.open(hidden, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        hidden.unlink(missing_ok=True)
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS export")
        if own:
            con.close()
    return hidden, n


def publish(hidden: Path, target: Path) -> None:
    """Rename a staged file into place, the rename made durable (a power cut keeps it)."""
    try:
        os.replace(hidden, target)
    except BaseException:
        hidden.unlink(missing_ok=True)
        raise
    if fsync_dir is not None:
        fsync_dir(target.parent)


def _fill(con, columns: Sequence[tuple[str, str]], rows: Iterable[tuple]) -> int:
    """Load ``rows`` into the table ``export`` (typed by ``columns``, plus ``_row``, the
    order they came in), a batch at a time; returns how many."""
    typed = ", ".join(f'"{name}" {KINDS[kind]}' for name, kind in columns)
    con.execute(f"CREATE TABLE export (_row BIGINT, {typed})")
    casts = ", ".join(_cast(f"c{i}", kind) for i, (_, kind) in enumerate(columns))
    n = 0
    for batch in _batches(rows):
        # A dict of NumPy object arrays is one column each to DuckDB; None becomes NULL.
        frame = {"_row": np.arange(n, n + len(batch), dtype=np.int64)}
        for i, values in enumerate(zip(*batch, strict=True)):
            frame[f"c{i}"] = np.array(values, dtype=object)
        con.register("batch", frame)
        con.execute(f"INSERT INTO export SELECT _row, {casts} FROM batch")
        con.unregister("batch")
        n += len(batch)
    return n


def _cast(column: str, kind: str) -> str:
    if kind == "time":  # Unix seconds -> a UTC instant
        return f"to_timestamp(CAST({column} AS DOUBLE))"
    return f"CAST({column} AS {KINDS[kind]})"


def _batches(rows: Iterable[tuple]) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _quoted(path: Path) -> str:
    """``path`` inside a single-quoted SQL string."""
    return str(path).replace("'", "''")
