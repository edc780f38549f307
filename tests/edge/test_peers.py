"""Peer methods of the evaluation (edge.eval.peers): our MODWT and its MRA, the common
contract of every peer, and the peers on real and synthetic recordings.

Real recordings: dorsoventral BCG recordings, RWTH MedIT (MIT licence), and the sample
recording of Sadek et al. (microbend fiber-optic mat, MIT licence); see tests/data/README.md.
"""

from __future__ import annotations

import sys
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from dsp_c.metrics import best_delay_match, rate_per_window
from dsp_c.synthetic import bcg_signal
from edge.eval import peers
from edge.eval.harness import SADEK_OXIMETER_DELAY_S, oximeter_rates
from edge.eval.peers import (
    PEERS,
    PeerFailure,
    hr_per_window,
    imodwt,
    modwt,
    modwt_band_hz,
    modwt_mra,
    run_peer,
    sym8_scaling_filter,
)

# NeuroKit2's own import of scipy.misc, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:scipy.misc is deprecated:DeprecationWarning")

DATA = Path(__file__).resolve().parents[1] / "data"
HAAR = np.array([1.0, 1.0]) / np.sqrt(2.0)


# --- MODWT and MRA (Percival & Walden 2000, ch. 5) ------------------------------------


@pytest.fixture(scope="module")
def sym8() -> np.ndarray:
    return sym8_scaling_filter()


def test_sym8_taps_are_an_orthonormal_scaling_filter(sym8):
    assert sym8.size == 16
    assert sym8.sum() == pytest.approx(np.sqrt(2.0), abs=1e-12)
    for shift in range(0, 8):  # sum_l g_l g_(l+2n) = delta_n
        assert np.dot(sym8[: sym8.size - 2 * shift], sym8[2 * shift :]) == pytest.approx(
            1.0 if shift == 0 else 0.0, abs=1e-12
        )


def test_haar_level_one_is_the_textbook_transform(rng):
    x = rng.standard_normal(37)
    w, v = modwt(x, HAAR, 1)
    previous = np.roll(x, 1)  # circular: x[-1] precedes x[0]
    np.testing.assert_allclose(w[0], (x - previous) / 2, atol=1e-14)
    np.testing.assert_allclose(v, (x + previous) / 2, atol=1e-14)


@pytest.mark.parametrize("n, level", [(1000, 4), (999, 6), (10, 4), (1, 2)])
@pytest.mark.parametrize("filt", ["haar", "sym8"])
def test_inverse_mra_and_energy(rng, sym8, n, level, filt):
    """Any length (odd, shorter than the filter, one sample): circular, exact."""
    g = HAAR if filt == "haar" else sym8
    x = 1000.0 + 50.0 * rng.standard_normal(n)
    w, v = modwt(x, g, level)
    assert w.shape == (level, n) and v.shape == (n,)
    np.testing.assert_allclose(imodwt(w, v, g), x, rtol=0, atol=1e-9)
    details, smooth = modwt_mra(x, g, level)
    np.testing.assert_allclose(details.sum(axis=0) + smooth, x, rtol=0, atol=1e-9)
    energy = np.sum(w**2) + np.sum(v**2)
    assert energy == pytest.approx(np.sum(x**2), rel=1e-12)


def test_mra_is_zero_phase(sym8):
    """A detail is the level filter followed by its time reverse: symmetric about an impulse."""
    x = np.zeros(512)
    x[200] = 1.0
    details, smooth = modwt_mra(x, sym8, 4)
    for component in (*details, smooth):
        np.testing.assert_allclose(
            component[200 + 1 : 200 + 100], component[200 - 1 : 100 : -1], rtol=0, atol=1e-15
        )


@pytest.mark.parametrize(
    "freq_hz, component",
    [(18.0, 0), (9.0, 1), (4.5, 2), (2.3, 3), (0.5, 4)],  # D1 D2 D3 D4 S4 at 50 Hz
)
def test_a_sinusoid_lands_in_its_level(sym8, freq_hz, component):
    fs, n = 50.0, 3000  # whole cycles in 60 s: no wrap-around step
    x = np.sin(2 * np.pi * freq_hz * np.arange(n) / fs)
    details, smooth = modwt_mra(x, sym8, 4)
    parts = np.vstack([details, smooth])
    energy = np.sum(parts**2, axis=1)
    assert np.argmax(energy) == component
    assert energy[component] > 0.8 * np.sum(x**2)
    lo, hi = (
        modwt_band_hz(fs, 4, smooth=True) if component == 4 else modwt_band_hz(fs, component + 1)
    )
    assert lo <= freq_hz < hi


def test_level_to_band_at_50_hz():
    assert modwt_band_hz(50.0, 4) == (1.5625, 3.125)
    assert modwt_band_hz(50.0, 4, smooth=True) == (0.0, 1.5625)
    assert modwt_band_hz(50.0, 1) == (12.5, 25.0)


def test_modwt_rejects_bad_arguments(sym8):
    with pytest.raises(ValueError, match="level"):
        modwt(np.ones(8), sym8, 0)
    with pytest.raises(ValueError, match="scaling"):
        modwt(np.ones(8), np.array([1.0, 2.0, 3.0]), 1)
    with pytest.raises(ValueError, match="x"):
        modwt(np.ones((2, 4)), sym8, 1)


# --- the peers on the recordings -------------------------------------------------------


@cache
def recording(name: str) -> tuple[np.ndarray, float]:
    if name == "synthetic":
        rec = bcg_signal(fs=250.0, seconds=60.0, heart_bpm=72.0, secondary=0.0, seed=5)
        return rec.x, rec.fs
    if name == "sadek":
        rec = np.load(DATA / "sadek_sample.npz")
        return rec["raw"], float(rec["fs"])
    rec = np.load(DATA / "aydin_left1.npz")
    return rec["imp_env"], float(rec["fs"])


@cache
def beats_of(peer: str, name: str) -> np.ndarray:
    x, fs = recording(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PeerFailure)  # a skipped segment is a valid outcome
        return PEERS[peer](x, fs)


def sadek_reference(delay_s: float = SADEK_OXIMETER_DELAY_S) -> np.ndarray:
    """The oximeter's rate for each whole 10 s window, read ``delay_s`` later (NaN past the
    end of the recording)."""
    rec = np.load(DATA / "sadek_sample.npz")
    fs = int(rec["fs"])
    windows = [(k * 10 * fs, (k + 1) * 10 * fs) for k in range(rec["raw"].size // (10 * fs))]
    return oximeter_rates(rec["pulse_ox_bpm"], fs, windows, delay_s)


def test_registry_names_are_stable():
    assert list(PEERS) == [
        "scipy_find_peaks",
        "neurokit2",
        "neurokit2_ecg",
        "heartpy",
        "modwt_sadek2019",
    ]
    assert list(peers.WINDOW_HR_PEERS) == ["autocorr_window"]


@pytest.mark.parametrize("name", ["aydin", "sadek", "synthetic"])
@pytest.mark.parametrize("peer", list(PEERS))
def test_peer_returns_sorted_int64_indices_in_range(peer, name):
    x, _ = recording(name)
    beats = beats_of(peer, name)
    assert beats.dtype == np.int64 and beats.ndim == 1
    assert beats.size > 0
    assert np.all(np.diff(beats) > 0)
    assert beats[0] >= 0 and beats[-1] < x.size


# HR MAE per 10 s window against the pulse oximeter 28 s later (its delay, measured below)
# (bpm), measured, and the bound tested; as recorded they were 3.79, 4.86, 16.55, 5.58 and
# 3.03. dsp_c.detect_beats: 1.43 (3.00 as recorded, tests/dsp_c/test_beats.py); Sadek et al.
# report 4.71 on their data.
SADEK_MAE = {
    "scipy_find_peaks": (2.68, 3.2),
    "neurokit2": (1.27, 1.6),
    "neurokit2_ecg": (15.01, 18.0),  # misses every other beat in 29 of 111 windows
    "heartpy": (4.01, 5.0),  # 1005-1117 s: HeartPy finds no heart rate (91 % coverage)
    "modwt_sadek2019": (1.14, 1.4),
}


@pytest.mark.parametrize("peer", list(PEERS))
def test_peer_heart_rate_on_the_fiber_optic_mat_recording(peer):
    x, fs = recording("sadek")
    reference = sadek_reference()
    rates = rate_per_window(beats_of(peer, "sadek"), fs, x.size, 10.0)[: reference.size]
    estimated = np.isfinite(rates)
    assert estimated.mean() > 0.85  # coverage
    assert 85 < np.median(rates[estimated]) < 120  # plausible: the oximeter reads 89 to 117
    scored = estimated & np.isfinite(reference)
    mae = np.mean(np.abs(rates[scored] - reference[scored]))
    assert mae < SADEK_MAE[peer][1], mae


@pytest.mark.parametrize("peer", ["scipy_find_peaks", "neurokit2", "heartpy", "modwt_sadek2019"])
def test_the_oximeter_reports_each_rate_about_28_s_late(peer):
    """The Sadek reference's delay, measured without the unit: each peer's heart rates match
    the oximeter best (median error) when it is read 26-30 s later, in each half of the
    recording on its own (a property of the recording, not a fit to it), and clearly better
    than as recorded: a quarter to two thirds less (SADEK_OXIMETER_DELAY_S is 28 s)."""
    x, fs = recording("sadek")
    rates = rate_per_window(beats_of(peer, "sadek"), fs, x.size, 10.0)

    def error(delay_s: float, part: slice = slice(None)) -> float:
        reference = sadek_reference(delay_s)
        scored = np.isfinite(rates[: reference.size]) & np.isfinite(reference)
        keep = np.zeros(scored.size, bool)
        keep[part] = True
        scored &= keep
        return float(np.median(np.abs(rates[: reference.size][scored] - reference[scored])))

    delays = np.arange(0.0, 62.0, 2.0)
    half = sadek_reference().size // 2
    for part in (slice(None), slice(0, half), slice(half, None)):
        errors = [error(d, part) for d in delays]
        best = float(delays[int(np.argmin(errors))])
        assert abs(best - SADEK_OXIMETER_DELAY_S) <= 2.0, (part, best, errors)
    assert error(SADEK_OXIMETER_DELAY_S) < 0.75 * error(0.0)


# ECG R-peaks matched within 60 ms after the best constant R-to-J delay (0 to 0.4 s):
# (hits of 28, false detections), measured.
AYDIN_MATCH = {
    "scipy_find_peaks": (25, 8),
    "neurokit2": (28, 0),
    "neurokit2_ecg": (10, 0),
    "heartpy": (28, 0),
    "modwt_sadek2019": (28, 20),  # 85 bpm is below D4's band: harmonics give extra peaks
}


@pytest.mark.parametrize("peer", list(PEERS))
def test_peer_beats_on_the_dorsoventral_recording(peer):
    rec = np.load(DATA / "aydin_left1.npz")
    match = best_delay_match(beats_of(peer, "aydin"), rec["r_peaks"], 1000.0, tol_s=0.06)
    hits, false = AYDIN_MATCH[peer]
    assert match.hits >= hits - 2, match
    assert match.false <= false + 3, match


# --- the common contract ---------------------------------------------------------------


@pytest.mark.parametrize("peer", list(PEERS))
def test_bad_arguments_raise(peer):
    with pytest.raises(ValueError, match="x"):
        PEERS[peer](np.ones((10, 2)), 50.0)
    with pytest.raises(ValueError, match="non-finite"):
        PEERS[peer](np.array([1.0, np.nan, 2.0]), 50.0)
    with pytest.raises(ValueError, match="fs"):
        PEERS[peer](np.ones(100), 0.0)
    empty = PEERS[peer](np.array([]), 50.0)
    assert empty.dtype == np.int64 and empty.size == 0


@pytest.mark.parametrize("peer", ["neurokit2", "neurokit2_ecg", "heartpy"])
def test_a_failing_peer_returns_nothing_and_says_why(peer, rng):
    short = 500 + rng.standard_normal(5)  # 0.1 s: shorter than the library's filter needs
    with pytest.warns(PeerFailure, match=peer):
        beats = PEERS[peer](short, 50.0)
    assert beats.dtype == np.int64 and beats.size == 0
    result = run_peer(peer, short, 50.0)
    assert result.beats.size == 0 and "ValueError" in result.failure


def test_heartpy_names_the_segments_it_gave_up_on():
    x, fs = recording("sadek")
    with pytest.warns(PeerFailure, match="1005-1117 s"):
        PEERS["heartpy"](x, fs)


@pytest.mark.parametrize("peer", list(PEERS))
def test_a_constant_signal_has_no_beats(peer):
    beats = PEERS[peer](np.full(3000, 512), 50.0)
    assert beats.dtype == np.int64 and beats.size == 0


def test_run_peer_reports_no_failure_on_a_good_record():
    x, fs = recording("aydin")
    result = run_peer("scipy_find_peaks", x, fs)
    assert result.failure is None and result.beats.size > 0


def test_a_missing_library_names_the_extra(monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "heartpy", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match=r"pip install bedside-bcg\[dev\]"):
        PEERS["heartpy"](rng.standard_normal(3000), 50.0)


# --- autocorrelation window heart rate (no beats) --------------------------------------


def test_window_heart_rate_on_the_recordings():
    x, fs = recording("sadek")
    reference = sadek_reference()
    rates = hr_per_window(x, fs, 10.0)
    assert rates.shape == reference.shape
    estimated = np.isfinite(rates)
    assert estimated.mean() > 0.9
    scored = estimated & np.isfinite(reference)
    assert np.mean(np.abs(rates[scored] - reference[scored])) < 6.0  # 5.00 (7.66 as recorded)

    x, fs = recording("aydin")
    r_peaks = np.load(DATA / "aydin_left1.npz")["r_peaks"]
    assert hr_per_window(x, fs, 10.0) == pytest.approx(
        rate_per_window(r_peaks, fs, x.size, 10.0), abs=2.0
    )

    rec = bcg_signal(fs=250.0, seconds=60.0, heart_bpm=72.0, secondary=0.0, seed=5)
    rates = hr_per_window(rec.x, rec.fs, 10.0)
    assert rates.size == 6
    assert np.all(np.abs(rates - rate_per_window(rec.beats, rec.fs, rec.x.size, 10.0)) < 3.0)


def test_window_heart_rate_invents_nothing():
    assert np.isnan(hr_per_window(np.full(5000, 7.0), 250.0, 10.0)).all()
    assert hr_per_window(np.ones(100), 250.0, 10.0).size == 0
    with pytest.raises(ValueError, match="window_s"):
        hr_per_window(np.ones(100), 250.0, 0.0)
