"""Periodic signals that are not a person (issue 15, item 3): an empty bed next to a machine.

A pump, a fan or a ticking relay shakes a bed at a steady rate in the heart-rate range. The
unit must never store a heart rate for one. Each generator returns ``duration_s`` of samples
at ``fs`` with unit amplitude about zero; :func:`machine_runs` lists the cases scored (each
at a few gains and offsets, at 250 Hz and at 50 Hz). Seeded: the same arguments give the
same samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["MACHINES", "MachineRun", "clicks", "fan", "machine_runs", "pump", "sine", "square"]

#: Length of each machine record (s): twelve 10 s epochs.
DURATION_S = 120.0


def _t(fs: float, duration_s: float) -> np.ndarray:
    return np.arange(int(round(fs * duration_s))) / fs


def sine(fs: float, duration_s: float = DURATION_S, hz: float = 1.0, seed: int = 0) -> np.ndarray:
    """A pure sine at ``hz`` (a motor's unbalance)."""
    return np.sin(2.0 * np.pi * hz * _t(fs, duration_s))


def square(fs: float, duration_s: float = DURATION_S, hz: float = 1.0, seed: int = 0) -> np.ndarray:
    """A square wave at ``hz`` (a relay or a valve switching)."""
    return np.where(np.sin(2.0 * np.pi * hz * _t(fs, duration_s)) >= 0.0, 1.0, -1.0)


def clicks(
    fs: float, duration_s: float = DURATION_S, per_min: float = 75.0, seed: int = 0
) -> np.ndarray:
    """Mechanical clicks at exactly ``per_min`` a minute (a relay, a clock's tick): each a
    knock ringing at 15 Hz that decays in 20 ms, sharp at any rate from 50 Hz up."""
    period = 60.0 / per_min
    t = _t(fs, duration_s)
    # Time since the last click; the small nudge keeps a sample that falls on a click (t a
    # multiple of the period, in floating point just below it) from missing that click.
    since = t - np.floor(t / period + 1e-9) * period
    return np.exp(-since / 0.02) * np.cos(2.0 * np.pi * 15.0 * since)


def fan(fs: float, duration_s: float = DURATION_S, hz: float = 1.3, seed: int = 0) -> np.ndarray:
    """A fan's vibration: a sine at ``hz`` whose amplitude (+-20 %) and phase wander
    slowly, plus broadband noise at a third of its level."""
    rng = np.random.default_rng(seed)
    t = _t(fs, duration_s)
    n = t.size

    def wander(sd: float) -> np.ndarray:  # a smooth random walk, one step a second
        knots = np.cumsum(rng.normal(0.0, sd, int(duration_s) + 2))
        return np.interp(t, np.arange(knots.size), knots)

    amplitude = 1.0 + np.clip(wander(0.05), -0.2, 0.2)
    phase = wander(0.1)
    return amplitude * np.sin(2.0 * np.pi * hz * t + phase) + rng.normal(0.0, 0.33, n)


def pump(fs: float, duration_s: float = DURATION_S, hz: float = 0.8, seed: int = 0) -> np.ndarray:
    """A pump's pressure pulses at ``hz``: a fast rise over 15 % of the cycle and an
    exponential fall, with a little noise."""
    rng = np.random.default_rng(seed)
    phase = np.mod(_t(fs, duration_s) * hz, 1.0)
    rise = 0.15
    wave = np.where(phase < rise, phase / rise, np.exp(-(phase - rise) / 0.2))
    return wave - wave.mean() + rng.normal(0.0, 0.02, phase.size)


#: The generators by name, each with its rate in Hz (the rate the unit must not report).
MACHINES: dict[str, tuple[Callable[..., np.ndarray], float]] = {
    "sine 1 Hz": (sine, 1.0),
    "square 1 Hz": (square, 1.0),
    "clicks 75/min": (clicks, 1.25),
    "fan 1.3 Hz": (fan, 1.3),
    "pump 0.8 Hz": (pump, 0.8),
}


@dataclass(frozen=True)
class MachineRun:
    """One machine record to replay: ``gain`` times the generator plus ``offset``, at ``fs``."""

    machine: str
    fs: float
    gain: float
    offset: float = 0.0

    @property
    def name(self) -> str:
        """E.g. ``"fan 1.3 Hz x100+2000 @250"``."""
        level = f"x{self.gain:g}" + (f"+{self.offset:g}" if self.offset else "")
        return f"{self.machine} {level} @{self.fs:g}"

    def samples(self, seed: int = 0) -> np.ndarray:
        """The record's samples (float64)."""
        make, _ = MACHINES[self.machine]
        return self.gain * make(self.fs, seed=seed) + self.offset


def machine_runs() -> list[MachineRun]:
    """Every machine at 250 Hz as volts (x0.01), as 12-bit-like counts about 2000 (x100)
    and as large counts (x1e4); and every machine at 50 Hz as counts about 2000."""
    levels = ((0.01, 0.0), (100.0, 2000.0), (1e4, 0.0))
    out = [MachineRun(m, 250.0, g, o) for m in MACHINES for g, o in levels]
    out += [MachineRun(m, 50.0, 100.0, 2000.0) for m in MACHINES]
    return out
