"""What the real recordings look like: the numbers the simulator's sensor models come from.

    .venv/bin/python tests/bench/sensor_recordings.py        (scipy; about 5 s)

For each recording: the value range, quantization step and rail hits; the beat seen in the
ensemble average (1-20 Hz zero-phase band, 2nd-order Butterworth) around reference beats
(the ECG R-peaks for Aydin Left-1, detected beats for the others): its waves and their
relative heights, the J-wave's delay after the R-peak, how alike single beats are; the
spectrum of that beat and its ringing; the power of the signal per band relative to the beat;
the breathing and the baseline drift relative to the beat; narrow interference lines.

Recordings (dorsoventral BCG recordings, RWTH MedIT, MIT licence; Sadek et al., MIT
licence): ``tests/data/aydin_left1.npz``, ``tests/data/sadek_sample.npz`` and
``tests/data/goodbcg1.npz`` (see tests/data/README.md; without the last, ``goodbcg1.mat`` is
read from ``../shared/data/bcg-aydin`` when it is there).
Then the simulator's sensor models (``edge.sim``), measured the same way around their truth
beats, to set beside them. docs/sim.md ("Sensor models and the real recordings they come
from") quotes the output.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal as ss

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge.sim import KINDS, Night, Scenario, State  # noqa: E402
from edge.sim.recordings import heldout_like_night  # noqa: E402

DATA = ROOT / "tests" / "data"
GOODBCG = ROOT.parent / "shared" / "data" / "bcg-aydin" / "goodbcg1.mat"

#: The band the beat is looked at in (Hz): wide enough for its waves, narrow enough to drop
#: breathing and drift.
BEAT_BAND_HZ = (1.0, 20.0)
#: A wave of the ensemble beat counts when it reaches this fraction of the tallest.
WAVE_MIN = 0.3
#: ... and is "comparable" to the tallest from this fraction on.
COMPARABLE = 0.7


@dataclass
class Recording:
    """One recording: samples, rate, reference beat indices and how they were found."""

    name: str
    x: np.ndarray
    fs: float
    beats: np.ndarray
    reference: str
    window_s: tuple[float, float]  #: where a beat's waves are looked for, from its reference
    still_s: tuple[float, float] | None = None  #: the stretch levels are measured on


def band(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth band-pass."""
    return ss.sosfiltfilt(ss.butter(2, (lo, hi), "band", fs=fs, output="sos"), x)


def ensemble(y: np.ndarray, beats: np.ndarray, before: int, after: int) -> np.ndarray:
    """(beats, before + after) stack of ``y`` around each beat that fits."""
    ok = beats[(beats >= before) & (beats + after <= y.size)]
    return np.stack([y[b - before : b + after] for b in ok])


def waves(avg: np.ndarray, t_s: np.ndarray, lo: float, hi: float) -> list[tuple[float, float]]:
    """(time s, height / tallest) of the positive waves of ``avg`` in [lo, hi] that reach
    WAVE_MIN of the tallest."""
    peaks, _ = ss.find_peaks(avg)
    peaks = peaks[(t_s[peaks] >= lo) & (t_s[peaks] <= hi)]
    top = avg[peaks].max()
    return [(float(t_s[p]), float(avg[p] / top)) for p in peaks if avg[p] >= WAVE_MIN * top]


def spectrum_of(avg: np.ndarray, fs: float) -> tuple[float, float]:
    """(peak frequency, highest frequency within 20 dB of it) of a beat, Hz (1-60 Hz)."""
    n = 1 << 15
    mag = np.abs(np.fft.rfft((avg - avg.mean()) * np.hanning(avg.size), n))
    f = np.fft.rfftfreq(n, 1 / fs)
    m = (f >= 1.0) & (f <= min(60.0, 0.45 * fs))
    peak = float(f[m][np.argmax(mag[m])])
    top = float(f[m][np.flatnonzero(mag[m] >= 0.1 * mag[m].max())[-1]])
    return peak, top


def ringing(y: np.ndarray, fs: float, beats: np.ndarray) -> tuple[float, float]:
    """(frequency Hz, Q) of the ringing after the beat, from its 4-40 Hz ensemble.

    The frequency is the spacing of the extrema after the largest one; Q follows from how
    much each half cycle keeps (a 2nd-order resonance keeps exp(-pi / (2 Q)) of it).
    """
    hi = min(40.0, 0.45 * fs)
    before, after = int(0.3 * fs), int(0.6 * fs)
    avg = ensemble(band(y, fs, 4.0, hi), beats, before, after).mean(axis=0)
    main = int(np.argmax(np.abs(avg)))
    sign = np.sign(avg[main])
    ext = [main]
    for i in range(main + 1, avg.size - 1):  # alternate extrema after the main one
        want = -sign if len(ext) % 2 else sign
        if want * avg[i] > want * avg[i - 1] and want * avg[i] >= want * avg[i + 1]:
            if want * avg[i] > 0:
                ext.append(i)
        if len(ext) == 4:
            break
    heights = np.abs(avg[ext])
    freq = fs / (2 * np.mean(np.diff(ext)))
    keep = float(np.exp(np.mean(np.log(heights[1:] / heights[:-1]))))
    return float(freq), float(np.pi / (2 * np.log(1 / keep)))


def band_rms(x: np.ndarray, fs: float, lo: float, hi: float) -> float:
    """RMS of ``x`` in [lo, hi) Hz from its Welch spectrum."""
    f, p = ss.welch(x - x.mean(), fs, nperseg=min(x.size, int(64 * fs)))
    m = (f >= lo) & (f < min(hi, fs / 2))
    return float(np.sqrt(np.trapz(p[m], f[m])))


def lines(x: np.ndarray, fs: float) -> list[float]:
    """Narrow interference lines at 8-60 Hz (above the beat's harmonics): 20 x the local
    median of the spectrum."""
    f, p = ss.welch(x - x.mean(), fs, nperseg=min(x.size, int(64 * fs)))
    floor = ss.medfilt(p, 101)
    found = ss.find_peaks(p, height=20 * floor)[0]
    return [round(float(f[i]), 2) for i in found if 8.0 < f[i] < 60.0]


def quantum(x: np.ndarray) -> float:
    """Smallest step between two different values (the ADC's count, if any)."""
    return float(np.min(np.diff(np.unique(x))))


def describe(rec: Recording) -> None:
    """Print what the simulator is built from."""
    x, fs = rec.x, rec.fs
    print(f"\n{rec.name}: {x.size / fs:.1f} s at {fs:g} Hz, beats from {rec.reference}")
    if rec.still_s is not None:  # levels from the stretch where somebody lies in bed
        a, b = (int(v * fs) for v in rec.still_s)
        x = x[a:b]
        rec = Recording(
            rec.name,
            x,
            fs,
            rec.beats[(rec.beats >= a) & (rec.beats < b)] - a,
            rec.reference,
            rec.window_s,
        )
        print(f"  (measured on {a / fs:g}-{b / fs:g} s: in bed, no getting in or out)")
    rails = np.count_nonzero((x == x.min()) | (x == x.max()))
    print(
        f"  values {x.min():.6g} .. {x.max():.6g} (median {np.median(x):.6g}), step "
        f"{quantum(x):.3g}, samples at the extremes {rails}"
    )
    ibi = np.diff(rec.beats) / fs
    print(
        f"  {rec.beats.size} beats, median interval {1000 * np.median(ibi):.0f} ms "
        f"({60 / np.median(ibi):.1f} bpm)"
    )
    y = band(x, fs, *BEAT_BAND_HZ)
    before, after = int(0.5 * fs), int(0.9 * fs)
    stack = ensemble(y, rec.beats, before, after)
    avg = stack.mean(axis=0)
    t = (np.arange(avg.size) - before) / fs
    lo, hi = rec.window_s
    found = waves(avg, t, lo, hi)
    n_comp = sum(h >= COMPARABLE for _, h in found)
    print(f"  waves of the ensemble beat (>= {WAVE_MIN:g} x the tallest, {lo:+.2f}..{hi:+.2f} s):")
    print(
        "    "
        + ", ".join(f"{1000 * s:+.0f} ms {h:.2f}" for s, h in found)
        + f"  -> {len(found)} waves, {n_comp} comparable (>= {COMPARABLE:g})"
    )
    trough = float(t[np.argmin(avg[(t >= lo) & (t <= hi)]) + np.searchsorted(t, lo)])
    print(
        f"    deepest trough {1000 * trough:+.0f} ms, "
        f"{avg.min() / avg.max():.2f} x the tallest wave"
    )
    corr = np.median([np.corrcoef(b, avg)[0, 1] for b in stack])
    resid = stack - avg
    ptp = float(np.ptp(avg))
    print(
        f"  single beat vs the ensemble: median correlation {corr:.2f}; ensemble "
        f"peak-to-peak {ptp:.4g}; beat-to-beat residual RMS {resid.std() / ptp:.2f} x that"
    )
    peak_f, top_f = spectrum_of(avg, fs)
    ring_f, ring_q = ringing(x, fs, rec.beats)
    print(
        f"  beat spectrum: peak {peak_f:.2f} Hz, within 20 dB up to {top_f:.1f} Hz; "
        f"ringing (4-40 Hz) {ring_f:.1f} Hz, Q about {ring_q:.1f}"
    )
    rows = [
        ("drift", 0.01, 0.1),
        ("breathing", 0.1, 0.7),
        ("cardiac", 0.7, 10.0),
        ("10-40 Hz", 10.0, 40.0),
        ("> 40 Hz", 40.0, fs / 2),
    ]
    parts = []
    for label, a, b in rows:
        if label == "drift" and x.size / fs < 200:
            parts.append("drift n/a (too short)")
        elif a < fs / 2:
            parts.append(f"{label} {band_rms(x, fs, a, b) / ptp:.3g}")
    print("  RMS per band / beat ptp: " + ", ".join(parts))
    breath = band(x, fs, 0.1, 0.7)
    n = int(fs * 8)  # breath peak to peak in 8 s pieces: at least one breath each
    bptp = np.median([np.ptp(breath[i : i + n]) for i in range(0, breath.size - n + 1, n)])
    slow = ss.sosfiltfilt(ss.butter(2, 0.1, fs=fs, output="sos"), x)
    print(
        f"  breathing peak to peak {bptp / ptp:.2f} x the beat; baseline drift (< 0.1 Hz) "
        f"range {np.ptp(slow) / ptp:.2f} x the beat over {x.size / fs:.0f} s"
    )
    found_lines = lines(x, fs)
    if found_lines:
        print(f"  narrow lines at {', '.join(f'{f:g}' for f in found_lines)} Hz")


def aydin() -> list[Recording]:
    """Aydin Left-1: the PVDF BCG and the impedance envelope, beats = ECG R-peaks."""
    rec = np.load(DATA / "aydin_left1.npz")
    fs = float(rec["fs"])
    return [
        Recording(
            f"Aydin Left-1 {ch}",
            rec[ch].astype(np.float64),
            fs,
            rec["r_peaks"],
            "the ECG R-peaks",
            (0.0, 0.6),
        )
        for ch in ("bcg", "imp_env")
    ]


def goodbcg() -> Recording | None:
    """goodbcg1 at 1000 Hz (decimated from 10 kHz), beats = its troughs (its polarity)."""
    fs = 1000.0
    if (DATA / "goodbcg1.npz").exists():  # the project's copy, decimated already
        x = np.load(DATA / "goodbcg1.npz")["bcg"].astype(np.float64)
    elif GOODBCG.exists():
        import scipy.io as sio

        x = ss.resample_poly(sio.loadmat(GOODBCG)["data"].ravel(), 1, 10, padtype="line")
    else:
        return None
    x = x[2000:]  # the first 2 s are the front end settling
    y = band(x, fs, *BEAT_BAND_HZ)
    beats = ss.find_peaks(-y, distance=int(0.8 * fs), prominence=np.std(y))[0]
    return Recording(
        "goodbcg1 (after the first 2 s)",
        -x,
        fs,
        beats,
        "troughs 0.8 s apart (inverted: beats are troughs)",
        (-0.2, 0.4),
    )


def sadek() -> Recording:
    """Sadek: 50 Hz fiber mat; beats = band peaks at least 0.7 pulse-oximeter periods apart."""
    rec = np.load(DATA / "sadek_sample.npz")
    fs = float(rec["fs"])
    x = rec["raw"].astype(np.float64)
    period = 60.0 / np.median(rec["pulse_ox_bpm"])
    y = band(x, fs, *BEAT_BAND_HZ)
    beats = ss.find_peaks(y, distance=int(0.7 * period * fs))[0]
    return Recording(
        "Sadek fiber mat",
        x,
        fs,
        beats,
        "band peaks >= 0.7 pulse-oximeter periods apart",
        (-0.25, 0.35),
        still_s=(20.0, 1080.0),
    )


def sadek_faults() -> None:
    """Where the Sadek mat hits its rails or drops out."""
    rec = np.load(DATA / "sadek_sample.npz")
    x = rec["raw"].astype(np.float64)
    fs = float(rec["fs"])
    low = np.flatnonzero(x < 0.2 * np.median(x))
    print(
        f"  rails: {np.count_nonzero(x == 0)} samples at 0, "
        f"{np.count_nonzero(x >= 65000)} at >= 65000 (max {x.max():.0f}), all at "
        f"{np.flatnonzero((x == 0) | (x >= 65000)) / fs} s"
    )
    print(
        f"  dropouts (< 0.2 x the median): {low.size} samples, "
        f"{np.count_nonzero(low < 10 * fs)} in the first 10 s (the mat settling), "
        f"{np.count_nonzero(low > x.size - 60 * fs)} in the last minute (getting up)"
    )
    steady = x[int(20 * fs) : int(1080 * fs)]
    print(
        f"  steady stretch (20-1080 s): median {np.median(steady):.0f} counts, "
        f"1-99 % {np.percentile(steady, 1):.0f}..{np.percentile(steady, 99):.0f}"
    )


def simulated() -> list[Recording]:
    """Each sensor model: seed 0, 300 s lying still on the back at 70 bpm, 25 dB; and the
    first still stretch of heldout_like(0). Beats: the truth; the beat turned up."""
    out = []
    nights = [
        Night(
            seed=0,
            scenario=Scenario.constant(300.0, State.GOOD, "supine"),
            heart_bpm=70.0,
            snr_db=25.0,
            sensor_model=kind,
        )
        for kind in KINDS
    ]
    held = heldout_like_night(0)
    first = held.segments[0]
    nights.append(
        Night(
            seed=0,
            scenario=Scenario.constant(first.stop_s, State.GOOD, first.posture),
            heart_bpm=held.heart_bpm,
            snr_db=held.snr_db,
            sensor_model=held.sensor_model,
        )
    )
    for n in nights:
        x = n.samples().astype(np.float64) * n.sensor_model.polarity
        last = max((0.0, *n.sensor_model.wave_delays_s))
        out.append(
            Recording(
                f"sim {n.sensor_model.kind} (beat_lag_s {1000 * n.beat_lag_s:.0f} ms)",
                x,
                n.fs,
                n.beats,
                "the truth",
                (-0.1, max(0.45, last + 0.1)),
            )
        )
    return out


def main() -> None:
    recordings = [*aydin()]
    good = goodbcg()
    if good is None:
        print("(goodbcg1 not found: skipped)")
    else:
        recordings.append(good)
    recordings.append(sadek())
    for rec in recordings:
        describe(rec)
        if rec.name.startswith("Aydin"):
            avg = ensemble(band(rec.x, rec.fs, *BEAT_BAND_HZ), rec.beats, 0, int(0.6 * rec.fs))
            j = np.argmax(avg.mean(axis=0)) / rec.fs
            print(f"  J-wave (tallest, 0-600 ms) {1000 * j:.0f} ms after the R-peak")
        if rec.name.startswith("Sadek"):
            sadek_faults()
    print("\n--- the simulator, measured the same way ---")
    for rec in simulated():
        describe(rec)


if __name__ == "__main__":
    main()
