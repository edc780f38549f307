"""WFDB records (PhysioNet): a ``.hea`` header and the signal files it names.

Single-segment records with signal formats 16, 61 (16-bit big-endian), 80 (8-bit offset),
160 (16-bit offset), 212 (12-bit packed), 24 and 32; several signals interleaved per
file, several files, samples per frame above 1 (the signal keeps its own rate, ``fs`` x
samples per frame) and byte offsets. Digital samples become physical units,
``(digital - baseline) / gain`` (a gain of 0 means 200, a missing baseline is the ADC
zero, as the WFDB library does); the format's invalid-sample value becomes NaN.

Refused with E205: multi-segment records, formats 8, 310, 311 and FLAC (5xx), skewed
signals, and signal file names with a directory part (a header may only name files
beside it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime

import numpy as np

from ._base import (
    EMPTY,
    NO_SIGNAL,
    UNSUPPORTED,
    Recording,
    check_fs,
    choose_channel,
    damaged,
    fail,
    resolve_fs,
    unique_names,
)

__all__ = ["parse"]

_MAX_HEADER_BYTES = 1 << 20
# format -> (bits per sample, invalid-sample value)
_FORMATS = {
    16: (16, -(2**15)),
    61: (16, -(2**15)),
    80: (8, -(2**7)),
    160: (16, -(2**15)),
    212: (12, -(2**11)),
    24: (24, -(2**23)),
    32: (32, -(2**31)),
}
_FMT = re.compile(r"(\d{1,4})(?:x(\d{1,6}))?(?::(\d{1,9}))?(?:\+(\d{1,12}))?")
_GAIN = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)?(?:\((-?\d{1,12})\))?(?:/(\S*))?")
_FILE_NAME = re.compile(r"[\w][\w.\-]*")


def _header_lines(header: bytes, source: str) -> list[str]:
    if len(header) > _MAX_HEADER_BYTES or b"\x00" in header:
        damaged(source, "not a WFDB header (binary or too large)")
    text = header.decode("latin-1")
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]


def _int(token: str, what: str, source: str) -> int:
    if len(token) > 18:
        damaged(source, f"{what} is out of range: {token[:16]!r}...")
    try:
        return int(token)
    except ValueError:
        damaged(source, f"{what} is not a whole number: {token[:16]!r}")


def _base_datetime(time: str | None, date: str | None) -> datetime | None:
    """The record's HH:MM:SS[.s] and DD/MM/YYYY as a naive datetime, or None."""
    if not time or not date:
        return None
    try:
        hms = [float(x) for x in time.split(":")]
        while len(hms) < 3:
            hms.insert(0, 0.0)
        day, month, year = (int(x) for x in date.split("/"))
        whole = int(hms[2])
        micro = round((hms[2] - whole) * 1e6)
        return datetime(year, month, day, int(hms[0]), int(hms[1]), whole, min(micro, 999999))
    except (ValueError, OverflowError):
        return None


class _Signal:
    """One signal line of a header."""

    def __init__(self, line: str, number: int, source: str) -> None:
        tokens = line.split(maxsplit=8)
        what = f"signal {number}"
        if len(tokens) < 2:
            damaged(source, f"{what}: the header line has no format")
        self.file = tokens[0]
        fmt = _FMT.fullmatch(tokens[1])
        if fmt is None:
            damaged(source, f"{what}: malformed format {tokens[1][:16]!r}")
        self.fmt = int(fmt.group(1))
        self.spf = int(fmt.group(2) or 1)
        self.skew = int(fmt.group(3) or 0)
        self.byte_offset = int(fmt.group(4) or 0)
        gain, baseline, units = None, None, ""
        if len(tokens) > 2:
            m = _GAIN.fullmatch(tokens[2])
            if m is None:
                damaged(source, f"{what}: malformed gain {tokens[2][:16]!r}")
            gain = float(m.group(1)) if m.group(1) else None
            baseline = int(m.group(2)) if m.group(2) else None
            units = m.group(3) or ""
        adc_zero = _int(tokens[4], f"{what}: ADC zero", source) if len(tokens) > 4 else 0
        if gain is not None and not math.isfinite(gain):
            damaged(source, f"{what}: gain {tokens[2][:16]!r} is not finite")
        self.gain = 200.0 if not gain else gain  # 0 (uncalibrated) or missing: 200 per unit
        self.baseline = adc_zero if baseline is None else baseline
        self.units = units
        self.name = tokens[8].strip() if len(tokens) > 8 else ""
        if self.spf < 1:
            damaged(source, f"{what}: {self.spf} samples per frame")


def parse(
    header: bytes,
    read_file: Callable[[str], bytes],
    *,
    source: str,
    channel: str | None = None,
    fs: float | None = None,
) -> Recording:
    """A :class:`~edge.readers.Recording` from a WFDB header's bytes.

    ``read_file(name)`` returns the bytes of a signal file the header names (a plain file
    name, checked here to have no directory part); ``source`` names the record in errors.
    """
    lines = _header_lines(header, source)
    if not lines:
        fail(EMPTY, f"{source}: the header is empty", "check the file")
    record = lines[0].split()
    if len(record) < 2:
        damaged(source, "the record line lacks the number of signals")
    if "/" in record[0]:
        fail(
            UNSUPPORTED,
            f"{source}: a multi-segment WFDB record",
            "read its segments one by one, or convert it with wfdb",
        )
    n_sig = _int(record[1], "the number of signals", source)
    if n_sig < 1:
        fail(NO_SIGNAL, f"{source}: the record has no signals", "check the header")
    if n_sig > len(lines) - 1:
        damaged(source, f"the header declares {n_sig} signals but has {len(lines) - 1} lines")
    frame_fs = 250.0
    if len(record) > 2:
        try:
            frame_fs = float(record[2].split("/")[0])
        except ValueError:
            damaged(source, f"the sampling frequency {record[2][:16]!r} is not a number")
    frame_fs = check_fs(frame_fs, "the header's sampling frequency", source)
    n_frames = _int(record[3], "the number of samples", source) if len(record) > 3 else None
    if n_frames is not None and n_frames < 0:
        damaged(source, f"the header declares {n_frames} samples")
    start = _base_datetime(
        record[4] if len(record) > 4 else None, record[5] if len(record) > 5 else None
    )

    signals = [_Signal(lines[1 + i], i + 1, source) for i in range(n_sig)]
    names = unique_names([s.name for s in signals])
    chosen = choose_channel(names, channel, source)
    sig = signals[names.index(chosen)]
    if sig.fmt not in _FORMATS:
        fail(
            UNSUPPORTED,
            f"{source}: signal format {sig.fmt}",
            f"convert the record to format 16 (formats read: {sorted(_FORMATS)})",
        )
    if sig.skew:
        fail(UNSUPPORTED, f"{source}: a skewed signal ({chosen!r})", "convert it without skew")
    if _FILE_NAME.fullmatch(sig.file) is None or sig.file in (".", ".."):
        fail(
            UNSUPPORTED,
            f"{source}: signal file {sig.file[:40]!r} is not a plain file name",
            "keep the signal files beside the header, named without directories",
        )
    group = [s for s in signals if s.file == sig.file]
    if any(s.fmt != sig.fmt or s.byte_offset != sig.byte_offset for s in group):
        damaged(source, f"signals in {sig.file!r} differ in format or byte offset")
    frame_len = sum(s.spf for s in group)
    column = sum(s.spf for s in group[: group.index(sig)])
    bits, invalid = _FORMATS[sig.fmt]

    blob = read_file(sig.file)
    body = len(blob) - sig.byte_offset
    if body < 0:
        damaged(source, f"{sig.file!r} is shorter than its byte offset")
    if n_frames is None:
        n_frames = body * 8 // bits // frame_len
    count = n_frames * frame_len
    if (count * bits + 7) // 8 > body:
        damaged(
            source,
            f"{sig.file!r} holds {body} bytes, the header needs {(count * bits + 7) // 8}",
        )
    if n_frames == 0:
        fail(EMPTY, f"{source}: the record holds no samples", "check the record")
    rate = check_fs(frame_fs * sig.spf, f"the rate of {chosen!r}", source)
    given = None if fs is None else check_fs(fs, "fs", source)
    rate = resolve_fs(given, rate, None, source, declared_what=f"the rate of {chosen!r}")

    flat = _decode(blob, sig.byte_offset, count, sig.fmt)
    digital = flat.reshape(n_frames, frame_len)[:, column : column + sig.spf].reshape(-1)
    signal = (digital.astype(np.float64) - sig.baseline) / sig.gain
    signal[digital == invalid] = np.nan
    return Recording(
        signal=signal,
        fs=rate,
        channel=chosen,
        channels=tuple(names),
        start_time=start,
        source=source,
        unit=sig.units,
    )


def _decode(blob: bytes, offset: int, count: int, fmt: int) -> np.ndarray:
    """``count`` digital samples of format ``fmt`` from ``blob[offset:]`` as int64."""
    if fmt in (16, 61, 160, 32):
        dtype = {16: "<i2", 61: ">i2", 160: "<u2", 32: "<i4"}[fmt]
        out = np.frombuffer(blob, dtype=dtype, count=count, offset=offset).astype(np.int64)
        return out - 32768 if fmt == 160 else out
    if fmt == 80:
        return (
            np.frombuffer(blob, dtype=np.uint8, count=count, offset=offset).astype(np.int64) - 128
        )
    if fmt == 24:
        b = np.frombuffer(blob, dtype=np.uint8, count=3 * count, offset=offset).astype(np.int64)
        b = b.reshape(-1, 3)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        return np.where(v >= 1 << 23, v - (1 << 24), v)
    # 212: two 12-bit samples in three bytes; an odd last sample takes two bytes.
    nbytes = (count * 12 + 7) // 8
    raw = np.zeros((nbytes + 2) // 3 * 3, dtype=np.int64)
    raw[:nbytes] = np.frombuffer(blob, dtype=np.uint8, count=nbytes, offset=offset)
    b = raw.reshape(-1, 3)
    out = np.empty(2 * b.shape[0], dtype=np.int64)
    out[0::2] = b[:, 0] | ((b[:, 1] & 0x0F) << 8)
    out[1::2] = b[:, 2] | ((b[:, 1] & 0xF0) << 4)
    out = out[:count]
    return np.where(out >= 1 << 11, out - (1 << 12), out)
