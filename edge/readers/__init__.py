"""Readers for recording files: the unit's ``replay:PATH`` source and the evaluation
harness read real and simulated recordings through :func:`read_recording`.

    >>> from edge.readers import read_recording
    >>> rec = read_recording("rec_proc_Aydin-Left-1.mat")           # doctest: +SKIP
    >>> rec.channel, rec.fs, rec.duration_s, rec.reference["r_peaks"][:3]
    ('bcg', 1000.0, 19.799, array([ 388, 1089, 1755]))

Formats, chosen by the file's extension (and by its first bytes when the extension is
unknown), all in pure Python + numpy + zlib (no scipy, pyedflib or wfdb at run time):

- ``.mat``: MATLAB level 5 (v6, v7; compressed or not, either byte order) and level 4
  (:mod:`.mat`);
- ``.csv``, ``.tsv``, ``.txt``: delimited numeric columns, optional header and time
  column (:mod:`.text`);
- ``.npy``, ``.npz``: NumPy arrays; ``fs`` must be given for ``.npy`` (:mod:`.npy`);
- ``.edf``, ``.bdf``: EDF, EDF+, BDF, BDF+ (:mod:`.edf`);
- ``.hea`` (+ ``.dat``): WFDB records, formats 16, 61, 80, 160, 212, 24, 32 (:mod:`.wfdb`).

Every failure is a :class:`RecordingError` (a ``ValueError``) with a stable ``code``
(E201..E212, docs/errors.md) and a one-line message ``what happened — what to do`` that
names the file, never its directory. Damaged input (truncated, corrupt, random bytes,
absurd header sizes) fails that way too: sizes are checked against the file's length
before anything is allocated.

When no channel is named, the raw sensor signal is chosen (see
:func:`edge.readers._base.default_channel`): for the RWTH dorsoventral files that is
``bcg``, the raw PVDF BCG, not ``bcg_filtered`` (somebody else's band-pass) nor
``imp_env`` (an impedance-envelope channel, cleaner but not what an under-mattress
sensor delivers): a replay should see what the unit's own sensor would.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from . import edf, mat, npy, text, wfdb
from ._base import (
    EMPTY,
    MAX_FILE_BYTES,
    TOO_LARGE,
    UNKNOWN_FORMAT,
    UNREADABLE,
    Recording,
    RecordingError,
    fail,
)

__all__ = [
    "SUFFIXES",
    "Recording",
    "RecordingError",
    "printable_name",
    "read_bytes",
    "read_recording",
]

_Parser = Callable[..., Recording]
_BY_SUFFIX: dict[str, _Parser] = {
    ".mat": mat.parse,
    ".csv": text.parse,
    ".tsv": text.parse,
    ".txt": text.parse,
    ".npy": npy.parse_npy,
    ".npz": npy.parse_npz,
    ".edf": edf.parse,
    ".bdf": edf.parse,
}
SUFFIXES = (*_BY_SUFFIX, ".hea", ".dat")
"""File extensions :func:`read_recording` reads (``.dat`` needs its ``.hea`` beside it)."""


def _sniff(data: bytes) -> _Parser | None:
    """The parser for a file whose extension says nothing, from its first bytes."""
    if data[:6] == b"\x93NUMPY":
        return npy.parse_npy
    if data[:4] == b"PK\x03\x04":
        return npy.parse_npz
    if data[:6] == b"MATLAB":
        return mat.parse
    if data[:8] in (b"0       ", b"\xffBIOSEMI"):
        return edf.parse
    return None


def printable_name(name: str) -> str:
    """``name`` as text any terminal, log or database takes: a file name that is not valid
    UTF-8 (Python keeps its bytes as surrogates) shows those bytes as ``\\xNN``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _read_file(path: Path, what: str | None = None) -> bytes:
    """A file's bytes; E202 when it cannot be read, E203 when empty, E212 when too large."""
    what = what or printable_name(path.name)
    try:
        info = path.stat()  # through a symlink: what it points at (never blocks, unlike open)
        size = info.st_size
        if stat.S_ISDIR(info.st_mode):
            fail(UNREADABLE, f"{what} is a directory", "give the path of a recording file")
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block, /dev/zero never ends
            fail(
                UNREADABLE,
                f"{what} is not a regular file (a FIFO, a device or a socket)",
                "copy the recording to a file and give its path",
            )
        if size > MAX_FILE_BYTES:
            fail(
                TOO_LARGE,
                f"{what} is {size / 1024**3:.1f} GiB, above the {MAX_FILE_BYTES / 1024**3:.0f} "
                "GiB bound",
                "split the recording into shorter files",
            )
        with path.open("rb") as f:  # never more than the bound, whatever the size said
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            fail(TOO_LARGE, f"{what} grew beyond the bound while read", "copy it and retry")
    except FileNotFoundError:
        fail(UNREADABLE, f"{what}: no such file", "check the path and the file name")
    except PermissionError:
        fail(UNREADABLE, f"{what}: permission denied", "make the file readable for this user")
    except MemoryError:
        fail(TOO_LARGE, f"{what}: not enough memory to read it", "split the recording")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        fail(UNREADABLE, f"{what}: cannot be read ({reason})", "check the file and the disk")
    if not data:
        fail(EMPTY, f"{what} is empty (0 bytes)", "check that the recording was saved")
    return data


def read_bytes(
    data: bytes, name: str, channel: str | None = None, fs: float | None = None
) -> Recording:
    """A :class:`Recording` from a file's bytes; ``name`` (a file name, its extension
    choosing the format) names it in the result and in errors. WFDB records, which span
    several files, need :func:`read_recording`.
    """
    name = os.path.basename(name)
    if channel is not None and not isinstance(channel, str):
        raise TypeError(f"channel: expected a str or None, got {type(channel).__name__}")
    if not data:
        fail(EMPTY, f"{name} is empty (0 bytes)", "check that the recording was saved")
    suffix = os.path.splitext(name)[1].lower()
    parser = _BY_SUFFIX.get(suffix) or _sniff(data)
    if parser is None:
        fail(
            UNKNOWN_FORMAT,
            f"{name}: unknown recording format",
            f"convert it to one of {', '.join(SUFFIXES)}",
        )
    try:
        return parser(data, source=name, channel=channel, fs=fs)
    except MemoryError:
        fail(TOO_LARGE, f"{name}: not enough memory to read it", "split the recording")


def read_recording(
    path: str | os.PathLike[str], channel: str | None = None, fs: float | None = None
) -> Recording:
    """Read one channel of a recording file.

    Args:
        path: the file. A WFDB record is read from its ``.hea`` header (or its ``.dat``,
            or the record's path without extension), its signal files beside it.
        channel: the channel's name (exact, or a unique case-insensitive match); None for
            the default: the raw sensor signal (``bcg``, ``data``, ...; see the module doc).
        fs: the sampling rate in Hz, needed for files that do not state it (``.npy``, a
            CSV without a time column); where the file states it, a given ``fs`` must
            agree within 1 %.

    Returns:
        The :class:`Recording`: the channel as float64 samples, its rate, every channel's
        name, the start time and the reference annotations the file holds.

    Raises:
        RecordingError: E201..E212 (docs/errors.md), never another exception for a bad
            file. ``TypeError`` for a ``channel`` that is not a string (a caller's bug).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".hea", ".dat") or (not suffix and p.with_suffix(".hea").is_file()):
        return _read_wfdb(p.with_suffix(".hea"), channel, fs)
    return read_bytes(_read_file(p, printable_name(p.name)), printable_name(p.name), channel, fs)


def _read_wfdb(header: Path, channel: str | None, fs: float | None) -> Recording:
    if channel is not None and not isinstance(channel, str):
        raise TypeError(f"channel: expected a str or None, got {type(channel).__name__}")
    record, shown = printable_name(header.stem), printable_name(header.name)
    data = _read_file(header, f"{shown} (the WFDB header of record {record!r})")

    def read_signal_file(name: str) -> bytes:
        return _read_file(header.with_name(name), f"{name} (a signal file of {shown})")

    try:
        return wfdb.parse(data, read_signal_file, source=shown, channel=channel, fs=fs)
    except MemoryError:
        fail(TOO_LARGE, f"{shown}: not enough memory to read it", "split the recording")
