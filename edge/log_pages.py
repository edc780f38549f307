"""Pages of pulled logs: table rows to bytes and back, the format the agent sends the host.

    blob = encode_page(EPOCH_COLUMNS, rows)          # rows: tuples in column order
    rows = decode_page(EPOCH_COLUMNS, blob)          # the same tuples, exactly
    blob, n = encode_fitting(EPOCH_COLUMNS, rows, max_bytes)   # the longest prefix that fits

A page is zlib-compressed: a 4-byte big-endian header length, a JSON header (format version,
row count, each column's name, kind and byte length), then one block per column. Column-wise
blocks compress far better than rows: ``int`` columns are delta-coded int64, ``real`` columns
are float64 with NULL as NaN (the store refuses NaN, so it is free to mean NULL), and both are
byte-shuffled (all first bytes, then all second bytes, ...) so the slowly changing high bytes
form long runs. ``text`` columns are a JSON list (NULL as ``null``). Floats go through as
their 8 bytes, so the archive holds exactly the unit's values.

Decoding checks everything it reads (lengths, kinds, the column set, the size after
decompression) and raises E362 for a page that is not exactly what the encoder makes.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from .errors import fail
from .records import EPOCH_SCHEMA, EVENT_SCHEMA

__all__ = [
    "EPOCH_COLUMNS",
    "EVENT_COLUMNS",
    "FORMAT_VERSION",
    "SESSION_COLUMNS",
    "SESSION_EXTRA_COLUMNS",
    "decode_page",
    "digest",
    "encode_fitting",
    "encode_page",
    "session_columns",
]

FORMAT_VERSION = 1
#: A page never decompresses beyond this (a damaged or hostile page cannot exhaust memory).
MAX_PAGE_BYTES = 64 * 2**20

#: (name, kind) of each column, in row order. Kinds: "int", "real" (nullable), "text" (nullable).
#: Epochs and events: the store's id and session_id, then the record's fields (edge.records).
EPOCH_COLUMNS = (("id", "int"), ("session_id", "int"), *((f.name, f.kind) for f in EPOCH_SCHEMA))
EVENT_COLUMNS = EPOCH_COLUMNS[:2] + tuple((f.name, f.kind) for f in EVENT_SCHEMA)
#: ``clean``: 1.0, 0.0, or NULL while open; ``n_epochs``/``n_events``: rows on the unit now.
SESSION_COLUMNS = (
    ("id", "int"),
    ("source", "text"),
    ("fs", "real"),
    ("epoch_s", "real"),
    ("software_version", "text"),
    ("started_utc", "real"),
    ("ended_utc", "real"),
    ("clean", "real"),
    ("n_epochs", "int"),
    ("n_events", "int"),
)
#: Session columns added since: a unit sends one only to a host that asks for it (``with`` in
#: ``logs.sessions``) and names it in its reply, so an older host still gets the columns it
#: reads, and a newer host reads an older unit's pages. Appended after SESSION_COLUMNS.
SESSION_EXTRA_COLUMNS = (("tz", "text"),)  # the unit's time zone when the session opened


def session_columns(extra: Sequence[str] = ()) -> tuple[tuple[str, str], ...]:
    """SESSION_COLUMNS and those of SESSION_EXTRA_COLUMNS named in ``extra``, in order."""
    return SESSION_COLUMNS + tuple(c for c in SESSION_EXTRA_COLUMNS if c[0] in extra)


_KINDS = ("int", "real", "text")
_HEADER = struct.Struct(">I")


def digest(blob: bytes) -> str:
    """The page's SHA-256 (hex): sent beside it, checked by the host before decoding."""
    return hashlib.sha256(blob).hexdigest()


def encode_page(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence]) -> bytes:
    """``rows`` (tuples in the order of ``columns``) as one compressed page."""
    n = len(rows)
    blocks, layout = [], []
    for k, (name, kind) in enumerate(columns):
        values = [row[k] for row in rows]
        block = _encode_column(kind, values)
        blocks.append(block)
        layout.append([name, kind, len(block)])
    header = json.dumps({"v": FORMAT_VERSION, "n": n, "columns": layout}).encode()
    return zlib.compress(_HEADER.pack(len(header)) + header + b"".join(blocks), 6)


def encode_fitting(
    columns: Sequence[tuple[str, str]], rows: Sequence[Sequence], max_bytes: int
) -> tuple[bytes, int]:
    """The longest prefix of ``rows`` whose page is at most ``max_bytes``: ``(page, n_rows)``.

    Raises E366 when not even one row fits (a frame too small for the rows).
    """
    n = len(rows)
    while True:
        blob = encode_page(columns, rows[:n])
        if len(blob) <= max_bytes:
            return blob, n
        if n <= 1:
            fail(
                "E366",
                f"one row takes {len(blob)} bytes, more than the {max_bytes} a frame can carry",
                "connect with a larger frame size (a newer host or unit)",
            )
        # Shrink in proportion, with a margin: the compressed size is close to linear in n.
        n = max(1, min(n - 1, int(n * max_bytes / len(blob) * 0.95)))


def decode_page(columns: Sequence[tuple[str, str]], blob: bytes) -> list[tuple]:
    """The rows of a page made by :func:`encode_page` with the same ``columns``.

    Raises E362 for anything else: damaged, truncated, another format or column set.
    """
    raw = _decompress(blob)
    if len(raw) < _HEADER.size:
        _bad("shorter than its header")
    (size,) = _HEADER.unpack_from(raw)
    try:
        header = json.loads(raw[_HEADER.size : _HEADER.size + size])
        version, n, layout = header["v"], header["n"], header["columns"]
    except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: deep nesting
        _bad("its header is not readable")
    if version != FORMAT_VERSION:
        _bad(f"format {version!r}, this host reads {FORMAT_VERSION}")
    expected = [[name, kind] for name, kind in columns]
    if (
        not isinstance(layout, list)
        or not all(_is_entry(entry) for entry in layout)
        or [entry[:2] for entry in layout] != expected
    ):
        _bad("its columns are not the ones asked for")
    if not isinstance(n, int) or n < 0:
        _bad(f"row count {n!r}")
    body = memoryview(raw)[_HEADER.size + size :]
    if sum(entry[2] for entry in layout) != len(body):
        _bad("its column blocks do not add up to its length")
    values, offset = [], 0
    for name, kind, length in layout:
        values.append(_decode_column(name, kind, bytes(body[offset : offset + length]), n))
        offset += length
    return list(zip(*values, strict=True)) if n else []


# --- columns --------------------------------------------------------------------------------


def _encode_column(kind: str, values: list) -> bytes:
    if kind == "int":
        ints = np.asarray(values, dtype=np.int64)
        deltas = np.diff(ints, prepend=np.int64(0)) if ints.size else ints
        return _shuffle(deltas.astype("<i8"))
    if kind == "real":
        reals = np.array([np.nan if v is None else v for v in values], dtype="<f8")
        return _shuffle(reals)
    if kind == "text":
        return json.dumps([None if v is None else str(v) for v in values]).encode()
    raise ValueError(f"unknown column kind {kind!r}")


def _decode_column(name: str, kind: str, block: bytes, n: int) -> list:
    if kind in ("int", "real"):
        if len(block) != 8 * n:
            _bad(f"column {name}: {len(block)} bytes for {n} rows")
        if kind == "int":
            return np.cumsum(_unshuffle(block, n, "<i8"), dtype=np.int64).tolist()
        reals = _unshuffle(block, n, "<f8")
        return [None if v != v else v for v in reals.tolist()]  # NaN is NULL
    if kind == "text":
        try:
            texts = json.loads(block)
        except (ValueError, RecursionError):
            _bad(f"column {name} is not readable")
        if not isinstance(texts, list) or len(texts) != n:
            _bad(f"column {name} does not hold {n} rows")
        if any(t is not None and not isinstance(t, str) for t in texts):
            _bad(f"column {name} holds something other than text")
        return texts
    _bad(f"column {name} has an unknown kind {kind!r}")


def _is_entry(entry) -> bool:
    """A column's ``[name, kind, byte length]`` in a page header."""
    return (
        isinstance(entry, list)
        and len(entry) == 3
        and isinstance(entry[2], int)
        and not isinstance(entry[2], bool)
        and entry[2] >= 0
    )


def _shuffle(values: np.ndarray) -> bytes:
    return values.view(np.uint8).reshape(-1, 8).T.tobytes()


def _unshuffle(block: bytes, n: int, dtype: str) -> np.ndarray:
    planes = np.frombuffer(block, dtype=np.uint8).reshape(8, n)
    return np.ascontiguousarray(planes.T).view(dtype).reshape(n)


def _decompress(blob: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(blob, MAX_PAGE_BYTES)
    except zlib.error as error:
        _bad(f"it does not decompress ({error})")
    if inflater.unconsumed_tail:
        _bad(f"it decompresses beyond {MAX_PAGE_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        _bad("it is truncated or has bytes after its end")
    return raw


def _bad(what: str):
    fail("E362", f"a log page is damaged: {what}", "pull again; the archive is unchanged")
