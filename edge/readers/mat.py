"""MATLAB MAT-files, level 5 (``save -v6``/``-v7``, scipy.io.savemat) and level 4.

Pure Python + numpy + zlib. Level 5: the 128-byte header (either byte order), data
elements with their 8-byte tags and 4-byte "small element" form, ``miCOMPRESSED`` (zlib)
elements, and ``miMATRIX`` arrays of the numeric classes (double, single, int8..uint64,
logical; complex too, though a complex variable cannot be a channel) and char. Cell,
struct, object, sparse, function and opaque variables are listed as skipped. Level 4:
full numeric and text matrices. MAT v7.3 files are HDF5 and are refused (E205).

Every size a file claims is checked against the bytes it holds before anything is
allocated, and decompression is bounded, so a damaged file fails with E204, never with
gigabytes of allocation.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from ._base import (
    EMPTY,
    MAX_DECODED_BYTES,
    TOO_LARGE,
    UNSUPPORTED,
    Recording,
    assemble,
    damaged,
    fail,
)

__all__ = ["MatFile", "load_mat", "parse"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

# Data types (storage) and array classes (meaning) of level 5.
_MI_MATRIX = 14
_MI_COMPRESSED = 15
_MI_DTYPES = {
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    9: "f8",
    12: "i8",
    13: "u8",
}
_MX_NUMERIC = {
    6: "f8",
    7: "f4",
    8: "i1",
    9: "u1",
    10: "i2",
    11: "u2",
    12: "i4",
    13: "u4",
    14: "i8",
    15: "u8",
}
_MX_CHAR = 4
_MX_OTHER = {
    1: "a cell array",
    2: "a struct",
    3: "an object",
    5: "a sparse matrix",
    16: "a function handle",
    17: "an opaque object (string, table, datetime...)",
}
_CHAR_CODECS = {16: "utf-8", 17: "utf-16", 18: "utf-32"}


@dataclass
class MatFile:
    """The variables of a MAT-file.

    ``variables``: numeric arrays in the shape the file gives (at least 2-D for level 5,
    column-major data reordered), in the MATLAB class's dtype (a ``double`` stored as
    uint16 to save space comes back as float64, as MATLAB shows it); char arrays as numpy
    string arrays of their rows (as ``scipy.io.loadmat`` gives them). ``skipped``: the
    names of variables of other classes and what they hold. ``header``: the descriptive
    text of the 128-byte header ("" for level 4).
    """

    variables: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    header: str = ""


class _Budget:
    """Bytes that decompression may still produce in this file."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def inflate(self, blob: bytes | memoryview, order: str, source: str) -> bytes:
        """A compressed element's contents. Its inner element's tag (the first 8 bytes)
        declares how long it is: that, within what the budget still allows, is all that is
        ever inflated, so a small file that would inflate to gigabytes is refused before
        anything large is allocated."""
        z = zlib.decompressobj()
        try:
            head = z.decompress(blob, 8)
            if len(head) < 8:
                damaged(source, "a compressed variable is cut short")
            word = int.from_bytes(head[:4], "little" if order == "<" else "big")
            declared = (
                8
                if word >> 16
                else 8 + int.from_bytes(head[4:8], "little" if order == "<" else "big")
            )
            if declared > self.left:
                fail(
                    TOO_LARGE,
                    f"{source}: a compressed variable declares {declared / 1024**2:.0f} MiB, "
                    f"beyond the {MAX_DECODED_BYTES // 1024**2} MiB bound",
                    "split the recording into shorter files",
                )
            # One byte more than declared shows a stream that holds more than it says.
            out = head + z.decompress(z.unconsumed_tail, declared + 1 - len(head))
        except zlib.error:
            damaged(source, "a compressed variable does not decompress")
        if len(out) > declared:
            damaged(
                source, f"a compressed variable holds more than the {declared} bytes it declares"
            )
        if len(out) < declared or not z.eof:
            damaged(source, "a compressed variable is cut short")
        self.left -= len(out)
        return out


def _prod(dims: tuple[int, ...]) -> int:
    return math.prod(dims) if dims else 0


def load_mat(data: bytes, source: str = "file.mat") -> MatFile:
    """Parse a MAT-file (level 5 or 4) held in ``data``; ``source`` names it in errors.

    Raises :class:`~edge.readers.RecordingError`: E204 for a damaged file or one that is
    not a MAT-file, E205 for MAT v7.3 (HDF5), E212 when it decompresses beyond the bound.
    """
    if data[:8] == _HDF5_MAGIC or data[512:520] == _HDF5_MAGIC:
        fail(
            UNSUPPORTED,
            f"{source}: MAT v7.3 (HDF5) file",
            "re-save it in MATLAB with save(..., '-v7'), or export it to .npz/.csv",
        )
    if len(data) >= 128 and data[126:128] in (b"IM", b"MI"):
        return _load_v5(data, source)
    if data[:6] == b"MATLAB":
        damaged(source, "the MAT-file header is cut short or unreadable")
    return _load_v4(data, source)


# ------------------------------------------------------------------------- level 5


def _load_v5(data: bytes, source: str) -> MatFile:
    order = "<" if data[126:128] == b"IM" else ">"
    version = int.from_bytes(data[124:126], "little" if order == "<" else "big")
    if version == 0x0200:
        fail(
            UNSUPPORTED,
            f"{source}: MAT v7.3 (HDF5) file",
            "re-save it in MATLAB with save(..., '-v7'), or export it to .npz/.csv",
        )
    if version != 0x0100:
        damaged(source, f"unknown MAT-file version 0x{version:04x} in the header")
    out = MatFile(header=data[:116].decode("latin-1").rstrip(" \x00"))
    budget = _Budget(MAX_DECODED_BYTES)
    view = memoryview(data)
    pos = 128
    while len(data) - pos >= 8:
        typ, start, nbytes, _ = _tag(view, pos, len(data), order, source)
        end = start + nbytes
        if typ == _MI_COMPRESSED:
            inner = budget.inflate(view[start:end], order, source)
            ityp, istart, inbytes, _ = _tag(memoryview(inner), 0, len(inner), order, source)
            if ityp == _MI_MATRIX:
                _matrix(memoryview(inner), istart, istart + inbytes, order, source, out)
        elif typ == _MI_MATRIX:
            _matrix(view, start, end, order, source, out)
        pos = end  # other top-level elements are skipped
    if any(data[pos:]):
        damaged(source, f"{len(data) - pos} stray bytes at the end")
    return out


def _tag(buf: memoryview, pos: int, end: int, order: str, source: str) -> tuple[int, int, int, int]:
    """(type, data start, byte count, next element) of the data element at ``pos``."""
    if end - pos < 8:
        damaged(source, f"a data element at byte {pos} is cut short")
    word = int.from_bytes(buf[pos : pos + 4], "little" if order == "<" else "big")
    if word >> 16:  # small data element: type and count share one word, data in the next 4
        nbytes = word >> 16
        if nbytes > 4:
            damaged(source, f"a small data element at byte {pos} claims {nbytes} bytes")
        return word & 0xFFFF, pos + 4, nbytes, pos + 8
    nbytes = int.from_bytes(buf[pos + 4 : pos + 8], "little" if order == "<" else "big")
    start = pos + 8
    if nbytes > end - start:
        damaged(source, f"a data element at byte {pos} claims {nbytes} bytes, {end - start} remain")
    return word, start, nbytes, min(start + (nbytes + 7) // 8 * 8, end)


def _values(
    buf: memoryview, pos: int, end: int, order: str, source: str, what: str
) -> tuple[np.ndarray, int]:
    """The numeric data element at ``pos`` as a (read-only) array, and the next position."""
    typ, start, nbytes, nxt = _tag(buf, pos, end, order, source)
    code = _MI_DTYPES.get(typ)
    if code is None:
        damaged(source, f"{what} has data of unknown type {typ}")
    dtype = np.dtype(order + code)
    if nbytes % dtype.itemsize:
        damaged(source, f"{what} holds {nbytes} bytes, not a whole number of {code} values")
    arr = np.frombuffer(buf, dtype=dtype, count=nbytes // dtype.itemsize, offset=start)
    return arr, nxt


def _matrix(buf: memoryview, pos: int, end: int, order: str, source: str, out: MatFile) -> None:
    """Parse one top-level miMATRIX element (its contents span ``pos:end``) into ``out``."""
    flags, pos = _values(buf, pos, end, order, source, "a variable's flags")
    if flags.size < 2 or flags.dtype.kind != "u":
        damaged(source, "a variable's array flags are malformed")
    word = int(flags[0])
    cls, is_complex, is_logical = word & 0xFF, bool(word & 0x800), bool(word & 0x200)
    dims_arr, pos = _values(buf, pos, end, order, source, "a variable's dimensions")
    if dims_arr.dtype.kind not in "iu" or dims_arr.size < 1 or np.any(dims_arr < 0):
        damaged(source, "a variable's dimensions are malformed")
    if dims_arr.size > 32:
        damaged(source, f"a variable claims {dims_arr.size} dimensions")
    dims = tuple(int(d) for d in dims_arr)
    name_arr, pos = _values(buf, pos, end, order, source, "a variable's name")
    name = name_arr.tobytes().decode("latin-1").rstrip("\x00")
    if not name:
        return
    if cls in _MX_OTHER:
        out.skipped[name] = _MX_OTHER[cls]
        return
    count = _prod(dims)
    what = f"variable {name!r}"
    if cls in _MX_NUMERIC:
        real, pos = _values(buf, pos, end, order, source, what)
        if real.size != count:
            damaged(source, f"{what} claims {dims} = {count} values but holds {real.size}")
        arr = real.astype(_MX_NUMERIC[cls])
        if is_complex:
            imag, pos = _values(buf, pos, end, order, source, what)
            if imag.size != count:
                damaged(source, f"{what}: its imaginary part holds {imag.size} values")
            ctype = np.complex64 if cls == 7 else np.complex128
            arr = arr.astype(ctype) + 1j * imag.astype(ctype)
        elif is_logical:
            arr = arr.astype(bool)
        out.variables[name] = arr.reshape(dims, order="F")
    elif cls == _MX_CHAR:
        out.variables[name] = _chars(buf, pos, end, order, source, dims, what)
    else:
        damaged(source, f"{what} has unknown class {cls}")


def _chars(
    buf: memoryview, pos: int, end: int, order: str, source: str, dims: tuple[int, ...], what: str
) -> np.ndarray:
    """A char array as a numpy string array of its rows (shape ``dims[:-1]``)."""
    typ, start, nbytes, _ = _tag(buf, pos, end, order, source)
    raw = bytes(buf[start : start + nbytes])
    if typ in _CHAR_CODECS:
        codec = _CHAR_CODECS[typ]
        if codec != "utf-8":
            codec += "-le" if order == "<" else "-be"
        codes = [ord(c) for c in raw.decode(codec, errors="replace")]
    else:
        code = _MI_DTYPES.get(typ)
        if code is None or code[0] == "f":
            damaged(source, f"{what}: char data of type {typ}")
        codes = np.frombuffer(raw, dtype=order + code).astype(np.int64).tolist()
    count = _prod(dims)
    if len(codes) != count:
        damaged(source, f"{what} claims {count} characters but holds {len(codes)}")
    if count == 0:
        return np.array([""] * (dims[0] if len(dims) == 2 else 0), dtype="<U1")
    text = "".join(chr(c) if 0 <= c < 0x110000 else "\ufffd" for c in codes)
    grid = np.array(list(text), dtype="<U1").reshape(dims, order="F")
    rows = grid.reshape(-1, dims[-1])
    return np.array(["".join(r) for r in rows]).reshape(dims[:-1])


# ------------------------------------------------------------------------- level 4

_V4_DTYPES = {0: "f8", 1: "f4", 2: "i4", 3: "i2", 4: "u2", 5: "u1"}


def _load_v4(data: bytes, source: str) -> MatFile:
    out = MatFile()
    pos = 0
    order = None
    while pos < len(data):
        if len(data) - pos < 20:
            damaged(source, "not a MAT-file, or a level 4 variable header is cut short")
        if order is None:  # the first header tells the byte order: M=0 little, 1 big endian
            le = int.from_bytes(data[0:4], "little")
            order = "<" if le < 1000 else ">"
        head = np.frombuffer(data, dtype=order + "i4", count=5, offset=pos).tolist()
        mopt, mrows, ncols, imagf, namlen = head
        m, o, p, t = mopt // 1000, mopt // 100 % 10, mopt // 10 % 10, mopt % 10
        if not (
            0 <= mopt < 2000
            and m == (0 if order == "<" else 1)
            and o == 0
            and p in _V4_DTYPES
            and t in (0, 1, 2)
            and mrows >= 0
            and ncols >= 0
            and imagf in (0, 1)
            and 1 <= namlen <= 4096
        ):
            damaged(source, "not a MAT-file (neither a level 5 header nor a level 4 variable)")
        pos += 20
        if namlen > len(data) - pos:
            damaged(source, "a level 4 variable name is cut short")
        name = data[pos : pos + namlen].decode("latin-1").rstrip("\x00")
        pos += namlen
        dtype = np.dtype(order + _V4_DTYPES[p])
        count = mrows * ncols
        nbytes = count * dtype.itemsize * (1 + imagf)
        if nbytes > len(data) - pos:
            damaged(source, f"variable {name!r} claims {nbytes} bytes, {len(data) - pos} remain")
        real = np.frombuffer(data, dtype=dtype, count=count, offset=pos)
        imag = np.frombuffer(data, dtype=dtype, count=count * imagf, offset=pos + nbytes // 2)
        pos += nbytes
        if not name:
            continue
        if t == 2:
            out.skipped[name] = "a sparse matrix"
        elif t == 1 and count == 0:
            # No characters: no text. (Rows of nothing would be a loop and an array as long
            # as a damaged header's row count, for a 142-byte file: a fuzzing find.)
            out.variables[name] = np.zeros(0, dtype="<U1")
        elif t == 1:
            codes = real.astype(np.float64)
            if not np.all((codes >= 0) & (codes < 0x110000) & (codes == np.floor(codes))):
                damaged(source, f"text variable {name!r} holds non-character codes")
            grid = np.array([chr(int(c)) for c in codes], dtype="<U1").reshape(
                (mrows, ncols), order="F"
            )
            out.variables[name] = np.array(["".join(r) for r in grid], dtype=f"<U{max(ncols, 1)}")
        elif imagf:
            arr = real.astype(np.float64) + 1j * imag.astype(np.float64)
            out.variables[name] = arr.reshape((mrows, ncols), order="F")
        else:
            out.variables[name] = real.astype(np.float64).reshape((mrows, ncols), order="F")
    return out


# ------------------------------------------------------------------------- recording


def parse(
    data: bytes, *, source: str, channel: str | None = None, fs: float | None = None
) -> Recording:
    """A :class:`~edge.readers.Recording` from a MAT-file's bytes.

    Channels are the real numeric vectors of the recording's length (see
    :func:`edge.readers._base.assemble`): for the RWTH dorsoventral files
    ``bcg``, ``bcg_filtered``, ``C_coupling``, ``C_filtered``, ``ecg``, ``imp_env``; the
    rate is the ``Fs``/``fs`` variable, checked against a ``time`` vector; ``peaks_r``
    (1-based MATLAB sample numbers) becomes ``reference["r_peaks"]``, 0-based.
    """
    mat = load_mat(data, source)
    if not mat.variables and not mat.skipped:
        fail(EMPTY, f"{source}: the MAT-file holds no variables", "check that it is a recording")
    return assemble(
        mat.variables,
        source=source,
        channel=channel,
        fs=fs,
        index_base=1,
        unsupported=mat.skipped,
    )
