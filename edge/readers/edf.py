"""European Data Format: EDF, EDF+ (``.edf``) and BioSemi BDF/BDF+ (``.bdf``, 24-bit).

The header (256 bytes plus 256 per signal) gives every signal's label, unit, physical and
digital range and samples per data record; a signal's rate is its samples per record over
the record duration, so signals may have different rates and the chosen channel keeps
its own. Samples are scaled to physical units as EDF specifies (and as edflib/pyedflib
do): ``(physical_max - physical_min) / (digital_max - digital_min) * (offset + digital)``.

EDF+ annotation signals (``EDF Annotations``) are not channels; their time-stamped
annotation lists are read: the first record's time keeping refines the start time, an
EDF+D file whose records are not contiguous is refused (E205), and each annotation text
becomes ``reference["annotation:<text>"]``, the sample indices of its onsets.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

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

_ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")
_MAX_LABELS = 256  # distinct annotation texts kept as references
_TAL_ONSET = re.compile(rb"[+-]\d+(\.\d*)?")

# Per-signal header fields: (name, width in bytes).
_FIELDS = (
    ("label", 16),
    ("transducer", 80),
    ("unit", 8),
    ("physical_min", 8),
    ("physical_max", 8),
    ("digital_min", 8),
    ("digital_max", 8),
    ("prefilter", 80),
    ("samples_per_record", 8),
    ("reserved", 32),
)


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").strip()


def _number(raw: bytes, what: str, source: str, *, integer: bool = False) -> float:
    s = _text(raw)
    try:
        value = int(s) if integer else float(s)
    except ValueError:
        damaged(source, f"header field {what} is not a number: {s[:16]!r}")
    if not math.isfinite(value):
        damaged(source, f"header field {what} is not finite")
    return value


def _start(date: str, time: str) -> datetime | None:
    """The header's dd.mm.yy hh.mm.ss as a naive datetime (years 1985..2084), or None."""
    try:
        day, month, year = (int(x) for x in date.split("."))
        hour, minute, second = (int(x) for x in time.split("."))
        year += 1900 if year >= 85 else 2000
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def _tals(raw: bytes) -> list[tuple[float, list[str]]]:
    """The (onset in s, texts) of each time-stamped annotation list in one record."""
    out = []
    for tal in raw.split(b"\x00"):
        if not tal:
            continue
        head, *texts = tal.split(b"\x14")
        onset = head.split(b"\x15")[0]
        if _TAL_ONSET.fullmatch(onset) is None:
            continue
        out.append((float(onset), [t.decode("utf-8", "replace") for t in texts if t]))
    return out


def parse(
    data: bytes, *, source: str, channel: str | None = None, fs: float | None = None
) -> Recording:
    """A :class:`~edge.readers.Recording` from an EDF/EDF+/BDF file's bytes."""
    bdf = data[:8] == b"\xffBIOSEMI"
    if not bdf and data[:8] != b"0       ":
        damaged(source, "not an EDF file (the version field is not '0')")
    if len(data) < 256:
        damaged(source, "the EDF header is cut short")
    header_bytes = _number(data[184:192], "'header bytes'", source, integer=True)
    reserved = _text(data[192:236])
    n_records = _number(data[236:244], "'number of data records'", source, integer=True)
    duration = _number(data[244:252], "'duration of a data record'", source)
    ns = _number(data[252:256], "'number of signals'", source, integer=True)
    if ns < 1 or header_bytes != 256 * (ns + 1):
        damaged(source, f"the header declares {ns} signals in {header_bytes} bytes")
    if header_bytes > len(data):
        damaged(source, f"the header needs {header_bytes} bytes, the file holds {len(data)}")
    fields: dict[str, list[bytes]] = {}
    pos = 256
    for name, width in _FIELDS:
        fields[name] = [data[pos + i * width : pos + (i + 1) * width] for i in range(ns)]
        pos += width * ns
    labels = [_text(b) for b in fields["label"]]
    plus = reserved[:4] in ("EDF+", "BDF+")
    is_annotation = [plus and label in _ANNOTATION_LABELS for label in labels]
    spr = [
        _number(b, f"'samples per record' of signal {i + 1}", source, integer=True)
        for i, b in enumerate(fields["samples_per_record"])
    ]
    if any(k < 0 for k in spr) or sum(spr) == 0:
        damaged(source, "a signal has a negative or zero number of samples per record")
    width = 3 if bdf else 2
    record_bytes = sum(spr) * width
    available = (len(data) - header_bytes) // record_bytes
    if n_records == -1:  # still being recorded: as many records as the file holds
        n_records = available
    elif n_records < 0:
        damaged(source, f"the header declares {n_records} data records")
    elif n_records > available:
        damaged(source, f"the header declares {n_records} data records, the file holds {available}")
    signals = [i for i in range(ns) if not is_annotation[i]]
    if not signals:
        fail(NO_SIGNAL, f"{source}: only annotations, no signal", "check that it is a recording")
    if n_records == 0:
        fail(EMPTY, f"{source}: no data records", "check the file")
    if duration <= 0:
        damaged(source, f"the data record duration is {duration:g} s")
    names = unique_names([labels[i] for i in signals])
    chosen = choose_channel(names, channel, source)
    index = signals[names.index(chosen)]
    if spr[index] == 0:
        fail(EMPTY, f"{source}: channel {chosen!r} has no samples", "choose another channel")
    rate = check_fs(spr[index] / duration, f"the rate of {chosen!r}", source)
    given = None if fs is None else check_fs(fs, "fs", source)
    rate = resolve_fs(given, rate, None, source, declared_what=f"the rate of {chosen!r}")

    phys_min = _number(fields["physical_min"][index], "'physical minimum'", source)
    phys_max = _number(fields["physical_max"][index], "'physical maximum'", source)
    dig_min = _number(fields["digital_min"][index], "'digital minimum'", source, integer=True)
    dig_max = _number(fields["digital_max"][index], "'digital maximum'", source, integer=True)
    if dig_max <= dig_min or phys_max == phys_min:
        damaged(source, f"channel {chosen!r} has an empty digital or physical range")

    records = np.frombuffer(
        data, dtype=np.uint8, count=n_records * record_bytes, offset=header_bytes
    )
    records = records.reshape(n_records, record_bytes)
    offsets = np.concatenate([[0], np.cumsum(spr)]) * width

    def raw_bytes(i: int) -> np.ndarray:
        return records[:, offsets[i] : offsets[i + 1]]

    digital = _decode(raw_bytes(index), bdf)
    bitvalue = (phys_max - phys_min) / (dig_max - dig_min)
    offset = phys_max / bitvalue - dig_max
    signal = bitvalue * (offset + digital)

    start = _start(_text(data[168:176]), _text(data[176:184]))
    reference: dict[str, np.ndarray] = {}
    annotation_signals = [i for i in range(ns) if is_annotation[i]]
    if annotation_signals:
        first_onset, events = _annotations(
            raw_bytes(annotation_signals[0]),
            [raw_bytes(i) for i in annotation_signals[1:]],
            duration,
            discontinuous=reserved[:5] in ("EDF+D", "BDF+D"),
            source=source,
        )
        if start is not None and first_onset:
            start += timedelta(seconds=first_onset)
        for text, onsets in events.items():
            idx = np.round((np.asarray(onsets) - first_onset) * rate)
            reference[f"annotation:{text}"] = idx.astype(np.int64)
    return Recording(
        signal=signal,
        fs=rate,
        channel=chosen,
        channels=tuple(names),
        start_time=start,
        reference=reference,
        source=source,
        unit=_text(fields["unit"][index]),
    )


def _decode(raw: np.ndarray, bdf: bool) -> np.ndarray:
    """Little-endian 16-bit (EDF) or 24-bit (BDF) two's complement samples, as float64."""
    flat = np.ascontiguousarray(raw).reshape(-1)
    if not bdf:
        return flat.view("<i2").astype(np.float64)
    b = flat.reshape(-1, 3).astype(np.int32)
    v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    return np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64)


def _annotations(
    keeping: np.ndarray,
    others: list[np.ndarray],
    duration: float,
    *,
    discontinuous: bool,
    source: str,
) -> tuple[float, dict[str, list[float]]]:
    """(onset of the first record, annotation text -> onsets) from the annotation signals.

    The first annotation list of each record of the first annotation signal keeps time
    (its onset is the record's start); an EDF+D file must have contiguous records.
    """
    events: dict[str, list[float]] = {}
    record_onsets: list[float] = []
    for r in range(keeping.shape[0]):
        tals = _tals(keeping[r].tobytes())
        for k, (onset, texts) in enumerate(tals):
            if k == 0:
                record_onsets.append(onset)
            for text in texts:
                if text in events or len(events) < _MAX_LABELS:
                    events.setdefault(text, []).append(onset)
        for other in others:
            for onset, texts in _tals(other[r].tobytes()):
                for text in texts:
                    if text in events or len(events) < _MAX_LABELS:
                        events.setdefault(text, []).append(onset)
    first = record_onsets[0] if record_onsets else 0.0
    if discontinuous and len(record_onsets) == keeping.shape[0]:
        expected = first + duration * np.arange(len(record_onsets))
        gaps = np.flatnonzero(np.abs(np.asarray(record_onsets) - expected) > 1e-3)
        if gaps.size:
            fail(
                UNSUPPORTED,
                f"{source}: EDF+D with a gap before data record {int(gaps[0]) + 1}",
                "export the recording as continuous EDF+C, or split it at the gap",
            )
    elif discontinuous:
        damaged(source, "EDF+D data records without time-keeping annotations")
    return first, events
