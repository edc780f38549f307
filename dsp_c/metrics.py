"""Accuracy measures for beat and breath detection (numpy only).

Used by the demo, the tests and the benchmarks, and by anything that scores a detector
against a reference (ECG R-peaks, simulator ground truth, a pulse oximeter).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "BeatMatch",
    "best_delay_match",
    "interval_errors",
    "match_beats",
    "matched_pairs",
    "rate_per_window",
]


class BeatMatch(NamedTuple):
    """The result of matching detected beats to reference beats."""

    hits: int  #: reference beats matched by a detection
    false: int  #: detections matching no reference beat
    delay: int = 0  #: samples added to the reference before matching


def matched_pairs(
    found: np.ndarray, reference: np.ndarray, tol: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pair sorted detections with sorted reference beats one to one within ``tol`` samples.

    Greedy in time order, each detection used at most once. Returns the indices
    ``(into_reference, into_found)`` of the matched pairs, both increasing.
    """
    found = np.asarray(found, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    ref_idx, found_idx = [], []
    j = 0
    for i, r in enumerate(reference):
        while j < found.size and found[j] < r - tol:
            j += 1
        if j < found.size and found[j] <= r + tol:
            ref_idx.append(i)
            found_idx.append(j)
            j += 1
    return np.array(ref_idx, dtype=np.int64), np.array(found_idx, dtype=np.int64)


def match_beats(found: np.ndarray, reference: np.ndarray, tol: int) -> BeatMatch:
    """Match sorted detections to sorted reference beats one to one within ``tol`` samples.

    Returns ``BeatMatch(hits, false, 0)``: sensitivity is ``hits / len(reference)`` and PPV
    is ``hits / len(found)``.
    """
    ref_idx, _ = matched_pairs(found, reference, tol)
    return BeatMatch(int(ref_idx.size), int(np.size(found) - ref_idx.size), 0)


def interval_errors(found: np.ndarray, reference: np.ndarray, tol: int) -> np.ndarray:
    """Detected minus reference beat interval (samples), for each pair of consecutive
    reference beats that are both matched (by :func:`matched_pairs`)."""
    found = np.asarray(found, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    ref_idx, found_idx = matched_pairs(found, reference, tol)
    consecutive = np.flatnonzero(np.diff(ref_idx) == 1)
    ref_ibi = reference[ref_idx[consecutive + 1]] - reference[ref_idx[consecutive]]
    found_ibi = found[found_idx[consecutive + 1]] - found[found_idx[consecutive]]
    return found_ibi - ref_ibi


def best_delay_match(
    found: np.ndarray,
    reference: np.ndarray,
    fs: float,
    tol_s: float,
    max_delay_s: float = 0.4,
    min_delay_s: float = 0.0,
) -> BeatMatch:
    """Match after the constant per-record delay in [min_delay_s, max_delay_s] that matches
    most beats.

    For BCG against ECG: the J-wave follows its R-peak by a roughly constant delay
    (0.1 to 0.3 s). Ties go to the delay with the fewest false detections, then the smallest.
    """
    reference = np.asarray(reference, dtype=np.int64)
    tol = int(round(tol_s * fs))
    best = BeatMatch(-1, 0, 0)
    for delay in range(int(np.floor(min_delay_s * fs)), int(max_delay_s * fs) + 1):
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
