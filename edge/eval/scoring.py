"""Scoring one method's beats on one record, window by window, and adding scores up.

Every measure is kept per 10 s window, so the same numbers can be summed over any subset
of windows: a whole record, all records, or one condition (heart-rate range, SNR,
posture, motion). Beat-level measures count only reference beats in scored windows
(in bed, good signal, for the nominal figures); a detection is false when it lies in a
scored window and matches no reference beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dsp_c.metrics import best_delay_match, matched_pairs, rate_per_window

__all__ = ["EvalRecord", "Score", "WINDOW_S", "score_record"]

WINDOW_S = 10.0  #: window length for heart rate and conditions (s)


@dataclass
class EvalRecord:
    """One recording to score, with its reference.

    ``ref_beats`` are reference beat indices (simulator J-peaks, or ECG R-peaks which a
    J-peak follows by a constant delay: ``delay_s`` is the range searched for it).
    ``ref_hr`` is the reference heart rate per window (bpm, NaN where none), from the
    reference beats or from a pulse oximeter. ``scored`` marks the windows that count
    (default: all); ``conditions`` holds a label per window for each split.
    """

    name: str
    group: str
    x: np.ndarray
    fs: float
    ref_beats: np.ndarray | None = None
    ref_hr: np.ndarray | None = None
    scored: np.ndarray | None = None
    conditions: dict[str, np.ndarray] = field(default_factory=dict)
    delay_s: tuple[float, float] = (-0.1, 0.1)
    tol_s: float = 0.05

    @property
    def n_windows(self) -> int:
        """Windows in the record; a last, partial window counts for beats (its heart rate
        is not estimated)."""
        w = int(round(WINDOW_S * self.fs))
        return int(-(-self.x.size // w))


@dataclass
class Score:
    """Per-window counts of one method on one or more records (arrays of equal length)."""

    ref_beats: np.ndarray  #: reference beats in the window (scored windows only)
    hits: np.ndarray  #: of those, matched by a detection
    found: np.ndarray  #: detections in the window
    false: np.ndarray  #: of those, matching no reference beat
    ibi_error_ms: list[np.ndarray]  #: interval errors ending in the window
    hr_error: np.ndarray  #: estimated minus reference HR (NaN: no estimate or no reference)
    has_ref_hr: np.ndarray  #: the window has a reference HR
    scored: np.ndarray  #: the window counts
    conditions: dict[str, np.ndarray]

    @staticmethod
    def concatenate(scores: list[Score]) -> Score:
        """All windows of several scores, in order."""
        keys = set().union(*(s.conditions for s in scores)) if scores else set()
        n = [s.scored.size for s in scores]

        def cond(key: str) -> np.ndarray:
            blank = [np.full(k, "", dtype=object) for k in n]
            return np.concatenate(
                [s.conditions.get(key, b) for s, b in zip(scores, blank, strict=True)]
            )

        return Score(
            ref_beats=np.concatenate([s.ref_beats for s in scores]),
            hits=np.concatenate([s.hits for s in scores]),
            found=np.concatenate([s.found for s in scores]),
            false=np.concatenate([s.false for s in scores]),
            ibi_error_ms=[e for s in scores for e in s.ibi_error_ms],
            hr_error=np.concatenate([s.hr_error for s in scores]),
            has_ref_hr=np.concatenate([s.has_ref_hr for s in scores]),
            scored=np.concatenate([s.scored for s in scores]),
            conditions={k: cond(k) for k in sorted(keys)},
        )

    def summary(self, mask: np.ndarray | None = None) -> dict[str, float]:
        """Sensitivity, PPV (%), IBI MAE (ms), HR MAE (bpm) and coverage (%) over the scored
        windows (and ``mask``). NaN where there is nothing to measure."""
        m = self.scored if mask is None else self.scored & mask
        ref, hits = int(self.ref_beats[m].sum()), int(self.hits[m].sum())
        found, false = int(self.found[m].sum()), int(self.false[m].sum())
        ibi = [e for e, keep in zip(self.ibi_error_ms, m, strict=True) if keep and e.size]
        ibi_all = np.concatenate(ibi) if ibi else np.empty(0)
        with_ref = m & self.has_ref_hr
        estimated = with_ref & np.isfinite(self.hr_error)
        return {
            "windows": int(m.sum()),
            "ref_beats": ref,
            "sensitivity": 100.0 * hits / ref if ref else np.nan,
            "ppv": 100.0 * (found - false) / found if found else np.nan,
            "ibi_mae_ms": float(np.mean(np.abs(ibi_all))) if ibi_all.size else np.nan,
            "hr_mae_bpm": float(np.mean(np.abs(self.hr_error[estimated])))
            if estimated.any()
            else np.nan,
            "coverage": 100.0 * estimated.sum() / with_ref.sum() if with_ref.any() else np.nan,
        }


def _window_of(indices: np.ndarray, w: int, n_windows: int) -> np.ndarray:
    return np.clip(indices // w, 0, n_windows)  # n_windows: outside the record


def score_record(
    record: EvalRecord, beats: np.ndarray, hr_estimate: np.ndarray | None = None
) -> Score:
    """Score detected ``beats`` (sample indices) on ``record``, window by window.

    The heart rate per window comes from the beats, or from ``hr_estimate`` (bpm per
    window, NaN where none) for a method that gives only a rate."""
    fs = record.fs
    w = int(round(WINDOW_S * fs))
    n_win = record.n_windows
    scored = np.ones(n_win, bool) if record.scored is None else record.scored[:n_win].copy()
    beats = np.asarray(beats, dtype=np.int64)
    counts = {k: np.zeros(n_win + 1, np.int64) for k in ("ref", "hits", "found", "false")}
    ibi_errors: list[list[np.ndarray]] = [[] for _ in range(n_win)]
    in_scored = np.append(scored, False)

    if record.ref_beats is not None:
        ref = np.asarray(record.ref_beats, dtype=np.int64)
        kept = np.flatnonzero(in_scored[_window_of(ref, w, n_win)])  # into all reference beats
        ref = ref[kept]
        found = beats[in_scored[_window_of(beats, w, n_win)]]
        tol = int(round(record.tol_s * fs))
        delay = best_delay_match(
            found, ref, fs, record.tol_s, record.delay_s[1], record.delay_s[0]
        ).delay
        ref = ref + delay
        ref_idx, found_idx = matched_pairs(found, ref, tol)
        np.add.at(counts["ref"], _window_of(ref, w, n_win), 1)
        np.add.at(counts["hits"], _window_of(ref[ref_idx], w, n_win), 1)
        np.add.at(counts["found"], _window_of(found, w, n_win), 1)
        unmatched = np.ones(found.size, bool)
        unmatched[found_idx] = False
        np.add.at(counts["false"], _window_of(found[unmatched], w, n_win), 1)
        # Consecutive in the whole reference, not only among the scored beats: no interval
        # across a bed exit or an unscored stretch.
        consecutive = np.flatnonzero(np.diff(kept[ref_idx]) == 1)
        ends = ref[ref_idx[consecutive + 1]]
        errors_ms = (
            1000.0
            / fs
            * (
                (found[found_idx[consecutive + 1]] - found[found_idx[consecutive]])
                - (ref[ref_idx[consecutive + 1]] - ref[ref_idx[consecutive]])
            )
        )
        for win, err in zip(_window_of(ends, w, n_win), errors_ms, strict=True):
            if win < n_win:
                ibi_errors[win].append(np.array([err]))

    ref_hr = record.ref_hr
    if ref_hr is None and record.ref_beats is not None:
        ref_hr = rate_per_window(record.ref_beats, fs, record.x.size, WINDOW_S)
    given_ref = np.empty(0) if ref_hr is None else np.asarray(ref_hr, float)[:n_win]
    ref_hr = np.full(n_win, np.nan)
    ref_hr[: given_ref.size] = given_ref
    if hr_estimate is None:
        hr_estimate = rate_per_window(beats, fs, record.x.size, WINDOW_S)
    estimate = np.full(n_win, np.nan)
    given = np.asarray(hr_estimate, dtype=np.float64)[:n_win]
    estimate[: given.size] = given
    return Score(
        ref_beats=counts["ref"][:n_win],
        hits=counts["hits"][:n_win],
        found=counts["found"][:n_win],
        false=counts["false"][:n_win],
        ibi_error_ms=[np.concatenate(e) if e else np.empty(0) for e in ibi_errors],
        hr_error=estimate - ref_hr,
        has_ref_hr=np.isfinite(ref_hr),
        scored=scored,
        conditions={k: np.asarray(v, dtype=object)[:n_win] for k, v in record.conditions.items()},
    )
