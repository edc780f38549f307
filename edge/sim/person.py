"""A sleeper drawn from the seed: heart and breathing physiology, and BCG morphology.

The BCG beat is a sum of Gaussian waves: the systolic H, I, J, K, L, M, N waves at fixed
delays around the J-wave, and a diastolic complex (a positive wave between two negative
ones) whose delay follows the beat interval, the usual bait for a double-rate lock. Each
person has their own wave amplitudes, widths and timings, and each posture perturbs them
and scales the whole beat (the lateral and prone positions couple less well).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ._random import stream
from .scenario import POSTURES

__all__ = ["HEART_BPM_RANGE", "BREATHS_PER_MIN_RANGE", "WAVES", "Morphology", "Person"]

#: Mean heart rate a night may be given (bpm); a drawn sleeper has 45 to 85.
HEART_BPM_RANGE = (40.0, 150.0)
#: Mean breathing rate a night may be given (breaths/min); a drawn sleeper has 9 to 22.
BREATHS_PER_MIN_RANGE = (6.0, 30.0)

#: The waves of one beat. D1 to D3 are the diastolic complex: their offsets are relative
#: to its centre, placed at ``Person.diastolic_frac`` x the beat interval after the J-wave.
WAVES = ("H", "I", "J", "K", "L", "M", "N", "D1", "D2", "D3")
N_SYSTOLIC = 7  # H..N: offsets relative to the J-peak
J_INDEX = 2


@dataclass(frozen=True)
class Morphology:
    """One person's BCG beat in one posture (arrays in :data:`WAVES` order).

    Attributes:
        offsets_s: wave centres, seconds; H..N relative to the J-peak (the maximum of the
            systolic complex is exactly at 0), D1..D3 relative to the diastolic centre.
        widths_s: Gaussian standard deviations, seconds.
        amplitudes: heights relative to the J-wave (J = 1, the largest positive wave).
        gain: beat amplitude relative to this person's supine beat.
        resp_gain: breathing amplitude relative to the supine one.
        dc: baseline shift of this posture, in units of the supine J-wave (the load on
            the sensor moves when the body turns).
    """

    offsets_s: np.ndarray
    widths_s: np.ndarray
    amplitudes: np.ndarray
    gain: float
    resp_gain: float
    dc: float

    def template(self, t_s: np.ndarray, diastole_s: float = 0.45) -> np.ndarray:
        """The beat (J-wave amplitude 1) at times ``t_s`` from its J-peak."""
        t = np.asarray(t_s, dtype=np.float64)
        centres = self.offsets_s.copy()
        centres[N_SYSTOLIC:] += diastole_s
        return _waves(t, centres, self.widths_s, self.amplitudes)


def _waves(t: np.ndarray, centres: np.ndarray, widths: np.ndarray, amps: np.ndarray) -> np.ndarray:
    z = (t[..., None] - centres) / widths
    return np.exp(-0.5 * z * z) @ amps


@dataclass(frozen=True)
class Person:
    """A sleeper: the physiology a night is built from (drawn by :meth:`random`).

    Attributes:
        heart_bpm: mean heart rate asleep (bpm).
        rsa: respiratory sinus arrhythmia, peak fraction of heart rate (0.02-0.07 at
            60 bpm; smaller at high rates).
        mayer: amplitude of the ~0.1 Hz (Mayer wave, baroreflex) heart-rate oscillation.
        drift: RMS of the slow 1/f-like heart-rate drift (periods of 30 s to 30 min).
        jitter_s: beat-to-beat timing jitter (s, RMS).
        ectopic_per_hour: premature beats per hour (most people a few, some dozens).
        rj_delay_s: delay from the ECG R-peak to the J-peak.
        breaths_per_min: mean breathing rate asleep.
        breath_cv: breath-to-breath variation of the breathing period.
        inspiration_frac: inspiration as a fraction of the breath cycle.
        sighs_per_hour: deep breaths (2-3 x) followed by a short pause.
        j_amplitude: supine J-wave amplitude in sensor units (body mass, bed).
        resp_depth: breathing amplitude (peak to trough), in supine J-wave amplitudes.
        resp_mod: modulation of the beat amplitude by breathing (fraction, peak to peak).
        diastolic_frac: the diastolic complex sits this fraction of the beat interval
            after the J-peak.
        morphology: the beat per posture.
    """

    heart_bpm: float
    rsa: float
    mayer: float
    drift: float
    jitter_s: float
    ectopic_per_hour: float
    rj_delay_s: float
    breaths_per_min: float
    breath_cv: float
    inspiration_frac: float
    sighs_per_hour: float
    j_amplitude: float
    resp_depth: float
    resp_mod: float
    diastolic_frac: float
    morphology: Mapping[str, Morphology]

    @classmethod
    def random(
        cls, seed: int, heart_bpm: float | None = None, breaths_per_min: float | None = None
    ) -> Person:
        """The sleeper of night ``seed``; ``heart_bpm`` / ``breaths_per_min`` override."""
        rng = stream(seed, "person")
        drawn_hr = float(np.clip(rng.normal(60.0, 8.0), 45.0, 85.0))
        drawn_br = float(np.clip(rng.normal(14.0, 2.5), 9.0, 22.0))
        hr = drawn_hr if heart_bpm is None else check_range("heart_bpm", heart_bpm, HEART_BPM_RANGE)
        br = (
            drawn_br
            if breaths_per_min is None
            else check_range("breaths_per_min", breaths_per_min, BREATHS_PER_MIN_RANGE)
        )
        # Heart-rate variability shrinks as the rate rises (vagal tone withdraws).
        vagal = min(1.0, 65.0 / hr)
        return cls(
            heart_bpm=hr,
            rsa=float(rng.uniform(0.02, 0.07)) * vagal,
            mayer=float(rng.uniform(0.005, 0.02)) * vagal,
            drift=float(rng.uniform(0.02, 0.05)) * vagal,
            jitter_s=float(rng.uniform(0.004, 0.012)) * vagal,
            ectopic_per_hour=float(min(rng.lognormal(np.log(3.0), 1.2), 120.0)),
            rj_delay_s=float(rng.uniform(0.20, 0.28)),
            breaths_per_min=br,
            breath_cv=float(rng.uniform(0.06, 0.15)),
            inspiration_frac=float(rng.uniform(0.36, 0.45)),
            sighs_per_hour=float(rng.uniform(2.0, 10.0)),
            j_amplitude=float(rng.uniform(0.6, 1.6)),
            resp_depth=float(rng.uniform(3.0, 10.0)),
            resp_mod=float(rng.uniform(0.1, 0.3)),
            diastolic_frac=float(rng.uniform(0.4, 0.5)),
            morphology=_morphologies(rng),
        )


def check_range(name: str, value: object, bounds: tuple[float, float]) -> float:
    """``value`` as a float within ``bounds``, or ValueError naming ``name``."""
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name}: must be a number, got {value!r}")
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{name}: must be in {lo:g}..{hi:g}, got {value!r}")
    return float(value)


# Typical systolic waves (centre s from J, width s, amplitude range relative to J).
_SYSTOLIC = (
    (-0.140, 0.028, (0.12, 0.40)),  # H: head-ward, early systole
    (-0.080, 0.024, (-0.70, -0.30)),  # I
    (0.000, 0.027, (1.00, 1.00)),  # J: the largest, ~0.2-0.3 s after the R-peak
    (0.075, 0.026, (-0.85, -0.40)),  # K
    (0.150, 0.030, (0.15, 0.40)),  # L
    (0.230, 0.035, (-0.30, -0.05)),  # M
    (0.310, 0.040, (0.00, 0.15)),  # N
)
# The diastolic complex (centre s from its own centre, width s, amplitude relative to D2).
_DIASTOLIC = ((-0.060, 0.030, -0.35), (0.000, 0.032, 1.0), (0.070, 0.035, -0.40))
# Beat amplitude and breathing amplitude of each posture relative to supine.
_POSTURE_GAIN = {
    "supine": (1.0, 1.0),
    "left": (0.6, 0.95),
    "right": (0.6, 0.95),
    "prone": (0.4, 0.7),
}
_POSTURE_RESP = {"supine": (1.0, 1.0), "left": (0.5, 0.9), "right": (0.5, 0.9), "prone": (0.8, 1.3)}


def _morphologies(rng: np.random.Generator) -> Mapping[str, Morphology]:
    """The person's beat, then one perturbation of it per posture."""
    offsets = np.array([c for c, _, _ in _SYSTOLIC] + [c for c, _, _ in _DIASTOLIC])
    widths = np.array([w for _, w, _ in _SYSTOLIC] + [w for _, w, _ in _DIASTOLIC])
    amps = np.array([rng.uniform(*r) for _, _, r in _SYSTOLIC] + [a for _, _, a in _DIASTOLIC])
    offsets[:N_SYSTOLIC] += rng.normal(0.0, 0.006, N_SYSTOLIC) * np.abs(offsets[:N_SYSTOLIC]) / 0.06
    widths *= rng.uniform(0.85, 1.2)  # a slower or quicker beat overall
    widths[J_INDEX] = rng.uniform(0.022, 0.032)
    diastolic_height = rng.uniform(0.15, 0.5)
    amps[N_SYSTOLIC:] *= diastolic_height
    out = {}
    for posture in POSTURES:
        p_off = offsets + rng.normal(0.0, 0.004, offsets.size)
        p_off[J_INDEX] = 0.0
        p_wid = widths * np.clip(1 + rng.normal(0.0, 0.08, widths.size), 0.8, 1.25)
        p_amp = amps * np.clip(1 + rng.normal(0.0, 0.2, amps.size), 0.5, 1.5)
        p_amp[J_INDEX] = 1.0
        # J stays the largest positive wave; K may grow as large as J, never larger.
        p_amp = np.where(p_amp > 0, np.minimum(p_amp, 0.6), np.maximum(p_amp, -1.0))
        p_amp[J_INDEX] = 1.0
        # I and K stay deep: the I-J-K complex is the heart of the BCG.
        p_amp[J_INDEX - 1] = min(p_amp[J_INDEX - 1], -0.3)
        p_amp[J_INDEX + 1] = min(p_amp[J_INDEX + 1], -0.4)
        p_amp = _j_dominant(p_off, p_wid, p_amp)
        p_off = _center_on_peak(p_off, p_wid, p_amp)
        gain = 1.0 if posture == "supine" else float(rng.uniform(*_POSTURE_GAIN[posture]))
        resp = 1.0 if posture == "supine" else float(rng.uniform(*_POSTURE_RESP[posture]))
        dc = 0.0 if posture == "supine" else float(rng.normal(0.0, 5.0))
        out[posture] = Morphology(p_off, p_wid, p_amp, gain, resp, dc)
    return MappingProxyType(out)


#: Seen through a cardiac band, no other peak of a beat exceeds this fraction of the
#: J-peak: the I-J-K complex dominates the BCG, wide band or narrow.
MAX_RIVAL = 0.7
_CARDIAC_BANDS_HZ = ((1.0, 20.0), (2.0, 12.0))


def _band_peaks(
    offsets: np.ndarray, widths: np.ndarray, amps: np.ndarray, band: tuple[float, float]
) -> tuple[float, float]:
    """(J-peak, highest other peak) of one beat (at 60 bpm) through ``band`` (Hz)."""
    fs, n = 500.0, 1000
    t = (np.arange(n) - n // 2) / fs
    centres = offsets.copy()
    centres[N_SYSTOLIC:] += 0.45
    spectrum = np.fft.rfft(_waves(t, centres, widths, amps))
    f = np.fft.rfftfreq(n, 1 / fs)
    lo, hi = band
    spectrum[(f < lo) | (f > hi)] = 0.0  # zero-phase brick wall: no detector's filter
    y = np.fft.irfft(spectrum, n)
    near = np.abs(t) <= 0.03
    return float(y[near].max()), float(y[~near & (np.abs(t) < 0.5)].max())


def _j_dominant(offsets: np.ndarray, widths: np.ndarray, amps: np.ndarray) -> np.ndarray:
    """Shrink the other positive waves until the J-peak dominates (see MAX_RIVAL)."""
    amps = amps.copy()
    others = (amps > 0) & (np.arange(amps.size) != J_INDEX)
    for _ in range(30):
        peaks = [_band_peaks(offsets, widths, amps, band) for band in _CARDIAC_BANDS_HZ]
        if all(rival <= MAX_RIVAL * j for j, rival in peaks):
            break
        amps[others] *= 0.9
    return amps


def _center_on_peak(offsets: np.ndarray, widths: np.ndarray, amps: np.ndarray) -> np.ndarray:
    """Shift the systolic waves so the maximum of their sum is at t = 0 exactly."""
    t = np.arange(-0.04, 0.04, 1e-4)
    sys = slice(0, N_SYSTOLIC)
    peak = t[np.argmax(_waves(t, offsets[sys], widths[sys], amps[sys]))]
    out = offsets.copy()
    out[sys] -= peak
    return out
