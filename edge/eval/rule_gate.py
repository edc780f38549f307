"""A peer of the unit's quality gate: heart rate per window by fixed rules, for comparison.

Not what the unit stores (that is :mod:`edge.eval.heart_rate`, through the unit itself):
the rule-based gate that the quality model is measured against (``models/evaluate.py``,
the model card). The whole recording goes through ``dsp_c`` at once; a window gets a heart
rate only from beats the detector found in it, otherwise NaN and one reason:

- ``gap``: samples missing (NaN) in the window;
- ``flat``: no signal (a disconnected sensor: a peak-to-peak under 5 % of the recording's
  typical one);
- ``clipped``: the signal sits at its rails for a noticeable share of the window;
- ``few beats``: fewer than three beats to measure intervals from;
- ``irregular``: intervals scattered like noise peaks, not a heart rhythm (their
  interquartile range above 30 % of their median);
- ``unlike beats``: consecutive "beats" do not share a waveform (median correlation of their
  band-passed shapes below 0.6): noise peaks on an empty bed or a useless signal, where
  real heartbeats correlate at 0.85 or more;
- ``implausible``: a rate outside 30 to 200 bpm.

NaN runs split the recording: the detector runs on each finite stretch on its own, so no
interval is ever measured across a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import dsp_c
from dsp_c._bcg_dsp import lib
from dsp_c._checks import sampling_rate
from dsp_c._status import DspValueError
from dsp_c.beats import beat_filter
from dsp_c.filters import MAX_ABS_SAMPLE
from dsp_c.metrics import rate_per_window

__all__ = ["WindowRates", "rule_gate_windows"]

#: The shortest finite stretch worth running the detector on (s).
MIN_STRETCH_S = 5.0
#: A window whose peak-to-peak is below this share of the recording's median: flat.
FLAT_SHARE = 0.05
#: Share of a window's samples at the recording's extreme values that makes it clipped.
CLIPPED_SHARE = 0.02
#: Interval spread (interquartile range / median) above which a window is not a rhythm.
IRREGULAR_SPREAD = 0.3
#: Median correlation of consecutive beat waveforms below which a window has no heartbeat.
MIN_SHAPE_CORRELATION = 0.6
#: The waveform compared: from this long before each beat to that long after (s).
SHAPE_SPAN_S = (0.1, 0.25)
#: Physiological limits of a window's rate (bpm).
RATE_LIMITS = (30.0, 200.0)


@dataclass(frozen=True)
class WindowRates:
    """Heart rate per window (bpm, NaN where none) and, where none, why."""

    bpm: np.ndarray
    reasons: tuple[str | None, ...]
    beats: np.ndarray  #: all beats found, sample indices
    window_s: float

    @property
    def coverage(self) -> float:
        """Share of windows with a heart rate."""
        return float(np.mean(np.isfinite(self.bpm))) if self.bpm.size else 0.0


def _finite_stretches(x: np.ndarray, fs: float) -> list[tuple[int, int]]:
    """[start, stop) of the runs of finite samples at least MIN_STRETCH_S long."""
    finite = np.concatenate([[False], np.isfinite(x), [False]])
    edges = np.flatnonzero(np.diff(finite.astype(np.int8)))
    runs = zip(edges[::2], edges[1::2], strict=True)
    return [(int(a), int(b)) for a, b in runs if b - a >= MIN_STRETCH_S * fs]


def _spread(beats: np.ndarray, start: int, stop: int) -> float:
    intervals = np.diff(beats[(beats >= start) & (beats < stop)])
    q25, q50, q75 = np.percentile(intervals, [25, 50, 75])
    return float((q75 - q25) / q50)


def _shape_correlation(
    band: np.ndarray, beats: np.ndarray, start: int, stop: int, fs: float
) -> float:
    before, after = (int(round(t * fs)) for t in SHAPE_SPAN_S)
    inside = beats[(beats >= start) & (beats < stop)]
    inside = inside[(inside - before >= 0) & (inside + after < band.size)]
    shapes = [band[b - before : b + after] for b in inside]
    shapes = [shape for shape in shapes if np.isfinite(shape).all()]  # none across a gap
    if len(shapes) < 2:
        return np.nan  # nothing to compare: the caller counts it as unlike
    r = [np.corrcoef(shapes[i], shapes[i + 1])[0, 1] for i in range(len(shapes) - 1)]
    return float(np.median(r))


def rule_gate_windows(x: np.ndarray, fs: float, window_s: float = 10.0) -> WindowRates:
    """Detect beats in a recording (ADC counts) and give a heart rate per window.

    Raises ``ValueError`` naming the argument for a bad ``fs``, ``window_s`` or ``x``
    (not 1-D real numbers); bad samples inside ``x`` are reasons, not errors.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise DspValueError(f"x: expected a 1-D array, got shape {x.shape}", lib.BCG_ERR_PARAM)
    fs = sampling_rate(fs, lib.BCG_JPEAK_MIN_FS, lib.BCG_JPEAK_MAX_FS)
    if not np.isfinite(window_s) or round(window_s * fs) < 1:
        raise DspValueError(
            f"window_s: must be at least one sample (1/fs) long, got {window_s}",
            lib.BCG_ERR_PARAM,
        )
    x = np.where(np.abs(x) <= MAX_ABS_SAMPLE, x, np.nan)  # absurd values are gaps
    band = np.full(x.size, np.nan)  # the detector's band-passed signal, for the shapes
    beats = []
    for a, b in _finite_stretches(x, fs):  # dsp_c.detect_beats, keeping the band-pass
        filt = beat_filter(fs)
        filt.reset(steady_input=float(x[a]))
        band[a:b] = filt.process(x[a:b])
        detector = dsp_c.JPeakDetector(fs)
        beats.append(np.concatenate([detector.process(band[a:b]), detector.flush()]) + a)
    found = np.concatenate(beats) if beats else np.empty(0, dtype=np.int64)
    w = int(round(window_s * fs))
    n_win = x.size // w
    bpm = np.full(n_win, np.nan)
    reasons: list[str | None] = []
    finite_x = x[np.isfinite(x)]
    rails = (finite_x.min(), finite_x.max()) if finite_x.size else (np.nan, np.nan)
    spans = [np.ptp(x[k * w : (k + 1) * w]) for k in range(n_win)]
    typical = np.nanmedian(spans) if n_win else np.nan
    # Rates only from the beats of one stretch: a window holding a gap gets none.
    rates = rate_per_window(found, fs, x.size, window_s, lookback_s=0.0)
    for k in range(n_win):
        seg = x[k * w : (k + 1) * w]
        if not np.isfinite(seg).all():
            reasons.append("gap")
        elif spans[k] == 0 or spans[k] < FLAT_SHARE * typical:
            reasons.append("flat")
        elif np.mean((seg == rails[0]) | (seg == rails[1])) > CLIPPED_SHARE:
            reasons.append("clipped")
        elif not np.isfinite(rates[k]):
            reasons.append("few beats")
        elif _spread(found, k * w, (k + 1) * w) > IRREGULAR_SPREAD:
            reasons.append("irregular")
        elif not _shape_correlation(band, found, k * w, (k + 1) * w, fs) >= MIN_SHAPE_CORRELATION:
            reasons.append("unlike beats")  # NaN (no two whole shapes) fails too
        elif not RATE_LIMITS[0] <= rates[k] <= RATE_LIMITS[1]:
            reasons.append("implausible")
        else:
            bpm[k] = rates[k]
            reasons.append(None)
    return WindowRates(bpm=bpm, reasons=tuple(reasons), beats=found, window_s=window_s)
