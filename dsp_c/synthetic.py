"""Synthetic BCG with ground truth, for the demo, tests and benchmarks (numpy only).

A deliberately small model: each heartbeat is an I-J-K complex (the J-wave the detector
looks for) plus an optional secondary wave halfway to the next beat (the usual bait for a
double-rate lock); intervals follow respiratory sinus arrhythmia and jitter; breathing
adds a slow baseline and modulates the beat amplitude; motion bursts add large broadband
noise; the result is quantised to ADC counts. The full night simulator (postures, bed
exits, ectopic beats, apnea) builds on the same idea at a larger scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SyntheticBCG", "bcg_signal"]


@dataclass(frozen=True)
class SyntheticBCG:
    """A synthetic recording and its ground truth (indices are sample numbers)."""

    x: np.ndarray  #: samples (ADC counts as float64, or arbitrary units when adc_gain=0)
    fs: float  #: sampling rate, samples/s
    beats: np.ndarray  #: J-peak sample indices, int64
    breaths: np.ndarray  #: sample indices of the end of each inspiration, int64
    motion: list[tuple[int, int]] = field(default_factory=list)  #: [start, stop) of bursts

    @property
    def heart_rate_bpm(self) -> float:
        """Mean heart rate of the ground truth."""
        return 60.0 * self.fs / float(np.mean(np.diff(self.beats)))


def _gauss(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / width) ** 2)


def bcg_signal(
    fs: float = 250.0,
    seconds: float = 60.0,
    heart_bpm: float = 66.0,
    breaths_per_min: float = 14.0,
    secondary: float = 0.4,
    noise: float = 0.05,
    motion: tuple[tuple[float, float], ...] = (),
    adc_gain: float = 400.0,
    seed: int = 0,
) -> SyntheticBCG:
    """Make a synthetic under-mattress BCG recording.

    Args:
        fs: sampling rate (samples/s).
        seconds: length.
        heart_bpm: mean heart rate; beat intervals vary with breathing (+-4 %) and jitter
            (+-3 %).
        breaths_per_min: breathing rate (0 for none).
        secondary: height of the mid-interval secondary wave relative to the J-wave.
        noise: white sensor noise, relative to the J-wave.
        motion: (start_s, stop_s) intervals of gross body movement.
        adc_gain: counts per J-wave amplitude; the signal sits on a 32768-count offset and
            is rounded to integers. 0 keeps arbitrary units with no offset or rounding.
        seed: random seed; the same arguments give the same recording.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    breath_hz = breaths_per_min / 60.0
    phase = 2 * np.pi * breath_hz * t + rng.uniform(0, 2 * np.pi)
    x = noise * rng.standard_normal(n)
    beats = []
    t_beat = rng.uniform(0.2, 60.0 / heart_bpm)
    while t_beat < seconds - 0.3:
        breath_phase = np.interp(t_beat, t, phase) if n else 0.0
        ibi = 60.0 / heart_bpm * (1 - 0.04 * np.sin(breath_phase) + 0.03 * rng.uniform(-1, 1))
        amplitude = 1.0 + 0.2 * np.cos(breath_phase)
        near = slice(max(0, int((t_beat - 0.3) * fs)), min(n, int((t_beat + 1.2 * ibi) * fs)))
        tt = t[near]
        x[near] += amplitude * (
            -0.4 * _gauss(tt, t_beat - 0.05, 0.018)
            + _gauss(tt, t_beat, 0.02)
            - 0.5 * _gauss(tt, t_beat + 0.06, 0.02)
            + secondary * _gauss(tt, t_beat + 0.5 * ibi, 0.03)
        )
        beats.append(int(round(t_beat * fs)))
        t_beat += ibi
    if breath_hz > 0:
        x += 4.0 * np.sin(phase)
        # End of inspiration: the baseline maximum, where sin(phase) = 1.
        cycles = (phase - np.pi / 2) / (2 * np.pi)
        breaths = np.flatnonzero(np.diff(np.floor(cycles)) > 0) + 1
    else:
        breaths = np.empty(0, dtype=np.int64)
    bursts = []
    for start_s, stop_s in motion:
        start, stop = int(start_s * fs), min(n, int(stop_s * fs))
        x[start:stop] += 15.0 * rng.standard_normal(stop - start).cumsum() / np.sqrt(fs)
        x[start:stop] += 3.0 * rng.standard_normal(stop - start)
        bursts.append((start, stop))
    if adc_gain:
        x = np.clip(np.round(32768.0 + adc_gain * x), 0, 65535)
    return SyntheticBCG(
        x=x.astype(np.float64),
        fs=float(fs),
        beats=np.array(beats, dtype=np.int64),
        breaths=breaths.astype(np.int64),
        motion=bursts,
    )
