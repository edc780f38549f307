"""J-peak detector: real recordings, rhythm locking, streaming equivalence, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsp_c
from dsp_c.metrics import best_delay_match, match_beats, rate_per_window
from dsp_c.synthetic import bcg_signal

DATA = Path(__file__).resolve().parents[1] / "data"


def bcg_like(
    fs: float,
    bpm: float,
    seconds: float,
    secondary: float = 0.5,
    noise: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A beat train without breathing or offset, for the detector alone: (x, J-peaks)."""
    rec = bcg_signal(
        fs=fs,
        seconds=seconds,
        heart_bpm=bpm,
        breaths_per_min=0,
        secondary=secondary,
        noise=noise,
        adc_gain=0,
        seed=seed,
    )
    return rec.x, rec.beats


def match(found: np.ndarray, truth: np.ndarray, tol: int) -> tuple[int, int]:
    """(true beats matched within tol samples, detections matching nothing)."""
    hits, false, _ = match_beats(found, truth, tol)
    return hits, false


def stream(det: dsp_c.JPeakDetector, y: np.ndarray, cuts: list[int]) -> np.ndarray:
    parts = [det.process(piece) for piece in np.split(y, sorted(cuts))]
    return np.concatenate(parts + [det.flush()])


# --- real recordings -------------------------------------------------------------------------


def test_every_r_peak_of_the_real_recording_is_found():
    """dorsoventral BCG recordings, RWTH MedIT (MIT licence): imp_env channel vs ECG."""
    rec = np.load(DATA / "aydin_left1.npz")
    fs = int(rec["fs"])
    found = dsp_c.detect_beats(rec["imp_env"], fs)
    hits, false, delay = best_delay_match(found, rec["r_peaks"], fs, tol_s=0.060)
    assert hits == len(rec["r_peaks"]) == 28
    assert false == 0  # not even the wave of the beat the recording starts in
    assert 0.10 * fs <= delay <= 0.30 * fs  # a J-wave follows its R-peak by 0.1-0.3 s


def window_hr_errors(beats: np.ndarray, fs: int, reference: np.ndarray) -> np.ndarray:
    """Heart rate per 10 s window minus the reference's mean over the window."""
    rates = rate_per_window(beats, fs, reference.size, window_s=10.0, lookback_s=2.0)
    means = reference[: rates.size * 10 * fs].reshape(rates.size, -1).mean(axis=1)
    return rates - means


def test_heart_rate_on_the_fiber_optic_mat_recording():
    """Sadek et al. sample (MIT licence): 10 s windows vs the pulse oximeter."""
    rec = np.load(DATA / "sadek_sample.npz")
    fs = int(rec["fs"])
    beats = dsp_c.detect_beats(rec["raw"], fs)
    errors = window_hr_errors(beats, fs, rec["pulse_ox_bpm"].astype(float))
    assert np.isfinite(errors).all()  # an estimate in every window
    mae = np.mean(np.abs(errors))
    # 2.97 bpm measured (3.04 before template alignment); Sadek et al. report 4.71 for MODWT.
    # Against the oximeter as recorded; read 28 s later (its delay, measured in
    # tests/edge/test_peers.py) it is 1.43 bpm.
    assert mae < 3.05, mae
    assert np.mean(np.abs(errors) > 15) < 0.02  # no stretch locked at half or double rate


# Golden vectors: the detector's exact output on a fixed input. A change here is a change of
# the algorithm; update only together with the accuracy figures in docs/dsp.md.
# Issue 4: the record starts inside a beat; the wave at 291 ms (half as high as the J-wave
# 319 ms later) was a false first beat and is no longer reported.
# Issue 4, template alignment: a beat is now reported where its waveform fits the running
# template best (within 40 ms of its old time). Aydin: the same 28 beats, most 1-9 ms later
# (the median R-peak delay 216 -> 221.5 ms), the last 31 ms later (49 -> 24 ms from that
# median); IBI error against the ECG 6.4 -> 6.1 ms. Synthetic: beats 6 and 11 one sample later.
GOLDEN_AYDIN_IMP_ENV = [
    610,
    1303,
    1965,
    2640,
    3328,
    4038,
    4765,
    5489,
    6212,
    6967,
    7743,
    8491,
    9179,
    9894,
    10587,
    11245,
    11912,
    12605,
    13314,
    13996,
    14692,
    15424,
    16171,
    16875,
    17565,
    18280,
    18978,
    19637,
]
GOLDEN_SYNTHETIC_100HZ = [
    46,
    121,
    198,
    281,
    362,
    446,
    525,
    603,
    681,
    766,
    851,
    928,
    1003,
    1080,
    1161,
    1243,
    1321,
    1397,
    1474,
    1555,
    1641,
    1720,
    1800,
    1879,
    1961,
]


def test_golden_vectors():
    rec = np.load(DATA / "aydin_left1.npz")
    assert dsp_c.detect_beats(rec["imp_env"], 1000).tolist() == GOLDEN_AYDIN_IMP_ENV
    synthetic = bcg_signal(fs=100, seconds=20, heart_bpm=75, seed=3)
    assert dsp_c.detect_beats(synthetic.x, 100).tolist() == GOLDEN_SYNTHETIC_100HZ


# --- rhythm: no half or double rate -----------------------------------------------------------


@pytest.mark.parametrize("bpm", [32, 40, 55, 72, 95, 130, 170])
@pytest.mark.parametrize("fs", [50, 250, 1000])
def test_secondary_waves_do_not_double_the_rate(bpm, fs):
    x, truth = bcg_like(fs, bpm, 60, secondary=0.6, seed=bpm)
    found = dsp_c.JPeakDetector(fs)
    beats = np.concatenate([found.process(x), found.flush()])
    hits, false = match(beats, truth, max(2, round(0.02 * fs)))
    assert hits == truth.size
    assert false == 0


def test_interval_estimate_follows_the_rate():
    x, _ = bcg_like(250, 75, 30)
    det = dsp_c.JPeakDetector(250)
    assert np.isnan(det.interval_s)
    det.process(x)
    assert det.interval_s == pytest.approx(0.8, rel=0.05)


# --- streaming ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, 250 * 40), max_size=25), seed=st.integers(0, 3))
def test_any_chunking_gives_the_one_shot_result(cuts, seed):
    x, _ = bcg_like(250, 70, 40, noise=0.3, seed=seed)
    whole = stream(dsp_c.JPeakDetector(250), x, [])
    assert np.array_equal(stream(dsp_c.JPeakDetector(250), x, cuts), whole)


def test_detect_beats_equals_the_streaming_path():
    x, _ = bcg_like(250, 66, 30, noise=0.2)
    x = 2000.0 + 300.0 * x  # ADC counts with an offset
    band = dsp_c.SosFilter(dsp_c.butter_bandpass(2, 2.5, 12.0, 250))
    band.reset(steady_input=x[0])
    det = dsp_c.JPeakDetector(250)
    chunks = np.array_split(x, 30)
    streamed = np.concatenate([det.process(band.process(c)) for c in chunks] + [det.flush()])
    assert np.array_equal(dsp_c.detect_beats(x, 250), streamed)


def test_flush_starts_a_new_stream_and_reset_forgets():
    x, _ = bcg_like(100, 60, 20)
    det = dsp_c.JPeakDetector(100)
    first = np.concatenate([det.process(x), det.flush()])
    assert det.samples_seen == 0
    again = np.concatenate([det.process(x), det.flush()])
    assert np.array_equal(first, again)
    det.process(x[:500])
    det.reset()
    assert det.samples_seen == 0
    assert np.array_equal(np.concatenate([det.process(x), det.flush()]), first)


def test_outputs_are_increasing_int64():
    x, _ = bcg_like(250, 80, 20)
    beats = dsp_c.detect_beats(x, 250)
    assert beats.dtype == np.int64
    assert np.all(np.diff(beats) >= 0.2 * 250)  # BCG_JPEAK_MIN_SPACING_MS apart


# --- inputs ---------------------------------------------------------------------------------


def test_quiet_flat_and_empty_input_give_no_beats():
    assert dsp_c.detect_beats(np.zeros(5000), 250).size == 0
    assert dsp_c.detect_beats(np.full(5000, 1234.0), 250).size == 0
    assert dsp_c.detect_beats([], 250).size == 0
    det = dsp_c.JPeakDetector(250)
    assert det.process(np.empty(0)).size == 0
    assert det.flush().size == 0


def test_bad_samples_are_refused_and_nothing_is_consumed():
    x, _ = bcg_like(250, 70, 30)
    whole = dsp_c.JPeakDetector(250)
    expected = np.concatenate([whole.process(x), whole.flush()])
    det = dsp_c.JPeakDetector(250)
    first = det.process(x[:2500])
    for bad in (np.nan, np.inf, -np.inf, 1e16):
        poisoned = x[2500:5000].copy()
        poisoned[17] = bad
        with pytest.raises(ValueError, match=r"^y: "):
            det.process(poisoned)
        assert det.samples_seen == 2500
    rest = np.concatenate([det.process(x[2500:]), det.flush()])
    assert np.array_equal(np.concatenate([first, rest]), expected)
    x[2517] = np.nan
    with pytest.raises(ValueError, match=r"^x: .*index 2517"):
        dsp_c.detect_beats(x, 250)


def test_empty_results_are_fresh_writable_arrays():
    det = dsp_c.JPeakDetector(250)
    a, b = det.process(np.zeros(10)), det.flush()
    assert a.size == b.size == 0 and a.flags.writeable and b.flags.writeable
    a += 5  # caller code that offsets indices must work with no beats too
    assert dsp_c.detect_beats([], 250).flags.writeable


def test_low_sampling_rates_get_a_band_below_nyquist():
    rec = bcg_signal(fs=26, seconds=120, heart_bpm=60, seed=4)
    found = dsp_c.detect_beats(rec.x, 26)  # 12 Hz is almost the 13 Hz Nyquist limit
    assert match(found, rec.beats, 1)[0] >= 0.98 * rec.beats.size
    assert dsp_c.beats.default_band(20) == (2.5, 9.0)
    assert dsp_c.detect_beats(np.zeros(100), 20).size == 0  # no error at the lowest rate


def test_input_types_are_converted():
    x, _ = bcg_like(250, 70, 20)
    expected = dsp_c.detect_beats(x, 250)
    assert np.array_equal(dsp_c.detect_beats(list(x), 250), expected)
    assert np.array_equal(
        dsp_c.detect_beats(np.round(x * 1000).astype(np.int32) / 1000.0, 250),
        dsp_c.detect_beats(np.round(x * 1000) / 1000.0, 250),
    )
    strided = np.repeat(x, 2)[::2]
    assert not strided.flags.c_contiguous
    assert np.array_equal(dsp_c.detect_beats(strided, 250), expected)
    as_float32 = x.astype(np.float32)
    det = dsp_c.JPeakDetector(250)
    got = np.concatenate([det.process(as_float32), det.flush()])
    ref = dsp_c.JPeakDetector(250)
    want = np.concatenate([ref.process(as_float32.astype(np.float64)), ref.flush()])
    assert np.array_equal(got, want)


@pytest.mark.parametrize("fs", [0, -250, float("nan"), float("inf"), 10, 5000])
def test_bad_sampling_rates_are_named(fs):
    with pytest.raises(ValueError, match="fs"):
        dsp_c.JPeakDetector(fs)
    with pytest.raises(ValueError, match="fs"):
        dsp_c.detect_beats(np.zeros(100), fs)


@pytest.mark.parametrize("bad", [np.zeros((10, 2)), np.zeros(10, complex), ["a", "b"], "abc"])
def test_bad_arrays_are_rejected(bad):
    with pytest.raises((TypeError, ValueError), match=r"^x: "):
        dsp_c.detect_beats(bad, 250)
    with pytest.raises((TypeError, ValueError), match=r"^y: "):
        dsp_c.JPeakDetector(250).process(bad)


def test_bad_band_is_named():
    with pytest.raises(ValueError, match=r"^high_hz: "):
        dsp_c.detect_beats(np.zeros(100), 20, high_hz=12.0)  # above the 10 Hz Nyquist limit
    with pytest.raises(ValueError, match=r"^low_hz: "):
        dsp_c.detect_beats(np.zeros(100), 250, low_hz=20.0, high_hz=12.0)


def test_rhythm_recovers_after_movement():
    """A 12 s movement burst must not leave the detector at a wrong rate afterwards."""
    fs = 250
    missed_soon, total_soon = 0, 0
    for seed in range(7, 17):
        rec = bcg_signal(fs=fs, seconds=180, heart_bpm=62, motion=((99.0, 111.0),), seed=seed)
        found = dsp_c.detect_beats(rec.x, fs)
        after = rec.beats[rec.beats >= 119 * fs]  # from 8 s after the movement
        assert match(found, after, round(0.05 * fs))[0] == after.size, seed
        soon = rec.beats[(rec.beats >= 113 * fs) & (rec.beats < 119 * fs)]
        missed_soon += soon.size - match(found, soon, round(0.05 * fs))[0]
        total_soon += soon.size
    assert missed_soon <= 0.1 * total_soon  # 2-8 s after: at most 10 % missed (8 % seen)


# --- hard starts and level changes (each once made the detector deaf or lock wrongly) ----


def found_share(found: np.ndarray, truth: np.ndarray, fs: float) -> tuple[float, float]:
    """(sensitivity, PPV) of found against truth beats, within 50 ms."""
    hits, false = match(found, truth, round(0.05 * fs))
    return hits / max(truth.size, 1), hits / max(found.size, 1)


def test_a_jolt_while_learning_does_not_deafen():
    fs = 250
    rec = bcg_signal(fs=fs, seconds=300, heart_bpm=70, seed=21)
    x = rec.x.copy()
    x[int(1.5 * fs) : int(1.7 * fs)] += 20 * 400  # someone sits down: 20 x the J-wave
    found = dsp_c.detect_beats(x, fs)
    late = rec.beats >= 20 * fs
    sens, ppv = found_share(found[found >= 20 * fs], rec.beats[late], fs)
    assert sens >= 0.98 and ppv >= 0.98


def test_a_tenfold_weaker_signal_is_found_again():
    fs = 250
    rec = bcg_signal(fs=fs, seconds=300, heart_bpm=64, seed=22)
    x = rec.x.copy()
    x[120 * fs :] = 32768 + (x[120 * fs :] - 32768) / 10  # posture: signal and noise / 10
    found = dsp_c.detect_beats(x, fs)
    late = rec.beats >= 140 * fs
    sens, ppv = found_share(found[found >= 140 * fs], rec.beats[late], fs)
    assert sens >= 0.98 and ppv >= 0.98


def test_a_person_arriving_on_an_empty_bed_is_locked_onto():
    fs = 250
    rng = np.random.default_rng(23)
    rec = bcg_signal(fs=fs, seconds=240, heart_bpm=58, seed=23)
    empty = 32768 + np.round(2 * rng.standard_normal(30 * fs))  # 30 s of sensor noise
    x = np.concatenate([empty, rec.x])
    found = dsp_c.detect_beats(x, fs) - empty.size
    truth = rec.beats[rec.beats >= 30 * fs]  # from 30 s after lying down
    sens, ppv = found_share(found[found >= 30 * fs], truth, fs)
    assert sens >= 0.98 and ppv >= 0.98


@pytest.mark.parametrize("bpm", [32, 40, 48])
@pytest.mark.parametrize("breaths", [8, 14, 20])
def test_low_heart_rates_with_breathing_do_not_halve(bpm, breaths):
    fs = 100
    rec = bcg_signal(fs=fs, seconds=240, heart_bpm=bpm, breaths_per_min=breaths, seed=bpm)
    det = dsp_c.JPeakDetector(fs)
    band = dsp_c.SosFilter(dsp_c.butter_bandpass(2, 2.5, 12.0, fs))
    band.reset(steady_input=rec.x[0])
    found = np.concatenate([det.process(band.process(rec.x)), det.flush()])
    sens, ppv = found_share(found, rec.beats, fs)
    assert sens >= 0.98 and ppv >= 0.98
