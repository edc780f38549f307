"""Accuracy measures for beat and breath detection (numpy only).

Used by the demo, the tests and the benchmarks, and by anything that scores a detector
against a reference (ECG R-peaks, simulator ground truth, a pulse oximeter).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["BeatMatch", "best_delay_match", "match_beats", "rate_per_window"]


class BeatMatch(NamedTuple):
    """The result of matching detected beats to reference beats."""

    hits: int  #: reference beats matched by a detection
    false: int  #: detections matching no reference beat
    delay: int = 0  #: samples added to the reference before matching


def match_beats(found: np.ndarray, reference: np.ndarray, tol: int) -> BeatMatch:
    """Match sorted detections to sorted reference beats one to one within ``tol`` samples.

    Greedy in time order, each detection used at most once. Returns
    ``BeatMatch(hits, false, 0)``: sensitivity is ``hits / len(reference)`` and PPV is
    ``hits / len(found)``.
    """
    found = np.asarray(found, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    hits, j = 0, 0
    for r in reference:
        while j < found.size and found[j] < r - tol:
            j += 1
        if j < found.size and found[j] <= r + tol:
            hits += 1
            j += 1
    return BeatMatch(hits, int(found.size - hits), 0)


def best_delay_match(
    found: np.ndarray, reference: np.ndarray, fs: float, tol_s: float, max_delay_s: float = 0.4
) -> BeatMatch:
    """Match after the constant per-record delay in [0, max_delay_s] that matches most beats.

    For BCG against ECG: the J-wave follows its R-peak by a roughly constant delay
    (0.1 to 0.3 s). Ties go to the delay with the fewest false detections, then the shortest.
    """
    reference = np.asarray(reference, dtype=np.int64)
    tol = int(round(tol_s * fs))
    best = BeatMatch(-1, 0, 0)
    for delay in range(int(max_delay_s * fs) + 1):
        hits, false, _ = match_beats(found, reference + delay, tol)
        if (hits, -false) > (best.hits, -best.false):
            best = BeatMatch(hits, false, delay)
    return best


def rate_per_window(
    events: np.ndarray, fs: float, n_samples: int, window_s: float = 10.0, lookback_s: float = 2.0
) -> np.ndarray:
    """Events per minute in consecutive windows, from the median interval.

    Window k covers samples ``[k * w, (k + 1) * w)`` with ``w = window_s * fs``; the
    intervals used are those between events in ``[start - lookback, stop)``. A window with
    fewer than three such events gets NaN: no rate is invented.
    """
    events = np.asarray(events, dtype=np.int64)
    w = int(round(window_s * fs))
    lookback = int(round(lookback_s * fs))
    rates = []
    for start in range(0, n_samples - w + 1, w):
        inside = events[(events >= start - lookback) & (events < start + w)]
        rates.append(60.0 * fs / np.median(np.diff(inside)) if inside.size >= 3 else np.nan)
    return np.array(rates, dtype=np.float64)
