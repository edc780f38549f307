"""Sensor transforms of a recording, for the sensor-independence property (issue 15, item 2).

One default config must give the same stored answer when the same night reaches the unit
through another sensor chain: another gain or unit, an ADC offset, the other polarity,
another sampling rate, a ringing bed frame, power-line hum, single-sample glitches,
clipping. Each transform here maps ``(samples, fs)`` to ``(samples, fs)``;
:func:`transforms_for` lists the set applied to a record. numpy only (and the dsp_c
filters): the unit's package does not depend on scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

import dsp_c
from dsp_c.beats import beat_filter

__all__ = [
    "EXTRA_TRANSFORMS",
    "GLITCHES",
    "MAINS_HUM",
    "RATES_HZ",
    "Transform",
    "add_glitches",
    "add_mains_hum",
    "add_resonance",
    "clip_percentiles",
    "resample",
    "resonator",
    "to_adc_counts",
    "transforms_for",
]

Transform = Callable[[np.ndarray, float], tuple[np.ndarray, float]]

#: Sampling rates a record is resampled to (the unit's range is 50 to 1000 Hz).
RATES_HZ = (50.0, 100.0, 250.0, 500.0, 1000.0)
#: The ADC of the counts transform: 12 bits, the signal centred near 2000 counts, its
#: 1st-99th percentile range spanning 1000 counts (a movement may then reach the rails).
ADC_BITS, ADC_CENTRE, ADC_SPAN = 12, 2000.0, 1000.0
#: Volts of that ADC: a 3.3 V reference.
ADC_VREF = 3.3
#: The ringing bed frame: a damped resonance at 8 Hz, Q 5 (a wave and its echoes decay by
#: about half a period), mixed in at the level of the beat band.
RESONANCE_HZ, RESONANCE_Q = 8.0, 5.0
#: Clipping: the samples beyond the 1st and 99th percentiles sit at those levels.
CLIP_PERCENT = 1.0
#: Power-line hum picked up by an unshielded cable: 50 Hz and its 2nd and 3rd harmonics at
#: these shares, their sum scaled to this many times the RMS of the beat band (before the
#: unit notched the mains, a third of this, a plain 50 Hz sine, made 107 of Sadek's 112
#: epochs an empty bed).
MAINS_HUM_HZ, MAINS_HUM_SHARES, MAINS_HUM_LEVEL = 50.0, (1.0, 0.1, 0.3), 30.0
#: A record sampled too slowly to carry the hum (its third harmonic above 0.45 fs) is
#: first resampled to this rate, as a sensor with a faster ADC would have sampled it.
MAINS_HUM_FS = 500.0
#: Its name in :func:`transforms_for`.
MAINS_HUM = f"mains hum {MAINS_HUM_HZ:g} Hz"
#: Single-sample glitches (a bit flipped, a torn read): one sample every this many seconds
#: moved this many times the RMS of the beat band off, up and down by turns. Before the
#: unit replaced them this made 110 of Sadek's 112 epochs `empty`, with no heart rate; one
#: every 30 s at a tenth of the height made 35 `motion` and kept 66 of its 103 heart rates.
GLITCH_EVERY_S, GLITCH_LEVEL = 3.0, 50.0
#: Its name in :func:`transforms_for`.
GLITCHES = f"glitch every {GLITCH_EVERY_S:g} s"
#: Changes beyond issue 15's list: each is scored on a line of its own.
EXTRA_TRANSFORMS = (MAINS_HUM, GLITCHES)


def resample(x: np.ndarray, fs: float, fs_new: float) -> np.ndarray:
    """``x`` at ``fs`` resampled to ``fs_new``: band-limited (FFT) interpolation.

    The signal is mirrored before the transform so that it is continuous where the FFT
    wraps around (no ringing at the ends); going down, everything above the new Nyquist
    frequency is removed, going up nothing is added above the old one.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    m = max(1, int(round(n * fs_new / fs)))
    spectrum = np.fft.rfft(np.concatenate([x, x[::-1]]))
    out = np.zeros(m + 1, dtype=complex)  # the rfft of 2m samples
    k = min(spectrum.size, out.size)
    out[:k] = spectrum[:k]
    if 2 * m < 2 * n:  # the new Nyquist bin holds both signs of that frequency: keep half
        out[-1] *= 0.5
    return np.fft.irfft(out, 2 * m)[:m] * (m / n)


def to_adc_counts(
    x: np.ndarray, bits: int = ADC_BITS, centre: float = ADC_CENTRE, span: float = ADC_SPAN
) -> np.ndarray:
    """Whole ADC counts of a ``bits``-bit converter: ``x`` about ``centre``, its 1st-99th
    percentile range scaled to ``span`` counts, rounded and clipped at the rails."""
    x = np.asarray(x, dtype=np.float64)
    lo, mid, hi = np.percentile(x, [1.0, 50.0, 99.0])
    scale = span / (hi - lo) if hi > lo else 1.0
    counts = np.round(centre + (x - mid) * scale)
    return np.clip(counts, 0, 2**bits - 1)


def resonator(f0_hz: float, q: float, fs: float) -> dsp_c.SosFilter:
    """A damped 2nd-order resonance at ``f0_hz`` with quality ``q`` (0 dB at its peak): one
    band-pass section from ``f0 - f0/2q`` to ``f0 + f0/2q``. What rings after each beat on a
    bed frame; the quality model's training augmentation uses the same one."""
    half = f0_hz / (2.0 * q)
    return dsp_c.SosFilter(dsp_c.butter_bandpass(1, f0_hz - half, f0_hz + half, fs))


def add_resonance(
    x: np.ndarray, fs: float, f0_hz: float = RESONANCE_HZ, q: float = RESONANCE_Q
) -> np.ndarray:
    """``x`` plus its echo in a damped :func:`resonator`, the echo scaled to the RMS of the
    beat band, so each beat brings several waves of comparable height, as on a ringing bed
    frame."""
    x = np.asarray(x, dtype=np.float64)
    ring = resonator(f0_hz, q, fs)
    ring.reset(steady_input=float(x[0]))  # no start-up step from the offset
    echo = ring.process(x)
    return x + _scaled_to_beat_band(echo, x, fs)


def add_mains_hum(
    x: np.ndarray, fs: float, f_hz: float = MAINS_HUM_HZ, level: float = MAINS_HUM_LEVEL
) -> tuple[np.ndarray, float]:
    """``x`` (at ``fs``) plus power-line hum at ``f_hz`` with its harmonics
    (:data:`MAINS_HUM_SHARES`), ``level`` times the RMS of the beat band; resampled to
    :data:`MAINS_HUM_FS` first when ``fs`` is too low to carry the hum. Returns the samples
    and their rate."""
    harmonics = len(MAINS_HUM_SHARES)
    if harmonics * f_hz >= 0.45 * fs:
        x, fs = resample(x, fs, MAINS_HUM_FS), MAINS_HUM_FS
    x = np.asarray(x, dtype=np.float64)
    phase = 2.0 * np.pi * f_hz * np.arange(x.size) / fs
    hum = sum(share * np.sin(k * phase + k) for k, share in enumerate(MAINS_HUM_SHARES, 1))
    return x + level * _scaled_to_beat_band(hum, x, fs), fs


def add_glitches(
    x: np.ndarray, fs: float, every_s: float = GLITCH_EVERY_S, level: float = GLITCH_LEVEL
) -> tuple[np.ndarray, float]:
    """``x`` (at ``fs``) with one sample every ``every_s`` (the first at a third of it)
    moved ``level`` times the RMS of the beat band off, up and down by turns. Returns the
    samples and their rate."""
    y = np.array(x, dtype=np.float64)
    where = np.arange(every_s / 3.0, y.size / fs, every_s) * fs
    where = where.astype(np.int64)
    sign = np.where(np.arange(where.size) % 2 == 0, 1.0, -1.0)
    y[where] += sign * level * _scaled_to_beat_band(np.ones(where.size), y, fs)
    return y, fs


def _scaled_to_beat_band(y: np.ndarray, x: np.ndarray, fs: float) -> np.ndarray:
    """``y`` scaled to the RMS of ``x``'s beat band (the J-peak detector's band-pass)."""
    band = beat_filter(fs)
    band.reset(steady_input=float(x[0]))
    level = float(np.sqrt(np.mean(band.process(x) ** 2)))
    y_level = float(np.sqrt(np.mean(y**2)))
    return y * (level / y_level if y_level > 0 else 0.0)


def clip_percentiles(x: np.ndarray, percent: float = CLIP_PERCENT) -> np.ndarray:
    """``x`` clipped at its ``percent`` and ``100 - percent`` percentiles (an ADC at its
    rails during the largest swings)."""
    lo, hi = np.percentile(x, [percent, 100.0 - percent])
    return np.clip(np.asarray(x, dtype=np.float64), lo, hi)


def transforms_for(fs: float) -> dict[str, Transform]:
    """The transforms applied to a record sampled at ``fs``, by name."""
    out: dict[str, Transform] = {
        "gain x1e-3": lambda x, f: (np.asarray(x, np.float64) * 1e-3, f),
        "gain x1e4": lambda x, f: (np.asarray(x, np.float64) * 1e4, f),
        "12-bit counts": lambda x, f: (to_adc_counts(x), f),
        "volts": lambda x, f: (to_adc_counts(x) * (ADC_VREF / 2**ADC_BITS), f),
        "inverted": lambda x, f: (-np.asarray(x, np.float64), f),
    }
    for rate in RATES_HZ:
        if not math.isclose(rate, fs):
            out[f"{rate:g} Hz"] = lambda x, f, r=rate: (resample(x, f, r), r)
    out[f"resonance {RESONANCE_HZ:g} Hz"] = lambda x, f: (add_resonance(x, f), f)
    out[MAINS_HUM] = add_mains_hum
    out[GLITCHES] = add_glitches
    out["clipped"] = lambda x, f: (clip_percentiles(x), f)
    return out
