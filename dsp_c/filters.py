"""Band-pass design and streaming second-order-section filtering (C core via cffi).

>>> import numpy as np, dsp_c
>>> sos = dsp_c.butter_bandpass(2, 1.0, 10.0, fs=250.0)   # scipy.signal.butter(..., output='sos')
>>> f = dsp_c.SosFilter(sos)
>>> y = np.concatenate([f.process(chunk) for chunk in np.array_split(np.ones(1000), 7)])

Samples that are NaN or infinite propagate as in ``scipy.signal.sosfilt``: the output from
that sample on is NaN (or inf), and so is the filter state, so every later output is NaN
too until ``reset()``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._bcg_dsp import ffi, lib
from ._checks import as_samples, real_number, sampling_rate
from ._status import check

__all__ = ["MAX_ORDER", "MAX_SECTIONS", "MIN_FS", "MAX_FS", "butter_bandpass", "SosFilter"]

MAX_ORDER: int = lib.BCG_MAX_ORDER
MAX_SECTIONS: int = lib.BCG_MAX_SECTIONS
MIN_FS: float = float(lib.BCG_MIN_FS)
MAX_FS: float = float(lib.BCG_MAX_FS)


def _check_fs(fs: Any) -> float:
    return sampling_rate(fs, MIN_FS, MAX_FS)


def butter_bandpass(order: int, low_hz: float, high_hz: float, fs: float) -> np.ndarray:
    """Design a digital Butterworth band-pass as second-order sections.

    Same result as ``scipy.signal.butter(order, [low_hz, high_hz], 'band', fs=fs,
    output='sos')``: an array of shape ``(order, 6)``, rows ``b0 b1 b2 a0 a1 a2`` with
    ``a0 == 1`` and the gain in the first row.

    Args:
        order: prototype order, an integer in 1..MAX_ORDER (the band-pass has 2*order poles).
        low_hz: lower -3 dB edge in Hz, 0 < low_hz < high_hz.
        high_hz: upper -3 dB edge in Hz, below fs/2.
        fs: sampling rate in samples/s, in MIN_FS..MAX_FS.

    Raises:
        ValueError: naming the parameter that is out of range or of the wrong type.
    """
    if isinstance(order, bool) or not isinstance(order, numbers.Integral):
        raise ValueError(f"order: expected an integer, got {order!r}")
    order = int(order)
    if not 1 <= order <= MAX_ORDER:
        raise ValueError(f"order: must be in 1..{MAX_ORDER}, got {order}")
    fs_v = _check_fs(fs)
    lo = real_number(low_hz, "low_hz")
    hi = real_number(high_hz, "high_hz")
    if lo <= 0.0:
        raise ValueError(f"low_hz: must be > 0 Hz, got {lo:g}")
    if hi >= fs_v / 2.0:
        raise ValueError(f"high_hz: must be below fs/2 = {fs_v / 2.0:g} Hz, got {hi:g}")
    if lo >= hi:
        raise ValueError(f"low_hz: must be below high_hz ({hi:g} Hz), got {lo:g}")

    sos = np.zeros((order, 6), dtype=np.float64)
    n_sections = ffi.new("int *")
    status = lib.bcg_butter_bandpass(
        order, lo, hi, fs_v, ffi.from_buffer("double[]", sos), n_sections
    )
    check(status, {lib.BCG_ERR_ORDER: "order", lib.BCG_ERR_FS: "fs"}.get(status, "low_hz/high_hz"))
    return sos[: n_sections[0]]


def _as_sos(sos: Any) -> np.ndarray:
    arr = np.asarray(sos)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"sos: expected real coefficients, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise ValueError(f"sos: expected shape (n_sections, 6), got {arr.shape}")
    if not 1 <= arr.shape[0] <= MAX_SECTIONS:
        raise ValueError(f"sos: expected 1..{MAX_SECTIONS} sections, got {arr.shape[0]}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("sos: coefficients must be finite")
    if not np.all(arr[:, 3] == 1.0):
        raise ValueError("sos: a0 of every section must be 1 (normalise the section)")
    return arr


class SosFilter:
    """Streaming cascade of second-order sections (direct form II transposed).

    Computes exactly what ``scipy.signal.sosfilt`` computes, keeping the state ``zi``
    between calls, so filtering a signal in chunks of any sizes gives the same bits as
    filtering it in one call.

    Args:
        sos: array-like of shape (n_sections, 6), 1 <= n_sections <= MAX_SECTIONS,
            finite, a0 == 1 in every row (scipy's SOS layout).
    """

    def __init__(self, sos: Any) -> None:
        coeffs = _as_sos(sos)
        self._sos = coeffs
        self._filter = ffi.new("bcg_sos_filter *")
        check(
            lib.bcg_sos_init(self._filter, ffi.from_buffer("double[]", coeffs), coeffs.shape[0]),
            "sos",
        )

    @property
    def n_sections(self) -> int:
        """Number of second-order sections."""
        return int(self._sos.shape[0])

    @property
    def sos(self) -> np.ndarray:
        """A copy of the coefficients, shape (n_sections, 6)."""
        return self._sos.copy()

    @property
    def state(self) -> np.ndarray:
        """A copy of the filter state, shape (n_sections, 2), as scipy's ``zi``."""
        zi = np.empty((self.n_sections, 2), dtype=np.float64)
        lib.bcg_ffi_sos_get_state(self._filter, ffi.from_buffer("double[]", zi))
        return zi

    def reset(self, steady_input: float | None = None) -> None:
        """Reset the state.

        Args:
            steady_input: None for the zero state (as after construction); a finite number
                x0 for the steady state of a constant input x0 (``sosfilt_zi(sos) * x0``),
                so a signal starting near x0 has no start-up transient.
        """
        if steady_input is None:
            lib.bcg_sos_reset(self._filter)
        else:
            lib.bcg_sos_prime(self._filter, real_number(steady_input, "steady_input"))

    def process(self, x: Any) -> np.ndarray:
        """Filter the next chunk of samples; returns a new float64 array of the same length.

        ``x`` is any 1-D sequence of real numbers (ints and float32 are converted; an empty
        chunk gives an empty result). Raises TypeError / ValueError naming ``x`` otherwise.
        NaN or inf samples poison the state until ``reset()`` (as in scipy).
        """
        if type(x) is np.ndarray and x.dtype == np.float64 and x.ndim == 1 and x.flags.c_contiguous:
            samples = x  # the streaming fast path: no conversion needed
        else:
            samples = as_samples(x, "x")
        out = np.empty_like(samples)
        if samples.size:
            lib.bcg_sos_process(
                self._filter,
                ffi.from_buffer("double[]", samples),
                ffi.from_buffer("double[]", out),
                samples.size,
            )
        return out

    def __repr__(self) -> str:
        return f"SosFilter(n_sections={self.n_sections})"
