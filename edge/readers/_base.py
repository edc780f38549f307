"""What every recording reader shares: the :class:`Recording` it returns, the
:class:`RecordingError` it raises, and the rules for channels, sampling rates, time columns
and references, so that a ``.mat``, a ``.csv`` and an ``.npz`` of the same night agree.

Nothing here reads a file; the format modules turn bytes into named arrays and call
:func:`assemble` (or the smaller helpers) to build the :class:`Recording`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn

import numpy as np

from edge import errors
from edge.errors import BedsideError

__all__ = [
    "MAX_DECODED_BYTES",
    "MAX_FILE_BYTES",
    "MAX_FS",
    "Recording",
    "RecordingError",
]

# Bounds that keep a hostile or damaged file from taking the unit's memory. A night at
# 1 kHz of 8 float64 channels is about 1.8 GB; anything larger is refused with E212.
MAX_FILE_BYTES = 2 * 1024**3
MAX_DECODED_BYTES = 2 * 1024**3  # after decompression (MAT miCOMPRESSED, .npz members)
MAX_FS = 1e6  # Hz: above this a "sampling rate" is a damaged header, not a sensor
AGREE_REL = 0.01  # two statements of the rate must agree within 1 %

# Error codes (docs/errors.md, "Recording files (E201-E219)").
UNKNOWN_FORMAT = "E201"
UNREADABLE = "E202"
EMPTY = "E203"
CORRUPT = "E204"
UNSUPPORTED = "E205"
NO_SUCH_CHANNEL = "E206"
NO_SIGNAL = "E207"
NO_RATE = "E208"
BAD_RATE = "E209"
BAD_TIME = "E210"
NOT_NUMERIC = "E211"
TOO_LARGE = "E212"


class RecordingError(BedsideError, ValueError):
    """A recording file that cannot be read as asked.

    ``code`` is the stable error code (``"E201"`` .. ``"E219"``, see docs/errors.md);
    ``str(error)`` is one line, ``what happened — what to do``, naming the file by its
    name only (never its directory). A command-line tool prints ``error {code}: {error}``.
    """


def fail(code: str, what: str, todo: str) -> NoReturn:
    """Raise :class:`RecordingError` with the message ``what — todo``."""
    errors.fail(code, what, todo, error=RecordingError)


def damaged(source: str, what: str) -> NoReturn:
    """Raise E204 for a file whose structure is inconsistent (truncated or corrupt)."""
    fail(CORRUPT, f"{source}: {what}", "the file is damaged or incomplete; copy it again")


@dataclass(frozen=True, eq=False)
class Recording:
    """One channel of a recording file, with what the file says about it.

    Attributes:
        signal: the chosen channel, float64, 1-D, in the file's physical units (EDF and
            WFDB are scaled from digital counts; other formats hold values as stored).
            Missing values (empty CSV cells, WFDB invalid samples) are NaN.
        fs: its sampling rate in Hz.
        channel: the chosen channel's name.
        channels: every signal channel in the file, in file order (time columns, rates
            and reference annotations are not channels).
        start_time: when the first sample was taken. Timezone-aware UTC when the file
            states an absolute instant (a Unix-epoch time column); a naive datetime when
            it states the recorder's wall clock without a zone (EDF, WFDB); else None.
        reference: reference annotations found in the file: ``r_peaks`` (int64, 0-based
            sample indices of ECG R-peaks), per-sample series such as ``pulse_ox_bpm``,
            ``hr_bpm``, ``spo2_percent`` (float64, one value per sample), EDF+ annotations
            as ``annotation:<text>`` (int64 sample indices of their onsets).
        source: the file's name, without its directory.
        unit: the physical unit of ``signal`` when the file states it (EDF, WFDB), else "".
    """

    signal: np.ndarray
    fs: float
    channel: str
    channels: tuple[str, ...]
    start_time: datetime | None = None
    reference: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""
    unit: str = ""

    @property
    def duration_s(self) -> float:
        """Length of the recording in seconds (samples / fs)."""
        return self.signal.size / self.fs


# ---------------------------------------------------------------------------- names


def norm_name(name: str) -> str:
    """Lower-case letters and digits only: ``"Pulse_Ox"`` -> ``"pulseox"``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


FS_NAMES = frozenset(
    {"fs", "fsamp", "samplerate", "samplingrate", "samplingfrequency", "samplefrequency", "srate"}
)
_TIME_WORDS = {
    "t": None,
    "time": None,
    "timestamp": None,
    "timestamps": None,
    "ts": None,
    "epoch": None,
    "unixtime": None,
    "elapsed": None,
    "sec": "s",
    "secs": "s",
    "seconds": "s",
    "ms": "ms",
    "msec": "ms",
    "millis": "ms",
    "milliseconds": "ms",
}
_UNIT_WORDS = {
    "s": "s",
    "sec": "s",
    "secs": "s",
    "seconds": "s",
    "ms": "ms",
    "msec": "ms",
    "millis": "ms",
    "milliseconds": "ms",
    "us": "us",
    "usec": "us",
    "micros": "us",
    "microseconds": "us",
    "ns": "ns",
    "nanos": "ns",
    "nanoseconds": "ns",
}
_UNIT_SCALE = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
# Index references: sample numbers of events (1-based in MATLAB files).
R_PEAK_NAMES = frozenset({"peaksr", "rpeaks", "rpeak", "rpeakindices", "qrs", "ecgrpeaks"})
# Per-sample reference series: normalised name -> reference key.
SERIES_NAMES = {
    "pulseoximeterresults": "pulse_ox_bpm",
    "pulseoximeter": "pulse_ox_bpm",
    "pulseox": "pulse_ox_bpm",
    "pulseoxbpm": "pulse_ox_bpm",
    "pulseoxhr": "pulse_ox_bpm",
    "pulserate": "pulse_ox_bpm",
    "spo2": "spo2_percent",
    "spo2percent": "spo2_percent",
    "hr": "hr_bpm",
    "hrbpm": "hr_bpm",
    "heartrate": "hr_bpm",
    "heartratebpm": "hr_bpm",
    "refhr": "hr_bpm",
    "hrref": "hr_bpm",
}


def time_name_unit(name: str) -> tuple[bool, str | None]:
    """Whether a column name means "time", and the unit it names ("s", "ms", "us", "ns").

    ``time``, ``t``, ``epoch``, ``timestamp_ms``, ``Time (s)``, ``TimeMs``, ``ms`` are time
    columns; ``temperature`` and ``time_in_bed`` are not.
    """
    words = re.findall(r"[a-z]+", name.lower())
    if not words:
        return False, None
    if words[0] in _TIME_WORDS and all(w in _UNIT_WORDS for w in words[1:]):
        unit = next((_UNIT_WORDS[w] for w in words[1:]), _TIME_WORDS[words[0]])
        return True, unit
    compact = norm_name(name)
    for word in sorted(_TIME_WORDS, key=len, reverse=True):
        rest = compact[len(word) :]
        if compact.startswith(word) and rest in _UNIT_WORDS:
            return True, _UNIT_WORDS[rest]
    return False, None


def unique_names(names: Iterable[str], default: str = "ch") -> list[str]:
    """Names made unique and non-empty: blanks become ``ch<i>``, repeats get ``#2``, ``#3``."""
    out: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(names):
        name = raw.strip() or f"{default}{i}"
        candidate, k = name, 1
        while candidate in seen:
            k += 1
            candidate = f"{name}#{k}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _listing(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# A channel named like the sensor signal wins; reference and timing channels lose.
_NOT_DEFAULT = re.compile(r"ecg|ekg|ppg|resp|spo2|pulse|vref|ref|time|annot|marker|trig|event")


def default_channel(names: Sequence[str]) -> str:
    """The channel to use when the caller names none.

    In order: a channel named exactly ``bcg``; one containing ``bcg`` but not ``filt``
    (the raw sensor, not somebody's filtered copy); any containing ``bcg``; ``data``,
    ``signal``, ``raw``, ``x`` or a name containing ``raw``; the first channel that is not
    an ECG, PPG, respiration, reference or timing channel; the first channel.
    """
    lows = [re.sub(r"\[\d+\]$", "", n).lower() for n in names]
    rules: list[Callable[[str], bool]] = [
        lambda s: s == "bcg",
        lambda s: "bcg" in s and "filt" not in s,
        lambda s: "bcg" in s,
        lambda s: s in ("data", "signal", "raw", "x", "piezo", "sensor") or "raw" in s,
        lambda s: _NOT_DEFAULT.search(s) is None,
    ]
    for rule in rules:
        for name, low in zip(names, lows, strict=True):
            if rule(low):
                return name
    return names[0]


def choose_channel(names: Sequence[str], channel: str | None, source: str) -> str:
    """The channel asked for (exact name, else a unique case-insensitive match), or the
    default one; E206 listing the channels when there is no such channel."""
    if not names:
        fail(NO_SIGNAL, f"{source}: no signal channel in the file", "check that it is a recording")
    if channel is None:
        return default_channel(names)
    if channel in names:
        return channel
    folded = [n for n in names if n.casefold() == channel.casefold()]
    if len(folded) == 1:
        return folded[0]
    fail(
        NO_SUCH_CHANNEL,
        f"{source}: no channel {channel!r}",
        f"choose one of {_listing(names)}",
    )


# ---------------------------------------------------------------------- rates, time


def check_fs(value: object, what: str, source: str) -> float:
    """A sampling rate as a float, or E209 when it is not a finite number in (0, MAX_FS]."""
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        fail(BAD_RATE, f"{source}: {what} {value!r} is not a number", "give the rate in Hz")
    if not (math.isfinite(rate) and 0 < rate <= MAX_FS):
        fail(BAD_RATE, f"{source}: {what} {rate:g} Hz is not a sampling rate", "give it in Hz")
    return rate


def _agree(a: float, b: float) -> bool:
    return abs(a - b) <= AGREE_REL * max(a, b)


def resolve_fs(
    given: float | None,
    declared: float | None,
    timed: float | None,
    source: str,
    *,
    declared_what: str = "the file's sampling rate",
) -> float:
    """The sampling rate from the caller (``given``), the file's header or variable
    (``declared``) and its time column (``timed``). Statements that exist must agree within
    1 % (E209); the file's own rate wins over a given one that agrees; none at all is E208.
    """
    if declared is not None and timed is not None and not _agree(declared, timed):
        fail(
            BAD_RATE,
            f"{source}: {declared_what} is {declared:g} Hz but its time column steps at "
            f"{timed:g} Hz",
            "the file is inconsistent; pass the right rate with fs= after checking it",
        )
    rate = declared if declared is not None else timed
    if given is not None:
        if rate is not None and not _agree(given, rate):
            fail(
                BAD_RATE,
                f"{source}: fs={given:g} Hz was given but the file says {rate:g} Hz",
                "drop fs (the file states its rate) or fix the value",
            )
        return rate if rate is not None else given
    if rate is None:
        fail(
            NO_RATE,
            f"{source}: the file does not state its sampling rate",
            "pass the sampling rate (fs) or add a time column to the file",
        )
    return rate


@dataclass(frozen=True)
class TimeAxis:
    """What a time column says: the sampling rate and, for epoch time, the UTC start."""

    fs: float
    start: datetime | None


def _unit_of(t0: float, dt: float, unit: str | None) -> tuple[float, bool] | None:
    """(scale to seconds, absolute epoch?) for a time column; None when no unit fits."""
    if unit is not None:
        scale = _UNIT_SCALE[unit]
        return scale, 3e8 <= t0 * scale < 1e10
    for scale in _UNIT_SCALE.values():  # an epoch time: 1979..2286, steps of at most 1 s
        if 3e8 <= t0 * scale < 1e10 and dt * scale <= 1.0:
            return scale, True
    for scale in _UNIT_SCALE.values():  # relative time: the first unit giving >= 5 Hz
        if dt * scale <= 0.2:
            return scale, False
    return None


def time_axis(
    t: np.ndarray,
    *,
    unit: str | None,
    resolution: float,
    source: str,
    where: Callable[[int], str],
) -> TimeAxis | None:
    """The sampling rate and start a time column states, checking that it is regular.

    ``unit`` is the unit the column's name gives, or None to infer it: an epoch time from
    its magnitude (seconds, ms, us or ns since 1970), else relative time in the first unit
    giving at least 5 Hz. ``resolution`` is the column's quantisation (e.g. 1 for integer
    milliseconds); ``where(i)`` names sample ``i`` for messages (e.g. ``"line 12"``).
    Every step must be within half a step of the median step (plus the resolution): a gap
    or a jump is E210, as is time that repeats or runs backwards; the rate is the mean step's
    (snapped to a whole number of Hz when that is within the column's resolution). None
    for fewer than 2 samples.
    """
    t = np.asarray(t, dtype=np.float64)
    if t.size < 2:
        return None
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        fail(BAD_TIME, f"{source}: time value missing at {where(int(bad[0]))}", "fix or drop it")
    steps = np.diff(t)
    back = np.flatnonzero(steps <= 0)
    if back.size:
        i = int(back[0]) + 1
        fail(
            BAD_TIME,
            f"{source}: time repeats or runs backwards at {where(i)}",
            "sort the rows, drop duplicates, or split the file there",
        )
    span = float(t[-1] - t[0])
    dt = span / (t.size - 1)  # the mean step gives the rate, the median one the regularity
    typical = float(np.median(steps))
    found = _unit_of(float(t[0]), typical, unit)
    if found is None:
        fail(
            BAD_TIME,
            f"{source}: cannot tell the time column's unit (mean step {dt:g})",
            "name the column time_s or time_ms, or pass fs",
        )
    scale, absolute = found
    jumps = np.flatnonzero(np.abs(steps - typical) > 0.5 * (typical + resolution))
    if jumps.size:
        i = int(jumps[0])
        fail(
            BAD_TIME,
            f"{source}: time steps by {steps[i] * scale * 1e3:g} ms at {where(i + 1)}, the "
            f"usual step being {typical * scale * 1e3:g} ms (a gap or irregular sampling)",
            "split the recording at the gap, or resample it to a fixed rate",
        )
    fs = 1.0 / (dt * scale)
    nearest = round(fs)
    if nearest > 0 and abs(fs - nearest) <= fs * (resolution / span + 1e-9):
        fs = float(nearest)  # the mean step is exact to within the column's resolution
    start = None
    if absolute:
        try:
            start = datetime.fromtimestamp(float(t[0]) * scale, tz=UTC)
        except (OverflowError, OSError, ValueError):
            start = None
    return TimeAxis(check_fs(fs, "the time column's rate", source), start)


# ------------------------------------------------------------------------- assembly


def _index_reference(values: np.ndarray, base: int) -> np.ndarray | None:
    """Event sample numbers as 0-based int64, or None if they are not whole numbers."""
    v = np.asarray(values).reshape(-1)
    if v.dtype.kind not in "biuf":
        return None
    v = v.astype(np.float64)
    if not (np.all(np.isfinite(v)) and np.all(v == np.round(v)) and np.all(np.abs(v) < 2**62)):
        return None
    return v.astype(np.int64) - base


def _is_vector(a: np.ndarray) -> bool:
    return sum(1 for d in a.shape if d > 1) <= 1 and a.ndim >= 1


def assemble(
    arrays: Mapping[str, np.ndarray],
    *,
    source: str,
    channel: str | None,
    fs: float | None,
    index_base: int,
    unsupported: Mapping[str, str] | None = None,
    time_resolution: Mapping[str, float] | None = None,
    where: Callable[[int], str] | None = None,
) -> Recording:
    """Build a :class:`Recording` from named arrays (MAT variables, .npz members, columns).

    The longest vector sets the recording's length ``n``. Then, by name: a scalar named
    like ``fs`` is the rate; a vector named like ``time``/``epoch_ms`` of length ``n`` is the
    time column (rate, start, checked for gaps); ``peaks_r``/``r_peaks`` are R-peak sample
    numbers (``index_base`` is subtracted: 1 for MATLAB, 0 for numpy); series named like
    a pulse oximeter, ``hr`` or ``spo2`` of length ``n`` are per-sample references; every
    other real numeric vector of length ``n`` is a channel, and a matrix with an axis of
    length ``n`` gives channels ``name[0]``, ``name[1]``, ... (the longer axis is time).
    Arrays of other lengths (filter coefficients, settings) are ignored. ``unsupported``
    maps names of variables that exist but cannot be signals to the reason (E205 if
    asked for).
    """
    unsupported = dict(unsupported or {})
    time_resolution = time_resolution or {}
    where = where or (lambda i: f"sample index {i}")
    declared: float | None = None
    candidates: dict[str, np.ndarray] = {}
    for name, arr in arrays.items():
        kind = arr.dtype.kind
        if kind == "c":
            unsupported.setdefault(name, "complex numbers")
            continue
        if kind not in "biuf":
            continue
        if norm_name(name) in FS_NAMES and arr.size == 1:
            if declared is None:
                declared = check_fs(arr.reshape(-1)[0], f"the rate in {name!r}", source)
            continue
        if arr.size and (_is_vector(arr) or arr.ndim == 2):
            candidates[name] = arr
    if channel is not None and channel in unsupported and channel not in candidates:
        fail(
            UNSUPPORTED,
            f"{source}: variable {channel!r} holds {unsupported[channel]}",
            "choose a real-valued channel",
        )
    lengths = [
        a.size if _is_vector(a) else max(a.shape)
        for name, a in candidates.items()
        if norm_name(name) not in R_PEAK_NAMES
    ]
    if not lengths:
        if any(a.size == 0 for a in arrays.values() if a.dtype.kind in "biuf"):
            fail(EMPTY, f"{source}: the recording holds no samples", "check the file")
        fail(
            NO_SIGNAL,
            f"{source}: no signal in the file (it holds {_listing(list(arrays)) or 'nothing'})",
            "check that it is a recording",
        )
    n = max(lengths)
    channels: dict[str, np.ndarray] = {}
    reference: dict[str, np.ndarray] = {}
    time_name: str | None = None
    for name, arr in candidates.items():
        key = norm_name(name)
        if _is_vector(arr):
            vec = arr.reshape(-1)
            if key in R_PEAK_NAMES:
                idx = _index_reference(vec, index_base)
                if idx is not None:
                    reference.setdefault("r_peaks", idx)
            elif vec.size != n:
                continue
            elif time_name_unit(name)[0]:
                time_name = time_name or name
            elif key in SERIES_NAMES:
                reference.setdefault(SERIES_NAMES[key], vec.astype(np.float64))
            else:
                channels[name] = vec
        elif arr.shape[0] == n or arr.shape[1] == n:
            cols = arr if arr.shape[0] == n else arr.T
            for j in range(cols.shape[1]):
                channels[f"{name}[{j}]"] = cols[:, j]
    names = list(channels)
    if not names:
        fail(NO_SIGNAL, f"{source}: no signal channel in the file", "check that it is a recording")
    chosen = choose_channel(names, channel, source)
    timed = None
    start = None
    if time_name is not None:
        axis = time_axis(
            arrays[time_name].reshape(-1),
            unit=time_name_unit(time_name)[1],
            resolution=time_resolution.get(time_name, 0.0),
            source=source,
            where=where,
        )
        if axis is not None:
            timed, start = axis.fs, axis.start
    given = None if fs is None else check_fs(fs, "fs", source)
    rate = resolve_fs(given, declared, timed, source)
    return Recording(
        signal=np.array(channels[chosen], dtype=np.float64, order="C"),
        fs=rate,
        channel=chosen,
        channels=tuple(names),
        start_time=start,
        reference=reference,
        source=source,
    )
