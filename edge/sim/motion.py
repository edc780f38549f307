"""Movement artifacts: what a MOTION segment adds on top of the heart and breathing.

Gross movement is a few large, slow body shifts (Gaussian bumps of 0.25 to 1 s, about ten
J-waves high) and many jerks (Gabor pulses of 15 to 120 ms at 0 to 6 Hz, a few J-waves
high, 8 to 25 a second): broadband energy that swamps the heartbeat, and sometimes
clips the ADC. Getting in or out of bed moves twice as hard. Every pulse lies inside its
segment, so the artifact never leaks past the MOTION label. The baseline step of a
posture change is not here: it is a level of the night (see ``levels``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._random import stream
from .scenario import Scenario, State

__all__ = ["Pulses", "movement"]

#: A pulse is evaluated up to this many widths from its centre (exp(-18) beyond).
SUPPORT_WIDTHS = 6.0


@dataclass(frozen=True)
class Pulses:
    """Gabor pulses ``a exp(-((t - c) / w)^2 / 2) cos(2 pi f (t - c) + phase)``, by centre."""

    centre_s: np.ndarray
    width_s: np.ndarray
    freq_hz: np.ndarray
    phase: np.ndarray
    amplitude: np.ndarray  #: sensor units

    @property
    def max_width_s(self) -> float:
        """The widest pulse (for finding those that reach a block)."""
        return float(self.width_s.max()) if self.width_s.size else 0.0

    def render(self, t_s: np.ndarray) -> np.ndarray:
        """The sum of the pulses reaching times ``t_s`` (sorted, one block)."""
        out = np.zeros(t_s.size)
        if self.centre_s.size == 0 or t_s.size == 0:
            return out
        reach = SUPPORT_WIDTHS * self.max_width_s
        lo = np.searchsorted(self.centre_s, t_s[0] - reach)
        hi = np.searchsorted(self.centre_s, t_s[-1] + reach, side="right")
        if hi <= lo:
            return out
        c = self.centre_s[lo:hi, None]
        w = self.width_s[lo:hi, None]
        dt = t_s[None, :] - c
        z = dt / w
        wave = np.exp(-0.5 * z * z) * np.cos(
            2 * np.pi * self.freq_hz[lo:hi, None] * dt + self.phase[lo:hi, None]
        )
        return self.amplitude[lo:hi] @ wave


def movement(seed: int, scenario: Scenario, scale: np.ndarray) -> tuple[Pulses, Pulses]:
    """The movement pulses of every MOTION segment of ``scenario``: (shifts, jerks).

    Two sets because their widths differ tenfold: a block only looks as far as the widest
    pulse of each set reaches.

    ``scale[i]`` is the size of a J-wave (sensor units) for segment ``i`` (the person's
    amplitude times the coupling), so movement scales with the body that makes it.
    """
    shifts, jerks = [], []
    segs = scenario.segments
    for i, seg in enumerate(segs):
        if seg.state is not State.MOTION:
            continue
        rng = stream(seed, "motion", i)  # one stream per segment: segments are independent
        in_out = (i > 0 and not segs[i - 1].in_bed) or (
            i + 1 < len(segs) and not segs[i + 1].in_bed
        )
        size = scale[i] * rng.lognormal(0.0, 0.5) * (2.0 if in_out else 1.0)
        length = seg.duration_s
        # Body shifts.
        n_bumps = int(np.ceil(length / 1.2))
        w = np.minimum(rng.uniform(0.25, 1.0, n_bumps), length / 8)
        shifts.append(
            Pulses(
                centre_s=seg.start_s + 3 * w + rng.random(n_bumps) * (length - 6 * w),
                width_s=w,
                freq_hz=np.zeros(n_bumps),
                phase=np.where(rng.random(n_bumps) < 0.5, 0.0, np.pi),
                amplitude=size * rng.lognormal(np.log(10.0), 0.6, n_bumps),
            )
        )
        # Jerks.
        n_jerks = int(rng.poisson(rng.uniform(8.0, 25.0) * length)) + 1
        w = np.minimum(np.exp(rng.uniform(np.log(0.015), np.log(0.12), n_jerks)), length / 10)
        jerks.append(
            Pulses(
                centre_s=seg.start_s + 4 * w + rng.random(n_jerks) * (length - 8 * w),
                width_s=w,
                freq_hz=rng.uniform(0.0, 6.0, n_jerks),
                phase=rng.uniform(0, 2 * np.pi, n_jerks),
                amplitude=size * rng.lognormal(np.log(3.0), 0.7, n_jerks),
            )
        )
    return _merge(shifts), _merge(jerks)


def _merge(parts: list[Pulses]) -> Pulses:
    """One set of pulses sorted by centre."""
    names = list(Pulses.__dataclass_fields__)
    if not parts:
        return Pulses(*(np.empty(0) for _ in names))
    fields = [np.concatenate([getattr(p, f) for p in parts]) for f in names]
    order = np.argsort(fields[0], kind="stable")
    return Pulses(*(f[order] for f in fields))
