"""Motion meter: bursts flagged, quiet and breathing not, streaming invariance, parameters."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp_c.motion import MIN_BASELINE, MotionMeter, motion_energy


def lying_still(fs: float, seconds: float = 120.0, seed: int = 0) -> np.ndarray:
    """Someone lying still: DC offset, slow drift, breathing, J-wave train, sensor noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    beat_phase = np.mod(t, 0.9)  # 67 bpm
    jwave = np.where(beat_phase < 0.125, 10.0 * np.sin(2 * np.pi * 8.0 * beat_phase), 0.0)
    drift = 50.0 * t + 400.0 * np.sin(2 * np.pi * 0.005 * t)
    return (
        30000.0 + drift + 100.0 * np.sin(2 * np.pi * 0.25 * t) + jwave + rng.standard_normal(t.size)
    )


def with_movement(x: np.ndarray, fs: float, start_s: float, stop_s: float) -> np.ndarray:
    """Add gross body movement (large broadband disturbance) between start_s and stop_s."""
    rng = np.random.default_rng(1)
    y = x.copy()
    a, b = int(start_s * fs), int(stop_s * fs)
    t = np.arange(b - a) / fs
    y[a:b] += 300.0 * rng.standard_normal(b - a) + 2000.0 * np.sin(2 * np.pi * 0.7 * t)
    return y


@pytest.mark.parametrize("fs", [10.0, 50.0, 250.0, 1000.0])
def test_burst_flagged(fs: float) -> None:
    x = with_movement(lying_still(fs), fs, 60.0, 70.0)
    energy, moving = motion_energy(x, fs)
    assert energy.shape == moving.shape == (120,)
    assert moving.dtype == np.bool_
    assert moving[60:70].all()
    # the band-pass rings for a few windows after the movement (longest at fs = 10 Hz)
    assert not moving[:59].any() and not moving[75:].any()
    assert energy[60:70].min() > 10.0 * np.median(energy[:60])


@pytest.mark.parametrize("fs", [10.0, 50.0, 250.0, 1000.0])
def test_quiet_with_dc_and_drift_not_flagged(fs: float) -> None:
    energy, moving = motion_energy(lying_still(fs), fs)
    assert not moving.any()
    # the energy ignores the DC offset and the drift: it equals that of the signal without them
    rng = np.random.default_rng(0)
    t = np.arange(int(120 * fs)) / fs
    bare = np.where(np.mod(t, 0.9) < 0.125, 10.0 * np.sin(2 * np.pi * 8.0 * np.mod(t, 0.9)), 0.0)
    bare += rng.standard_normal(t.size)
    ref, _ = motion_energy(bare, fs)
    assert np.allclose(energy[10:], ref[10:], rtol=0.05)


def test_pure_dc_and_ramp_have_no_energy() -> None:
    fs = 250.0
    energy, moving = motion_energy(np.full(int(60 * fs), 1e5), fs)
    assert energy.max() < 1e-9 and not moving.any()  # rounding only
    assert np.all(motion_energy(np.zeros(int(10 * fs)), fs)[0] == 0.0)
    ramp = 1e5 + 10.0 * np.arange(int(60 * fs)) / fs
    energy, moving = motion_energy(ramp, fs)
    assert energy[0] < 0.1  # start-up: the filter is primed for a constant, not a slope
    assert energy[5:].max() < 1e-6 and not moving.any()


@pytest.mark.parametrize(("bpm_from", "bpm_to"), [(6, 6), (15, 15), (30, 30), (42, 42), (12, 30)])
def test_breathing_only_not_flagged(bpm_from: float, bpm_to: float) -> None:
    """Breathing 100x the sensor noise, with a deep sigh every 45 s and (last case) a
    gradual change of rate, is not motion."""
    fs = 250.0
    rng = np.random.default_rng(2)
    t = np.arange(int(180 * fs)) / fs
    depth = 1.0 + 0.8 * np.sin(np.pi * np.clip(np.mod(t, 45.0) - 35.0, 0.0, 10.0) / 10.0) ** 2
    rate_hz = (bpm_from + (bpm_to - bpm_from) * t / t[-1]) / 60.0
    phase = 2 * np.pi * np.cumsum(rate_hz) / fs
    x = 5000.0 + 100.0 * depth * np.sin(phase) + rng.standard_normal(t.size)
    _, moving = motion_energy(x, fs)
    assert not moving.any()


@settings(max_examples=30, deadline=None)
@given(
    fs=st.sampled_from([10.0, 50.0, 250.0]),
    window_s=st.sampled_from([0.1, 0.5, 1.0, 2.5]),
    cuts=st.lists(st.floats(0.0, 1.0), max_size=10),
)
def test_chunked_equals_one_shot(fs: float, window_s: float, cuts: list[float]) -> None:
    x = with_movement(lying_still(fs, seconds=60.0), fs, 30.0, 35.0)
    ref_e, ref_m = MotionMeter(fs, window_s).process(x)
    bounds = sorted({int(c * x.size) for c in cuts} | {0, x.size})
    meter = MotionMeter(fs, window_s)
    parts = [meter.process(x[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    assert np.array_equal(np.concatenate([p[0] for p in parts]), ref_e)  # bit for bit
    assert np.array_equal(np.concatenate([p[1] for p in parts]), ref_m)


def test_window_length_and_partial_window() -> None:
    meter = MotionMeter(250.0, window_s=0.5)
    assert meter.window_len == 125 and meter.window_s == 0.5 and meter.fs == 250.0
    energy, moving = meter.process(np.zeros(300))
    assert energy.size == moving.size == 2  # 50 samples pending
    energy, _ = meter.process(np.zeros(75))
    assert energy.size == 1
    assert motion_energy(np.zeros(1249), 250.0)[0].size == 4


def test_reset_restarts_windows_and_baseline() -> None:
    fs = 100.0
    x = with_movement(lying_still(fs, seconds=60.0), fs, 30.0, 35.0)
    meter = MotionMeter(fs)
    first = meter.process(x[:5050])
    meter.reset()
    second = meter.process(x)
    ref = MotionMeter(fs).process(x)
    assert np.array_equal(second[0], ref[0]) and np.array_equal(second[1], ref[1])
    assert first[0].size == 50


def test_long_motion_is_relearned() -> None:
    fs = 100.0
    x = with_movement(lying_still(fs, seconds=300.0), fs, 60.0, 300.0)
    _, moving = motion_energy(x, fs)
    assert moving[60:100].all()
    assert not moving[200:].any()  # after 60 s of motion the new level is the normal


def test_empty_input() -> None:
    energy, moving = MotionMeter(250.0).process([])
    assert energy.shape == moving.shape == (0,)
    assert energy.dtype == np.float64 and moving.dtype == np.bool_


@pytest.mark.parametrize("fs", [10.0, 50.0, 250.0, 1000.0])
def test_step_of_one_count_on_a_flat_signal_is_not_motion(fs: float) -> None:
    """A flat signal has a baseline of ~1e-13: without the 0.5-count floor one ADC step
    flagged 6 to 30 windows as moving."""
    x = np.full(int(60 * fs), 30000.0)
    x[int(30.5 * fs) :] += 1.0
    energy, moving = motion_energy(x, fs)
    assert not moving.any()
    assert 0.05 < energy[30] < MIN_BASELINE  # the energy itself is reported unchanged
    # a real movement on the flat signal still is motion
    energy, moving = motion_energy(with_movement(x, fs, 40.0, 45.0), fs)
    assert moving[40:45].all()


def test_quantisation_noise_is_not_motion() -> None:
    fs = 10.0  # no band limiting to speak of: the noise energy varies most window to window
    rng = np.random.default_rng(4)
    x = np.round(30000.0 + 0.3 * rng.standard_normal(int(300 * fs)))
    _, moving = motion_energy(x, fs)
    assert not moving.any()


@pytest.mark.parametrize("fs", [0.0, -1.0, 9.0, 20001.0, math.nan, math.inf, None])
def test_bad_fs(fs: object) -> None:
    with pytest.raises(ValueError, match=r"^fs: ") as err:
        MotionMeter(fs)  # type: ignore[arg-type]
    assert err.value.code == "E103"


@pytest.mark.parametrize("window_s", [0.0, -1.0, 0.099, 60.001, math.nan, math.inf, "1"])
def test_bad_window(window_s: object) -> None:
    with pytest.raises(ValueError, match=r"^window_s: ") as err:
        MotionMeter(250.0, window_s)  # type: ignore[arg-type]
    assert err.value.code == "E108"
    with pytest.raises(ValueError, match=r"^window_s: "):
        motion_energy(np.zeros(10), 250.0, window_s)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "text"),
    [
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (1e307, "1e+307"),  # finite, but its square overflowed the energy to inf
        (1.0000001e15, "1000000100000000.0"),
    ],
)
def test_bad_samples_rejected_and_state_kept(bad: float, text: str) -> None:
    fs = 100.0
    x = lying_still(fs, seconds=30.0)
    ref_e, _ = MotionMeter(fs).process(x)
    meter = MotionMeter(fs)
    head, _ = meter.process(x[:1000])
    poisoned = x[1000:1500].copy()
    poisoned[3] = bad
    poisoned[30] = bad
    message = (
        r"^x: 2 sample\(s\) not finite or beyond ±1e15, the first at index 3 "
        rf"\({re.escape(text)}\); split the recording at the gap or interpolate it$"
    )
    with pytest.raises(ValueError, match=message) as err:
        meter.process(poisoned)
    assert err.value.code == "E108"
    tail, _ = meter.process(x[1000:])
    assert np.array_equal(np.concatenate([head, tail]), ref_e)


def test_largest_samples_accepted() -> None:
    x = lying_still(100.0, seconds=10.0)
    x[100], x[200] = 1e15, -1e15
    energy, _ = MotionMeter(100.0).process(x)
    assert np.all(np.isfinite(energy))


@pytest.mark.parametrize(
    "x", [np.zeros((10, 2)), "abc", [1 + 2j], np.ma.masked_array([1.0, 2.0], mask=[0, 1])]
)
def test_bad_arrays(x: object) -> None:
    with pytest.raises((TypeError, ValueError), match=r"^x: "):
        MotionMeter(250.0).process(x)
