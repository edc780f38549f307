"""Sensor models of the simulator: each does what it says, measured on what it renders.

Resonances show as a peak in the spectrum at their frequency; several waves per beat show
in the ensemble average around the truth beats, at their delays and relative heights;
converters keep their bits, offset, polarity, gain and units; fiber mats hit their rails and
drop out; the truth beats line up with the rendered beat at ``Night.beat_lag_s``; the same
seed gives the same samples; and a night without a sensor model is the night of before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.signal as ss

from edge.sim import (
    KINDS,
    Night,
    Resonance,
    Scenario,
    SensorModel,
    State,
    random_sensor_model,
)
from edge.sim.recordings import HELDOUT_FS, heldout_like, heldout_like_night
from edge.sim.render import FRAME_BLOCKS, render_blocks
from edge.sim.sensor_model import COMMON_FS, COMPARABLE, FIRST_WAVE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_sim import golden_heights  # noqa: E402


def still(seconds: float = 120.0) -> Scenario:
    """A sleeper lying still on the back."""
    return Scenario.constant(seconds, State.GOOD, "supine")


def night(model: SensorModel | str | None, seed: int = 0, seconds: float = 120.0, **kw) -> Night:
    """A quiet 60 bpm stretch (few overlaps between beats) on ``model``."""
    kw.setdefault("heart_bpm", 60.0)
    kw.setdefault("snr_db", 35.0)
    return Night(seed=seed, scenario=still(seconds), sensor_model=model, **kw)


def ensemble(n: Night, before_s: float = 0.3, after_s: float = 0.7) -> tuple[np.ndarray, ...]:
    """(times s, mean beat) around the truth beats: 1-20 Hz zero-phase, the beat up."""
    x = n.samples().astype(np.float64) * n.sensor_model.polarity
    sos = ss.butter(2, (1.0, min(20.0, 0.45 * n.fs)), "band", fs=n.fs, output="sos")
    y = ss.sosfiltfilt(sos, x - x.mean())
    a, b = int(round(before_s * n.fs)), int(round(after_s * n.fs))
    beats = n.beats[(n.beats >= a) & (n.beats + b <= y.size)]
    avg = np.mean([y[i - a : i + b] for i in beats], axis=0)
    return (np.arange(-a, b)) / n.fs, avg


def waves(t: np.ndarray, avg: np.ndarray, lo: float, hi: float, frac: float) -> np.ndarray:
    """(time, height / tallest) rows of the local maxima in [lo, hi] s reaching ``frac`` of
    the tallest one there."""
    inside = np.flatnonzero((t >= lo) & (t <= hi))
    seg = avg[inside]
    peaks = ss.find_peaks(seg)[0]
    top = seg[peaks].max()
    keep = peaks[seg[peaks] >= frac * top]
    return np.column_stack([t[inside][keep], seg[keep] / top])


def psd(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch spectrum, 4 s segments."""
    return ss.welch(x.astype(np.float64), fs, nperseg=int(4 * fs))


# --- the default sensor is the night of before ---------------------------------------------------

#: From tests/edge/test_sim.py's GOLDEN (seed 0, 600 s): samples and beat heights.
GOLDEN_SEED0 = (
    "8dce28066f1fa53e0fd476310485a06a8ca20d892711dfa25ad5266a1e6d95e1",
    "e1424a67cbec949c4cd924c155629db8f063166400467848cd2b9857b6e4db28",
)


@pytest.mark.parametrize("model", [None, "default", SensorModel(), SensorModel(kind="mine")])
def test_the_default_sensor_model_renders_the_default_night_bit_for_bit(model):
    n = Night(seed=0, duration_s=600.0, sensor_model=model)
    assert n.sensor_model.is_default and n.fs == 250.0 and n.beat_lag_s == 0.0
    assert hashlib.sha256(n.samples().tobytes()).hexdigest() == GOLDEN_SEED0[0]
    heights = hashlib.sha256(n.beat_amplitude_counts.tobytes()).hexdigest()
    assert heights == golden_heights(GOLDEN_SEED0[1])  # numpy's exp/log kernels: see test_sim
    assert n.sensor_faults == ()


def test_a_sensor_model_changes_the_sensor_not_the_person_or_the_truth():
    plain = Night(seed=5, duration_s=900.0)
    for kind in KINDS[1:]:
        other = Night(seed=5, duration_s=900.0, sensor_model=kind)
        assert other.person.heart_bpm == plain.person.heart_bpm
        assert other.person.j_amplitude == plain.person.j_amplitude
        assert np.array_equal(other.beat_times_s, plain.beat_times_s)
        assert np.array_equal(other.breath_times_s, plain.breath_times_s)
        assert np.array_equal(other.state_at(), _resampled_states(plain, other))


def _resampled_states(a: Night, b: Night) -> np.ndarray:
    """``a``'s state labels at ``b``'s rate (a fiber mat samples at 50 Hz)."""
    if a.fs == b.fs:
        return a.state_at()
    return Night(seed=a.seed, fs=b.fs, duration_s=a.duration_s).state_at()


# --- ringing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("freq", "q", "fs"), [(6.0, 6.0, 250.0), (11.0, 4.0, 1000.0)])
def test_a_ringing_bed_puts_its_resonance_in_the_spectrum(freq, q, fs):
    model = SensorModel(kind="ringing", resonances=(Resonance(freq, q),))
    rung, flat = night(model, fs=fs), night(None, fs=fs)
    f, p_rung = psd(rung.samples(), fs)
    _, p_flat = psd(flat.samples(), fs)
    band = (f >= 2.0) & (f <= 20.0)
    ratio = p_rung[band] / p_flat[band]  # |H(f)|^2: the same night through the bed
    peak = f[band][np.argmax(ratio)]
    assert abs(peak - freq) <= 0.5
    # Q from the half-power width of the peak: a 2nd-order resonance has f / Q.
    above = f[band][ratio >= ratio.max() / 2]
    width = above.max() - above.min() + 0.25  # + one bin
    assert q / 1.6 <= peak / width <= q * 1.6


def test_each_beat_rings_after_it():
    model = SensorModel(kind="ringing", resonances=(Resonance(6.0, 8.0),))
    t, rung = ensemble(night(model))
    _, flat = ensemble(night(None))
    # 0.25-0.4 s after the beat the plain beat has settled (before the diastolic complex);
    # the ringing bed still swings at 6 Hz.
    late = (t > 0.2) & (t < 0.4)
    assert np.ptp(rung[late]) > 2 * np.ptp(flat[late])
    crossings = np.count_nonzero(np.diff(np.sign(rung[late])) != 0)
    assert 1 <= crossings <= 4  # 6 Hz over 0.2 s: 2.4 half-cycles


# --- several waves per beat --------------------------------------------------------------------


def test_several_waves_per_beat_at_their_delays_and_heights():
    model = SensorModel(
        kind="multiwave", wave_delays_s=(0.18, 0.36), wave_heights=(0.8, 1.0, 0.9), wave_jitter=0.05
    )
    n = night(model, fs=500.0, heart_bpm=50.0)
    t, avg = ensemble(n)
    found = waves(t, avg, -0.1, 0.5, 0.5)
    assert found.shape[0] == 3
    assert np.allclose(found[:, 0], [0.0, 0.18, 0.36], atol=0.015)
    assert np.allclose(found[:, 1], [0.8, 1.0, 0.9], atol=0.12)
    assert abs(found[0, 0] - n.beat_lag_s) <= 0.01  # the truth is the first wave


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_drawn_multiwave_sensor_has_that_many_comparable_waves(seed):
    model = SensorModel.preset("multiwave", seed)
    assert 2 <= model.n_waves <= 4
    assert min(model.wave_heights) >= COMPARABLE and max(model.wave_heights) == 1.0
    spacing = np.diff((0.0, *model.wave_delays_s))
    assert np.all((spacing >= 0.095) & (spacing <= 0.26))
    n = night(model, seed=seed, heart_bpm=50.0, fs=500.0)
    t, avg = ensemble(n)
    found = waves(t, avg, -0.1, model.wave_delays_s[-1] + 0.06, 0.5)
    assert found.shape[0] == model.n_waves
    assert np.all(found[:, 1] >= 0.55)  # within ~30 % of each other, after the overlaps


# --- converters, gain, polarity, units -----------------------------------------------------------


def test_adc12_is_a_12_bit_converter_near_2000_with_a_small_gain():
    n = night("adc12", seed=2, seconds=300.0)
    x = n.samples()
    model = n.sensor_model
    assert x.dtype == np.int32 and model.adc_max == 4095
    assert 0 <= x.min() and x.max() <= 4095
    assert 1850 <= model.adc_offset <= 2150
    assert abs(np.median(x) - model.adc_offset) < 400  # breathing and posture move it
    t, avg = ensemble(n)
    j = avg[np.argmin(np.abs(t))]
    assert 3.0 < j < 100.0  # a J-wave of a few to tens of counts
    # The truth heights are this sensor's counts (within the band filter's losses).
    assert 0.6 < j / np.median(n.beat_amplitude_counts) < 1.3


def test_polarity_turns_the_signal_over_around_the_offset():
    up = SensorModel(kind="up", adc_offset=30000)
    down = dataclasses.replace(up, polarity=-1)
    a, b = night(up).samples(), night(down).samples()
    assert np.all(np.abs(a.astype(np.int64) + b - 2 * 30000) <= 1)  # rounding only
    _, avg = ensemble(night(down))  # ensemble() turns it back: the J-wave points up
    assert avg[int(0.3 * 250)] > 0


@pytest.mark.parametrize("scale", [1e-3, 0.37, 1e4])
def test_scale_gives_float_samples_at_any_gain(scale):
    counts = night(SensorModel()).samples()
    scaled = night(SensorModel(kind="volts", scale=scale)).samples()
    assert scaled.dtype == np.float64
    assert np.array_equal(scaled, counts * scale)


def test_adc_gain_scales_the_signal_around_the_offset():
    one = night(SensorModel(kind="g1", adc_offset=32768)).samples().astype(np.float64)
    two = night(SensorModel(kind="g2", adc_offset=32768, adc_gain=2.0)).samples()
    assert np.all(np.abs((two - 32768) - 2 * (one - 32768)) <= 2.0)


# --- the fiber mat -------------------------------------------------------------------------------


def test_the_fiber_mat_is_a_50_hz_16_bit_mat_with_a_smooth_beat():
    n = night("fiber_mat", seed=1, seconds=300.0)
    x = n.samples()
    assert n.fs == 50.0 and x.dtype == np.int32
    assert 0 <= x.min() and x.max() <= 65535
    assert 6000 - 1500 <= np.median(x) <= 14000 + 1500  # a low baseline, as Sadek's 9500
    # Smooth: through its corner (2-3 Hz) the beat's 8-20 Hz share drops against a plain mat.
    plain = Night(seed=1, fs=50.0, scenario=still(300.0), heart_bpm=60.0, snr_db=35.0)
    f, p_mat = psd(x, 50.0)
    _, p_plain = psd(plain.samples(), 50.0)
    hi, mid = (f >= 8) & (f <= 20), (f >= 1) & (f <= 3)
    assert p_mat[hi].sum() / p_mat[mid].sum() < 0.5 * p_plain[hi].sum() / p_plain[mid].sum()


def test_the_fiber_mat_hits_both_rails_in_a_movement_and_drops_out():
    model = dataclasses.replace(
        SensorModel.preset("fiber_mat", 0), rail_hit_chance=1.0, dropouts_per_hour=120.0
    )
    scenario = Scenario.chain([(60, "good", "supine"), (6, "motion", "left"), (60, "good", "left")])
    n = Night(seed=0, scenario=scenario, sensor_model=model)
    x = n.samples()
    faults = n.sensor_faults
    rails = [(a, b) for a, b, kind in faults if kind == "rails"]
    drops = [(a, b) for a, b, kind in faults if kind == "dropout"]
    assert len(rails) == 1 and len(drops) >= 1
    a, b = rails[0]
    assert 60 * 50 <= a and b <= 66 * 50  # inside the movement
    assert x[a:b].min() == 0 and x[a:b].max() == 65535
    for a, b in drops:
        assert np.all(x[a:b] == 0) and 1 <= b - a <= 26
    still_x = np.delete(x, np.r_[tuple(slice(a, b) for a, b, _ in faults)])
    assert still_x.min() > 0 and still_x.max() < 65535  # nothing else at the rails


# --- the truth lines up with what is rendered ----------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_truth_beats_line_up_with_the_rendered_beats(kind):
    n = night(kind, seed=3, heart_bpm=50.0)
    t, avg = ensemble(n)
    last = max((0.0, *n.sensor_model.wave_delays_s))
    # The first wave of the systolic response that reaches half its tallest.
    found = waves(t, avg, -0.02, last + 0.1, FIRST_WAVE)
    assert abs(found[0, 0] - n.beat_lag_s) <= max(0.012, 1.0 / n.fs)
    assert -0.02 <= n.beat_lag_s <= 0.1


# --- determinism and chunking --------------------------------------------------------------------


def test_the_same_seed_gives_the_same_sensor_and_samples():
    assert random_sensor_model(7) == random_sensor_model(7)
    assert random_sensor_model(7) != random_sensor_model(8)
    assert SensorModel.preset("ringing", 4) == SensorModel.preset("ringing", 4)
    model = random_sensor_model(11)
    a = Night(seed=11, duration_s=120.0, sensor_model=model).samples()
    b = Night(seed=11, duration_s=120.0, sensor_model=random_sensor_model(11)).samples()
    assert np.array_equal(a, b)


def test_a_ringing_night_is_the_same_in_any_chunking_across_frames():
    kw = dict(seed=2, duration_s=2.5 * FRAME_BLOCKS, sensor_model="ringing")
    n = Night(**kw)
    whole = n.samples()
    cuts = [0, 1, 250 * FRAME_BLOCKS - 7, 250 * FRAME_BLOCKS + 3, 250 * 300, n.n_samples]
    fresh = Night(**kw)  # no cache shared with `n`
    pieces = [fresh.samples(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    assert np.array_equal(np.concatenate(pieces), whole)
    # Any run of blocks is a slice of the frames it lies in.
    plan = Night(**kw)._plan
    size = plan.block
    part = render_blocks(plan, FRAME_BLOCKS - 5, FRAME_BLOCKS + 9)
    assert np.array_equal(part, whole[(FRAME_BLOCKS - 5) * size : (FRAME_BLOCKS + 9) * size])


def test_random_sensor_models_cover_every_kind_polarity_gain_and_rate():
    models = [random_sensor_model(s) for s in range(300)]
    kinds = {k for m in models for k in m.kind.split("+")}
    assert kinds == set(KINDS)
    assert {m.polarity for m in models} == {1, -1}
    scales = np.array([m.scale for m in models])
    assert 0.3 < np.mean(scales == 1.0) < 0.7  # counts half the time, else floats
    assert scales.min() < 1e-2 and scales.max() > 1e3
    assert {m.fs for m in models} <= set(COMMON_FS)
    assert {m.fs for m in models if "fiber_mat" in m.kind} == {50.0}
    for m in models:  # every resonance renders at the model's rate
        assert all(r.freq_hz < 0.4 * m.fs for r in m.resonances)
    assert random_sensor_model(3, fs=333.0).fs == 333.0


def test_random_sensors_render_with_the_truth_in_place():
    for seed in (0, 1, 2, 5):
        model = random_sensor_model(seed)
        n = Night(seed=seed, scenario=still(60.0), sensor_model=model)
        x = n.samples()
        assert x.dtype == model.dtype and x.size == n.n_samples
        assert np.all(np.isfinite(x))
        assert n.beats.size > 30


# --- the held-out-like recording -----------------------------------------------------------------


def test_heldout_like_is_a_500_hz_12_bit_still_recording_with_two_movements():
    samples, fs, beats, labels = heldout_like(3)
    n = heldout_like_night(3)
    model = n.sensor_model
    assert fs == HELDOUT_FS and samples.dtype == np.int32 and samples.size == 300 * 500
    assert 0 <= samples.min() and samples.max() <= 4095
    assert 1900 <= model.adc_offset <= 2100 and abs(np.median(samples) - model.adc_offset) < 400
    assert model.resonances and model.n_waves >= 2
    assert [s.label for s in labels] == ["still", "moving", "still", "moving", "still"]
    assert labels[0].start_s == 0 and labels[-1].stop_s == pytest.approx(300.0)
    assert all(3.0 <= s.stop_s - s.start_s <= 8.1 for s in labels if s.label == "moving")
    # ECG-like: the R-peak comes the person's R-to-J delay before each mechanical beat.
    rj = n.person.rj_delay_s
    assert np.allclose(beats / fs, n.beat_times_s[-beats.size :] - rj, atol=1 / fs)
    assert 65 < 60 * fs / np.median(np.diff(beats)) < 95
    again = heldout_like(3)
    assert np.array_equal(again.samples, samples) and again.labels == labels


def _first_still(n: Night) -> Night:
    """``n``'s first still stretch alone, as a night of its own (its ensemble is clean)."""
    first = n.segments[0]
    return Night(
        seed=n.seed,
        scenario=Scenario.constant(first.stop_s, State.GOOD, first.posture),
        heart_bpm=n.heart_bpm,
        snr_db=n.snr_db,
        sensor_model=n.sensor_model,
    )


@pytest.mark.parametrize("seed", [3, 6])
def test_heldout_like_beats_have_comparable_waves_180_ms_apart(seed):
    n = heldout_like_night(seed)
    t, avg = ensemble(_first_still(n))
    found = waves(t, avg, -0.1, n.sensor_model.wave_delays_s[-1] + 0.06, FIRST_WAVE)
    assert found.shape[0] == n.sensor_model.n_waves
    spacing = (found[-1, 0] - found[0, 0]) / (found.shape[0] - 1)
    assert 0.14 <= spacing <= 0.2  # drawn 171-189 ms; overlaps pull the peaks closer
    assert found[:, 1].min() >= 0.6  # similar heights: drawn within 25 %, then overlaps
    assert abs(found[0, 0] - n.beat_lags_s[n.segments[0].posture]) <= 0.012


@pytest.mark.parametrize("seed", [3, 6])
def test_heldout_ringing_waves_are_the_cycles_of_one_bed_mode(seed):
    """``ringing_waves``: the same person, night and converter, the waves the cycles of one
    bed mode ringing at their spacing: three or more of similar height, each one cycle
    (about 180 ms) after the one before (each wave of the beat's force rings on)."""
    plain, n = heldout_like_night(seed), heldout_like_night(seed, ringing_waves=True)
    assert np.array_equal(plain.beats, n.beats)
    assert [(s.start, s.stop, s.state) for s in plain.segments] == [
        (s.start, s.stop, s.state) for s in n.segments
    ]
    assert (n.sensor_model.adc_offset, n.sensor_model.polarity) == (
        plain.sensor_model.adc_offset,
        plain.sensor_model.polarity,
    )
    (mode,) = n.sensor_model.resonances
    assert n.sensor_model.n_waves == 1 and 5.0 <= mode.freq_hz <= 6.0
    t, avg = ensemble(_first_still(n))
    found = waves(t, avg, 0.0, 0.6, 0.5)  # measured: 3 or 4, the 2nd to 4th 0.7-1.0
    assert found.shape[0] >= 3
    assert np.diff(found[:, 0]) == pytest.approx(1.0 / mode.freq_hz, abs=0.02)


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(adc_bits=7), "adc_bits"),
        (dict(polarity=0), "polarity"),
        (dict(scale=0.0), "scale"),
        (dict(adc_gain=-1.0), "adc_gain"),
        (dict(adc_offset=70000), "adc_offset"),
        (dict(wave_delays_s=(0.2,)), "wave_heights"),
        (dict(wave_delays_s=(0.2, 0.1), wave_heights=(1.0, 1.0, 1.0)), "wave_delays_s"),
        (dict(wave_heights=(0.5,)), "wave_heights"),
        (dict(fs=20.0), "fs"),
        (dict(kind=""), "kind"),
    ],
)
def test_bad_sensor_models_raise_naming_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SensorModel(**kwargs)


def test_bad_sensor_model_use_raises():
    with pytest.raises(ValueError, match="sensor_model"):
        Night(seed=0, duration_s=10.0, sensor_model="piezo")
    with pytest.raises(ValueError, match="fs"):
        Night(seed=0, duration_s=10.0, fs=250.0, sensor_model="fiber_mat")
    with pytest.raises(ValueError, match="resonances"):
        Night(
            seed=0,
            duration_s=10.0,
            fs=50.0,
            sensor_model=SensorModel(resonances=(Resonance(25.0, 5.0),)),
        )
    with pytest.raises(ValueError, match="q"):
        Resonance(5.0, 0.5)


# --- training nights through random sensors (models/data.py) ------------------------------------


def test_training_nights_can_draw_a_random_sensor_per_seed():
    from models.data import night_windows, training_night

    for seed in (0, 3):
        plain = training_night(seed, 120.0)
        other = training_night(seed, 120.0, random_sensor=True)
        assert plain.sensor_model.is_default
        assert other.sensor_model == random_sensor_model(seed, fs=plain.fs)
        assert other.fs == plain.fs
        assert np.array_equal(other.state_at(), plain.state_at())
        w = night_windows(other, gain=0.5, invert=True)  # augmentation on any sensor's output
        assert np.array_equal(w.labels, night_windows(plain).labels)
        assert np.all(np.isfinite(w.features))
