"""Scoring what the unit stored, epoch by epoch, against a reference.

Everything here works on arrays with one entry per epoch of a record (epoch ``k`` covers
samples ``[k L, (k + 1) L)`` with ``L = epoch_s * fs``; the last one may be shorter), so the
same functions score a replay of a simulated night, a real recording, or a constructed case
in a test:

- :class:`StoredRun`: what one run stored (state, HR, HRV, RR per epoch; its range events);
- :class:`Reference`: what was true (HR, HRV, RR, the state label), NaN / "" where unknown;
- :func:`span_rates`, :func:`span_rmssd`: reference rates from true event times, read over
  the same span as the unit reads its own (``edge.vitals``: the intervals that end in the
  last ``span`` seconds of the epoch);
- :func:`score_run`: coverage, HR MAE, the worst 30 s, false events, state agreement, RR
  and HRV; :func:`compare_runs`: one run against another of the same record (transforms).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "RANGE_EVENTS",
    "Reference",
    "StoredRun",
    "compare_runs",
    "score_run",
    "span_rates",
    "span_rmssd",
    "worst_window",
]

#: The events whose truth a reference can check.
RANGE_EVENTS = {"hr_out_of_range": "hr", "rr_out_of_range": "rr"}
#: Epochs in the "worst 30 s" window (3 x 10 s).
WORST_EPOCHS = 3


@dataclass
class StoredRun:
    """What one run stored, on the epoch grid of its record (``n`` epochs).

    ``state`` is "" for an epoch the unit did not store (no judged window in it); ``hr``,
    ``hrv``, ``rr``, ``quality`` are NaN where the unit stored NULL (or no epoch).
    ``events`` are ``(epoch index, kind, detail)`` of every event but the shutdown.
    """

    state: np.ndarray
    hr: np.ndarray
    hrv: np.ndarray
    rr: np.ndarray
    quality: np.ndarray
    hr_reason: np.ndarray
    events: list[tuple[int, str, str]] = field(default_factory=list)
    wall_s: float = 0.0

    @classmethod
    def empty(cls, n: int) -> StoredRun:
        """``n`` epochs with nothing stored."""
        nan = np.full(n, np.nan)
        blank = np.full(n, "", dtype=object)
        return cls(blank.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(), blank.copy())

    @property
    def n(self) -> int:
        """Epochs on the grid."""
        return int(self.state.size)


@dataclass
class Reference:
    """The truth per epoch (arrays of the run's length).

    ``hr``, ``hrv``, ``rr``: NaN where the reference has no value; ``hrv`` / ``rr`` None
    when the reference cannot give that vital at all (a pulse oximeter has no HRV, an ECG
    no breathing). ``state``: the label ("empty", "motion", "poor", "good"), "" where there
    is none (a mixed epoch, an unsure hand label), or None without labels. ``complete``:
    the reference covers the whole record, so a NaN heart rate means there was no
    heartbeat to measure (an empty bed in a simulation) rather than "unknown".
    """

    hr: np.ndarray
    state: np.ndarray | None = None
    hrv: np.ndarray | None = None
    rr: np.ndarray | None = None
    complete: bool = True


def _n_epochs(n_samples: int, epoch_len: int) -> int:
    return int(-(-n_samples // epoch_len))


def _epoch_ends(n_samples: int, fs: float, epoch_s: float) -> tuple[np.ndarray, int]:
    """The stop index of every epoch (the last one clipped to the record) and its length."""
    epoch_len = max(1, int(round(epoch_s * fs)))
    ends = np.minimum((np.arange(_n_epochs(n_samples, epoch_len)) + 1) * epoch_len, n_samples)
    return ends, epoch_len


def _span_starts(ends: np.ndarray, epoch_len: int, fs: float, span_s: float) -> np.ndarray:
    # As the unit: the span is the longer of the epoch and span_s, ending at the epoch's end.
    return ends - max(epoch_len, int(round(span_s * fs)))


def span_rates(
    events: np.ndarray,
    fs: float,
    n_samples: int,
    epoch_s: float,
    span_s: float,
    *,
    intervals_s: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    statistic: str = "mean",
    min_intervals: int = 1,
) -> np.ndarray:
    """Events per minute for each epoch, from the intervals that end in its span.

    Args:
        events: event sample indices, increasing (true beats, R-peaks, true breaths).
        intervals_s: the interval ending at each event, s (default: from ``events``; give
            exact times where the sample indices are rounded). The first is ignored.
        valid: True for each event whose interval counts (normal-to-normal beats, breaths
            that do not span an apnea); default all.
        statistic: "mean" (the heart rate: 60 / the mean interval) or "median" (breathing).
        min_intervals: fewer intervals in the span give NaN (one exact interval of the
            truth is already its rate).
    """
    events = np.asarray(events, dtype=np.int64)
    ends, epoch_len = _epoch_ends(n_samples, fs, epoch_s)
    starts = _span_starts(ends, epoch_len, fs, span_s)
    out = np.full(ends.size, np.nan)
    if events.size < 2:
        return out
    if intervals_s is None:
        intervals_s = np.concatenate([[np.nan], np.diff(events) / fs])
    ok = np.ones(events.size, bool) if valid is None else np.asarray(valid, bool).copy()
    ok &= np.isfinite(intervals_s)
    ok[0] = False
    reduce = np.mean if statistic == "mean" else np.median
    for k, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
        a, b = np.searchsorted(events, [lo, hi])
        use = intervals_s[a:b][ok[a:b]]
        if use.size >= min_intervals:
            out[k] = 60.0 / float(reduce(use))
    return out


def span_rmssd(
    events: np.ndarray,
    intervals_s: np.ndarray,
    valid: np.ndarray,
    fs: float,
    n_samples: int,
    epoch_s: float,
    span_s: float,
    min_diffs: int = 1,
) -> np.ndarray:
    """RMSSD (ms) per epoch over adjacent pairs of valid intervals ending in its span
    (the unit's definition of HRV, on true intervals); NaN with fewer than ``min_diffs``."""
    events = np.asarray(events, dtype=np.int64)
    ends, epoch_len = _epoch_ends(n_samples, fs, epoch_s)
    starts = _span_starts(ends, epoch_len, fs, span_s)
    ok = np.asarray(valid, bool) & np.isfinite(intervals_s)
    out = np.full(ends.size, np.nan)
    for k, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
        a, b = np.searchsorted(events, [lo, hi])
        pairs = ok[a + 1 : b] & ok[a : b - 1] if b - a >= 2 else np.empty(0, bool)
        diffs = np.diff(intervals_s[a:b])[pairs] * 1000.0
        if diffs.size >= min_diffs:
            out[k] = float(np.sqrt(np.mean(diffs * diffs)))
    return out


def worst_window(abs_error: np.ndarray, width: int = WORST_EPOCHS) -> float:
    """The largest mean of ``width`` consecutive finite values (NaN marks an epoch without
    an error to measure, which breaks a run); NaN when no run is long enough."""
    e = np.asarray(abs_error, dtype=np.float64)
    if e.size < width:
        return float("nan")
    windows = np.lib.stride_tricks.sliding_window_view(e, width)
    full = np.isfinite(windows).all(axis=1)
    return float(windows[full].mean(axis=1).max()) if full.any() else float("nan")


def _mae(err: np.ndarray) -> float:
    return float(np.mean(np.abs(err))) if err.size else float("nan")


def _share(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else float("nan")


def _false_events(
    run: StoredRun,
    ref: Reference,
    limits: dict[str, tuple[float, float]],
) -> tuple[int, int, list[dict]]:
    """(false, unverifiable, every range event with its verdict). An event is false when
    the reference of its epoch lies within the range, or (with a complete reference) has
    no value at all: no heartbeat, nothing can be out of range."""
    false = unknown = 0
    listed = []
    for k, kind, detail in run.events:
        vital = RANGE_EVENTS.get(kind)
        if vital is None:
            continue
        series = ref.hr if vital == "hr" else ref.rr
        value = float(series[k]) if series is not None and 0 <= k < series.size else np.nan
        low, high = limits[vital]
        if np.isfinite(value):
            verdict = "false" if low <= value <= high else "true"
        elif series is not None and ref.complete:
            verdict = "false"
        else:
            verdict = "unverified"
        false += verdict == "false"
        unknown += verdict == "unverified"
        listed.append(
            {"epoch": k, "kind": kind, "detail": detail, "reference": value, "verdict": verdict}
        )
    return false, unknown, listed


def score_run(
    run: StoredRun,
    ref: Reference,
    hr_range: tuple[float, float] = (40.0, 120.0),
    rr_range: tuple[float, float] = (8.0, 25.0),
) -> dict:
    """Every measure of one run against its reference (a JSON-ready dict).

    - ``coverage``: of the epochs the reference calls still and in bed with a good signal
      (label "good"; every epoch with a reference HR when there are no labels), the share
      (%) that stored an HR;
    - ``hr_mae``: mean |stored - reference| HR over every epoch with both (any state: an
      HR stored during movement counts too), ``hr_epochs`` of them;
    - ``worst_30s``: the largest mean |error| over 3 consecutive epochs that all have both;
    - ``off_20pct``: epochs whose HR is off by more than 20 % of the reference;
    - ``false_events``: out-of-range events while the reference is in range (or, for a
      complete reference, has no value); ``unverified_events``: those with no reference;
    - ``state_agreement``: share (%) of labelled epochs whose stored state is the label,
      over ``state_labelled`` epochs (an epoch not stored counts as a disagreement), and
      the confusion counts ``{label: {stored: n}}``;
    - RR (``rr_mae``, ``rr_coverage`` over labelled still epochs, good or poor) and HRV
      (``hrv_mae``) where the reference has them.
    """
    n = run.n
    out: dict = {"epochs": n, "stored": int(np.count_nonzero(run.state != ""))}
    err = run.hr - ref.hr[:n]
    both = np.isfinite(err)
    still = np.isfinite(ref.hr[:n])
    if ref.state is not None:
        still &= ref.state[:n] == "good"
    out["still"] = int(still.sum())
    out["coverage"] = _share(int(np.count_nonzero(still & np.isfinite(run.hr))), int(still.sum()))
    out["hr_epochs"] = int(both.sum())
    out["hr_mae"] = _mae(err[both])
    out["worst_30s"] = worst_window(np.abs(err))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["off_20pct"] = int(np.count_nonzero(both & (np.abs(err) > 0.2 * ref.hr[:n])))
    limits = {"hr": hr_range, "rr": rr_range}
    false, unknown, listed = _false_events(run, ref, limits)
    out["range_events"] = len(listed)
    out["false_events"] = false
    out["unverified_events"] = unknown
    out["events"] = listed
    if ref.state is not None:
        labels = ref.state[:n]
        labelled = labels != ""
        out["state_labelled"] = int(labelled.sum())
        agree = int(np.count_nonzero(labelled & (labels == run.state)))
        out["state_agreement"] = _share(agree, int(labelled.sum()))
        confusion: dict[str, dict[str, int]] = {}
        for label, stored in zip(labels[labelled], run.state[labelled], strict=True):
            row = confusion.setdefault(str(label), {})
            row[stored or "none"] = row.get(stored or "none", 0) + 1
        out["state_confusion"] = confusion
    else:
        out["state_labelled"] = 0
        out["state_agreement"] = float("nan")
    if ref.rr is not None:
        rr_err = run.rr - ref.rr[:n]
        rr_both = np.isfinite(rr_err)
        rr_still = np.isfinite(ref.rr[:n])
        if ref.state is not None:
            rr_still &= np.isin(ref.state[:n], ("good", "poor"))
        stored_rr = int(np.count_nonzero(rr_still & np.isfinite(run.rr)))
        out["rr_mae"] = _mae(rr_err[rr_both])
        out["rr_coverage"] = _share(stored_rr, int(rr_still.sum()))
    else:
        out["rr_mae"] = out["rr_coverage"] = float("nan")
    if ref.hrv is not None:
        hrv_err = run.hrv - ref.hrv[:n]
        out["hrv_mae"] = _mae(hrv_err[np.isfinite(hrv_err)])
        out["hrv_epochs"] = int(np.count_nonzero(np.isfinite(hrv_err)))
    else:
        out["hrv_mae"] = float("nan")
        out["hrv_epochs"] = 0
    return out


def compare_runs(base: StoredRun, other: StoredRun, hr_tol_bpm: float = 1.0) -> dict:
    """A transformed record's run against the untransformed run of the same record.

    Over the epochs either run stored (on their common grid): ``same_state`` (%),
    ``hr_presence`` (% with an HR in both or in neither), ``hr_both`` (epochs with an HR in
    both), ``hr_within`` (% of those within ``hr_tol_bpm``), ``hr_max_diff`` (bpm), and
    ``hrv_diff`` (ms): the median difference of the HRV over the epochs with one in both.
    """
    n = min(base.n, other.n)
    a, b = base.state[:n], other.state[:n]
    either = (a != "") | (b != "")
    has_a, has_b = np.isfinite(base.hr[:n]), np.isfinite(other.hr[:n])
    both = has_a & has_b
    diff = np.abs(base.hr[:n] - other.hr[:n])[both]
    hrv_diff = np.abs(base.hrv[:n] - other.hrv[:n])
    hrv_diff = hrv_diff[np.isfinite(hrv_diff)]
    return {
        "epochs": int(either.sum()),
        "same_state": _share(int(np.count_nonzero(either & (a == b))), int(either.sum())),
        "hr_presence": _share(int(np.count_nonzero(either & (has_a == has_b))), int(either.sum())),
        "hr_base": int(has_a.sum()),
        "hr_other": int(has_b.sum()),
        "hr_both": int(both.sum()),
        "hr_within": _share(int(np.count_nonzero(diff <= hr_tol_bpm)), int(both.sum())),
        "hr_max_diff": float(diff.max()) if diff.size else float("nan"),
        "hrv_diff": float(np.median(hrv_diff)) if hrv_diff.size else float("nan"),
    }
