"""Turning a night's plan into ADC samples, one fixed block at a time.

Samples are only ever computed a whole block at a time (block ``b`` covers samples
``[b * size, (b + 1) * size)``) from the plan and generators seeded by ``(seed, b)``: a
sample therefore has one value whatever chunks it is asked for in, bit for bit, and a
block costs the same wherever it lies in the night. Only the beats, movement pulses and
vibration bursts that reach a block are evaluated for it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ._random import stream
from .motion import SUPPORT_WIDTHS, Pulses
from .physiology import Breathing
from .sensor import ADC_MAX, PINK_STEP_S, Sensor, band_fraction

__all__ = ["Beats", "Levels", "Plan", "render_block", "to_adc"]

#: Vibration bursts fade in and out over this long (raised cosine), s.
VIBRATION_TAPER_S = 1.0
#: Body noise (mattress, small movements) has little power above this (Hz); the front
#: end's own noise is white up to fs/2.
BODY_NOISE_TOP_HZ = 40.0


def lowpass_taps(fs: float) -> np.ndarray:
    """FIR low-pass (Hann-windowed sinc) at BODY_NOISE_TOP_HZ, unit DC gain.

    A single tap (no filtering) when fs is too low for the cut-off to matter.
    """
    cutoff = BODY_NOISE_TOP_HZ / fs
    if cutoff >= 0.45:
        return np.ones(1)
    half = int(np.ceil(2.0 / cutoff))  # ~4 periods of the cut-off: a clean transition
    k = np.arange(-half, half + 1)
    taps = np.sinc(2 * cutoff * k) * (0.5 + 0.5 * np.cos(np.pi * k / (half + 1)))
    return taps / taps.sum()


@dataclass(frozen=True)
class Levels:
    """Piecewise-linear levels over the night (knots in seconds, one value per knot)."""

    knots_s: np.ndarray
    resp: np.ndarray  #: breathing amplitude, sensor units
    dc: np.ndarray  #: baseline, sensor units
    body_noise: np.ndarray  #: RMS per sample of the body noise's white input, counts
    drift: np.ndarray  #: 1/f drift RMS, counts


@dataclass(frozen=True)
class Beats:
    """Every beat's waves: centre times and per-wave offsets, widths, amplitudes (units)."""

    centre_s: np.ndarray  #: (n,) J-peak times
    offsets_s: np.ndarray  #: (n, waves) relative to the J-peak
    widths_s: np.ndarray  #: (n, waves)
    amplitudes: np.ndarray  #: (n, waves)

    def reach(self) -> tuple[float, float]:
        """How far before and after its J-peak a beat is non-negligible (s)."""
        if self.centre_s.size == 0:
            return 0.0, 0.0
        lo = self.offsets_s - SUPPORT_WIDTHS * self.widths_s
        hi = self.offsets_s + SUPPORT_WIDTHS * self.widths_s
        return float(max(0.0, -lo.min())), float(max(0.0, hi.max()))

    def render(self, t_s: np.ndarray, before: float, after: float) -> np.ndarray:
        """The sum of the beats reaching times ``t_s`` (sorted, one block)."""
        lo = np.searchsorted(self.centre_s, t_s[0] - after)
        hi = np.searchsorted(self.centre_s, t_s[-1] + before, side="right")
        if hi <= lo:
            return np.zeros(t_s.size)
        centres = self.centre_s[lo:hi, None] + self.offsets_s[lo:hi]  # (k, waves)
        z = (t_s[None, None, :] - centres[:, :, None]) / self.widths_s[lo:hi, :, None]
        waves = np.exp(-0.5 * z * z)  # (k, waves, n)
        return np.einsum("kw,kwn->n", self.amplitudes[lo:hi], waves)


@dataclass(frozen=True)
class Plan:
    """Everything a block needs, decided when the night is made."""

    seed: int
    fs: float
    n_samples: int
    block: int  #: samples per block
    sensor: Sensor
    levels: Levels
    breathing: Breathing
    beats: Beats
    shifts: Pulses
    jerks: Pulses
    beat_reach: tuple[float, float] = field(init=False)  #: from Beats.reach()
    body_taps: np.ndarray = field(init=False)  #: from lowpass_taps(fs)

    def __post_init__(self) -> None:
        object.__setattr__(self, "beat_reach", self.beats.reach())
        taps = lowpass_taps(self.fs)
        if taps.size - 1 > self.block:
            raise ValueError(f"block: {self.block} samples is shorter than the noise filter")
        object.__setattr__(self, "body_taps", taps)

    @property
    def n_blocks(self) -> int:
        """Blocks in the night (the last one may be short)."""
        return -(-self.n_samples // self.block)


def to_adc(counts: np.ndarray) -> np.ndarray:
    """Round to whole counts and clip to the converter's range 0..ADC_MAX (int32)."""
    return np.clip(np.rint(counts), 0, ADC_MAX).astype(np.int32)


def render_block(plan: Plan, b: int) -> np.ndarray:
    """ADC counts (int32) of block ``b``."""
    start = b * plan.block
    stop = min(start + plan.block, plan.n_samples)
    index = np.arange(start, stop, dtype=np.int64)
    t = index / plan.fs
    lv = plan.levels
    sensor = plan.sensor
    # The body, in sensor units: breathing, baseline, heartbeats, movement.
    body = np.interp(t, lv.knots_s, lv.resp) * plan.breathing.volume(t)
    body += np.interp(t, lv.knots_s, lv.dc)
    body += plan.beats.render(t, *plan.beat_reach)
    body += plan.shifts.render(t)
    body += plan.jerks.render(t)
    counts = sensor.offset + sensor.gain * body
    # Noise, in counts, from generators of this block (and the one before: the body
    # noise is filtered across the block boundary).
    counts += np.interp(t, lv.knots_s, lv.body_noise) * _body_noise(plan, b)[: t.size]
    white = stream(plan.seed, "sensor noise", b).standard_normal(t.size)
    counts += sensor.noise_counts / np.sqrt(band_fraction(plan.fs)) * white
    # Linear interpolation on the uniform drift grid (t >= 0, so floor is the knot before).
    pos = t / PINK_STEP_S
    knot = np.minimum(pos.astype(np.int64), sensor.drift_grid.size - 2)
    frac = pos - knot
    drift = sensor.drift_grid[knot] * (1.0 - frac) + sensor.drift_grid[knot + 1] * frac
    counts += np.interp(t, lv.knots_s, lv.drift) * drift
    for freq, amp in sensor.hum_tones:
        # Phase from the integer sample index: exact however far into the night.
        cycles = (index * freq / plan.fs) % 1.0
        counts += amp * np.sin(2 * np.pi * cycles + sensor.hum_phase)
    counts += _vibration(sensor, t)
    return to_adc(counts)


def _body_noise(plan: Plan, b: int) -> np.ndarray:
    """Low-passed white noise (unit RMS input) for block ``b``, continuous across blocks.

    The filter runs over the tail of block ``b - 1``'s white noise and all of block
    ``b``'s, both regenerated from their own seeds, so it needs no state.
    """
    taps = plan.body_taps
    # Stream b + 1 is block b's own noise, stream b the one before (0 before block 0).
    white = _white(plan.seed, b + 1, plan.block)
    if taps.size == 1:
        return white
    before = _white(plan.seed, b, plan.block)
    history = before[plan.block - (taps.size - 1) :]
    return np.convolve(np.concatenate([history, white]), taps, mode="valid")


@functools.lru_cache(maxsize=4)
def _white(seed: int, index: int, size: int) -> np.ndarray:
    """Body-noise input number ``index`` (cached: consecutive blocks share one)."""
    white = stream(seed, "body noise", index).standard_normal(size)
    white.flags.writeable = False
    return white


def _vibration(sensor: Sensor, t: np.ndarray) -> np.ndarray:
    vib = sensor.vibration
    out = np.zeros(t.size)
    near = np.flatnonzero((vib.start_s < t[-1]) & (vib.stop_s > t[0]))
    for k in near:
        s, e = vib.start_s[k], vib.stop_s[k]
        taper = min(VIBRATION_TAPER_S, (e - s) / 2)
        env = np.clip(np.minimum(t - s, e - t) / taper, 0.0, 1.0)
        env = 0.5 - 0.5 * np.cos(np.pi * env)
        out += vib.amplitude[k] * env * np.sin(2 * np.pi * vib.freq_hz[k] * (t - s) + vib.phase[k])
    return out
