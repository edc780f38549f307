"""Heartbeat (J-peak) detection on BCG: the streaming detector and a one-call helper."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._bcg_dsp import ffi, lib
from ._checks import check_samples, samples_error, samples_for_c, sampling_rate
from ._status import DspValueError, check
from .filters import SosFilter, butter_bandpass, with_mains_notches

__all__ = ["DEFAULT_BAND_HZ", "JPeakDetector", "beat_filter", "default_band", "detect_beats"]

#: Band-pass applied by :func:`detect_beats` before the detector (Hz). Below 2.5 Hz
#: respiration and posture dominate; above 12 Hz the J-wave has little energy.
DEFAULT_BAND_HZ = (2.5, 12.0)
#: Order of that band-pass (Butterworth prototype order).
DEFAULT_ORDER = 2

_BLOCK = 1 << 14  # samples per block in detect_beats (128 KiB of float64)


def _check_fs(fs: Any) -> float:
    return sampling_rate(
        fs, lib.BCG_JPEAK_MIN_FS, lib.BCG_JPEAK_MAX_FS, "; resample the recording first"
    )


class JPeakDetector:
    """Causal, streaming J-peak detector for band-passed BCG.

    Feed band-passed samples (e.g. the output of a :class:`SosFilter` built with
    ``butter_bandpass(2, 2.5, 12, fs)``) in chunks of any size; each call returns the
    beats that became final, as absolute sample indices counted from the first sample
    since construction or :meth:`reset`. Chunking never changes the result.

    Latency: a beat is normally reported 0.425 s after its candidate time (at most 0.465 s
    after the template-aligned time it is reported at), and always within 4.54 s after
    start-up (see ``dsp_c/include/bcg_dsp.h`` for the decision logic). Samples must be finite and
    within +-1e15: otherwise ``ValueError`` naming ``y``, and the chunk is not consumed.

    Example:
        >>> det = JPeakDetector(250)
        >>> beats = np.concatenate([det.process(chunk) for chunk in chunks] + [det.flush()])
    """

    def __init__(self, fs: float) -> None:
        self._fs = _check_fs(fs)
        self._state = ffi.new("bcg_jpeak *")
        check(lib.bcg_jpeak_init(self._state, self._fs), "fs")
        self._n_out = ffi.new("size_t *")
        self._out = np.empty(0, dtype=np.int64)
        self._out_c = ffi.from_buffer("int64_t[]", self._out, require_writable=True)
        self._samples_seen = 0

    @property
    def fs(self) -> float:
        """Sampling rate in samples per second."""
        return self._fs

    @property
    def samples_seen(self) -> int:
        """Samples processed since construction, :meth:`reset` or :meth:`flush`."""
        return self._samples_seen

    @property
    def interval_s(self) -> float:
        """Current median beat interval in seconds (``nan`` until known)."""
        value = lib.bcg_jpeak_interval(self._state)
        return value if value > 0 else float("nan")

    def _buffer(self, n: int) -> Any:
        """The output buffer for a call with n samples, grown to the C bound when needed;
        its cffi view is kept, so the common call makes none."""
        cap = lib.bcg_jpeak_max_beats(self._state, n)
        if self._out.size < cap:
            self._out = np.empty(max(cap, 2 * self._out.size), dtype=np.int64)
            self._out_c = ffi.from_buffer("int64_t[]", self._out, require_writable=True)
        return self._out_c

    def _result(self) -> np.ndarray:
        n = self._n_out[0]
        return self._out[:n].copy() if n else np.empty(0, dtype=np.int64)

    def process(self, y: Any) -> np.ndarray:
        """Feed band-passed samples; return the beats (int64 sample indices) now final."""
        return self._process_checked(samples_for_c(y, "y"))

    def _process_checked(self, y: np.ndarray) -> np.ndarray:
        """:meth:`process` without its Python-side checks, for a caller that has checked the
        chunk once already: ``y`` must be a 1-D, C-contiguous, aligned float64 array. The C
        core still refuses samples that are not finite or beyond +-1e15 (raising as
        :meth:`process` does)."""
        out = self._buffer(y.size)
        status = lib.bcg_jpeak_process(
            self._state, ffi.from_buffer("double[]", y), y.size, out, len(out), self._n_out
        )
        if status:
            check_samples(status, y, "y")
        self._samples_seen += y.size
        return self._result()

    def flush(self) -> np.ndarray:
        """End of stream: return the beats still pending, then start afresh."""
        out = self._buffer(0)
        check(lib.bcg_jpeak_flush(self._state, out, len(out), self._n_out))
        self._samples_seen = 0
        return self._result()

    def reset(self) -> None:
        """Forget everything; the next sample has index 0."""
        lib.bcg_jpeak_reset(self._state)
        self._samples_seen = 0


def default_band(fs: float) -> tuple[float, float]:
    """The band-pass of :func:`detect_beats` at ``fs``: 2.5 to 12 Hz, the upper edge
    lowered to 0.45 fs where 12 Hz is above it (fs below 26.7 Hz)."""
    return DEFAULT_BAND_HZ[0], min(DEFAULT_BAND_HZ[1], 0.45 * fs)


def beat_filter(
    fs: float,
    low_hz: float | None = None,
    high_hz: float | None = None,
    order: int = DEFAULT_ORDER,
    *,
    mains: bool = False,
) -> SosFilter:
    """The band-pass that goes before :class:`JPeakDetector` (:func:`default_band` unless
    ``low_hz``/``high_hz`` are given), with ``mains`` followed by notches at the power-line
    frequencies (:func:`dsp_c.filters.with_mains_notches`: the unit's band; :func:`detect_beats`
    has none); prime it with ``reset(steady_input=first_sample)``."""
    default_low, default_high = default_band(fs)
    low_hz = default_low if low_hz is None else low_hz
    high_hz = default_high if high_hz is None else high_hz
    sos = butter_bandpass(order, low_hz, high_hz, fs)
    return SosFilter(with_mains_notches(sos, fs) if mains else sos)


def detect_beats(
    x: Any,
    fs: float,
    low_hz: float | None = None,
    high_hz: float | None = None,
    order: int = DEFAULT_ORDER,
) -> np.ndarray:
    """Raw BCG -> J-peak sample indices, in one call.

    Band-passes ``x`` (Butterworth, ``default_band(fs)`` unless ``low_hz``/``high_hz`` are
    given, started in the steady state of the first sample so a DC offset gives no start-up
    transient), runs :class:`JPeakDetector` over it and flushes it. Equal to the streaming
    path chunk for chunk.

    Raises ``ValueError`` for bad parameters and for NaN or infinite samples (split
    the recording at the gap or interpolate it: a beat is never invented across one).
    """
    x = samples_for_c(x, "x")
    fs = _check_fs(fs)
    if x.size == 0:
        return np.empty(0, dtype=np.int64)
    band = beat_filter(fs, low_hz, high_hz, order)
    detector = JPeakDetector(fs)
    try:
        band.reset(steady_input=float(x[0]))
        # Blocks that stay in cache, through one reused buffer; the C core checks every
        # sample. The result does not depend on the block size.
        buffer = np.empty(min(_BLOCK, x.size))
        beats = []
        for start in range(0, x.size, _BLOCK):
            block = x[start : start + _BLOCK]
            beats.append(detector.process(band.process(block, out=buffer[: block.size])))
    except DspValueError:
        error = samples_error(x, "x")  # name the first bad sample of the whole recording
        if error is None:
            raise
        raise error from None
    return np.concatenate(beats + [detector.flush()])
