"""Beat detection on the real recordings in tests/data, with a scipy peer beside it.

    python tests/bench/real_recordings.py        (part of `make bench`)

Aydin (dorsoventral BCG, RWTH MedIT, MIT licence), both BCG channels against the ECG
R-peaks: beats matched within 60 ms after the best constant R-to-J delay. Sadek et al.
(fiber-optic mat, MIT licence): heart rate per 10 s window against the pulse oximeter, read
28 s later (its delay: edge.eval.harness.SADEK_OXIMETER_DELAY_S) and as recorded.
The peer is scipy: the same causal band-pass, then find_peaks with a minimum distance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.signal as ss

import dsp_c
from dsp_c.beats import DEFAULT_BAND_HZ, DEFAULT_ORDER
from dsp_c.metrics import best_delay_match, rate_per_window
from edge.eval.harness import SADEK_OXIMETER_DELAY_S, oximeter_rates

DATA = Path(__file__).resolve().parents[1] / "data"


def scipy_peer(x: np.ndarray, fs: float, distance_s: float) -> np.ndarray:
    """Causal band-pass as dsp_c's, then scipy.signal.find_peaks with a minimum distance."""
    sos = ss.butter(DEFAULT_ORDER, DEFAULT_BAND_HZ, "band", fs=fs, output="sos")
    y, _ = ss.sosfilt(sos, x, zi=ss.sosfilt_zi(sos) * x[0])
    return ss.find_peaks(y, distance=max(1, int(distance_s * fs)))[0]


def main() -> None:
    rec = np.load(DATA / "aydin_left1.npz")
    fs = int(rec["fs"])
    r_peaks = rec["r_peaks"]
    print(f"Aydin Left-1: {r_peaks.size} ECG R-peaks, {rec['bcg'].size / fs:.1f} s at {fs} Hz")
    print(f"  {'channel':8} {'method':28} {'beats':>5} {'matched':>8} {'false':>5} {'delay':>6}")
    for channel in ("imp_env", "bcg"):
        x = rec[channel].astype(np.float64)
        methods = [("dsp_c.detect_beats", dsp_c.detect_beats(x, fs))]
        methods += [(f"scipy find_peaks, {d:g} s", scipy_peer(x, fs, d)) for d in (0.3, 0.5)]
        for name, beats in methods:
            m = best_delay_match(beats, r_peaks, fs, tol_s=0.060)
            print(
                f"  {channel:8} {name:28} {beats.size:5d} {m.hits:5d}/{r_peaks.size} "
                f"{m.false:5d} {m.delay / fs * 1000:4.0f}ms"
            )

    rec = np.load(DATA / "sadek_sample.npz")
    fs = int(rec["fs"])
    x = rec["raw"].astype(np.float64)
    n_windows = x.size // (10 * fs)
    windows = [(k * 10 * fs, (k + 1) * 10 * fs) for k in range(n_windows)]
    reference = oximeter_rates(rec["pulse_ox_bpm"], fs, windows)
    as_recorded = oximeter_rates(rec["pulse_ox_bpm"], fs, windows, delay_s=0.0)
    print(
        f"\nSadek sample: {x.size / fs / 60:.1f} min at {fs} Hz, {n_windows} windows of 10 s "
        f"against the pulse oximeter {SADEK_OXIMETER_DELAY_S:g} s later (as recorded)"
    )
    print(f"  {'method':28} {'HR MAE':>13} {'coverage':>9} {'windows >10 bpm off':>20}")
    methods = [("dsp_c.detect_beats", dsp_c.detect_beats(x, fs))]
    methods += [(f"scipy find_peaks, {d:g} s", scipy_peer(x, fs, d)) for d in (0.3, 0.4, 0.5)]
    for name, beats in methods:
        rates = rate_per_window(beats, fs, x.size, 10.0, lookback_s=2.0)[:n_windows]
        errors, raw = rates - reference, rates - as_recorded
        ok = np.isfinite(errors)
        print(
            f"  {name:28} {np.mean(np.abs(errors[ok])):5.2f} ({np.nanmean(np.abs(raw)):5.2f}) "
            f"{np.isfinite(rates).mean():9.0%} {int(np.sum(np.abs(errors[ok]) > 10)):20d}"
        )


if __name__ == "__main__":
    main()
