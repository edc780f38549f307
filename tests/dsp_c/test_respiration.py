"""Respiration extractor: rate accuracy, streaming invariance, parameter and NaN handling."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp_c.respiration import MIN_SWING, RespirationExtractor, respiration_rate


def breathing(
    fs: float,
    bpm: float,
    seconds: float = 120.0,
    seed: int = 0,
    cardiac: float = 0.3,
    noise: float = 0.1,
    dc: float = 30000.0,
    scale: float = 1.0,
) -> np.ndarray:
    """Raw-like signal in ADC counts: DC + breathing sinusoid of amplitude ``scale`` counts
    + 1.2 Hz cardiac-like term + noise (both relative to the breathing)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    phase = rng.uniform(0.0, 2.0 * np.pi)
    return dc + scale * (
        np.sin(2.0 * np.pi * bpm / 60.0 * t + phase)
        + cardiac * np.sin(2.0 * np.pi * 1.2 * t)
        + noise * rng.standard_normal(t.size)
    )


@pytest.mark.parametrize("fs", [50.0, 250.0, 1000.0])
@pytest.mark.parametrize("bpm", [6.0, 12.0, 20.0, 30.0, 42.0])
def test_rate_within_half_a_breath_per_minute(fs: float, bpm: float) -> None:
    for seed in range(3):
        # 2 counts: clear of the one-ADC-step floor even at the band edges (-3 dB)
        x = breathing(fs, bpm, seed=seed, scale=2.0)
        ext = RespirationExtractor(fs)
        resp, breaths = ext.process(x)
        assert abs(ext.rate_bpm - bpm) < 0.5, (seed, ext.rate_bpm)
        # one breath per cycle: the count over 120 s is right within the start-up cycle
        expected = 120.0 * bpm / 60.0
        assert expected - 2 <= breaths.size <= expected + 1
        assert breaths.dtype == np.int64
        assert np.all(np.diff(breaths) > 0)
        assert breaths[0] >= 0 and breaths[-1] < x.size
        assert resp.size == x.size // ext.decimation
        assert respiration_rate(x, fs) == ext.rate_bpm


def test_breath_intervals_match_the_period() -> None:
    fs, bpm = 250.0, 15.0
    clean = breathing(fs, bpm, cardiac=0.0, noise=0.0)
    _, breaths = RespirationExtractor(fs).process(clean)
    intervals = np.diff(breaths[breaths > 30 * fs]) / fs  # after the filter start-up
    assert np.allclose(intervals, 60.0 / bpm, atol=0.01)
    # the cardiac term moves single crossings a little, not the rhythm
    _, breaths = RespirationExtractor(fs).process(breathing(fs, bpm))
    intervals = np.diff(breaths[breaths > 30 * fs]) / fs
    assert np.allclose(intervals, 60.0 / bpm, atol=0.05)


def test_output_rate_and_decimation() -> None:
    for fs, decim in [(10.0, 1), (19.9, 1), (50.0, 5), (250.0, 25), (256.0, 25), (1000.0, 100)]:
        ext = RespirationExtractor(fs)
        assert ext.decimation == decim
        assert ext.output_rate == pytest.approx(fs / decim)
        assert 10.0 <= ext.output_rate < 20.0
        assert ext.fs == fs


def test_respiration_signal_is_band_limited() -> None:
    fs = 250.0
    ext = RespirationExtractor(fs)
    resp, _ = ext.process(breathing(fs, 15.0, cardiac=0.0, noise=0.0))
    steady = resp[300:]  # after 30 s of start-up
    # unit sinusoid at 0.25 Hz passes with ~unit gain and no DC
    assert 0.9 < np.max(np.abs(steady)) < 1.1
    assert abs(np.mean(steady)) < 0.05


def test_rate_unknown_at_start_and_after_a_gap() -> None:
    fs = 100.0
    ext = RespirationExtractor(fs)
    assert math.isnan(ext.rate_bpm)
    ext.process(breathing(fs, 15.0, seconds=60.0))
    assert ext.rate_bpm == pytest.approx(15.0, abs=0.5)
    ext.process(np.full(int(40 * fs), 30000.0))  # 40 s without breathing
    assert math.isnan(ext.rate_bpm)


def test_constant_input_gives_no_breaths() -> None:
    resp, breaths = RespirationExtractor(250.0).process(np.full(250 * 60, 123456.0))
    assert breaths.size == 0
    assert np.max(np.abs(resp)) < 1e-6
    assert math.isnan(respiration_rate(np.full(250 * 60, 7.0), 250.0))


@settings(max_examples=40, deadline=None)
@given(
    fs=st.sampled_from([10.0, 37.5, 50.0, 250.0, 1000.0]),
    cuts=st.lists(st.floats(0.0, 1.0), max_size=12),
)
def test_chunked_equals_one_shot(fs: float, cuts: list[float]) -> None:
    x = breathing(fs, 18.0, seconds=40.0, seed=3)
    ref = RespirationExtractor(fs)
    ref_resp, ref_breaths = ref.process(x)
    bounds = sorted({int(c * x.size) for c in cuts} | {0, x.size})
    ext = RespirationExtractor(fs)
    parts = [ext.process(x[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    resp = np.concatenate([p[0] for p in parts])
    breaths = np.concatenate([p[1] for p in parts])
    assert np.array_equal(resp, ref_resp)  # bit for bit
    assert np.array_equal(breaths, ref_breaths)
    assert ext.rate_bpm == ref.rate_bpm or (math.isnan(ext.rate_bpm) and math.isnan(ref.rate_bpm))


def test_reset_restarts_indices() -> None:
    fs = 250.0
    x = breathing(fs, 15.0, seconds=60.0)
    ext = RespirationExtractor(fs)
    first = ext.process(x)
    ext.reset()
    assert math.isnan(ext.rate_bpm)
    second = ext.process(x)
    assert np.array_equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])


def test_empty_input() -> None:
    ext = RespirationExtractor(250.0)
    resp, breaths = ext.process([])
    assert resp.shape == (0,) and breaths.shape == (0,)
    assert resp.dtype == np.float64 and breaths.dtype == np.int64
    assert math.isnan(respiration_rate(np.empty(0), 250.0))


def test_integer_samples_accepted() -> None:
    fs = 50.0
    x = np.round(breathing(fs, 12.0) * 100.0).astype(np.int32)
    assert respiration_rate(x, fs) == pytest.approx(12.0, abs=0.5)


@pytest.mark.parametrize("fs", [50.0, 250.0, 1000.0])
def test_adc_step_noise_gives_no_rate(fs: float) -> None:
    """+-1-count noise on a flat signal is not breathing (it used to give 18 to 30/min)."""
    rng = np.random.default_rng(11)
    x = 30000 + rng.integers(-1, 2, int(300 * fs))
    ext = RespirationExtractor(fs)
    _, breaths = ext.process(x)
    assert breaths.size == 0
    assert math.isnan(ext.rate_bpm)
    assert math.isnan(respiration_rate(x, fs))


def test_breathing_of_one_adc_step_is_found_below_it_not() -> None:
    """The floor is one ADC step peak to peak: 0.6-count breathing is found, 0.4 not."""
    fs = 250.0
    rng = np.random.default_rng(12)
    t = np.arange(int(180 * fs)) / fs
    for amplitude, found in [(0.4, False), (0.6, True), (50.0, True)]:
        x = np.round(
            30000 + amplitude * np.sin(2 * np.pi * 0.25 * t) + 0.5 * rng.normal(size=t.size)
        )
        rate = respiration_rate(x, fs)
        if found:
            assert rate == pytest.approx(15.0, abs=0.5), amplitude
        else:
            assert math.isnan(rate), (amplitude, rate)
    assert MIN_SWING == 0.5


@pytest.mark.parametrize("fs", [0.0, -250.0, 9.99, 20001.0, math.nan, math.inf, "250", None])
def test_bad_fs(fs: object) -> None:
    with pytest.raises(ValueError, match=r"^fs: ") as err:
        RespirationExtractor(fs)  # type: ignore[arg-type]
    assert err.value.code == "E103"
    with pytest.raises(ValueError, match=r"^fs: "):
        respiration_rate(np.zeros(100), fs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "text"),
    [
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (1e307, "1e+307"),  # finite, but overflowed the filter state to inf for good
        (-1.0000001e15, "-1000000100000000.0"),
    ],
)
def test_bad_samples_rejected_and_state_kept(bad: float, text: str) -> None:
    """NaN, inf and |x| > 1e15 are refused with ValueError naming x; nothing of that
    chunk is consumed."""
    fs = 250.0
    x = breathing(fs, 15.0, seconds=60.0)
    ref = RespirationExtractor(fs)
    ref_out = ref.process(x)
    ext = RespirationExtractor(fs)
    head = ext.process(x[:5000])
    poisoned = x[5000:6000].copy()
    poisoned[17] = bad
    message = (
        r"^x: 1 sample\(s\) not finite or beyond ±1e15, the first at index 17 "
        rf"\({re.escape(text)}\); split the recording at the gap or interpolate it$"
    )
    with pytest.raises(ValueError, match=message) as err:
        ext.process(poisoned)
    assert err.value.code == "E108"
    tail = ext.process(x[5000:])
    assert np.array_equal(np.concatenate([head[0], tail[0]]), ref_out[0])
    assert np.array_equal(np.concatenate([head[1], tail[1]]), ref_out[1])
    with pytest.raises(ValueError, match=r"^x: 1 sample\(s\) not finite"):
        respiration_rate(poisoned, fs)


def test_largest_samples_accepted() -> None:
    x = breathing(250.0, 15.0, seconds=10.0)
    x[100], x[200] = 1e15, -1e15
    resp, _ = RespirationExtractor(250.0).process(x)
    assert np.all(np.isfinite(resp))


@pytest.mark.parametrize(
    "x", [np.zeros((10, 2)), np.zeros(()), "abc", [1 + 2j], np.ma.masked_array([1.0, 2.0])]
)
def test_bad_arrays(x: object) -> None:
    with pytest.raises((TypeError, ValueError), match=r"^x: "):
        RespirationExtractor(250.0).process(x)
