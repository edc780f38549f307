"""The sensor and its surroundings: front-end noise, mains hum, building vibration, ADC.

These exist whether or not anybody is in bed; an empty bed shows nothing else. Levels are
in ADC counts. The ADC is 16-bit unipolar: the signal sits on a bias near mid-scale
(32768), is rounded to whole counts and clipped to 0..65535.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._random import stream

__all__ = ["ADC_MAX", "NOISE_BAND_HZ", "Sensor"]

#: Largest ADC count (16-bit unipolar converter; the smallest is 0).
ADC_MAX = 65535
#: The band in which noise levels (and so SNRs) are stated, Hz: where the J-wave lives.
NOISE_BAND_HZ = (2.0, 20.0)
#: Hum and vibration are only rendered below this fraction of fs: a real front end's
#: anti-alias filter removes what lies above, and nothing aliases.
MAX_TONE_FRACTION = 0.45
#: Spacing of the finest octave of the 1/f drift (s); the drift has little power above 1 Hz.
PINK_STEP_S = 1.0
PINK_OCTAVES = 10  # 1 s to 512 s


def band_fraction(fs: float) -> float:
    """Fraction of white noise power (per sample) that falls in :data:`NOISE_BAND_HZ`."""
    lo, hi = NOISE_BAND_HZ
    return (min(hi, fs / 2) - lo) / (fs / 2)


@dataclass(frozen=True)
class Vibration:
    """Narrow-band building vibration bursts (HVAC, pumps, traffic): one row per burst."""

    start_s: np.ndarray
    stop_s: np.ndarray
    freq_hz: np.ndarray
    amplitude: np.ndarray  #: counts, peak
    phase: np.ndarray


@dataclass(frozen=True)
class Sensor:
    """The sensor front end of one night (drawn by :meth:`random`).

    Attributes:
        fs: sampling rate, samples/s.
        gain: ADC counts per sensor unit (a supine J-wave of the median person is about
            one unit, so 80 to 300 counts).
        offset: counts at zero input: mid-scale plus the front end's bias.
        noise_counts: RMS of the front end's white noise in :data:`NOISE_BAND_HZ`, counts.
        drift_counts: RMS of its 1/f drift (mostly below 1 Hz), counts, empty bed; three
            times that with somebody in bed (mattress creep, temperature).
        mains_hz: 50 or 60 Hz; ``hum_counts`` its amplitude (a third harmonic at 0.3 x).
            Tones at or above 0.45 fs are not rendered (the anti-alias filter).
        vibration: building vibration bursts, 10 to 30 Hz (below 0.4 fs), 2 to 120 s.
    """

    fs: float
    gain: float
    offset: int
    noise_counts: float
    drift_counts: float
    mains_hz: float
    hum_counts: float
    hum_phase: float
    vibration: Vibration
    drift_grid: np.ndarray  #: unit-RMS 1/f drift every PINK_STEP_S seconds

    @classmethod
    def random(cls, seed: int, fs: float, duration_s: float) -> Sensor:
        """The sensor of night ``seed``."""
        rng = stream(seed, "sensor")
        gain = float(np.exp(rng.uniform(np.log(80.0), np.log(300.0))))
        offset = 32768 + int(rng.integers(-3000, 3001))
        noise = float(rng.uniform(0.6, 2.0))
        drift = float(rng.uniform(2.0, 8.0))
        mains = 50.0 if rng.random() < 0.6 else 60.0
        hum = float(rng.uniform(0.5, 4.0))
        hum_phase = float(rng.uniform(0, 2 * np.pi))
        # Bursts at 2 to 12 an hour, log-normal lengths around 10 s.
        n = int(rng.poisson(rng.uniform(2.0, 12.0) * duration_s / 3600.0))
        start = np.sort(rng.uniform(-60.0, duration_s, n))
        length = np.clip(rng.lognormal(np.log(10.0), 1.0, n), 2.0, 120.0)
        top = min(30.0, 0.4 * fs)
        vibration = Vibration(
            start_s=start,
            stop_s=start + length,
            freq_hz=rng.uniform(10.0, top, n),
            amplitude=np.exp(rng.uniform(0.0, np.log(30.0), n)),
            phase=rng.uniform(0, 2 * np.pi, n),
        )
        return cls(
            fs=float(fs),
            gain=gain,
            offset=offset,
            noise_counts=noise,
            drift_counts=drift,
            mains_hz=mains,
            hum_counts=hum,
            hum_phase=hum_phase,
            vibration=vibration,
            drift_grid=_pink(rng, duration_s),
        )

    @property
    def hum_tones(self) -> tuple[tuple[float, float], ...]:
        """(frequency Hz, amplitude counts) of the hum tones actually rendered."""
        tones = ((self.mains_hz, self.hum_counts), (3 * self.mains_hz, 0.3 * self.hum_counts))
        return tuple(t for t in tones if t[0] < MAX_TONE_FRACTION * self.fs)

    @property
    def quantization_counts(self) -> float:
        """RMS of the rounding noise in :data:`NOISE_BAND_HZ`, counts."""
        return float(np.sqrt(band_fraction(self.fs) / 12.0))

    def floor_counts(self) -> float:
        """RMS in :data:`NOISE_BAND_HZ` of the noise always present: front end + rounding."""
        return float(np.hypot(self.noise_counts, self.quantization_counts))


def _pink(rng: np.random.Generator, duration_s: float) -> np.ndarray:
    """1/f-like drift on a 1 s grid: equal power per octave (linear-interpolated knots)."""
    n = int(np.ceil(duration_s / PINK_STEP_S)) + 2
    grid = np.arange(n, dtype=np.float64)
    out = np.zeros(n)
    for octave in range(PINK_OCTAVES):
        step = 2**octave
        knots = rng.standard_normal(n // step + 2)
        out += np.interp(grid, np.arange(knots.size) * step, knots)
    return out / np.sqrt(PINK_OCTAVES * 0.8)  # ~unit RMS (interpolation keeps ~0.8 of it)
