"""Beat matching and windowed rates (dsp_c.metrics)."""

from __future__ import annotations

import numpy as np

from dsp_c.metrics import (
    best_delay_match,
    interval_errors,
    match_beats,
    matched_pairs,
    rate_per_window,
)


def test_match_is_one_to_one_within_tolerance():
    truth = np.array([100, 200, 300, 400])
    assert match_beats(np.array([98, 205, 301, 302, 500]), truth, 5) == (3, 2, 0)
    assert match_beats(np.array([]), truth, 5) == (0, 0, 0)
    assert match_beats(truth, np.array([]), 5) == (0, 4, 0)
    assert match_beats(np.array([106]), np.array([100]), 5).hits == 0


def test_best_delay_finds_the_constant_lag():
    r_peaks = np.arange(10) * 700 + 300
    found = r_peaks + 180 + np.array([0, 20, -20, 10, 0, -10, 30, 0, 0, 5])
    result = best_delay_match(found, r_peaks, fs=1000, tol_s=0.06)
    assert result.hits == 10 and result.false == 0
    assert 150 <= result.delay <= 210


def test_rates_per_window_and_no_invented_values():
    fs = 100
    beats = np.arange(0, 6000, 75)  # 80 per minute
    rates = rate_per_window(beats, fs, 6000, window_s=10.0, lookback_s=2.0)
    assert rates.shape == (6,)
    np.testing.assert_allclose(rates, 80.0)
    sparse = rate_per_window(np.array([10, 500]), fs, 6000)
    assert np.isnan(sparse).all()


def test_pairs_and_interval_errors():
    truth = np.array([100, 200, 300, 400, 500])
    found = np.array([102, 199, 330, 405, 498])  # 300 missed (330 is 30 away)
    ref_idx, found_idx = matched_pairs(found, truth, 10)
    assert ref_idx.tolist() == [0, 1, 3, 4]
    assert found_idx.tolist() == [0, 1, 3, 4]
    # consecutive matched pairs: (100, 200) and (400, 500)
    assert interval_errors(found, truth, 10).tolist() == [-3, -7]
