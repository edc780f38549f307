"""NumPy files: ``.npy`` (one array) and ``.npz`` (named arrays in a zip archive).

The ``.npy`` format is parsed here rather than by ``numpy.load``: its header is checked
(size, dtype, shape) against the bytes present before any array exists, pickled object
arrays are refused, and a member of an ``.npz`` is decompressed only up to the size it
declares, within a total bound.

``.npy``: a 1-D array is channel ``ch0``; a 2-D array holds one channel per column
(``ch0``, ``ch1``, ...; the longer axis is time). It has no rate: ``fs`` must be given.
``.npz``: members are named arrays, read as MAT variables are (see
:func:`edge.readers._base.assemble`): ``fs`` is the rate, ``r_peaks`` 0-based R-peak
indices, ``epoch_ms``/``time`` a time column, other vectors of the recording's length
are channels.
"""

from __future__ import annotations

import ast
import io
import math
import zipfile
import zlib

import numpy as np

from ._base import (
    EMPTY,
    MAX_DECODED_BYTES,
    NO_SIGNAL,
    TOO_LARGE,
    UNSUPPORTED,
    Recording,
    assemble,
    check_fs,
    choose_channel,
    damaged,
    fail,
    resolve_fs,
)

__all__ = ["load_npy", "parse_npy", "parse_npz"]

_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 65536
_MAX_MEMBERS = 1024


def load_npy(data: bytes, source: str = "file.npy") -> np.ndarray:
    """The array in an ``.npy`` file's bytes (a read-only view when possible).

    E204 for a damaged or truncated file, E205 for object, string or structured arrays.
    """
    if data[:6] != _MAGIC or len(data) < 10:
        damaged(source, "not a .npy file (no NUMPY header)")
    major = data[6]
    if major == 1:
        hlen, start = int.from_bytes(data[8:10], "little"), 10
    elif major in (2, 3) and len(data) >= 12:
        hlen, start = int.from_bytes(data[8:12], "little"), 12
    else:
        damaged(source, f"unknown .npy version {major}")
    if hlen > _MAX_HEADER or start + hlen > len(data):
        damaged(source, f"the .npy header claims {hlen} bytes")
    text = data[start : start + hlen].decode("utf-8" if major == 3 else "latin-1", "replace")
    try:
        header = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        damaged(source, "the .npy header is unreadable")
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        damaged(source, "the .npy header lacks descr, fortran_order or shape")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str):
        fail(UNSUPPORTED, f"{source}: a structured array", "save one plain numeric array")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError, SyntaxError):  # numpy parses "a,b" strings with ast
        damaged(source, f"unknown dtype {descr[:40]!r} in the .npy header")
    if dtype.kind not in "biufc":
        fail(UNSUPPORTED, f"{source}: an array of {dtype}", "save a numeric array")
    ok_shape = isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)
    if not ok_shape or len(shape) > 32 or not isinstance(fortran, bool):
        damaged(source, "the .npy header's shape or order is malformed")
    count = math.prod(shape)
    offset = start + hlen
    if count * dtype.itemsize > len(data) - offset:
        damaged(
            source,
            f"the array {shape} needs {count * dtype.itemsize} bytes, {len(data) - offset} remain",
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C")


def _columns(arr: np.ndarray, source: str) -> dict[str, np.ndarray]:
    if arr.dtype.kind == "c":
        fail(UNSUPPORTED, f"{source}: complex samples", "save real samples")
    if arr.size == 0:
        fail(EMPTY, f"{source}: the array holds no samples", "check the file")
    if arr.ndim == 1:
        return {"ch0": arr}
    if arr.ndim == 2:
        cols = arr if arr.shape[0] >= arr.shape[1] else arr.T
        return {f"ch{j}": cols[:, j] for j in range(cols.shape[1])}
    fail(NO_SIGNAL, f"{source}: an array of shape {arr.shape}", "save a 1-D or 2-D array")


def parse_npy(
    data: bytes, *, source: str, channel: str | None = None, fs: float | None = None
) -> Recording:
    """A :class:`~edge.readers.Recording` from an ``.npy`` file's bytes; ``fs`` is required."""
    columns = _columns(load_npy(data, source), source)
    names = list(columns)
    chosen = choose_channel(names, channel, source)
    given = None if fs is None else check_fs(fs, "fs", source)
    rate = resolve_fs(given, None, None, source)
    return Recording(
        signal=np.array(columns[chosen], dtype=np.float64, order="C"),
        fs=rate,
        channel=chosen,
        channels=tuple(names),
        source=source,
    )


def load_npz(data: bytes, source: str = "file.npz") -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` file's bytes (members that are not ``.npy`` skipped)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        damaged(source, "not a readable .npz (zip) archive")
    except NotImplementedError:  # a zip64 record naming a zip version zipfile lacks
        fail(UNSUPPORTED, f"{source}: an unsupported zip version", "save it with numpy")
    arrays: dict[str, np.ndarray] = {}
    left = MAX_DECODED_BYTES
    with archive:
        members = [m for m in archive.infolist() if m.filename.endswith(".npy")]
        if len(members) > _MAX_MEMBERS:
            damaged(source, f"{len(members)} arrays in one archive")
        for member in members:
            if member.file_size > left:
                fail(
                    TOO_LARGE,
                    f"{source}: member {member.filename[:40]!r} is {member.file_size} bytes",
                    "split the recording into shorter files",
                )
            try:
                with archive.open(member) as f:
                    raw = f.read(member.file_size + 1)
            except NotImplementedError:
                fail(UNSUPPORTED, f"{source}: an unsupported zip compression", "save with numpy")
            except RuntimeError:  # encrypted
                fail(UNSUPPORTED, f"{source}: an encrypted archive", "save it without a password")
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, OverflowError):
                damaged(source, f"member {member.filename[:40]!r} does not decompress")
            if len(raw) != member.file_size:
                damaged(source, f"member {member.filename[:40]!r} has the wrong size")
            left -= len(raw)
            arrays[member.filename[:-4]] = load_npy(raw, f"{source}:{member.filename[:40]}")
    return arrays


def parse_npz(
    data: bytes, *, source: str, channel: str | None = None, fs: float | None = None
) -> Recording:
    """A :class:`~edge.readers.Recording` from an ``.npz`` file's bytes."""
    arrays = load_npz(data, source)
    if not arrays:
        fail(EMPTY, f"{source}: the archive holds no arrays", "check the file")
    return assemble(arrays, source=source, channel=channel, fs=fs, index_base=0)
