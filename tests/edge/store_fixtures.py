"""Epochs and events of a realistic night for the store, summary and report tests.

Made from a simulated night's ground truth (:class:`edge.sim.Night`), the way the pipeline
would report it if it were perfect: the state is the epoch's main label, the rates are the
true ones where the state allows a value, and every missing value has its reason.
"""

from __future__ import annotations

import numpy as np

from edge.records import Epoch, Event
from edge.sim import Night, State

T0 = 1_795_559_400.0  # 2026-11-24 22:30 UTC
_REASON = {State.EMPTY: "empty bed", State.MOTION: "motion", State.POOR: "poor signal"}


def night_epochs(
    night: Night, epoch_s: float = 30.0, *, t0: float = T0, gap_s: tuple[float, float] | None = None
) -> tuple[list[Epoch], list[Event]]:
    """Epochs of ``night`` every ``epoch_s`` seconds and its bed and gap events.

    ``gap_s=(start, stop)`` (seconds into the night) leaves out the epochs in that stretch,
    as a pulled sensor cable would, and adds a ``sensor_gap`` event.
    """
    fs = night.fs
    rng = np.random.default_rng(night.seed)
    beats_s = night.beat_times_s
    ibi, normal = night.ibi_ms, night.ibi_normal
    epochs = []
    n = int(night.duration_s // epoch_s)
    for k in range(n):
        start_s = k * epoch_s
        if gap_s is not None and gap_s[0] <= start_s < gap_s[1]:
            continue
        labels = night.state_at(int(start_s * fs), int((start_s + epoch_s) * fs))
        state = State(np.bincount(labels, minlength=4).argmax())
        if (labels == State.MOTION).any() and state is not State.EMPTY:
            state = State.MOTION
        t = start_s + np.arange(0.5, epoch_s, 1.0)
        in_epoch = (beats_s >= start_s) & (beats_s < start_s + epoch_s)
        hr = _mean(night.heart_rate_at(t)) if state is State.GOOD else np.nan
        rr = _mean(night.breathing_rate_at(t)) if state >= State.POOR else np.nan
        nn = ibi[in_epoch & normal]
        hrv = np.sqrt(np.mean(np.diff(nn) ** 2)) if state is State.GOOD and nn.size > 2 else np.nan
        motion = rng.lognormal(3.0 if state is State.MOTION else 0.0, 0.5)
        quality = {State.GOOD: 0.93, State.POOR: 0.35, State.MOTION: 0.1, State.EMPTY: 0.02}[state]
        epochs.append(
            Epoch(
                t_utc=t0 + start_s,
                duration_s=epoch_s,
                state=state.label,
                quality=quality,
                hr_bpm=None if np.isnan(hr) else float(hr),
                hrv_rmssd_ms=None if np.isnan(hrv) else float(hrv),
                rr_bpm=None if np.isnan(rr) else float(rr),
                motion=float(motion),
                beats=int(in_epoch.sum()) if state is not State.EMPTY else 0,
                hr_reason=_REASON.get(state, "few beats") if np.isnan(hr) else None,
                rr_reason=(_REASON.get(state) or "no breaths") if np.isnan(rr) else None,
            )
        )
    events = [
        Event(t0 + sample / fs, kind)
        for sample, kind in night.events
        if kind in ("bed_entry", "bed_exit")
    ]
    if gap_s is not None:
        events.append(Event(t0 + gap_s[0], "sensor_gap", f"{gap_s[1] - gap_s[0]:.0f} s lost"))
    events.sort(key=lambda e: e.t_utc)
    return epochs, events


def _mean(values: np.ndarray) -> float:
    """Mean of the finite values, NaN if there are none (an apnea has no breathing rate)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else np.nan
