"""The night simulator: reproducibility, chunking, ground truth, signal realism, validation."""

from __future__ import annotations

import dataclasses
import hashlib
import platform

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.core._multiarray_umath import __cpu_features__

import dsp_c
from dsp_c.metrics import match_beats
from edge.sim import (
    ADC_MAX,
    GOOD_MIN_SNR_DB,
    POOR_MAX_SNR_DB,
    POSTURES,
    WAVES,
    Night,
    Person,
    Scenario,
    Segment,
    State,
    parse_sim_spec,
)
from edge.sim._random import normals, stream
from edge.sim.physiology import Breathing
from edge.sim.render import EXP_ZERO_BELOW, Beats, render_block, render_blocks, to_adc
from edge.sim.sensor import NOISE_BAND_HZ

HOUR = 3600.0


def band_rms(x: np.ndarray, fs: float, lo: float, hi: float) -> float:
    """RMS of ``x`` in [lo, hi] Hz (FFT brick wall; numpy only)."""
    spectrum = np.fft.rfft(x - x.mean())
    f = np.fft.rfftfreq(x.size, 1 / fs)
    spectrum[(f < lo) | (f > hi)] = 0
    return float(np.fft.irfft(spectrum, x.size).std())


def matched(night: Night, found: np.ndarray, tol_s: float = 0.05) -> tuple[int, int, float]:
    """(truth beats matched, false detections, offset s) after removing the constant offset.

    The offset is the median of each detection's distance to its nearest true J-peak.
    """
    truth = night.beats
    k = np.clip(np.searchsorted(truth, found), 1, truth.size - 1)
    nearest = np.where(found - truth[k - 1] < truth[k] - found, truth[k - 1], truth[k])
    offset = int(np.median(found - nearest))
    hits, false, _ = match_beats(found, truth + offset, int(round(tol_s * night.fs)))
    return hits, false, offset / night.fs


# --- reproducibility and chunking ------------------------------------------------------------


def test_the_same_seed_gives_the_same_night_and_another_seed_another():
    a, b, c = (Night(seed=s, duration_s=HOUR) for s in (5, 5, 6))
    ranges = [(0, 2500), (123_456, 130_000), (a.n_samples - 999, a.n_samples)]
    for start, stop in ranges:
        assert np.array_equal(a.samples(start, stop), b.samples(start, stop))
    for name in ("beats", "ibi_ms", "ectopic", "breaths", "beat_amplitude_counts"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert a.scenario == b.scenario
    assert repr(a.segments) == repr(b.segments)  # NaN fields: compare the text
    assert a.person.heart_bpm == b.person.heart_bpm
    assert np.array_equal(
        a.person.morphology["left"].amplitudes, b.person.morphology["left"].amplitudes
    )
    assert not np.array_equal(a.samples(100_000, 110_000), c.samples(100_000, 110_000))
    assert not np.array_equal(a.beats[:100], c.beats[:100])
    assert a.scenario != c.scenario


def test_the_scenario_does_not_change_the_physiology():
    """A controlled test can swap the timeline and keep the person and the sensor."""
    a = Night(seed=3, scenario=Scenario.constant(60, State.GOOD, "left"))
    b = Night(seed=3, duration_s=60)
    assert a.person.heart_bpm == b.person.heart_bpm
    assert a.sensor.gain == b.sensor.gain


CHAIN = Scenario.chain(
    [(12, "good", "supine"), (4, "motion", "left"), (14, "poor", "left"), (10, "empty")]
)


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 40 * 1000), max_size=12),
    fs=st.sampled_from([50.0, 97.5, 250.0, 1000.0]),
    seed=st.integers(0, 5),
)
def test_samples_are_the_same_in_any_chunking(cuts, fs, seed):
    scenario = CHAIN
    night = Night(seed=seed, fs=fs, scenario=scenario)
    n = night.n_samples
    edges = [0, *sorted(c % (n + 1) for c in cuts), n]
    fresh = Night(seed=seed, fs=fs, scenario=scenario)  # no cache shared with `night`
    pieces = [fresh.samples(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    whole = night.samples()
    assert np.array_equal(np.concatenate(pieces), whole)
    assert np.array_equal(np.concatenate(list(night.chunks(0.37))), whole)


def test_chunks_cover_the_night_and_the_last_may_be_short():
    night = Night(seed=1, duration_s=10.5)
    sizes = [c.size for c in night.chunks(1.0)]
    assert sizes == [250] * 10 + [125]
    assert all(c.dtype == np.int32 for c in night.chunks(2.0))


#: sha256 of the samples and of the beat heights, taken from the per-block renderer before
#: it was vectorized (commit before issue 4's speed work): rendering many blocks at once
#: must not change one bit, at any sampling rate or block length.
GOLDEN = [
    (
        dict(seed=0, duration_s=600.0),  # good, motion, poor; a vibration burst
        "8dce28066f1fa53e0fd476310485a06a8ca20d892711dfa25ad5266a1e6d95e1",
        "e1424a67cbec949c4cd924c155629db8f063166400467848cd2b9857b6e4db28",
    ),
    (
        dict(seed=4, duration_s=600.0),  # empty bed, good, motion; two bursts
        "feb2266fa23041e8e8e162aa90df51bc5cd62920ceacaaee4a1be81202c893c2",
        "5d6da14eebebfe3df8106913734311e563b2ae35156c71f0f5352f7949a7653b",
    ),
    (
        dict(seed=11, duration_s=600.0),
        "e8febf6d8dd24195043499ae78904516d888b3cc902b986118dfbe172e7cfd3c",
        "6327c9886fe82d006494682cb54ce567f64c29fc757f4fc355a236909e2541d9",
    ),
    (
        dict(seed=4, fs=50.0, duration_s=600.0),  # one-tap body noise
        "1ef8a4d05ad250d382aa31e392f0af3806193be8e19227f402b5215fff6d9fa1",
        "5d6da14eebebfe3df8106913734311e563b2ae35156c71f0f5352f7949a7653b",
    ),
    (
        dict(seed=6, fs=97.5, duration_s=300.0),  # a short last block
        "78120b270aae04984f36d0d4e5834878f964f1378d0d4ba477dee44adae7bb7f",
        "8efefbb172069f7cee20deaeca94fdb1c76a84391e838450c589cacbd1ffd080",
    ),
    (
        dict(seed=7, fs=1000.0, duration_s=120.0),  # empty bed, both hum tones
        "4f564ed672c38604d18f8cf1215e22363bd3f96a1a552a5f3c6175b0aced8ba6",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ),
    (
        dict(seed=2, fs=1000.0, scenario=CHAIN),
        "6a4d4eccd7d28ff6451047f8a20e71b57e1084adfce06449e2705d662e6eea53",
        "5307375d05949658e580a223ecfc0345cbf17a9d6690ca52daaa96adb3d6841d",
    ),
]


#: The beat heights where numpy's exp and log are not its AVX-512F kernels (x86-64 without
#: AVX-512, and aarch64: make arm64's board), keyed by GOLDEN's hash: the kernels round some
#: results differently in the last bit, which moves these heights by at most 3.2e-12 counts.
#: The samples, rounded to ADC counts, are the same everywhere.
HEIGHTS_WITHOUT_AVX512 = {
    "e1424a67cbec949c4cd924c155629db8f063166400467848cd2b9857b6e4db28": (
        "ea905a404520436448c319182fcf27759b08a9df14054c466bb852533da7f255"
    ),
    "6327c9886fe82d006494682cb54ce567f64c29fc757f4fc355a236909e2541d9": (
        "62dfd14450e8b7cc9e0868d713b0179bf85f0b31182fe54bd4471878b7f59d53"
    ),
    "8efefbb172069f7cee20deaeca94fdb1c76a84391e838450c589cacbd1ffd080": (
        "8214a14e0dce8c23f9f41f0f8a7a7d0271be306397759eb553ca8bef6e6d44ac"
    ),
    "5307375d05949658e580a223ecfc0345cbf17a9d6690ca52daaa96adb3d6841d": (
        "e92527bb7624a3c29c7045cd2ebc1d74ed2a4f8cc04b7e146bb4adc9bc70a0c0"
    ),
}


def golden_heights(heights_sha: str) -> str:
    """GOLDEN's heights hash for this machine's numpy exp/log kernels."""
    if __cpu_features__.get("AVX512F"):  # what GOLDEN was taken with
        return heights_sha
    return HEIGHTS_WITHOUT_AVX512.get(heights_sha, heights_sha)


@pytest.mark.parametrize(("kwargs", "samples_sha", "heights_sha"), GOLDEN)
def test_samples_are_bit_for_bit_those_of_the_per_block_renderer(kwargs, samples_sha, heights_sha):
    night = Night(**kwargs)
    assert hashlib.sha256(night.samples().tobytes()).hexdigest() == samples_sha
    heights = hashlib.sha256(night.beat_amplitude_counts.tobytes()).hexdigest()
    assert heights == golden_heights(heights_sha)


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 69), max_size=6),
    fs=st.sampled_from([50.0, 97.5, 250.0, 1000.0]),
    seed=st.integers(0, 3),
)
def test_blocks_rendered_together_equal_blocks_rendered_alone(cuts, fs, seed):
    """Any grouping of blocks into runs (the beat sum holds each block's own beats)."""
    plan = Night(seed=seed, fs=fs, duration_s=70.0)._plan
    edges = [0, *sorted({c % plan.n_blocks for c in cuts} - {0}), plan.n_blocks]
    runs = [render_blocks(plan, a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    alone = [render_block(plan, b) for b in range(plan.n_blocks)]
    assert np.array_equal(np.concatenate(runs), np.concatenate(alone))


def test_render_blocks_refuses_blocks_outside_the_night():
    plan = Night(seed=1, duration_s=10.0)._plan
    for first, stop in [(-1, 2), (3, 3), (0, plan.n_blocks + 1)]:
        with pytest.raises(ValueError, match="blocks"):
            render_blocks(plan, first, stop)


@pytest.mark.parametrize("seed", [0, 7, 2**32 - 1, 2**32, 2**63 - 1])
def test_fast_noise_streams_equal_numpys_seed_sequence(seed):
    """normals() hashes the seeds itself; every row must be the plain generator's draw."""
    for name in ("sensor noise", "body noise"):
        for first, stop in [(0, 3), (4094, 4098), (2**32 - 2, 2**32), (2**32 - 1, 2**32 + 1)]:
            rows = normals(seed, name, first, stop, 9)
            plain = [stream(seed, name, i).standard_normal(9) for i in range(first, stop)]
            assert np.array_equal(rows, np.stack(plain)), (name, first)
    assert normals(seed, "x", 5, 5, 3).shape == (0, 3)


def test_exp_is_exactly_zero_below_the_skip_limit():
    """The beat sum skips exp() below EXP_ZERO_BELOW: it must be exactly 0 there."""
    x = np.concatenate([-np.geomspace(-EXP_ZERO_BELOW, 1e300, 200_000), [-np.inf]])
    x = np.concatenate([x, np.linspace(EXP_ZERO_BELOW - 50.0, EXP_ZERO_BELOW, 200_001)])
    assert np.all(np.exp(x) == 0.0)
    if platform.machine() in ("x86_64", "AMD64"):
        # and the limit is not needlessly low: exp just above it is subnormal, and on
        # aarch64 a process that loaded tflite-runtime (the quality gate) flushes
        # subnormals to zero
        assert np.exp(EXP_ZERO_BELOW + 1.5) > 0.0


# --- ground truth ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nights() -> list[Night]:
    """Random 8 h nights (construction only: no samples)."""
    return [Night(seed=s) for s in range(8)]


def test_beats_and_breaths_only_while_somebody_is_in_bed(nights):
    for night in nights:
        for name in ("beats", "breaths"):
            events = getattr(night, name)
            assert np.all(np.diff(events) > 0)
            states = night.state_at()[events]
            assert not np.any(states == State.EMPTY), name
        for seg in night.segments:
            if seg.state is State.EMPTY:
                assert seg.n_beats == seg.n_breaths == 0
            elif seg.state is State.MOTION and seg.stop - seg.start > 3 * night.fs:
                assert seg.n_beats > 0  # the heart goes on under the movement


def test_no_breath_in_an_apnea(nights):
    apneas = [(night, seg) for night in nights for seg in night.segments if seg.apnea]
    assert apneas, "some random nights have apnea"
    for night, seg in apneas:
        assert seg.n_breaths == 0
        assert 10.0 <= seg.stop_s - seg.start_s <= 40.0
        assert np.isnan(night.breathing_rate_at(0.5 * (seg.start_s + seg.stop_s)))
        assert seg.n_beats > 0


def test_intervals_are_physiological_except_flagged_ectopic_beats(nights):
    for night in nights:
        ibi = night.ibi_ms
        normal = night.ibi_normal
        assert np.all((ibi[normal] >= 60000 / 180) & (ibi[normal] <= 60000 / 30))
        finite = np.isfinite(ibi[1:])
        assert np.allclose(np.diff(night.beat_times_s)[finite] * 1000, ibi[1:][finite])
        assert np.all(
            np.abs(np.diff(night.beats) / night.fs * 1000 - ibi[1:])[finite] <= 1000 / night.fs
        )
        ect = np.flatnonzero(night.ectopic)
        ect = ect[(ect > 0) & (ect + 1 < ibi.size)]
        ect = ect[np.isfinite(ibi[ect]) & np.isfinite(ibi[ect + 1])]
        # Premature, then a compensatory pause: the pair spans about two normal beats.
        assert np.all(ibi[ect] < ibi[ect + 1])
        assert not normal[ect].any() and not normal[ect + 1].any()
    assert sum(int(n.ectopic.sum()) for n in nights) > 0


@pytest.mark.parametrize("bpm", [40, 60, 100, 150])
def test_heart_rate_follows_its_parameter(bpm):
    night = Night(seed=4, scenario=Scenario.constant(600, State.GOOD), heart_bpm=bpm)
    mean = 60000 / np.nanmean(night.ibi_ms[night.ibi_normal])
    assert mean == pytest.approx(bpm, rel=0.1)
    hr = night.heart_rate_at(np.arange(5, 595, 0.5))
    assert np.all((hr > 0.7 * bpm - 1) & (hr < 1.3 * bpm + 1))
    assert night.segments[0].heart_bpm == pytest.approx(mean, rel=0.02)


@pytest.mark.parametrize("rate", [6, 15, 30])
def test_breathing_rate_follows_its_parameter(rate):
    night = Night(seed=4, scenario=Scenario.constant(900, State.GOOD), breaths_per_min=rate)
    assert night.segments[0].breaths_per_min == pytest.approx(rate, rel=0.2)
    br = night.breathing_rate_at(np.arange(60, 840, 1.0))
    assert np.nanmedian(br) == pytest.approx(rate, rel=0.2)


def test_drawn_rates_stay_in_the_sleeping_ranges(nights):
    for night in nights:
        assert 45 <= night.heart_bpm <= 85
        assert 9 <= night.breaths_per_min <= 22
        hr = night.heart_rate_at(np.arange(0, night.duration_s, 10.0))
        assert np.nanmin(hr) >= 30 and np.nanmax(hr) <= 180


def test_heart_rate_truth_reads_through_an_ectopic_pair():
    night = next(
        n for s in range(40) if (n := Night(seed=s, duration_s=2 * HOUR)).ectopic[1:-1].any()
    )
    k = int(np.flatnonzero(night.ectopic[1:-1])[0]) + 1
    t = night.beat_times_s
    pair = 0.5 * (t[k + 1] - t[k - 1]) * 1000
    assert night.heart_rate_at(0.5 * (t[k] + t[k + 1])) == pytest.approx(60000 / pair)
    assert night.heart_rate_at(0.5 * (t[k - 1] + t[k])) == pytest.approx(60000 / pair)


def test_state_labels_match_the_segments(nights):
    night = nights[0]
    labels = night.state_at()
    assert labels.dtype == np.int8 and labels.size == night.n_samples
    for seg in night.segments[:50]:
        assert np.all(labels[seg.start : seg.stop] == seg.state)
        if seg.stop > seg.start:
            assert night.segment_at(seg.start) == seg
    assert np.array_equal(night.state_at(1000, 5000), labels[1000:5000])
    assert night.state_at(7, 7).size == 0


def test_segment_truth_carries_what_the_evaluation_splits_by(nights):
    for night in nights:
        for seg in night.segments:
            if seg.state is State.GOOD:
                assert seg.snr_db >= GOOD_MIN_SNR_DB - 0.5
                assert seg.posture in POSTURES
            elif seg.state is State.POOR:
                assert seg.snr_db <= POOR_MAX_SNR_DB
            else:
                assert np.isnan(seg.snr_db)
            if seg.state is State.EMPTY:
                assert seg.posture is None and seg.j_counts == 0


def test_events_follow_the_timeline():
    night = Night(
        seed=1,
        scenario=Scenario.chain(
            [
                (30, "empty"),
                (10, "motion", "supine"),
                (60, "good", "supine"),
                (5, "motion", "left"),
                (60, "good", "left"),
                (20, "good", "left", {"apnea": True}),
                (60, "good", "left"),
                (8, "motion", "left"),
                (30, "empty"),
            ]
        ),
    )
    kinds = [kind for _, kind in night.events]
    assert kinds == ["bed_entry", "posture_change", "apnea_start", "bed_exit"]
    assert night.events[0][0] == 30 * 250


# --- random scenarios ---------------------------------------------------------------------------


def test_a_random_night_has_every_state_and_is_mostly_in_bed():
    full = 0
    for seed in range(30):
        scenario = Scenario.random(seed, 8 * HOUR)
        assert scenario.duration_s == 8 * HOUR
        states = {seg.state for seg in scenario}
        full += states == set(State)
        assert scenario.time_in(State.EMPTY) < 0.25 * scenario.duration_s
        assert scenario.time_in(State.GOOD) > 0.6 * scenario.duration_s
        assert all(seg.duration_s >= 0.1 - 1e-9 for seg in scenario)
    assert full >= 27  # all four labels in at least 9 nights of 10


def test_random_nights_vary_apnea_and_posture():
    scenarios = [Scenario.random(seed, 8 * HOUR) for seed in range(30)]
    with_apnea = sum(any(seg.apnea for seg in s) for s in scenarios)
    assert 3 <= with_apnea <= 20
    postures = {seg.posture for s in scenarios for seg in s}
    assert postures == {None, *POSTURES}
    edge = [seg for s in scenarios for seg in s if seg.coupling < 1]
    assert edge and all(seg.state is State.POOR for seg in edge)


def test_a_short_random_night_is_fine():
    for seed in range(10):
        night = Night(seed=seed, duration_s=5.0)
        assert night.samples().size == 1250
        assert night.scenario.duration_s == 5.0


# --- the signal ---------------------------------------------------------------------------------


def test_samples_are_16_bit_adc_counts():
    night = Night(seed=9, duration_s=HOUR)
    x = np.concatenate(
        [night.samples(i, i + 250 * 60) for i in range(0, night.n_samples, 250 * 600)]
    )
    assert x.dtype == np.int32
    assert x.min() >= 0 and x.max() <= ADC_MAX
    assert to_adc(np.array([-5.0, 0.4, 0.6, 70000.0])).tolist() == [0, 0, 1, ADC_MAX]


def test_an_empty_bed_is_sensor_noise_only():
    night = Night(seed=2, scenario=Scenario.constant(120, State.EMPTY))
    x = night.samples().astype(float)
    assert night.beats.size == 0 and night.breaths.size == 0
    assert abs(np.median(x) - night.sensor.offset) < 200
    sensor = night.sensor
    expected = np.hypot(sensor.noise_counts, sensor.quantization_counts)
    # Vibration bursts may add to it, never much.
    assert 0.7 * expected < band_rms(x, night.fs, *NOISE_BAND_HZ) < 3 * expected + 3


def test_the_snr_is_what_the_segment_says():
    """J-wave amplitude over the measured 2-20 Hz noise, with the body's signals removed."""
    for fs, snr in [(250.0, 20.0), (1000.0, 30.0), (50.0, 17.0)]:
        night = Night(seed=3, fs=fs, scenario=Scenario.constant(120, "good", "left"), snr_db=snr)
        empty = np.empty(0)
        none = np.empty((0, len(WAVES)))
        quiet = dataclasses.replace(
            night._plan,
            beats=Beats(empty, none, none, none),
            breathing=Breathing(empty, empty, empty, empty),
            sensor=dataclasses.replace(night.sensor, hum_counts=0.0, vibration=_no_vibration()),
        )
        x = np.concatenate([render_block(quiet, b) for b in range(quiet.n_blocks)]).astype(float)
        seg = night.segments[0]
        measured = 20 * np.log10(seg.j_counts / band_rms(x, fs, *NOISE_BAND_HZ))
        assert seg.snr_db == pytest.approx(snr, abs=0.01)
        assert measured == pytest.approx(snr, abs=0.6)


def _no_vibration():
    from edge.sim.sensor import Vibration

    e = np.empty(0)
    return Vibration(e, e, e, e, e)


def test_breathing_dominates_the_raw_signal_and_stops_in_apnea():
    scenario = Scenario.chain(
        [(60, "good", "supine"), (30, "good", "supine", {"apnea": True}), (60, "good", "supine")]
    )
    night = Night(seed=11, scenario=scenario, breaths_per_min=15)
    x = night.samples().astype(float)
    fs = int(night.fs)
    breathing = band_rms(x[5 * fs : 55 * fs], fs, 0.1, 1.0)
    paused = band_rms(x[62 * fs : 88 * fs], fs, 0.1, 1.0)
    j = night.segments[0].j_counts
    assert breathing > 0.7 * j  # several J-waves peak to trough
    assert paused < 0.25 * breathing
    assert night.segments[1].n_breaths == 0 and night.segments[2].n_breaths > 5


def test_movement_swamps_the_heartbeat():
    scenario = Scenario.chain([(30, "good"), (10, "motion", "left"), (30, "good", "left")])
    night = Night(seed=5, scenario=scenario)
    energy, _ = dsp_c.motion_energy(night.samples().astype(float), night.fs)
    assert np.min(energy[31:39]) > 3 * np.max(np.r_[energy[2:29], energy[42:69]])


def test_mains_hum_only_below_the_anti_alias_limit():
    high = Night(seed=0, fs=1000, duration_s=4)
    low = Night(seed=0, fs=100, duration_s=4)
    mains = high.sensor.mains_hz
    assert mains in (50.0, 60.0)
    assert [f for f, _ in high.sensor.hum_tones] == [mains, 3 * mains]
    assert low.sensor.hum_tones == ()


def test_each_posture_has_its_own_beat_with_the_j_wave_largest():
    person = Person.random(0)
    t = np.arange(-0.4, 0.8, 0.001)
    gains = {}
    for posture in POSTURES:
        m = person.morphology[posture]
        beat = m.template(t, 0.45)
        j = np.argmin(np.abs(t))
        assert beat[j] == pytest.approx(beat.max(), rel=1e-3)  # the J-peak is at t = 0
        assert m.amplitudes[WAVES.index("J")] == 1.0
        gains[posture] = m.gain
    assert gains["supine"] == 1.0
    assert gains["prone"] < min(gains["left"], gains["right"]) <= 1.0
    other = person.morphology["left"].offsets_s
    assert not np.array_equal(person.morphology["supine"].offsets_s, other)


@pytest.mark.parametrize("seed", [0, 5, 8])
def test_the_detector_finds_the_beats_of_a_nominal_good_night(seed):
    """5 min, supine, 60 bpm, 25 dB: every beat within 50 ms (a constant offset allowed).

    Seeds with a typical morphology; see docs/sim.md for the sleepers whose deep K-wave
    makes the detector's band-pass ring into a rival peak 150 ms after the J-peak.
    """
    scenario = Scenario.constant(300, State.GOOD, "supine")
    night = Night(seed=seed, scenario=scenario, heart_bpm=60, snr_db=25)
    found = dsp_c.detect_beats(night.samples(), night.fs)
    hits, false, offset = matched(night, found)
    assert hits >= 0.99 * night.beats.size
    assert false <= 0.01 * night.beats.size
    assert abs(offset) <= 0.02  # the detector lands on the J-peak itself


def _dev_nominal_night(seed: int) -> Night:
    """A dev seed's nominal night as the accuracy harness makes it (10 min, good signal)."""
    rng = np.random.default_rng(seed)
    posture = POSTURES[:3][seed % 3]
    scenario = Scenario.constant(600.0, State.GOOD, posture)
    return Night(seed=seed, scenario=scenario, heart_bpm=float(rng.uniform(50, 100)))


def test_a_diastolic_wave_as_high_as_the_j_wave_does_not_double_the_rate():
    """Dev seeds whose diastolic swing is 0.6 to 1.0 x the J-to-K swing (issue 4): the
    detector drifted to double rate (PPV 58 % for seed 145, 87 % on average)."""
    ppv = []
    for seed in (62, 73, 143, 145):
        night = _dev_nominal_night(seed)
        found = dsp_c.detect_beats(night.samples(), night.fs)
        hits, false, _ = matched(night, found)
        assert hits >= 0.92 * night.beats.size, seed
        ppv.append(1 - false / found.size)
    assert min(ppv) >= 0.9 and np.mean(ppv) >= 0.95, ppv


def test_a_lock_at_a_third_of_the_rate_recovers_on_a_simulated_night():
    """Dev seed 101 (97 bpm): learning saw every third beat; it stayed at 32 bpm all night."""
    night = _dev_nominal_night(101)
    found = dsp_c.detect_beats(night.samples(), night.fs)
    hits, false, _ = matched(night, found)
    assert hits >= 0.98 * night.beats.size
    assert false <= 0.01 * night.beats.size


# --- parameters and specs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"fs": 49}, "fs"),
        ({"fs": 1001}, "fs"),
        ({"fs": float("nan")}, "fs"),
        ({"fs": "250"}, "fs"),
        ({"duration_s": -1}, "duration_s"),
        ({"duration_s": 0}, "duration_s"),
        ({"duration_s": float("inf")}, "duration_s"),
        ({"duration_s": 49 * HOUR}, "duration_s"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": True}, "seed"),
        ({"heart_bpm": 39}, "heart_bpm"),
        ({"heart_bpm": 151}, "heart_bpm"),
        ({"breaths_per_min": 5}, "breaths_per_min"),
        ({"breaths_per_min": 31}, "breaths_per_min"),
        ({"snr_db": GOOD_MIN_SNR_DB - 1}, "snr_db"),
        ({"scenario": "night"}, "scenario"),
        ({"scenario": Scenario.constant(60), "duration_s": 30}, "duration_s"),
    ],
)
def test_bad_parameters_raise_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        Night(**kwargs)


def test_bad_ranges_raise_naming_them():
    night = Night(seed=0, duration_s=2)
    for args, name in [
        ((-1, 10), "start"),
        ((0, 501), "stop"),
        ((10, 5), "stop"),
        ((1.0, 3), "start"),
    ]:
        with pytest.raises(ValueError, match=f"^{name}:"):
            night.samples(*args)
        with pytest.raises(ValueError, match=f"^{name}:"):
            night.state_at(*args)
    with pytest.raises(ValueError, match="^chunk_s:"):
        next(night.chunks(0))
    assert night.samples(500, 500).size == 0


@pytest.mark.parametrize(
    ("segments", "name"),
    [
        ([Segment(1, 2, "good")], "segments"),
        ([Segment(0, 2, "good"), Segment(3, 4, "good")], "segments"),
        ([], "segments"),
    ],
)
def test_a_scenario_must_be_contiguous_from_zero(segments, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        Scenario(segments)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"state": "asleep"}, "state"),
        ({"state": 7}, "state"),
        ({"stop_s": 0.0}, "stop_s"),
        ({"start_s": -1.0}, "start_s"),
        ({"posture": "sitting"}, "posture"),
        ({"state": State.EMPTY, "posture": "supine"}, "posture"),
        ({"state": State.MOTION, "apnea": True}, "apnea"),
        ({"state": State.GOOD, "snr_db": GOOD_MIN_SNR_DB - 1}, "snr_db"),
        ({"state": State.POOR, "snr_db": POOR_MAX_SNR_DB + 1}, "snr_db"),
        ({"state": State.MOTION, "snr_db": 20}, "snr_db"),
        ({"coupling": 0.0}, "coupling"),
        ({"coupling": 1.5}, "coupling"),
    ],
)
def test_bad_segments_raise_naming_the_field(kwargs, name):
    fields = {"start_s": 0.0, "stop_s": 10.0, "state": State.GOOD} | kwargs
    with pytest.raises(ValueError, match=f"^{name}:"):
        Segment(**fields)


def test_states_parse_from_names_and_values():
    assert [s.label for s in State] == ["empty", "motion", "poor", "good"]
    assert [int(s) for s in State] == [0, 1, 2, 3]
    assert State.parse("Good") is State.GOOD and State.parse(1) is State.MOTION
    assert str(State.POOR) == "poor"
    assert Segment(0, 1, "empty").posture is None
    assert Segment(0, 1, "good").posture == "supine"


def test_parse_sim_spec():
    assert parse_sim_spec("sim") == 0
    assert parse_sim_spec("sim:42") == 42
    assert parse_sim_spec("sim:007") == 7
    for bad in [
        "sim:abc",
        "sim:",
        "sim:-1",
        "simx",
        "sim:1:2",
        " sim",
        "SIM",
        "replay:x",
        "sim:1e3",
    ]:
        with pytest.raises(ValueError, match="sim:SEED"):
            parse_sim_spec(bad)
    with pytest.raises(ValueError, match="2\\*\\*63"):
        parse_sim_spec(f"sim:{2**63}")
    with pytest.raises(ValueError):
        parse_sim_spec(None)  # type: ignore[arg-type]


# --- when a simulated night happens (edge.sources.sim) --------------------------------------


@pytest.fixture
def new_york(monkeypatch):
    """This machine's time zone set to New York for the test (UTC-5 in December)."""
    import time as time_module

    monkeypatch.setenv("TZ", "America/New_York")
    time_module.tzset()
    yield
    monkeypatch.undo()
    time_module.tzset()


def _local(t_utc: float):
    import datetime

    return datetime.datetime.fromtimestamp(t_utc).astimezone()


def test_a_simulated_night_begins_last_night_at_a_local_evening_time(new_york):
    from edge.sources.sim import evening_start

    now = 1_796_598_000.0  # 2026-12-06 23:00 UTC = 18:00 in New York
    for seed, clock in ((0, "22:00"), (1, "22:15"), (4, "23:00"), (5, "22:00")):
        start = evening_start(seed, 8 * HOUR, now_utc=now)
        assert _local(start).strftime("%Y-%m-%d %H:%M") == f"2026-12-05 {clock}"  # last night
        assert start + 8 * HOUR <= now  # over by now
    # at 07:00 the next morning last night's 8 h are over (22:00 + 8 h = 06:00)
    morning = now + 13 * HOUR
    assert _local(evening_start(0, 8 * HOUR, now_utc=morning)).day == 6


def test_nights_follow_the_stored_ones_one_a_day(new_york):
    from edge.sources.sim import SimSource, evening_start

    end = 1_796_562_000.0  # 2026-12-06 08:00 New York: last night's end
    start = evening_start(2, 8 * HOUR, after_utc=end)
    assert _local(start).strftime("%Y-%m-%d %H:%M") == "2026-12-06 22:30"  # that evening
    source = SimSource(night=Night(seed=2, duration_s=60.0))
    source.follow([None, end - 86400, end])
    assert source.t0_utc == start
    chosen = SimSource(night=Night(seed=2, duration_s=60.0), t0_utc=123.0)
    chosen.follow([end])
    assert chosen.t0_utc == 123.0  # a time given is kept
    source.read()
    source.follow([end + 86400])
    assert source.t0_utc == start  # labels never jump once reading began
    import time as time_module

    before = time_module.time()
    live = SimSource(night=Night(seed=2, duration_s=60.0), speed=1.0)
    live.follow([end])
    assert before <= live.t0_utc <= time_module.time()  # paced: a live sensor, from now


def test_simulated_runs_into_one_store_are_consecutive_nights(tmp_path, capsys):
    """`bedside run --source sim` three times into one store: three nights on consecutive
    dates, none overlapping, and each night's figures its seed's, whenever it runs."""
    import json

    from edge.cli import main
    from edge.nights import list_nights, open_readonly

    db = tmp_path / "v.db"
    run = ["run", "--speed", "max", "--duration", "20m", "--db", str(db), "--json"]
    summaries = []
    for seed in (7, 8, 7):
        assert main([*run, "--source", f"sim:{seed}"]) == 0
        summaries.append(json.loads(capsys.readouterr().out)["summary"])
    nights = list_nights(open_readonly(db))
    dates = [n.night_date for n in nights]
    assert [(b - a).days for a, b in zip(dates, dates[1:], strict=False)] == [1, 1]
    for a, b in zip(nights, nights[1:], strict=False):
        assert a.first_epoch_utc + a.hours_recorded * 3600 <= b.first_epoch_utc
    for n in nights:
        assert 22 <= _local(n.first_epoch_utc).hour <= 23
    same = ("hours_in_bed", "hr_mean_bpm", "hr_min_bpm", "rr_mean_bpm", "hr_coverage", "events")
    assert {k: summaries[0][k] for k in same} == {k: summaries[2][k] for k in same}
