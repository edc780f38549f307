"""Per-epoch vitals (edge.vitals) from known beats, breaths and gate judgements: the rules
that keep a value honest, checked on inputs whose answer is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.events import BedPresence, RangeWatch
from edge.records import Epoch
from edge.vitals import EpochVitals

FS = 100.0
T0 = 1_700_000_000.0
WIN, HOP = 1000, 500  # the gate's 10 s windows every 5 s, at 100 Hz


def _vitals(epoch_s: float = 30.0) -> EpochVitals:
    # Beats alone, no signal: the rhythm check (tests/edge/test_rhythm.py) is left out.
    return EpochVitals(FS, epoch_s, lambda index: T0 + index / FS, check_rhythm=False)


def _feed(v: EpochVitals, start: int, stop: int, states, beat_every=100, breath_every=400):
    """Samples [start, stop) as one stretch, beats and breaths on a grid, and one judged
    window per hop with the state ``states(window_start)``."""
    v.add_samples(start, stop)
    first = -(-start // beat_every) * beat_every
    v.add_beats(np.arange(first, stop, beat_every))
    first = -(-start // breath_every) * breath_every
    v.add_breaths(np.arange(first, stop, breath_every))
    starts = np.arange(start, stop, 100)
    v.add_motion(starts, np.full(starts.size, 5.0))
    for a in range(start, stop - WIN + 1, HOP):
        v.add_judgement(a, a + WIN, states(a), 0.9 if states(a) == "good" else 0.1)


def test_a_steady_good_night_gives_exact_rates():
    v = _vitals()
    _feed(v, 0, 12000, lambda a: "good")  # 120 s: 60 bpm, 15 breaths/min
    epochs = v.ready(12000)
    assert len(epochs) == 3  # the 4th is not final yet: its last windows may still come
    epochs += v.finish(12000)
    assert [e.t_utc for e in epochs] == [T0, T0 + 30, T0 + 60, T0 + 90]
    for e in epochs[1:]:
        assert e.state == "good" and e.quality == 0.9
        assert e.hr_bpm == 60.0 and e.hrv_rmssd_ms == 0.0 and e.rr_bpm == 15.0
        # Motion relative to the night's usual level: a steady 5.0 is this night's 1.
        assert e.beats == 30 and e.motion == 1.0 and e.hr_reason is e.rr_reason is None


def test_no_value_outside_good_and_still_windows():
    def state(a):
        if a < 3000:
            return "empty"
        if a < 6000:
            return "motion"
        return "good" if 9000 <= a < 15000 else "poor"

    v = _vitals()
    _feed(v, 0, 18000, state)
    empty, motion, poor, good, good_too, poor_after = v.finish(18000)[:6]
    assert (empty.state, empty.hr_bpm, empty.rr_bpm, empty.beats) == ("empty", None, None, 0)
    assert empty.hr_reason == empty.rr_reason == "empty bed"
    assert (motion.state, motion.hr_reason, motion.rr_reason) == ("motion", "motion", "motion")
    # Poor signal before any heart rate: no breathing rate either (no person found yet).
    assert poor.hr_bpm is None and poor.hr_reason == "poor signal"
    assert poor.rr_bpm is None and poor.rr_reason == "no heart rhythm"
    # The good epoch after it: beats held by a poor window (the one starting at 8500) do
    # not count, and no interval reaches back into the poor stretch.
    assert good.state == "good" and good.hr_bpm == 60.0 and good_too.hr_bpm == 60.0
    assert good.beats == 30 - 5
    # Poor signal once the person's heart was found: breathing is far stronger than the
    # heartbeat, so it still has a rate.
    assert poor_after.state == "poor" and poor_after.hr_bpm is None
    assert poor_after.rr_bpm == 15.0


def test_a_rate_seen_once_is_not_stored_until_another_agrees():
    """An epoch's heart rate needs a second look: the rate the checks passed in the epoch
    before, or in the epoch after it (the epoch waits one epoch for it). Two good epochs
    with a movement between them are two rates seen once."""

    def state(a):  # good 0-30 s and 60-90 s, moving in between and after
        return "good" if a + WIN <= 3000 or 6000 <= a <= 9000 - WIN else "motion"

    v = _vitals()
    _feed(v, 0, 15000, state)
    first, moving, second = v.finish(15000)[:3]
    assert first.state == "good" and first.hr_bpm is None and first.hrv_rmssd_ms is None
    assert first.hr_reason == "rate unconfirmed"
    assert moving.hr_reason == "motion"
    assert second.state == "good" and second.hr_reason == "rate unconfirmed"

    v = _vitals()  # the same first epoch, then still: the epoch after confirms it
    _feed(v, 0, 6000, lambda a: "good")
    first, second = v.finish(6000)
    assert first.hr_bpm == second.hr_bpm == 60.0
    assert first.t_utc < second.t_utc  # written in order, the first one epoch late


def test_a_rate_that_no_other_agrees_with_is_not_stored():
    v = _vitals()
    v.add_samples(0, 9000)
    v.add_beats(np.concatenate([np.arange(0, 3000, 100), np.arange(3000, 9000, 75)]))
    v.add_breaths(np.arange(0, 9000, 400))
    for a in range(0, 8001, HOP):
        v.add_judgement(a, a + WIN, "good", 0.9)
    first, second, third = v.finish(9000)
    # 60 bpm, then 80 bpm from 30 s on: the first is seen once only; 80 is seen twice.
    assert first.hr_bpm is None and first.hr_reason == "rate unconfirmed"
    assert second.hr_bpm == third.hr_bpm == 80.0
    # Breathing belongs to the person whose heart was found: from the second epoch on.
    assert first.rr_bpm is None and first.rr_reason == "no heart rhythm"
    assert second.rr_bpm == 15.0


def test_a_leap_from_the_heart_rate_stored_must_hold_for_30_s():
    """A still sleeper's heart drifts; it does not leap from 60 to 150 bpm. Two modes of a
    ringing frame beating together can give such a rate, which the picker and the rhythm
    check agree on for an epoch or two: it is stored only once it has held for 30 s."""

    def run(leap_s: int) -> list[Epoch]:
        v = _vitals(epoch_s=10.0)
        n = 6000 + leap_s * 100 + 4000
        v.add_samples(0, n)
        leap_end = 6000 + leap_s * 100
        steady, leap, after = (0, 6000, 100), (6000, leap_end, 40), (leap_end, n, 100)
        v.add_beats(np.concatenate([np.arange(*steady), np.arange(*leap), np.arange(*after)]))
        v.add_breaths(np.arange(0, n, 400))
        for a in range(0, n - WIN + 1, HOP):
            v.add_judgement(a, a + WIN, "good", 0.9)
        return v.finish(n)

    brief = run(20)  # 150 bpm for two epochs (60-80 s), then 60 again
    assert [e.hr_bpm for e in brief[:6]] == [60.0] * 6
    assert [(e.hr_bpm, e.hr_reason) for e in brief[6:8]] == [(None, "rate unconfirmed")] * 2
    assert [e.hr_bpm for e in brief[8:]] == [60.0] * (len(brief) - 8)

    held = run(50)  # 150 bpm for five epochs: from the third on, it is the heart's rate
    assert [e.hr_bpm for e in held[6:8]] == [None, None]
    assert [e.hr_bpm for e in held[8:11]] == [150.0] * 3


def test_a_leap_is_not_stored_by_the_epoch_after_it_either():
    """An epoch waiting for the next one to confirm its rate (none before it: a movement)
    gets it only if the rate is no leap from the last one stored: 60 bpm, a movement, then
    84.5 bpm (a 41 % leap) agreed on by one epoch of 75.9 (under 30 % from 60: stored)."""
    v = _vitals(epoch_s=10.0)
    n = 12000
    v.add_samples(0, n)
    v.add_beats(np.concatenate([np.arange(0, 6000, 100), np.arange(7000, 8000, 71)]))
    v.add_beats(np.arange(8000, n, 79))
    v.add_breaths(np.arange(0, n, 400))
    for a in range(0, n - WIN + 1, HOP):
        v.add_judgement(a, a + WIN, "motion" if a in (5500, 6000) else "good", 0.9)
    epochs = v.finish(n)
    assert [e.hr_bpm for e in epochs[:6]] == [60.0] * 6
    assert epochs[6].hr_reason == "motion"
    assert (epochs[7].hr_bpm, epochs[7].hr_reason) == (None, "rate unconfirmed")
    assert all(e.hr_bpm == pytest.approx(6000 / 79) for e in epochs[8:])


def test_breathing_without_a_heart_for_half_an_hour_is_not_a_person():
    """A rhythm like breathing with no heart rate stored in the 30 min before (a pump, a
    swaying frame, a recording read at the wrong rate) gets no breathing rate."""
    v = _vitals()
    n = int(40 * 60 * FS)
    v.add_samples(0, n)
    v.add_beats(np.arange(0, 6000, 100))  # a heart in the first minute only
    v.add_breaths(np.arange(0, n, 400))
    for a in range(0, n - WIN + 1, HOP):
        v.add_judgement(a, a + WIN, "good", 0.9)
    epochs = v.finish(n)
    assert [e.hr_bpm for e in epochs[:2]] == [60.0, 60.0]
    minutes = np.array([(e.t_utc - T0) / 60 for e in epochs])
    rr = np.array([e.rr_bpm is not None for e in epochs])
    assert rr[minutes < 31].all()  # within 30 min of the last heart rate (ending at 1 min)
    assert not rr[minutes >= 31.5].any()
    late = [e.rr_reason for e, m in zip(epochs, minutes, strict=True) if m >= 31.5]
    assert set(late) == {"no heart rhythm"}


def test_scattered_breaths_give_no_breathing_rate():
    v = _vitals()
    v.add_samples(0, 9000)
    v.add_beats(np.arange(0, 9000, 100))
    breaths = np.cumsum(np.tile([150, 700, 300, 900], 8))  # 1.5-9 s apart: noise, not breaths
    v.add_breaths(breaths[breaths < 9000])
    for a in range(0, 8001, HOP):
        v.add_judgement(a, a + WIN, "good", 0.9)
    epochs = v.finish(9000)
    assert all(e.hr_bpm == 60.0 for e in epochs)
    assert [e.rr_reason for e in epochs[1:]] == ["irregular", "irregular"]


def test_a_beat_in_any_non_good_window_does_not_count():
    v = _vitals()
    _feed(v, 0, 6000, lambda a: "motion" if a == 1500 else "good")  # [1500, 2500) moving
    first = v.finish(6000)[0]
    # Beats 1500..2400 are in the motion window, and so are the two intervals touching it.
    assert first.beats == 30 - 10
    assert first.hr_bpm == 60.0


def test_no_interval_is_measured_across_a_sensor_gap():
    v = _vitals()
    v.add_samples(0, 3200)
    v.add_beats(np.arange(0, 3200, 100))
    v.add_samples(3210, 12000)  # 0.1 s lost
    v.add_beats(np.arange(3210, 12000, 100))
    for a in [*range(0, 2001, HOP), 2200, *range(3210, 11000, HOP)]:  # 3100 and 3210 judged
        v.add_judgement(a, a + WIN, "good", 1.0)
    # The beats at 3100 and 3210 are 1.1 s apart, close enough to pass as a normal interval,
    # but a gap lies between them: it is not one. Every interval measured is the true 1 s.
    epochs = v.finish(12000)
    assert [e.hr_bpm for e in epochs] == [60.0] * 4
    assert [e.hrv_rmssd_ms for e in epochs] == [0.0] * 4


def test_an_epoch_inside_a_long_gap_is_written_with_the_gap_as_its_reason():
    """Every epoch of a session exists (issue 16): one that no judged window covers because
    of a gap is "poor", quality 0, no values, the reason "sensor gap"."""
    v = _vitals()
    _feed(v, 0, 3000, lambda a: "good")
    _feed(v, 9000, 9400, lambda a: "good")  # 4 s of samples between two long gaps
    _feed(v, 12000, 18000, lambda a: "good")
    epochs = v.finish(18000)
    starts = [round(e.t_utc - T0) for e in epochs]
    assert starts == [0, 30, 60, 90, 120, 150]
    for k in (1, 2):  # [30, 60) and [60, 90): the gaps
        e = epochs[k]
        assert (e.state, e.quality, e.hr_bpm, e.rr_bpm) == ("poor", 0.0, None, None)
        assert e.hr_reason == e.rr_reason == "sensor gap"
        assert e.unjudged and not e.in_bed  # a gap says nothing of the bed
    assert [e.unjudged for e in epochs] == [False, True, True, True, False, False]


def test_a_missed_beat_does_not_move_the_rate_nor_the_hrv():
    v = _vitals()
    v.add_samples(0, 6000)
    beats = np.arange(0, 6000, 100)
    v.add_beats(np.delete(beats, 40))  # a 2 s interval at 3.9-4.1 ks
    for a in range(0, 5001, HOP):
        v.add_judgement(a, a + WIN, "good", 1.0)
    second = v.finish(6000)[1]
    assert second.hr_bpm == 60.0 and second.hrv_rmssd_ms == 0.0


def _rate_of_slowing_beats(missed: list[int]) -> float:
    """The second 30 s epoch's rate: beats 1 s apart, then from 45 s on 1.04 s apart (the
    heart slowing within the epoch), with the beats ``missed`` (by number) not picked."""
    v = _vitals()
    v.add_samples(0, 6000)
    beats = np.concatenate([np.arange(0, 4500, 100), 4500 + np.arange(0, 1440, 104)])
    v.add_beats(np.delete(beats, missed))
    for a in range(0, 5001, HOP):
        v.add_judgement(a, a + WIN, "good", 1.0)
    return v.finish(6000)[1].hr_bpm


def test_a_missed_beat_keeps_its_time_in_the_rate():
    """An interval of two beats counts as two: the epoch's rate is that of all its beats, not
    of those left when the slow part loses one interval (which leans it to the fast part;
    a detector that skips a few beats then reads another rate than one that does not)."""
    whole = _rate_of_slowing_beats([])
    assert 58.0 < whole < 59.0  # 15 s at 60 bpm, 15 s at 57.7
    assert _rate_of_slowing_beats([50]) == pytest.approx(whole, rel=1e-12)
    assert _rate_of_slowing_beats([50, 53]) == pytest.approx(whole, rel=1e-12)


def test_picks_moving_to_the_next_wave_do_not_move_the_rate():
    # A ringing sensor: from beat 45 on the picker sits on the next wave, 180 ms later. One
    # interval is 18 % long (normal: within 25 %); the rest are exact.
    v = _vitals()
    v.add_samples(0, 6000)
    beats = np.arange(0, 6000, 100)
    beats[45:] += 18
    v.add_beats(beats)
    for a in range(0, 5001, HOP):
        v.add_judgement(a, a + WIN, "good", 1.0)
    second = v.finish(6000)[1]
    assert second.hr_bpm == 60.0  # the mean of all normal intervals: 59.64 bpm
    # Nor the HRV: a hop's interval is not the heart's variability (all normal: 47 ms).
    assert second.hrv_rmssd_ms == 0.0


def _rate_after_a_move(move: int) -> float:
    """The rate of the second 30 s epoch when the picker moves ``move`` samples later from
    beat 45 on (one interval of its 30 lasts 100 + move samples, the rest 100)."""
    v = _vitals()
    v.add_samples(0, 6000)
    beats = np.arange(0, 6000, 100)
    beats[45:] += move
    v.add_beats(beats)
    for a in range(0, 5001, HOP):
        v.add_judgement(a, a + WIN, "good", 1.0)
    return v.finish(6000)[1].hr_bpm


def test_no_interval_moves_the_rate_by_crossing_an_edge():
    """Intervals within 10 % of the median weigh in full, those beyond 15 % not at all, and
    in between less the further they lie. A hard edge at 15 % let one interval decide 0.3
    bpm here by one sample, and a whole bpm on a real bed resampled (one interval of 16
    a few ms either side of it)."""
    rates = [_rate_after_a_move(move) for move in range(0, 21)]
    assert rates[0] == 60.0 and all(r == 60.0 for r in rates[15:])  # 15 % and beyond: out
    assert rates[10] == pytest.approx(60.0 * 30 / 30.1)  # 10 %: in, in full
    steps = np.abs(np.diff(rates))
    assert steps.max() < 0.1  # no step of the weight, one sample at a time


def test_ties_go_to_the_cautious_state():
    v = _vitals(epoch_s=10.0)
    v.add_samples(0, 1000)
    v.add_judgement(0, 500, "good", 1.0)  # half the epoch good, half moving
    v.add_judgement(500, 1000, "motion", 0.0)
    (epoch,) = v.finish(1000)
    assert epoch.state == "motion" and epoch.quality == 0.5


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 20000), max_size=12), st.sampled_from([1.0, 7.0, 30.0]))
def test_epochs_do_not_depend_on_when_they_are_asked_for(cuts, epoch_s):
    """Asking for ready epochs at any points of the stream gives the same epochs."""
    rng = np.random.default_rng(3)
    beats = np.cumsum(rng.integers(70, 130, 250))
    beats = beats[beats < 20000]
    breaths = np.arange(150, 20000, 380)
    states = rng.choice(["good", "good", "poor", "motion", "empty"], 39)

    def run(points):
        v = EpochVitals(FS, epoch_s, lambda i: T0 + i / FS)
        out, done = [], 0
        for cut in sorted(set(points)) + [20000]:
            v.add_samples(done, cut)
            v.add_beats(beats[(beats >= done) & (beats < cut)])
            v.add_breaths(breaths[(breaths >= done) & (breaths < cut)])
            for k, a in enumerate(range(0, 20000 - WIN + 1, HOP)):
                if done < a + WIN <= cut:
                    v.add_judgement(a, a + WIN, str(states[k]), 0.5)
            out += v.ready(cut)
            done = cut
        return out + v.finish(20000)

    assert run(cuts) == run([])


def test_bed_presence_has_hysteresis():
    bed = BedPresence(entry_s=20.0, exit_s=30.0, hop_s=5.0)
    states = ["empty"] * 6 + ["good"] * 3 + ["empty"] + ["good"] * 10 + ["empty"] * 5
    states += ["good"] + ["empty"] * 8
    events = [(i, e.kind, e.t_utc) for i, s in enumerate(states) if (e := bed.update(s, 5.0 * i))]
    # The starting empty bed is no event, nor a 15 s visit, nor a 5 s spell. An event comes
    # when the run is long enough, dated at the run's start.
    assert events == [(13, "bed_entry", 50.0), (31, "bed_exit", 130.0)]
    assert bed.update("good", 0.0) is None and bed.occupied is False


def _epoch(hr, rr=15.0) -> Epoch:
    return Epoch(T0, 30.0, "good", 1.0, hr, None, rr, 1.0, 30, None, None)


def test_out_of_range_is_reported_once_per_excursion():
    watch = RangeWatch((40.0, 120.0), (8.0, 25.0))
    hrs = [60, 35, 34, None, 36, 60, 130, 30, 60]
    kinds = [[e.detail for e in watch.update(_epoch(hr))] for hr in hrs]
    assert kinds == [
        [],
        ["HR 35.0 bpm, below 40"],
        [],
        [],
        [],
        [],
        ["HR 130.0 bpm, above 120"],
        ["HR 30.0 bpm, below 40"],
        [],
    ]
    assert [e.kind for e in watch.update(_epoch(60, rr=30.0))] == ["rr_out_of_range"]


def test_stretches_stay_apart_after_old_ones_are_forgotten():
    """Many gaps over a long stream: no interval ever joins two stretches, also after the
    builder has pruned the old ones (a stretch number must never come back)."""
    v = _vitals()
    out = []
    for k in range(12):  # 12 stretches of 70 s with 0.1 s gaps, beats every 1 s from each start
        start = 7010 * k
        v.add_samples(start, start + 7000)
        v.add_beats(start + np.arange(0, 7000, 100))  # across a gap: 1.1 s, a "normal" interval
        for a in range(start, start + 6001, HOP):
            v.add_judgement(a, a + WIN, "good", 1.0)
        out += v.ready(start + 7000)
    out += v.finish(7010 * 12)
    assert len(out) > 20 and all(e.hr_bpm in (None, 60.0) for e in out)
    assert all(e.hrv_rmssd_ms in (None, 0.0) for e in out)
