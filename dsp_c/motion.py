"""Body-movement energy per window of the raw BCG signal, with a motion flag.

Energy of a window = RMS (input units: ADC counts) of the raw signal band-passed to 2..10 Hz
(capped at 0.45 fs): DC, slow drift and respiration are removed (-43 dB at 0.7 Hz), the J-waves
of the cardiac ballistogram set the quiet level and gross movement raises it many times over. A
window is "moving" when its energy exceeds 3 x the median of the last 31 quiet windows, that
median taken as at least 0.5 count (``MIN_BASELINE``), so on a flat signal (empty bed) a step of
a few ADC counts is not movement; see ``dsp_c/include/bcg_dsp.h`` ("motion") for warm-up and
relearning.

>>> meter = MotionMeter(fs=250, window_s=1.0)
>>> energy, moving = meter.process(chunk)   # one value per window completed in the chunk

Samples must be finite and within +-1e15, as for every streaming object of the core: a chunk
holding a NaN, an infinity or a larger value raises ``ValueError`` naming ``x`` and is not
consumed (the state is left unchanged).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._bcg_dsp import ffi, lib
from ._checks import as_samples, check_samples, real_number
from ._status import DspValueError, check
from .filters import _check_fs

__all__ = ["MIN_BASELINE", "MotionMeter", "motion_energy"]

MIN_WINDOW_S: float = lib.BCG_MOTION_MIN_WINDOW_MS / 1000.0
MAX_WINDOW_S: float = lib.BCG_MOTION_MAX_WINDOW_MS / 1000.0
#: Smallest baseline energy the flag compares with, in ADC counts RMS.
MIN_BASELINE: float = lib.BCG_MOTION_MIN_BASELINE_MCOUNTS / 1000.0


class MotionMeter:
    """Causal, streaming motion meter: energy and motion flag per fixed window.

    Window k covers input samples ``[k * window_len, (k + 1) * window_len)`` counted from
    construction or :meth:`reset`; it is reported by the call that supplies its last
    sample. The first 5 windows seed the baseline and are never flagged; after 60 s of
    uninterrupted motion the level is relearned as the new normal.

    Args:
        fs: sampling rate in samples/s (10..20000).
        window_s: window length in seconds, 0.1..60.

    Raises:
        ValueError: naming ``fs`` or ``window_s`` when out of range or not a number.
    """

    def __init__(self, fs: float, window_s: float = 1.0) -> None:
        self._fs = _check_fs(fs)
        window = real_number(window_s, "window_s")
        if not MIN_WINDOW_S <= window <= MAX_WINDOW_S:
            raise DspValueError(
                f"window_s: must be in {MIN_WINDOW_S:g}..{MAX_WINDOW_S:g} s, got {window:g}",
                lib.BCG_ERR_PARAM,
            )
        self._window_s = window
        self._state = ffi.new("bcg_motion *")
        check(lib.bcg_motion_init(self._state, self._fs, window), "window_s")
        self._n_windows = ffi.new("size_t *")

    @property
    def fs(self) -> float:
        """Sampling rate in samples/s."""
        return self._fs

    @property
    def window_s(self) -> float:
        """Window length in seconds, as given."""
        return self._window_s

    @property
    def window_len(self) -> int:
        """Window length in samples, ``round(window_s * fs)``."""
        return int(lib.bcg_motion_window_len(self._state))

    def process(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Feed the next chunk of raw samples.

        Args:
            x: 1-D sequence of real samples in ADC counts, finite and within +-1e15 (ints are
                converted; may be empty).

        Returns:
            ``(energy, moving)``: per window completed in this call, its energy (float64,
            RMS in input units) and whether it is moving (bool).

        Raises:
            TypeError / ValueError: naming ``x`` when it is not a 1-D real array or holds a
                NaN, an infinity or a sample beyond +-1e15 (nothing is consumed then).
        """
        return self._process_checked(as_samples(x, "x"))

    def _process_checked(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`process` without its Python-side checks, for a caller that has checked the
        chunk once already: ``samples`` must be a 1-D, C-contiguous, aligned float64 array.
        The C core still refuses samples that are not finite or beyond +-1e15 (raising as
        :meth:`process` does)."""
        cap = lib.bcg_motion_max_windows(self._state, samples.size)
        energy = np.empty(cap, dtype=np.float64)
        moving = np.empty(cap, dtype=np.uint8)
        check_samples(
            lib.bcg_motion_process(
                self._state,
                ffi.from_buffer("double[]", samples),
                samples.size,
                ffi.from_buffer("double[]", energy),
                ffi.from_buffer("uint8_t[]", moving),
                cap,
                self._n_windows,
            ),
            samples,
            "x",
        )
        n = self._n_windows[0]
        return energy[:n], moving[:n].astype(bool)

    def reset(self) -> None:
        """Forget all samples and the baseline; windows restart at sample 0."""
        lib.bcg_motion_reset(self._state)

    def __repr__(self) -> str:
        return f"MotionMeter(fs={self._fs:g}, window_s={self._window_s:g})"


def motion_energy(x: Any, fs: float, window_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Motion energy and flag of every complete window of a raw recording.

    Same as one :meth:`MotionMeter.process` call on a fresh meter; a trailing partial
    window is not reported.

    Args:
        x: 1-D sequence of real raw samples in ADC counts, finite and within +-1e15.
        fs: sampling rate in samples/s (10..20000).
        window_s: window length in seconds, 0.1..60.

    Returns:
        ``(energy, moving)`` arrays of length ``len(x) // window_len``.

    Raises:
        TypeError / ValueError: naming ``x``, ``fs`` or ``window_s``.
    """
    return MotionMeter(fs, window_s).process(x)
