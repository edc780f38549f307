"""The rhythm check (edge.rhythm) and what it keeps out of the store: a heart rate the beat
picker got at half the rate, a machine's rhythm, an alarm from one odd epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.eval.machines import MACHINES
from edge.events import RangeWatch
from edge.pipeline import OpenGate, Pipeline, Settings
from edge.quality import QualityGate
from edge.readers import Recording
from edge.records import Epoch
from edge.rhythm import RhythmCheck, acf_period, acf_prefers_period
from edge.sources.replay import ReplaySource
from edge.store import Store
from edge.vitals import NOT_A_PERSON, EpochVitals

T0 = 1_750_000_000.0
DATA = Path(__file__).resolve().parents[1] / "data"


def _pulses(period_s: float, seconds: float, rate: float, heights=(1.0,)) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    k = np.floor(t / period_s).astype(int)
    phase = t - k * period_s
    return np.take(heights, k % len(heights)) * np.exp(-0.5 * (phase / 0.03) ** 2)


@pytest.mark.parametrize("period_s", [0.4, 0.8, 1.3, 1.9])
def test_the_period_of_a_pulse_train_is_found(period_s: float) -> None:
    found = acf_period(_pulses(period_s, 20.0, 100.0), 100.0)
    assert found is not None and found[0] == pytest.approx(period_s, abs=0.01)


def test_alternating_beats_give_the_period_not_twice_it() -> None:
    """Tall and short beats in turn (a ringing frame, breathing): the autocorrelation peaks
    higher at two periods, but the first strong peak is the period."""
    found = acf_period(_pulses(0.8, 20.0, 100.0, heights=(1.0, 0.6)), 100.0)
    assert found is not None and found[0] == pytest.approx(0.8, abs=0.01)


def test_noise_has_no_period() -> None:
    noise = np.abs(np.random.default_rng(3).standard_normal(2000))
    assert acf_period(noise, 100.0) is None


def _run(x: np.ndarray, fs: float, tmp_path: Path, name: str = "v.db", gate=None) -> list[Epoch]:
    """The unit's pipeline on ``x``; by default with the gate open, so that the rhythm check
    alone stands between the beat picker and the store."""
    source = ReplaySource(Recording(np.asarray(x, float), fs, "bcg", ("bcg",)), t0_utc=T0)
    with Store(str(tmp_path / name)) as store:
        Pipeline(source, store, gate or OpenGate(fs), Settings(epoch_s=10.0)).run()
        return [e for _, e in store.epochs()]


@pytest.mark.parametrize("fs", [250.0, 50.0])
@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_a_machine_never_gets_a_heart_rate(kind: str, fs: float, tmp_path: Path) -> None:
    """The machine signals of ``make eval`` (edge.eval.machines), 3 min in ADC counts,
    through the unit as it is (the gate and the rhythm check)."""
    generator, _ = MACHINES[kind]
    epochs = _run(2000.0 + 100.0 * generator(fs, 180.0), fs, tmp_path, gate=QualityGate(fs))
    assert len(epochs) >= 15
    assert all(e.hr_bpm is None for e in epochs), [e.hr_bpm for e in epochs]


@pytest.mark.parametrize("fs", [250.0, 50.0])
@pytest.mark.parametrize("kind", ["sine 1 Hz", "square 1 Hz", "pump 0.8 Hz"])
def test_the_rhythm_check_alone_tells_a_strict_machine(kind: str, fs: float, tmp_path) -> None:
    """With the gate open, the rhythm check by itself keeps a strictly periodic machine out:
    "not a person" once it has seen enough, "rate uncertain" before."""
    generator, _ = MACHINES[kind]
    epochs = _run(2000.0 + 100.0 * generator(fs, 180.0), fs, tmp_path)
    assert all(e.hr_bpm is None for e in epochs), [e.hr_bpm for e in epochs]
    reasons = {e.hr_reason for e in epochs}
    assert reasons <= {NOT_A_PERSON, "rate uncertain", "few beats", "irregular"}
    assert NOT_A_PERSON in reasons  # told apart, not merely unsure
    machine = [e for e in epochs if e.hr_reason == NOT_A_PERSON]
    assert all(e.state == "poor" and e.rr_bpm is None for e in machine)


def test_a_person_keeps_the_heart_rate(tmp_path: Path) -> None:
    """The real fiber-mat recording (Sadek et al.): the check confirms the rates of a person
    (beat-to-beat variability, breathing of their own) in 26 of the first 30 epochs, and
    every epoch from the 4th on that has an HR has a breathing rate too (a person)."""
    with np.load(DATA / "sadek_sample.npz") as data:
        x, fs = data["raw"].astype(np.float64), float(data["fs"])
    epochs = _run(x[: int(300 * fs)], fs, tmp_path)
    with_hr = [e for e in epochs if e.hr_bpm is not None]
    # The first three: the check's first seconds, then a rate seen once (the next epoch's
    # intervals are irregular: nothing agrees with it), then two irregular epochs.
    assert len(with_hr) >= 26
    assert not any(e.hr_reason == NOT_A_PERSON for e in epochs)
    assert all(e.rr_bpm is not None for e in epochs[3:] if e.hr_bpm is not None)


def _vitals(band: np.ndarray, picks_s: np.ndarray, fs: float = 100.0) -> list[Epoch]:
    """Epochs of EpochVitals fed ``band`` as the beat band, with breathing of its own in the
    raw signal, every window good, and ``picks_s`` as the detector's beats."""
    t = np.arange(band.size) / fs
    raw = band + 0.5 * np.sin(2 * np.pi * 0.25 * t)
    v = EpochVitals(fs, 10.0, lambda i: T0 + i / fs)
    v.add_samples(0, t.size)
    v.add_signal(0, band, raw)
    v.add_beats(np.round(picks_s * fs).astype(np.int64))
    for a in range(0, t.size - int(10 * fs) + 1, int(5 * fs)):
        v.add_judgement(a, a + int(10 * fs), "good", 1.0)
    return v.finish(t.size)


def test_a_half_rate_pick_is_not_stored(tmp_path: Path) -> None:
    """The picker reports every other beat (as it does locked to half the rate): the
    envelope says twice that rate, so the epoch stores no rate, and says why."""
    seconds = 60.0
    jitter = np.random.default_rng(5).normal(0.0, 0.03, 200)
    beats_s = np.cumsum(0.8 + jitter)
    beats_s = beats_s[beats_s < seconds - 1]
    band = _waves(beats_s, (0.0,), (1.0,), 100.0, seconds)
    epochs = _vitals(band, beats_s[::2])
    assert all(e.hr_bpm is None for e in epochs)
    assert "rate uncertain" in {e.hr_reason for e in epochs}
    # The same beats, all of them, are confirmed.
    rates = [e.hr_bpm for e in _vitals(band, beats_s)[1:]]
    assert all(r is not None and r == pytest.approx(75.0, rel=0.08) for r in rates)


def test_a_gap_in_the_signal_is_never_read_across() -> None:
    check = RhythmCheck(100.0)
    pulses = _pulses(0.8, 20.0, 100.0)
    check.add(0, pulses, pulses)
    check.add(4000, pulses, pulses)  # 20 s missing between the two
    found = check.period(0, 6000)
    assert found is not None and found[0] == pytest.approx(0.8, abs=0.01)


def _epoch(t: float, hr: float | None, rr: float | None = 15.0) -> Epoch:
    return Epoch(T0 + t, 10.0, "good", 1.0, hr, None, rr, 1.0, 10, None, None)


def test_out_of_range_must_hold_before_an_event() -> None:
    watch = RangeWatch((40.0, 120.0), (8.0, 25.0), hold_s=60.0)
    # One odd epoch, then normal: no alarm.
    seq = [60, 35, 60, 60]
    assert [watch.update(_epoch(10 * i, hr)) for i, hr in enumerate(seq)] == [[]] * 4
    # Low for a minute (epochs without a value in between do not break the run): one event,
    # stamped at the first low epoch.
    events = []
    for i, hr in enumerate([35, 36, None, 34, 35, 36, 35, 34, 33], start=10):
        events += watch.update(_epoch(10 * i, hr))
    assert [(e.kind, e.t_utc, e.detail) for e in events] == [
        ("hr_out_of_range", T0 + 100, "HR 35.0 bpm, below 40")
    ]


def test_motion_is_relative_to_the_night(tmp_path: Path) -> None:
    """The stored motion value does not depend on the sensor's gain: 1 is this night's
    ordinary stillness."""
    with np.load(DATA / "sadek_sample.npz") as data:
        x, fs = data["raw"].astype(np.float64), float(data["fs"])
    x = x[: int(200 * fs)]
    a = _run(x, fs, tmp_path, "a.db")
    b = _run(1000.0 * x - 5.0, fs, tmp_path, "b.db")
    motion_a = np.array([e.motion for e in a], dtype=float)
    motion_b = np.array([e.motion for e in b], dtype=float)
    np.testing.assert_allclose(motion_a, motion_b, rtol=1e-6)
    assert 0.5 < np.median(motion_a) < 2.0


def _waves(beats_s: np.ndarray, delays_s, heights, rate: float, seconds: float) -> np.ndarray:
    """An envelope with a wave of each height at each delay after every beat."""
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros(t.size)
    for b in beats_s:
        for d, h in zip(delays_s, heights, strict=True):
            out += h * np.exp(-0.5 * ((t - b - d) / 0.03) ** 2)
    return out


def _check_with(envelope: np.ndarray, rate: float) -> RhythmCheck:
    check = RhythmCheck(rate)  # at 100 Hz one raw sample is one envelope block
    check.add(0, envelope, envelope)
    return check


def test_picks_on_two_or_three_waves_by_turns_are_told_apart() -> None:
    """Three comparable waves 180 ms apart at 87 bpm: a picker taking the first and the
    third wave of each beat reports 174 bpm, and the envelope repeats at that lag too; the
    shapes around the picks repeat every second pick, and that is what is caught. Picks on
    every wave repeat every third."""
    rate = 100.0
    beats_s = np.arange(0.5, 29.0, 60.0 / 87.0)
    envelope = _waves(beats_s, (0.0, 0.18, 0.36), (0.9, 0.85, 1.0), rate, 30.0)
    check = _check_with(envelope, rate)

    def picks(*delays: float) -> np.ndarray:
        both = np.sort(np.concatenate([beats_s + d for d in delays]))
        return np.round(both * rate).astype(np.int64)

    assert check.stride(picks(0.0, 0.36)) == 2
    assert check.stride(picks(0.0, 0.18, 0.36)) == 3
    assert check.stride(picks(0.0)) == 1  # one wave a beat
    assert check.stride(picks(0.36)) == 1


def test_true_beats_tall_and_short_by_turns_are_one_pick_a_beat() -> None:
    rate = 100.0
    rng = np.random.default_rng(2)
    beats_s = np.cumsum(0.8 + rng.normal(0, 0.02, 40))
    envelope = _waves(beats_s, (0.0, 0.2), (1.0, 0.5), rate, 34.0)
    envelope *= 1.0 + 0.4 * (np.arange(envelope.size) // 80 % 2)
    check = _check_with(envelope, rate)
    assert check.stride(np.round(beats_s[beats_s < 33] * rate).astype(np.int64)) == 1


def _multiwave_vitals(picks_s: np.ndarray, beats_s: np.ndarray, seconds: float) -> list[Epoch]:
    """:func:`_vitals` of three comparable waves per beat, 180 ms apart."""
    return _vitals(_waves(beats_s, (0.0, 0.18, 0.36), (0.9, 0.85, 1.0), 100.0, seconds), picks_s)


def test_picks_on_two_waves_are_read_on_one() -> None:
    """The picker takes the first and the third wave of each beat (twice the rate): the unit
    re-locks on one wave (every second pick, then each beat placed on the template, one wave
    a beat), and stores the heart's rate and HRV, and the epoch's heartbeats, not its picks.
    One epoch may say "irregular" while the one changes to the other, never a wrong rate.
    One may store no HRV: while the template still holds both waves, a third-wave pick can
    land between them, 200 ms after the beat's first pick, an extra beat whose intervals are
    not steady (fewer than 10 steady pairs are left: no HRV, rather than a wrong one)."""
    seconds = 60.0
    rng = np.random.default_rng(7)
    beats_s = np.cumsum(0.75 + rng.normal(0.0, 0.02, 100))
    beats_s = beats_s[beats_s < seconds - 1]
    picks = np.sort(np.concatenate([beats_s, beats_s + 0.36]))
    epochs = _multiwave_vitals(picks, beats_s, seconds)[1:]
    intervals = np.diff(beats_s)
    rmssd = 1000.0 * np.sqrt(np.mean(np.diff(intervals) ** 2))
    assert sum(e.hr_bpm is None for e in epochs) <= 1, [e.hr_reason for e in epochs]
    assert {e.hr_reason for e in epochs} <= {None, "irregular"}
    assert sum(e.hrv_rmssd_ms is None for e in epochs) <= 2
    for e in (e for e in epochs if e.hr_bpm is not None):
        assert e.hr_bpm == pytest.approx(80.0, rel=0.05)
        assert e.hrv_rmssd_ms is None or e.hrv_rmssd_ms == pytest.approx(rmssd, rel=0.5)
        assert 11 <= e.beats <= 15  # 80 bpm: 13 heartbeats in 10 s, 26 picks


def test_picks_that_hop_between_waves_give_the_hearts_rate_or_none() -> None:
    """A picker that takes any two of the three waves of a beat, at random: the picks come
    in pairs and the intervals between every second pick mix the waves. Placed on the beat
    template, the picks give one wave a beat once the template is learnt: every rate stored
    is the heart's, every HRV near the heart's (a hop's interval is not variability); before
    that, none is stored."""
    seconds = 60.0
    rng = np.random.default_rng(8)
    beats_s = np.cumsum(0.75 + rng.normal(0.0, 0.02, 100))
    beats_s = beats_s[beats_s < seconds - 1]
    pairs = [(0.0, 0.36), (0.0, 0.18), (0.18, 0.36)]
    picks = np.concatenate([b + np.array(pairs[rng.integers(3)]) for b in beats_s])
    epochs = _multiwave_vitals(picks, beats_s, seconds)
    true_bpm = 60.0 / np.mean(np.diff(beats_s))
    rmssd = 1000.0 * np.sqrt(np.mean(np.diff(np.diff(beats_s)) ** 2))
    assert {e.hr_reason for e in epochs[1:]} <= {None, "rate uncertain", "irregular"}
    assert sum(e.hr_bpm is not None for e in epochs) >= 2
    for e in (e for e in epochs if e.hr_bpm is not None):
        assert e.hr_bpm == pytest.approx(true_bpm, rel=0.03)
        assert e.hrv_rmssd_ms is None or e.hrv_rmssd_ms == pytest.approx(rmssd, rel=0.5)


@pytest.mark.parametrize("seed", [5, 11])
def test_a_ringing_multiwave_bed_stores_no_doubled_rate(seed: int, tmp_path: Path) -> None:
    """The held-out-like recording (500 Hz, 12-bit counts near 2000, a ringing frame and
    three comparable waves per beat): on these seeds the detector picks twice the rate.
    The unit reads the rate on one wave, or stores none: never one off by 20 %, and it
    raises no alarm."""
    from edge.eval.epochs import span_rates
    from edge.sim.recordings import heldout_like, heldout_like_night

    samples, fs, *_ = heldout_like(seed)
    night = heldout_like_night(seed)
    source = ReplaySource(Recording(samples.astype(float), fs, "bcg", ("bcg",)), t0_utc=T0)
    with Store(str(tmp_path / "v.db")) as store:
        Pipeline(source, store, QualityGate(fs), Settings(epoch_s=10.0)).run()
        epochs = [e for _, e in store.epochs()]
        events = [e.kind for _, e in store.events()]
    truth = span_rates(night.beats, fs, samples.size, 10.0, 10.0, valid=night.ibi_normal)
    for k, e in enumerate(epochs):
        if e.hr_bpm is not None:
            assert abs(e.hr_bpm - truth[k]) <= 0.2 * truth[k], (k, e.hr_bpm, truth[k])
    assert "hr_out_of_range" not in events


def test_a_frame_ringing_at_half_the_beat_stores_no_doubled_rate(tmp_path: Path) -> None:
    """The held-out-like night on a bed whose one mode rings at 5.5 Hz, Q 8, under a heart
    at 81 bpm: the beat's echo two cycles on (0.36 s) lands at half the beat, the picker
    takes both, and the envelope repeats at that lag too. The ripple of the ringing in
    |beat band| made the shapes around beat and echo alike (0.70 at the next pick, 0.88 at
    the next but one): 163 bpm was stored for the first 20 s. On the envelope smoothed as
    the period is read they differ (0.0 and 0.85): the rate is read on one wave, or not
    at all."""
    import dataclasses

    from edge.eval.epochs import span_rates
    from edge.sim import Night
    from edge.sim.recordings import heldout_like_night
    from edge.sim.sensor_model import Resonance

    like = heldout_like_night(1004)
    model = dataclasses.replace(
        like.sensor_model,
        resonances=(Resonance(5.5, 8.0),),
        wave_delays_s=(),
        wave_heights=(1.0,),
    )
    night = Night(
        seed=1004,
        scenario=like.scenario,
        heart_bpm=like.heart_bpm,
        snr_db=like.snr_db,
        sensor_model=model,
    )
    fs, n = night.fs, int(60 * night.fs)
    samples = night.samples()[:n].astype(float)
    source = ReplaySource(Recording(samples, fs, "bcg", ("bcg",)), t0_utc=T0)
    with Store(str(tmp_path / "v.db")) as store:
        Pipeline(source, store, QualityGate(fs), Settings(epoch_s=10.0)).run()
        epochs = [e for _, e in store.epochs()]
    truth = span_rates(night.beats[night.beats < n], fs, n, 10.0, 10.0)
    assert truth[0] == pytest.approx(81.3, abs=1.0)
    assert sum(e.hr_bpm is not None for e in epochs) >= 3  # read on one wave: 4 of 6
    for k, e in enumerate(epochs):
        if e.hr_bpm is not None:
            assert abs(e.hr_bpm - truth[k]) <= 0.2 * truth[k], (k, e.hr_bpm, truth[k])


def test_a_heart_picked_once_a_beat_is_never_halved() -> None:
    """The re-lock's last condition: the envelope must repeat in full at the re-locked beat,
    clearly more than at the picks' spacing. Three waves per beat: yes at the beat over half
    of it. One wave per beat (a heart with its variability): never at two beats over one."""
    rate = 100.0
    rng = np.random.default_rng(3)
    beats_s = np.cumsum(0.75 + rng.normal(0.0, 0.03, 60))
    beats_s = beats_s[beats_s < 39]
    waves = _waves(beats_s, (0.0, 0.18, 0.36), (0.9, 0.85, 1.0), rate, 40.0)
    assert acf_prefers_period(waves, rate, 0.75, 0.375)
    single = _waves(beats_s, (0.0,), (1.0,), rate, 40.0)
    assert not acf_prefers_period(single, rate, 1.5, 0.75)
    assert acf_prefers_period(single, rate, 0.75, 0.375)  # no peak at half a beat: no rival


def test_a_day_long_gap_costs_no_more_memory_than_the_check_keeps() -> None:
    """A sensor away for a day: the blocks of the gap are not filled in one by one (that was
    125 a second at 250 Hz, two arrays: gigabytes); what came before is simply gone."""
    check = RhythmCheck(250.0)
    x = np.sin(np.arange(2500) / 10.0)
    check.add(0, x, x)
    day = 250 * 86400
    check.add(day, x, x)
    assert check._env.size <= 2 * 2500 and np.isfinite(check._env).all()
    assert check._start == day  # aligned to the new stretch
    assert check.period(day, day + 2500) is not None and check.period(0, 2500) is None
