"""Band-pass design and streaming second-order-section filtering (C core via cffi).

>>> import numpy as np, dsp_c
>>> sos = dsp_c.butter_bandpass(2, 1.0, 10.0, fs=250.0)   # scipy.signal.butter(..., output='sos')
>>> f = dsp_c.SosFilter(sos)
>>> y = np.concatenate([f.process(chunk) for chunk in np.array_split(np.ones(1000), 7)])

Samples must be finite and within +-1e15 (``MAX_ABS_SAMPLE``), the rule of every streaming
object of the core: a chunk holding a NaN, an infinity or a larger value raises
``ValueError`` naming ``x`` and the first bad sample, and is not consumed (the state is
unchanged). ``scipy.signal.sosfilt`` instead lets a NaN poison the state until a reset.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._bcg_dsp import ffi, lib
from ._checks import (
    F64,
    MAX_ABS_SAMPLE,
    check_samples,
    real_number,
    samples_error,
    samples_for_c,
    sampling_rate,
)
from ._status import DspValueError, check

__all__ = [
    "MAX_ORDER",
    "MAX_SECTIONS",
    "MIN_FS",
    "MAX_FS",
    "MAX_ABS_SAMPLE",
    "butter_bandpass",
    "iir_notch",
    "mains_frequencies",
    "mains_hum",
    "mains_notches",
    "priming_level",
    "with_mains_notches",
    "SosFilter",
]

MAX_ORDER: int = lib.BCG_MAX_ORDER
MAX_SECTIONS: int = lib.BCG_MAX_SECTIONS
MIN_FS: float = float(lib.BCG_MIN_FS)
MAX_FS: float = float(lib.BCG_MAX_FS)

#: Power-line frequencies (Hz): hum reaches a sensor's cable at one of them.
MAINS_HZ = (50.0, 60.0)
#: Multiples of each notched: the hum's harmonics (a rectifier's third is often strong).
MAINS_HARMONICS = 3
#: Quality of each notch: -3 dB width f0/Q, 10 Hz at 50 Hz. Wide enough for the grid's
#: drift and a sensor clock off by 1 %, which move the hum by up to 0.5 Hz (a narrow notch
#: then misses it); at 20 Hz, the top of any band the unit reads, all six notches together
#: still pass 0.989 (0.997 at 12 Hz, the top of the beat band).
MAINS_Q = 5.0
#: Notches are placed below this share of fs only: nearer Nyquist a band-pass's zero at fs/2
#: removes the hum already.
MAINS_MAX_SHARE = 0.45
#: A stretch's filters are primed with the hum fitted over this much of its start (s): ten
#: cycles of 50 Hz, twelve of 60; frequencies 5 Hz apart are told apart (the hum's are 10).
PRIMING_S = 0.2


def _check_fs(fs: Any) -> float:
    return sampling_rate(fs, MIN_FS, MAX_FS)


def butter_bandpass(order: int, low_hz: float, high_hz: float, fs: float) -> np.ndarray:
    """Design a digital Butterworth band-pass as second-order sections.

    Same result as ``scipy.signal.butter(order, [low_hz, high_hz], 'band', fs=fs,
    output='sos')``: an array of shape ``(order, 6)``, rows ``b0 b1 b2 a0 a1 a2`` with
    ``a0 == 1`` and the gain in the first row. Measured agreement with scipy (each row
    relative to its largest coefficient, scipy 1.17, x86-64):

    * ordinary bands: within about 1e-12, the same sections in the same order;
    * bands symmetric about fs/4 (``low_hz + high_hz == fs/2``): mirrored pole pairs have
      equal magnitude and scipy's section order is then decided by rounding noise, so the
      same sections (and gain, and frequency response) may come in another order;
    * very narrow bands, ``(high_hz - low_hz) / low_hz`` below about 1e-6: up to 3e-7;
    * a high edge close to Nyquist: up to about 1e-16 * fs / (fs/2 - high_hz), i.e. 1e-10
      at 1e-6 * fs below fs/2 and 1e-7 at 1e-9 * fs; within a few ulps of fs/2 the design
      is meaningless for both (scipy's frequency response is NaN there).

    Args:
        order: prototype order, an integer in 1..MAX_ORDER (the band-pass has 2*order poles).
        low_hz: lower -3 dB edge in Hz, 0 < low_hz < high_hz.
        high_hz: upper -3 dB edge in Hz, below fs/2.
        fs: sampling rate in samples/s, in MIN_FS..MAX_FS.

    Raises:
        ValueError: naming the parameter that is out of range or of the wrong type.
    """
    if isinstance(order, bool) or not isinstance(order, numbers.Integral):
        raise DspValueError(f"order: expected an integer, got {order!r}", lib.BCG_ERR_ORDER)
    order = int(order)
    if not 1 <= order <= MAX_ORDER:
        raise DspValueError(f"order: must be in 1..{MAX_ORDER}, got {order}", lib.BCG_ERR_ORDER)
    fs_v = _check_fs(fs)
    band = lib.BCG_ERR_BAND
    lo = real_number(low_hz, "low_hz", band)
    hi = real_number(high_hz, "high_hz", band)
    if lo <= 0.0:
        raise DspValueError(f"low_hz: must be > 0 Hz, got {lo:g}", band)
    if hi >= fs_v / 2.0:
        raise DspValueError(f"high_hz: must be below fs/2 = {fs_v / 2.0:g} Hz, got {hi:g}", band)
    if lo >= hi:
        raise DspValueError(f"low_hz: must be below high_hz ({hi:g} Hz), got {lo:g}", band)

    sos = np.zeros((order, 6), dtype=np.float64)
    n_sections = ffi.new("int *")
    status = lib.bcg_butter_bandpass(
        order, lo, hi, fs_v, ffi.from_buffer("double[]", sos), n_sections
    )
    check(status, {lib.BCG_ERR_ORDER: "order", lib.BCG_ERR_FS: "fs"}.get(status, "low_hz/high_hz"))
    return sos[: n_sections[0]]


def iir_notch(f0_hz: float, q: float, fs: float) -> np.ndarray:
    """Design a second-order notch at ``f0_hz`` as one section, shape ``(1, 6)``.

    The same section as ``scipy.signal.iirnotch(f0_hz, q, fs)`` (its ``b`` and ``a`` as a
    row ``b0 b1 b2 1 a1 a2``): zero gain at ``f0_hz``, -3 dB at ``f0_hz / q`` apart, gain 1
    at 0 Hz and at fs/2.

    Args:
        f0_hz: the frequency removed, inside (0, fs/2).
        q: quality, > 0: ``f0_hz / q`` is the -3 dB width.
        fs: sampling rate in samples/s, in MIN_FS..MAX_FS.

    Raises:
        ValueError: naming the parameter that is out of range or of the wrong type.
    """
    fs_v = _check_fs(fs)
    band = lib.BCG_ERR_BAND
    f0 = real_number(f0_hz, "f0_hz", band)
    q_v = real_number(q, "q", band)
    if not 0.0 < f0 < fs_v / 2.0:
        raise DspValueError(
            f"f0_hz: must be inside (0, fs/2 = {fs_v / 2.0:g}) Hz, got {f0:g}", band
        )
    if q_v <= 0.0:
        raise DspValueError(f"q: must be > 0, got {q_v:g}", band)
    # math (the C library), not numpy's vector loops: the same bits on every CPU, as the
    # Butterworth design in C gets them.
    w0 = 2.0 * math.pi * f0 / fs_v
    gain = 1.0 / (1.0 + math.tan(w0 / q_v / 2.0))
    cos = math.cos(w0)
    return np.array([[gain, -2.0 * gain * cos, gain, 1.0, -2.0 * gain * cos, 2.0 * gain - 1.0]])


def mains_notches(fs: float) -> np.ndarray:
    """Notches (:func:`iir_notch`, :data:`MAINS_Q`) at the power-line frequencies
    :data:`MAINS_HZ` and their multiples up to :data:`MAINS_HARMONICS` that lie below
    :data:`MAINS_MAX_SHARE` of ``fs``, as sections of shape ``(n, 6)``; ``n`` is 0 at a
    rate too low for any (under about 111 samples/s).

    A ballistocardiogram has nothing above 20 Hz; the hum of an unshielded cable can be
    tens of times its beat band, and a band-pass's skirt lets a share of it through (a
    2.5-12 Hz Butterworth of order 2 passes 6 % at 50 Hz): :func:`with_mains_notches`.
    """
    fs_v = _check_fs(fs)
    rows = [iir_notch(f, MAINS_Q, fs_v) for f in mains_frequencies(fs_v)]
    return np.concatenate(rows) if rows else np.empty((0, 6))


def mains_frequencies(fs: float) -> list[float]:
    """The hum frequencies (Hz, ascending) a recording at ``fs`` can carry clearly: the
    :data:`MAINS_HZ` and their multiples up to :data:`MAINS_HARMONICS` below
    :data:`MAINS_MAX_SHARE` of ``fs``."""
    fs_v = _check_fs(fs)
    hum = sorted(k * f for k in range(1, MAINS_HARMONICS + 1) for f in MAINS_HZ)
    return [f for f in hum if f < MAINS_MAX_SHARE * fs_v]


def with_mains_notches(sos: np.ndarray, fs: float) -> np.ndarray:
    """``sos`` followed by the :func:`mains_notches` at ``fs``: one cascade that band-passes,
    then takes out what the band's skirt let through of the hum. Notching after the band
    keeps the notches' start-up small: a stream starts in the middle of the hum, and a notch
    fed the whole hum rings for a fifth of a second, tens of times the beat band."""
    return np.concatenate([np.asarray(sos, dtype=np.float64), mains_notches(fs)])


def mains_hum(x: np.ndarray, fs: float, fit_from: int = 0) -> np.ndarray:
    """The steady power-line hum in ``x`` (at ``fs``), as an array like it: sines and cosines
    at the :func:`mains_frequencies` (with a straight line, not returned) fitted by least squares
    to ``x[fit_from:]``; zeros where ``fs`` carries none or too few samples are fitted. Hum
    is steady, so the fit holds for the whole of ``x``: a start-up step or a movement outside
    the fitted part is not taken for hum."""
    x = np.asarray(x, dtype=np.float64)
    freqs = mains_frequencies(fs)
    if not freqs or x.size - fit_from <= 4 * len(freqs) + 2:
        return np.zeros(x.size)
    t = np.arange(x.size) / float(fs)
    waves = [g(2.0 * np.pi * f * t) for f in freqs for g in (np.sin, np.cos)]
    columns = [w[fit_from:] for w in waves] + [np.ones(x.size - fit_from), t[fit_from:]]
    # The normal equations by sums and a solve in Python floats, not LAPACK or BLAS, whose
    # kernels differ in the last bit from one CPU to another (the unit's results must not).
    gram = [[float(np.sum(a * b)) for b in columns] for a in columns]
    coef = _solve(gram, [float(np.sum(a * x[fit_from:])) for a in columns])
    hum = np.zeros(x.size)
    for c, wave in zip(coef, waves, strict=False):  # the line's two terms are not hum
        hum = hum + c * wave
    return hum


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """The solution of ``a @ x = b`` by Gaussian elimination with partial pivoting, in
    Python floats (each operation rounded alone: the same bits on every machine)."""
    n = len(b)
    rows = [list(r) + [v] for r, v in zip(a, b, strict=True)]
    for k in range(n):
        pivot = max(range(k, n), key=lambda i: abs(rows[i][k]))
        rows[k], rows[pivot] = rows[pivot], rows[k]
        if rows[k][k] == 0.0:
            # Not reached from mains_hum: its columns are distinct sines below 0.45 fs and a
            # line, over at least 4 samples a column.
            raise DspValueError(
                "mains hum fit: the sines and the line are not independent over these "
                "samples (singular normal equations)",
                lib.BCG_ERR_PARAM,
            )
        for i in range(k + 1, n):
            factor = rows[i][k] / rows[k][k]
            rows[i] = [u - factor * v for u, v in zip(rows[i], rows[k], strict=True)]
    out = [0.0] * n
    for k in reversed(range(n)):
        out[k] = (rows[k][n] - sum(rows[k][j] * out[j] for j in range(k + 1, n))) / rows[k][k]
    return out


def priming_level(x: np.ndarray, fs: float) -> float:
    """The level to prime a stretch's filters at (``reset(steady_input=...)``): its first
    sample less the power-line hum in it (:func:`mains_hum`, fitted on its first
    :data:`PRIMING_S` as far as ``x``, the stretch's first chunk, goes); the first sample
    itself where those are not all finite numbers within :data:`MAX_ABS_SAMPLE` (the
    caller's check then names the bad one). A stream starts in the middle of the hum: primed
    at a sample on a crest, a band-pass sees a step of the hum's height and rings for half a
    second. Without hum (or at a rate too low to carry it, or from a first chunk shorter
    than :data:`PRIMING_S`) it is the first sample. The fit takes the hum at exactly 50 and
    60 Hz: hum 0.5 Hz off (a sensor clock 1 % fast) leaves about 30 % of its height."""
    head = np.asarray(x[: max(1, int(round(PRIMING_S * float(fs))))], dtype=np.float64)
    usable = samples_error(head) is None
    if not usable or head.size < PRIMING_S * float(fs):  # a short fit is ill-conditioned
        return float(head[0])
    return float(head[0] - mains_hum(head, fs)[0])


def _as_sos(sos: Any) -> np.ndarray:
    sections, coef = lib.BCG_ERR_SECTIONS, lib.BCG_ERR_COEF
    arr = np.asarray(sos)
    if arr.dtype.kind not in "biuf":
        raise DspValueError(f"sos: expected real coefficients, got dtype {arr.dtype}", coef)
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise DspValueError(f"sos: expected shape (n_sections, 6), got {arr.shape}", sections)
    if not 1 <= arr.shape[0] <= MAX_SECTIONS:
        raise DspValueError(
            f"sos: expected 1..{MAX_SECTIONS} sections, got {arr.shape[0]}", sections
        )
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise DspValueError("sos: coefficients must be finite", coef)
    if not np.all(arr[:, 3] == 1.0):
        raise DspValueError("sos: a0 of every section must be 1 (normalise the section)", coef)
    return arr


def _check_out(out: Any, n: int) -> None:
    """``out`` must be a writeable, aligned, C-contiguous 1-D float64 array of length n."""
    if not isinstance(out, np.ndarray) or isinstance(out, np.ma.MaskedArray):
        raise TypeError(f"out: expected a numpy float64 array, got {type(out).__name__}")
    problem = None
    if out.dtype != np.float64:
        problem = f"dtype float64, got {out.dtype}"
    elif out.shape != (n,):
        problem = f"shape ({n},) like x, got {out.shape}"
    elif not (out.flags.c_contiguous and out.flags.aligned):
        problem = "a C-contiguous, aligned array (a view with a step or offset is not)"
    elif not out.flags.writeable:
        problem = "a writeable array, got a read-only one"
    if problem is not None:
        raise DspValueError(f"out: expected {problem}", lib.BCG_ERR_PARAM)


class SosFilter:
    """Streaming cascade of second-order sections (direct form II transposed).

    Computes exactly what ``scipy.signal.sosfilt`` computes, keeping the state ``zi``
    between calls, so filtering a signal in chunks of any sizes gives the same bits as
    filtering it in one call. Unlike sosfilt, a chunk holding a NaN, an infinity or a
    sample beyond +-1e15 is refused (``ValueError``) instead of poisoning the state.

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
                x0 within +-MAX_ABS_SAMPLE for the steady state of a constant input x0
                (``sosfilt_zi(sos) * x0``), so a signal starting near x0 has no start-up
                transient.

        Raises:
            ValueError: naming ``steady_input`` when it is not such a number, or ``sos``
                when a section has no steady state (a pole at z = 1, ``1 + a1 + a2 == 0``,
                or a state that would overflow). The state is then unchanged.
        """
        if steady_input is None:
            lib.bcg_sos_reset(self._filter)
            return
        x0 = real_number(steady_input, "steady_input")
        status = lib.bcg_sos_prime(self._filter, x0)
        if status == lib.BCG_ERR_PARAM:
            raise DspValueError(f"steady_input: must be within ±1e15, got {x0!r}", status)
        if status == lib.BCG_ERR_COEF:
            raise DspValueError(
                "sos: no steady state to start from (a section has a pole at z = 1, "
                "1 + a1 + a2 == 0, or its steady state overflows); reset() without "
                "steady_input starts from zero",
                status,
            )
        check(status)

    def process(self, x: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Filter the next chunk of samples.

        Args:
            x: any 1-D sequence of real numbers (ints and float32 are converted; an empty
                chunk gives an empty result), finite and within +-MAX_ABS_SAMPLE.
            out: optional preallocated result, as numpy's ``out=``: a writeable, aligned,
                C-contiguous float64 array of ``len(x)`` samples; it may be ``x`` itself
                (filtering in place). None (default): a new array.

        Returns:
            The filtered chunk: ``out`` when given, else a new float64 array.

        Raises:
            TypeError / ValueError: naming ``x`` when it is not a 1-D real array, or holds
                a NaN, an infinity or a sample beyond +-1e15 (then nothing is consumed and
                the state is unchanged, unlike scipy, where a NaN poisons it); naming
                ``out`` when it is not as described.
        """
        samples = samples_for_c(x, "x")
        n = samples.size
        if out is None:
            out = np.empty(n)
        else:
            if not (
                type(out) is np.ndarray
                and out.dtype is F64
                and out.shape == (n,)
                and out.flags.carray  # C-contiguous, aligned, writeable
            ):
                _check_out(out, n)  # raises unless a subclass or dtype object that is fine
            # out may be x itself (in place); a view overlapping x otherwise would overwrite
            # samples before they are read. Two arrays that own their memory never overlap.
            if (
                out is not samples
                and (out.base is not None or samples.base is not None)
                and np.may_share_memory(out, samples)
            ):
                samples = samples.copy()
        return self._filter_into(samples, out)

    def _process_checked(self, samples: np.ndarray) -> np.ndarray:
        """:meth:`process` without its Python-side checks, for a caller that has checked the
        chunk once already (the pipeline's intake): ``samples`` must be a 1-D, C-contiguous,
        aligned float64 array of finite samples within +-MAX_ABS_SAMPLE. The C core still
        guards the state (a bad sample raises as in :meth:`process`). Returns a new array."""
        return self._filter_into(samples, np.empty(samples.size))

    def _filter_into(self, samples: np.ndarray, out: np.ndarray) -> np.ndarray:
        if samples.size:
            status = lib.bcg_sos_process(
                self._filter,
                ffi.from_buffer("double[]", samples),
                ffi.from_buffer("double[]", out),
                samples.size,
            )
            if status:
                check_samples(status, samples, "x")
        return out

    def __repr__(self) -> str:
        return f"SosFilter(n_sections={self.n_sections})"
