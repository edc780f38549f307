"""Peer methods the evaluation compares ``dsp_c.detect_beats`` against, on the same data.

Evaluation-only code: the unit never imports this module. The heavy libraries (scipy,
neurokit2, heartpy, PyWavelets) are imported inside the functions; without them a peer
raises ``ModuleNotFoundError`` naming the extra to install (``pip install bedside-bcg[dev]``).

Interface
---------
Every beat peer is ``peer(x, fs) -> beats``: ``x`` is the RAW signal (ADC counts or any
real units, 1-D, finite), ``fs`` its sampling rate in Hz, and ``beats`` the sample indices
of the beats found, int64, sorted, unique, within ``[0, x.size)``. Each peer does its own
preprocessing, as its authors describe it, with fixed parameters: nothing is tuned per
record. They are registered in :data:`PEERS` under short stable names.

A peer that fails on a record (a library raising on a signal it cannot handle, a signal too
short for its filters) returns an empty array and warns :class:`PeerFailure` with the
reason: the harness counts it as no estimate and carries on. :func:`run_peer` does the
catching for a harness and returns the reason with the beats. Invalid arguments (2-D or
non-finite ``x``, ``fs`` not positive) raise ``ValueError``, as ``dsp_c`` does; an empty or
constant signal gives no beats without running the method (some libraries find beats in
the rounding noise of their own filters on a constant).

The peers and their fixed parameters
------------------------------------
``scipy_find_peaks``
    Causal Butterworth band-pass 2.5 to 12 Hz, order 2 (the band and order of
    ``dsp_c.detect_beats``, so the comparison isolates the decision logic), started in the
    steady state of the first sample; then ``scipy.signal.find_peaks`` with a minimum
    distance of 0.33 s (180 bpm) and a minimum prominence of 1.0 x the robust standard
    deviation of the filtered signal (1.4826 x its median absolute deviation, over the whole
    record: robust to movement bursts, not adapted in time).

The three library peers below filter the whole record with their own cleaning step, then
run their peak finder on equal segments of at most 120 s (HeartPy's default segment width
for ``hp.process_segmentwise``; the same for all three): these detectors were written for
recordings of a few minutes and derive their thresholds from the whole input, so over a
night a few dropouts or one posture change would set them for every beat. (Measured on the
Sadek recording: NeuroKit2's PPG finder over the whole 18.6 min finds 26 bpm, 70 bpm MAE;
HeartPy finds no heart rate at all.) A segment where the library gives up contributes no
beats and a PeerFailure warning names it.

``neurokit2``
    The PPG pipeline of NeuroKit2 applied to BCG: ``nk.ppg_clean(method="elgendi")``
    (zero-phase Butterworth band-pass 0.5 to 8 Hz, order 3) then
    ``nk.ppg_findpeaks(method="elgendi")`` (Elgendi et al. 2013: moving averages of the
    squared positive part over 0.111 s and 0.667 s, an offset of 2 % of its mean, a 0.3 s
    minimum delay), NeuroKit2's defaults.
``neurokit2_ecg``
    The ECG pipeline of NeuroKit2 applied to BCG: ``nk.ecg_clean(method="neurokit")``
    (0.5 Hz high-pass, order 5, and a 50 Hz powerline filter) then
    ``nk.ecg_peaks(method="neurokit")`` (smoothed-gradient QRS detector), defaults.
``heartpy``
    HeartPy: ``hp.filter_signal`` band-pass 0.7 to 12 Hz, order 3 (zero-phase), then per
    segment ``hp.scale_data`` to 0..1024 (as its examples do before processing) and
    ``hp.process`` with its defaults (moving-average window 0.75 s, threshold fitted to the
    segment, 40 to 180 bpm). The beats are its accepted peaks (``peaklist`` minus
    ``removed_beats``).
``modwt_sadek2019``
    Our reimplementation of the MODWT-MRA heart-rate method of Sadek et al., from the
    description (below).

:func:`hr_per_window` (``autocorr_window`` in :data:`WINDOW_HR_PEERS`) is the
autocorrelation window heart rate. It estimates a rate per window and finds NO beats, so it
has its own interface and is not in :data:`PEERS`: beats synthesised from a window rate would
be invented, and would score as a beat detector they are not.

MODWT-MRA after Sadek et al.
----------------------------
What the literature says. Sadek et al. estimate heart rate from a microbend fiber-optic
mat under the mattress, sampled at 50 Hz, with the multiresolution analysis of the maximal
overlap discrete wavelet transform (MODWT-MRA): the BCG is decomposed into details and a
smooth, the component that carries the heartbeat is kept, its peaks are taken as J-peaks and
the heart rate follows from the intervals between them, per 30 s window with 15 s overlap.
Sources: I. Sadek, E. Seet, J. Biswas, B. Abdulrazak, M. Mokhtari, "Nonintrusive vital
signs monitoring for sleep apnea patients: a preliminary study", IEEE Access 6 (2018),
doi:10.1109/ACCESS.2017.2783939; I. Sadek et al., "A new approach for detecting sleep apnea
using a contactless bed sensor: comparison study", J Med Internet Res 22(9) (2020) e18297;
I. Sadek, B. Abdulrazak, T. T. S. Heng, E. Seet, "Heart rate detection using a contactless
bed sensor: a comparative study of wavelet methods", IEEE BSN 2021 (MAE 4.71 bpm against
the polysomnography ECG over ten sleep-apnea patients); I. Sadek, B. Abdulrazak, "A
comparison of three heart rate detection algorithms over ballistocardiogram signals",
Biomed. Signal Process. Control 70 (2021) 103017 (MODWT-MRA the fastest: 0.04 s per 30 s
on a Raspberry Pi). Only the abstracts were available to us. The wavelet, level and band
below follow the issue's summary of the method (Symlet-8, the 4th level, around 1.5 to
3 Hz at 50 Hz); where the description is silent the choice is ours, and marked. (The code
published with the sample recording, which we did not read, has modules named for a
polynomial detrend and a Chebyshev type I band-pass, so the original probably filters
before the MODWT; with no band given, we only remove the mean.)

What we implement:

1. Resample to 50 Hz (``scipy.signal.resample_poly``, its default Kaiser anti-aliasing
   FIR, zero phase) after removing the mean, so that every sampling rate uses the same
   physical bands. *Our choice*; the paper's data are already at 50 Hz. Beats are mapped
   back to the input rate (a resolution of 20 ms).
2. MODWT to level J = 4 with the Symlet-8 filters (taps from PyWavelets as data; the
   transform and its MRA are ours, below). Level-to-band mapping at 50 Hz (nominal pass
   bands of an ideal filter; the sym8 bands overlap at their edges):
   D1 12.5-25 Hz, D2 6.25-12.5 Hz, D3 3.125-6.25 Hz, D4 1.5625-3.125 Hz, S4 0-1.5625 Hz.
3. The heartbeat component is the 4th-level detail D4 (1.56 to 3.1 Hz). *Choice between
   the 4th-level smooth and detail*: S4 also holds respiration and posture drift (below
   1.56 Hz) unless the signal is band-passed first, which the description does not state
   (tried, with a 1-10 Hz or 0.7-10 Hz Chebyshev band-pass first: S4 then misses or doubles
   beats on every test signal). Consequence, measured: D4 holds the fundamental of heart
   rates from 94 to 188 bpm only; below that it holds the 2nd and 3rd harmonics and the
   method finds extra beats (Aydin, 85 bpm: all 28 beats and 20 false; synthetic 66 bpm:
   double rate). The Sadek recording (89 to 117 bpm) is inside the band.
4. J-peaks: local maxima of D4 above zero, at least 0.33 s apart (``find_peaks`` with
   ``height=0, distance=0.33 s``), the same refractory limit as the other peers. *Our
   choice* of the exact rule: the description gives a peak search with a minimum distance.
5. The MRA is computed over the whole record (circular boundary) rather than per 30 s
   window: the same decomposition away from the window edges, and it returns beats for
   the harness to window as it does for every method. *Our choice*.

The MODWT itself follows Percival & Walden, "Wavelet Methods for Time Series Analysis"
(2000), ch. 5: with the DWT wavelet and scaling filters h and g (h from g by the quadrature
mirror relation), the MODWT filters are h/sqrt(2) and g/sqrt(2); level j filters the level
j-1 scaling coefficients circularly with those filters upsampled by 2^(j-1) (the pyramid
algorithm, equivalent to the level-j filters h_j/2^(j/2)). The inverse runs the pyramid
back with the time-reversed filters; detail D_j is the inverse of W_j alone and the smooth
S_J that of V_J alone, so sum(D_j) + S_J == x, and
||x||^2 == sum_j ||W_j||^2 + ||V_J||^2.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from fractions import Fraction
from functools import wraps
from types import ModuleType
from typing import NamedTuple

import numpy as np

__all__ = [
    "PEERS",
    "PeerFailure",
    "PeerResult",
    "WINDOW_HR_PEERS",
    "heartpy_peer",
    "hr_per_window",
    "imodwt",
    "modwt",
    "modwt_band_hz",
    "modwt_mra",
    "modwt_sadek2019",
    "neurokit2_ecg_peer",
    "neurokit2_peer",
    "run_peer",
    "scipy_find_peaks",
    "sym8_scaling_filter",
]

EXTRA = "pip install bedside-bcg[dev]"

# scipy_find_peaks
SCIPY_BAND_HZ = (2.5, 12.0)
SCIPY_ORDER = 2
MIN_DISTANCE_S = 0.33  #: refractory distance of the find_peaks peers (180 bpm)
SCIPY_PROMINENCE_SIGMAS = 1.0  #: minimum prominence in robust standard deviations
# neurokit2, heartpy
LIBRARY_SEGMENT_S = 120.0  #: peak finding per segment (HeartPy's process_segmentwise default)
HEARTPY_BAND_HZ = (0.7, 12.0)
HEARTPY_ORDER = 3
# modwt_sadek2019
SADEK_FS = 50.0  #: the rate the method works at (the paper's sensor rate)
SADEK_LEVEL = 4  #: MODWT depth J
SADEK_DETAIL = 4  #: the heartbeat detail D4: 1.5625-3.125 Hz at 50 Hz
# autocorrelation window HR
ACF_BAND_HZ = (1.0, 10.0)
ACF_ORDER = 2
ACF_BPM_RANGE = (40.0, 180.0)
ACF_MIN_PEAK = 0.2  #: normalised autocorrelation a window's peak must reach (else NaN)


class PeerFailure(UserWarning):
    """A peer failed on a record (no beats at all) or on part of it; ``reason`` says why."""

    def __init__(self, peer: str, reason: str) -> None:
        super().__init__(f"{peer}: {reason}")
        self.peer = peer
        self.reason = reason


class PeerResult(NamedTuple):
    """The beats of one peer on one record, and why it failed on all or part of it (or None)."""

    beats: np.ndarray
    failure: str | None


def _require(module: str) -> ModuleType:
    """Import an evaluation-only library, or say which extra provides it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        raise ModuleNotFoundError(
            f"the peer methods need {missing} (importing {module}): {EXTRA}", name=missing
        ) from exc


def _check_signal(x: object, fs: object) -> tuple[np.ndarray, float]:
    """The signal as 1-D finite float64 and fs as a positive float, or ValueError."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"x: must be 1-D, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"x: must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(
            f"x: {bad.size} non-finite sample(s), the first at index {bad[0]}; "
            "split the recording at the gap or interpolate it"
        )
    try:
        rate = float(fs)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"fs: must be a number, got {fs!r}") from None
    if not (np.isfinite(rate) and rate > 0):
        raise ValueError(f"fs: must be positive and finite, got {fs!r}")
    return arr, rate


def _as_beats(indices: object, n: int) -> np.ndarray:
    """Sorted unique int64 sample indices within [0, n)."""
    idx = np.unique(np.asarray(indices, dtype=np.int64).ravel())
    return idx[(idx >= 0) & (idx < n)]


def _peer(name: str) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Give a peer the common contract: checked input, clean output, failures as warnings."""

    def decorate(method: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        @wraps(method)
        def peer(x: np.ndarray, fs: float) -> np.ndarray:
            arr, rate = _check_signal(x, fs)
            if arr.size == 0 or np.all(arr == arr[0]):
                return np.empty(0, dtype=np.int64)  # a constant signal has no beats
            try:
                found = method(arr, rate)
            except ModuleNotFoundError:
                raise  # a missing library is a set-up error, not a property of the record
            except Exception as exc:  # a library failing on a record
                warnings.warn(PeerFailure(name, _reason(exc)), stacklevel=2)
                return np.empty(0, dtype=np.int64)
            return _as_beats(found, arr.size)

        peer.peer_name = name  # type: ignore[attr-defined]
        return peer

    return decorate


def run_peer(name: str, x: np.ndarray, fs: float) -> PeerResult:
    """Run the peer registered as ``name``; a failure comes back as its reason, not a warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PeerFailure)
        beats = PEERS[name](x, fs)
    failures = [w.message for w in caught if isinstance(w.message, PeerFailure)]
    for w in caught:
        if not isinstance(w.message, PeerFailure):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return PeerResult(beats, failures[0].reason if failures else None)


def _reason(exc: BaseException) -> str:
    """The exception's type and first line of text (HeartPy frames its text in dashes)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    text = next((line for line in lines if line.strip("-")), "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _robust_sigma(y: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(y - np.median(y))))


# ---------------------------------------------------------------------------------------
# (a) scipy: fixed band-pass and find_peaks


@_peer("scipy_find_peaks")
def scipy_find_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    """Causal Butterworth 2.5-12 Hz order 2, then find_peaks (0.33 s, 1 robust-sigma prominence)."""
    ss = _require("scipy.signal")
    sos = ss.butter(SCIPY_ORDER, SCIPY_BAND_HZ, "band", fs=fs, output="sos")
    y, _ = ss.sosfilt(sos, x, zi=ss.sosfilt_zi(sos) * x[0])
    prominence = SCIPY_PROMINENCE_SIGMAS * _robust_sigma(y)
    distance = max(1, int(round(MIN_DISTANCE_S * fs)))
    return ss.find_peaks(y, distance=distance, prominence=prominence)[0]


# ---------------------------------------------------------------------------------------
# (b) neurokit2 and heartpy, with their own preprocessing, their peak finders per segment


def _segmentwise(name: str, y: np.ndarray, fs: float, find: Callable) -> np.ndarray:
    """Run ``find(segment) -> indices`` on equal segments of at most LIBRARY_SEGMENT_S.

    A segment where ``find`` raises contributes no beats and is named in a PeerFailure
    warning; if every segment fails, the first reason is raised.
    """
    n_segments = max(1, int(np.ceil(y.size / (LIBRARY_SEGMENT_S * fs))))
    beats, failed, start = [], [], 0
    for segment in np.array_split(y, n_segments):
        try:
            beats.append(start + np.asarray(find(segment), dtype=np.int64))
        except ModuleNotFoundError:
            raise
        except Exception as exc:  # the library gave up on this segment
            span = f"{start / fs:.0f}-{(start + segment.size) / fs:.0f} s"
            failed.append(f"{span} ({_reason(exc)})")
        start += segment.size
    if not beats:
        raise RuntimeError(f"no beats in any segment: {failed[0]}")
    if failed:
        warnings.warn(PeerFailure(name, f"no beats in {'; '.join(failed)}"), stacklevel=4)
    return np.concatenate(beats)


@_peer("neurokit2")
def neurokit2_peer(x: np.ndarray, fs: float) -> np.ndarray:
    """NeuroKit2's PPG pipeline on BCG: ppg_clean, then ppg_findpeaks per segment ("elgendi")."""
    nk = _require("neurokit2")
    cleaned = nk.ppg_clean(x, sampling_rate=fs, method="elgendi")

    def find(segment: np.ndarray) -> np.ndarray:
        return nk.ppg_findpeaks(segment, sampling_rate=fs, method="elgendi")["PPG_Peaks"]

    return _segmentwise("neurokit2", cleaned, fs, find)


@_peer("neurokit2_ecg")
def neurokit2_ecg_peer(x: np.ndarray, fs: float) -> np.ndarray:
    """NeuroKit2's ECG pipeline on BCG: ecg_clean, then ecg_peaks per segment ("neurokit")."""
    nk = _require("neurokit2")
    cleaned = nk.ecg_clean(x, sampling_rate=fs, method="neurokit")

    def find(segment: np.ndarray) -> np.ndarray:
        return nk.ecg_peaks(segment, sampling_rate=fs, method="neurokit")[1]["ECG_R_Peaks"]

    return _segmentwise("neurokit2_ecg", cleaned, fs, find)


@_peer("heartpy")
def heartpy_peer(x: np.ndarray, fs: float) -> np.ndarray:
    """HeartPy: band-pass 0.7-12 Hz order 3, then per segment scale_data + process."""
    hp = _require("heartpy")
    filtered = hp.filter_signal(
        x, cutoff=list(HEARTPY_BAND_HZ), sample_rate=fs, order=HEARTPY_ORDER, filtertype="bandpass"
    )

    def find(segment: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            # its numpy warnings on flat stretches, its spline warning in the breathing estimate
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="heartpy")
            working, _ = hp.process(hp.scale_data(segment), sample_rate=fs)
        return np.setdiff1d(working["peaklist"], working["removed_beats"])

    return _segmentwise("heartpy", filtered, fs, find)


# ---------------------------------------------------------------------------------------
# (c) MODWT and its multiresolution analysis (Percival & Walden 2000, ch. 5), and the
# heart-rate method of Sadek et al. built on it


def sym8_scaling_filter() -> np.ndarray:
    """The Symlet-8 DWT scaling filter (16 taps, sum sqrt(2)); the taps come from PyWavelets."""
    pywt = _require("pywt")
    return np.asarray(pywt.Wavelet("sym8").dec_lo, dtype=np.float64)


def _modwt_filters(scaling: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MODWT wavelet and scaling filters (h/sqrt 2, g/sqrt 2) from a DWT scaling filter g."""
    g = np.asarray(scaling, dtype=np.float64)
    if g.ndim != 1 or g.size < 2 or g.size % 2:
        raise ValueError(f"scaling: must be a 1-D filter of even length, got shape {g.shape}")
    if not np.isclose(g.sum(), np.sqrt(2.0), atol=1e-8):
        raise ValueError(f"scaling: must sum to sqrt(2) (a DWT scaling filter), got {g.sum()}")
    h = ((-1.0) ** np.arange(g.size)) * g[::-1]  # quadrature mirror: h_l = (-1)^l g_(L-1-l)
    return h / np.sqrt(2.0), g / np.sqrt(2.0)


def _circular_filter(v: np.ndarray, taps: np.ndarray, step: int) -> np.ndarray:
    """out[t] = sum_l taps[l] * v[(t - step*l) mod N]."""
    out = np.zeros_like(v)
    for lag, tap in enumerate(taps):
        out += tap * np.roll(v, (step * lag) % v.size)
    return out


def _circular_filter_adjoint(v: np.ndarray, taps: np.ndarray, step: int) -> np.ndarray:
    """out[t] = sum_l taps[l] * v[(t + step*l) mod N] (the transpose of _circular_filter)."""
    out = np.zeros_like(v)
    for lag, tap in enumerate(taps):
        out += tap * np.roll(v, -((step * lag) % v.size))
    return out


def _check_level(x: np.ndarray, level: int) -> None:
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x: must be 1-D and non-empty, got shape {x.shape}")
    if not (isinstance(level, int | np.integer) and level >= 1):
        raise ValueError(f"level: must be an integer >= 1, got {level!r}")


def modwt(x: np.ndarray, scaling: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """MODWT of ``x`` to ``level`` J with the DWT scaling filter ``scaling`` (circular).

    Returns ``(W, V)``: ``W`` of shape (J, N), row j-1 the level-j wavelet coefficients,
    and ``V`` the level-J scaling coefficients (N,). Energy is preserved:
    ``sum(W**2) + sum(V**2) == sum(x**2)``.
    """
    v = np.asarray(x, dtype=np.float64)
    _check_level(v, level)
    h, g = _modwt_filters(scaling)
    w = np.empty((level, v.size))
    for j in range(1, level + 1):
        step = 2 ** (j - 1)
        w[j - 1] = _circular_filter(v, h, step)
        v = _circular_filter(v, g, step)
    return w, v


def imodwt(w: np.ndarray, v: np.ndarray, scaling: np.ndarray) -> np.ndarray:
    """Inverse MODWT: the signal from wavelet coefficients ``w`` (J, N) and scaling ``v`` (N,)."""
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    out = np.asarray(v, dtype=np.float64).copy()
    if w.shape[1] != out.size:
        raise ValueError(f"w, v: lengths differ ({w.shape[1]} and {out.size})")
    h, g = _modwt_filters(scaling)
    for j in range(w.shape[0], 0, -1):
        step = 2 ** (j - 1)
        out = _circular_filter_adjoint(w[j - 1], h, step) + _circular_filter_adjoint(out, g, step)
    return out


def modwt_mra(x: np.ndarray, scaling: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """MODWT multiresolution analysis: details ``D`` (J, N) and smooth ``S`` (N,).

    ``D[j-1]`` is the inverse MODWT of the level-j wavelet coefficients alone, ``S`` that of
    the level-J scaling coefficients alone; ``D.sum(axis=0) + S == x``. Each is a zero-phase
    band-pass (low-pass for ``S``) of ``x``: features stay where they are in time.
    """
    w, v = modwt(x, scaling, level)
    zeros = np.zeros_like(w)
    details = np.empty_like(w)
    for j in range(level):
        only = zeros.copy()
        only[j] = w[j]
        details[j] = imodwt(only, np.zeros_like(v), scaling)
    smooth = imodwt(zeros, v, scaling)
    return details, smooth


def modwt_band_hz(fs: float, level: int, smooth: bool = False) -> tuple[float, float]:
    """Nominal pass band (Hz) of detail ``level`` (or of the smooth at ``level``) at ``fs``."""
    if smooth:
        return 0.0, fs / 2 ** (level + 1)
    return fs / 2 ** (level + 1), fs / 2**level


def _resample(x: np.ndarray, fs: float, target: float) -> np.ndarray:
    """x (mean removed) at ``target`` Hz, anti-aliased, zero phase."""
    x = x - np.mean(x)
    if fs == target:
        return x
    ratio = Fraction(target / fs).limit_denominator(1000)
    ss = _require("scipy.signal")
    return ss.resample_poly(x, ratio.numerator, ratio.denominator)


@_peer("modwt_sadek2019")
def modwt_sadek2019(x: np.ndarray, fs: float) -> np.ndarray:
    """MODWT-MRA heart beats after Sadek et al. (see the module docstring): D4 of sym8 at 50 Hz."""
    ss = _require("scipy.signal")
    y = _resample(x, fs, SADEK_FS)
    details, _ = modwt_mra(y, sym8_scaling_filter(), SADEK_LEVEL)
    beat_band = details[SADEK_DETAIL - 1]
    distance = int(round(MIN_DISTANCE_S * SADEK_FS))
    peaks = ss.find_peaks(beat_band, height=0.0, distance=distance)[0]
    return np.round(peaks * (fs / SADEK_FS)).astype(np.int64)


# ---------------------------------------------------------------------------------------
# Autocorrelation window heart rate: a rate per window, no beats


def hr_per_window(x: np.ndarray, fs: float, window_s: float = 10.0) -> np.ndarray:
    """Heart rate (bpm) per window from the autocorrelation of the band-passed signal.

    The classic window estimate (e.g. one of the three estimators combined by Brüser et
    al., "Adaptive beat-to-beat heart rate estimation in ballistocardiograms", IEEE Trans.
    Inf. Technol. Biomed. 15(5), 2011; here the plain autocorrelation alone): zero-phase
    Butterworth band-pass 1 to 10 Hz, order 2, over the whole record; in each window the
    normalised autocorrelation, and the lag of its highest local maximum between 60/180 and
    60/40 s (parabolic interpolation) gives the rate. A window whose peak is below 0.2, or
    with no local maximum in that range, gets NaN: no rate is invented.

    Window k covers samples ``[k * w, (k + 1) * w)`` with ``w = round(window_s * fs)``, as
    in ``dsp_c.metrics.rate_per_window``; the result has ``x.size // w`` values. This method
    finds no beats, so it is not in :data:`PEERS` (beat sensitivity and PPV do not apply).
    """
    arr, rate = _check_signal(x, fs)
    if not (np.isfinite(window_s) and window_s > 0):
        raise ValueError(f"window_s: must be positive, got {window_s!r}")
    ss = _require("scipy.signal")
    w = int(round(window_s * rate))
    n_windows = arr.size // w if w else 0
    out = np.full(n_windows, np.nan)
    if n_windows == 0:
        return out
    sos = ss.butter(ACF_ORDER, ACF_BAND_HZ, "band", fs=rate, output="sos")
    y = ss.sosfiltfilt(sos, arr - arr.mean())
    lo = int(np.floor(rate * 60.0 / ACF_BPM_RANGE[1]))
    hi = int(np.ceil(rate * 60.0 / ACF_BPM_RANGE[0]))
    for k in range(n_windows):
        seg = y[k * w : (k + 1) * w]
        seg = seg - seg.mean()
        energy = float(np.dot(seg, seg))
        if energy <= 0 or hi + 1 >= seg.size:
            continue
        acf = ss.correlate(seg, seg, mode="full", method="fft")[seg.size - 1 :] / energy
        peaks = ss.find_peaks(acf[: hi + 2])[0]
        peaks = peaks[(peaks >= lo) & (peaks <= hi)]
        if peaks.size == 0:
            continue
        best = peaks[np.argmax(acf[peaks])]
        if acf[best] < ACF_MIN_PEAK:
            continue
        a, b, c = acf[best - 1], acf[best], acf[best + 1]
        denom = a - 2 * b + c
        lag = best + (0.5 * (a - c) / denom if denom < 0 else 0.0)
        out[k] = 60.0 * rate / lag
    return out


PEERS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "scipy_find_peaks": scipy_find_peaks,
    "neurokit2": neurokit2_peer,
    "neurokit2_ecg": neurokit2_ecg_peer,
    "heartpy": heartpy_peer,
    "modwt_sadek2019": modwt_sadek2019,
}
"""Beat peers by stable name: ``(x raw, fs) -> sorted int64 beat indices``."""

WINDOW_HR_PEERS: dict[str, Callable[..., np.ndarray]] = {"autocorr_window": hr_per_window}
"""Rate-only peers by stable name: ``(x raw, fs, window_s) -> bpm per window`` (no beats)."""
