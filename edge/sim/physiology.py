"""Breath and heartbeat timing for a whole night (seconds; no samples yet).

Breathing is drawn breath by breath (rate with slow drift and sleep-stage changes,
breath-to-breath variation, sighs, no breathing in apnea and recovery breaths after it).
Heartbeats come from an integral pulse-frequency model: the instantaneous heart rate is
the person's mean times sleep stage, slow 1/f-like drift, the ~0.1 Hz Mayer wave,
arousals after movement, the apnea response (slowing in the pause, a surge after) and
respiratory sinus arrhythmia locked to the breathing phase; a beat falls each time its
integral crosses a whole number. Premature (ectopic) beats with a full compensatory pause
are then inserted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .person import Person
from .scenario import Scenario, State

__all__ = ["Breathing", "Heartbeats", "breathe", "beat"]

#: Instantaneous heart rate never leaves this range (bpm), whatever the modulation.
HR_LIMITS = (32.0, 175.0)
_GRID_S = 0.1  # the heart-rate model is integrated on this grid (RSA at 30/min is resolved)


@dataclass(frozen=True)
class Breathing:
    """Every breath of the night, in time order (arrays of one value per breath).

    A breath is an inspiration (raised-cosine rise over ``inspiration_frac`` of the cycle)
    then a passive expiration back to the resting level, which it holds for the last 15 %
    of the cycle. Between breaths that do not abut (apnea, the pause after a sigh) the
    lungs stay at rest.
    """

    onset_s: np.ndarray  #: start of inspiration
    period_s: np.ndarray  #: cycle length
    inspiration_frac: np.ndarray  #: inspiration as a fraction of the cycle
    depth: np.ndarray  #: depth relative to the person's usual breath

    @property
    def peak_s(self) -> np.ndarray:
        """Ends of inspiration (the breath times of the ground truth)."""
        return self.onset_s + self.inspiration_frac * self.period_s

    def _cycle(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(breath index, phase 0..1, inside a cycle) for each time."""
        i = np.searchsorted(self.onset_s, t_s, side="right") - 1
        ii = np.maximum(i, 0)
        if self.onset_s.size == 0:
            zero = np.zeros(np.shape(t_s))
            return ii, zero, zero.astype(bool)
        phase = (t_s - self.onset_s[ii]) / self.period_s[ii]
        inside = (i >= 0) & (phase < 1.0)
        return ii, np.where(inside, phase, 0.0), inside

    def volume(self, t_s: np.ndarray) -> np.ndarray:
        """Lung volume above the resting level (0 at rest, ``depth`` at end of inspiration)."""
        i, phase, inside = self._cycle(np.asarray(t_s, dtype=np.float64))
        if not inside.any():
            return np.zeros(np.shape(t_s))
        f = self.inspiration_frac[i]
        rising = phase < f
        # Rise 0.5 - 0.5 cos(pi x), fall 0.5 + 0.5 cos(pi y): one cosine per sample.
        x = np.where(rising, phase / f, (phase - f) / (0.85 * (1.0 - f)))
        cos = np.cos(np.pi * np.minimum(x, 1.0))
        shape = np.where(rising, 0.5 - 0.5 * cos, 0.5 + 0.5 * cos)
        return np.where(inside, self.depth[i] * shape, 0.0)

    def phase(self, t_s: np.ndarray) -> np.ndarray:
        """Phase in the breath cycle (0 at onset, 1 at the next); NaN between breaths."""
        _, phase, inside = self._cycle(np.asarray(t_s, dtype=np.float64))
        return np.where(inside, phase, np.nan)


@dataclass(frozen=True)
class Heartbeats:
    """Every heartbeat of the night (J-peak times and their flags)."""

    j_s: np.ndarray  #: J-peak times, seconds
    ectopic: np.ndarray  #: premature beat
    post_ectopic: np.ndarray  #: the beat after a premature one (larger stroke volume)


def in_bed_spans(scenario: Scenario) -> list[tuple[float, float]]:
    """[start, stop) of the stretches with somebody in bed (consecutive non-EMPTY segments)."""
    spans: list[tuple[float, float]] = []
    for seg in scenario:
        if seg.state is State.EMPTY:
            continue
        if spans and spans[-1][1] == seg.start_s:
            spans[-1] = (spans[-1][0], seg.stop_s)
        else:
            spans.append((seg.start_s, seg.stop_s))
    return spans


def _slow_sines(rng: np.random.Generator, t: np.ndarray, rms: float, periods: tuple) -> np.ndarray:
    """A 1/f-like slow process: sines at log-uniform periods, amplitude ~ sqrt(period)."""
    p = np.exp(rng.uniform(np.log(periods[0]), np.log(periods[1]), periods[2]))
    a = np.sqrt(p)
    a *= rms * np.sqrt(2.0) / np.sqrt(np.sum(a * a))
    phases = rng.uniform(0, 2 * np.pi, p.size)
    out = np.zeros_like(t)
    for pk, ak, phk in zip(p, a, phases, strict=True):
        out += ak * np.sin(2 * np.pi * t / pk + phk)
    return out


@dataclass(frozen=True)
class SleepStages:
    """A hypnogram-like schedule: light, deep and REM sleep in ~90 min cycles."""

    knots_s: np.ndarray
    hr_factor: np.ndarray  #: heart rate relative to light sleep
    br_factor: np.ndarray  #: breathing rate relative to light sleep
    cv_factor: np.ndarray  #: breath-to-breath irregularity relative to light sleep

    @classmethod
    def random(cls, rng: np.random.Generator, duration_s: float) -> SleepStages:
        # (name, hr, breathing rate, irregularity); deep sleep early, REM late in the night
        stages = {
            "N1": (1.03, 1.02, 1.3),
            "N2": (1.00, 1.00, 1.0),
            "N3": (0.94, 0.95, 0.5),
            "REM": (1.05, 1.08, 1.8),
        }
        t, knots, values = 0.0, [], []
        while t < duration_s:
            late = min(t / max(duration_s, 1.0), 1.0)
            for name, minutes in (
                ("N1", rng.uniform(2, 8)),
                ("N2", rng.uniform(10, 25)),
                ("N3", rng.uniform(5, 30) * (1.0 - 0.8 * late)),
                ("N2", rng.uniform(5, 15)),
                ("REM", rng.uniform(5, 30) * (0.4 + late)),
            ):
                length = 60.0 * minutes
                ramp = min(60.0, length / 3)  # stages change over about a minute
                knots += [t + ramp / 2, t + length - ramp / 2]
                values += [stages[name]] * 2
                t += length
        v = np.array(values)
        return cls(np.array(knots), v[:, 0], v[:, 1], v[:, 2])

    def at(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hr, breathing rate, irregularity) factors at times ``t_s``."""
        return tuple(
            np.interp(t_s, self.knots_s, v)
            for v in (self.hr_factor, self.br_factor, self.cv_factor)
        )


def breathe(
    person: Person, scenario: Scenario, stages: SleepStages, rng: np.random.Generator
) -> Breathing:
    """All the breaths of the night: only in bed, none inside an apnea segment."""
    apneas = [(seg.start_s, seg.stop_s) for seg in scenario if seg.apnea]
    # Merge abutting apnea segments (a state change inside a pause does not end it).
    merged: list[tuple[float, float]] = []
    for a in apneas:
        if merged and merged[-1][1] == a[0]:
            merged[-1] = (merged[-1][0], a[1])
        else:
            merged.append(a)
    grid = np.arange(0.0, scenario.duration_s + 60.0, 10.0)
    drift = 1.0 + _slow_sines(rng, grid, 0.06, (300.0, 3600.0, 4))
    base_period = 60.0 / person.breaths_per_min
    onset, period, insp, depth = [], [], [], []
    k = 0  # next apnea
    for start, stop in in_bed_spans(scenario):
        t = start + rng.uniform(0.0, base_period)
        recovery = 0
        while True:
            while k < len(merged) and merged[k][1] <= t:
                k += 1
            if k < len(merged) and merged[k][0] <= t:  # in a pause: breathe again after it
                t, recovery = merged[k][1], int(rng.integers(3, 6))
                continue
            _, br_f, cv_f = stages.at(t)
            rate = np.interp(t, grid, drift) * br_f * (1.3 if recovery else 1.0)
            cv = person.breath_cv * cv_f
            p = float(np.clip(base_period / rate * (1.0 + cv * rng.standard_normal()), 1.6, 15.0))
            d = float(np.clip(1.0 + 0.12 * rng.standard_normal(), 0.4, 1.6))
            pause = 0.0
            if recovery:  # deep, quick breaths after an apnea
                d *= rng.uniform(1.5, 2.2)
                recovery -= 1
            elif rng.random() < person.sighs_per_hour * p / 3600.0:
                d *= rng.uniform(2.0, 3.0)
                p *= 1.5
                pause = rng.uniform(2.0, 6.0)  # the post-sigh pause
            next_apnea = merged[k][0] if k < len(merged) else np.inf
            if t + p > next_apnea:  # the last breath before a pause must end in time
                if next_apnea - t >= 0.7 * p:
                    p = next_apnea - t
                else:
                    t = next_apnea
                    continue
            if t + p > stop:
                break
            onset.append(t)
            period.append(p)
            insp.append(
                float(np.clip(person.inspiration_frac + 0.02 * rng.standard_normal(), 0.3, 0.5))
            )
            depth.append(d)
            t += p + pause
    return Breathing(*(np.array(v, dtype=np.float64) for v in (onset, period, insp, depth)))


def beat(
    person: Person,
    scenario: Scenario,
    stages: SleepStages,
    breathing: Breathing,
    rng: np.random.Generator,
) -> Heartbeats:
    """All the heartbeats of the night (J-peak times), including those in movement.

    Beats while the bed is empty are dropped: the truth only holds beats the sensor could
    see.
    """
    duration = scenario.duration_s
    t = np.arange(-2.0, duration + 3.0, _GRID_S)
    hr_stage, _, _ = stages.at(t)
    drift = _slow_sines(rng, t, person.drift, (30.0, 1800.0, 8))
    mayer_f = rng.uniform(0.07, 0.12, 2)
    mayer = sum(
        person.mayer / np.sqrt(2) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        for f in mayer_f
    )
    events = np.zeros_like(t)
    segs = scenario.segments
    for i, seg in enumerate(segs):
        if seg.state is State.MOTION and (i > 0 and segs[i - 1].in_bed):
            # Arousal: the heart speeds up during the movement and settles over ~30 s.
            events += _bump(t, seg.start_s, seg.stop_s, rng.uniform(0.05, 0.2), rng.uniform(15, 40))
        if seg.apnea and not (i > 0 and segs[i - 1].apnea):
            stop = seg.stop_s
            for nxt in segs[i + 1 :]:
                if not nxt.apnea:
                    break
                stop = nxt.stop_s
            # Bradycardia during the pause, a surge with the recovery breaths.
            events -= _bump(t, seg.start_s, stop, rng.uniform(0.03, 0.08), 3.0)
            events += _bump(t, stop, stop + 5.0, rng.uniform(0.06, 0.15), 10.0)
    # RSA: heart rate peaks near the end of inspiration and dips in expiration.
    phase = breathing.phase(t)
    f_insp = person.inspiration_frac
    rsa_scale = float(np.clip(14.0 / person.breaths_per_min, 0.6, 1.6))  # slower -> larger
    rsa = (
        person.rsa
        * rsa_scale
        * np.where(np.isnan(phase), 0.0, np.cos(2 * np.pi * (np.nan_to_num(phase) - f_insp)))
    )
    hr = person.heart_bpm * hr_stage * (1 + drift) * (1 + mayer) * (1 + events) * (1 + rsa)
    lo = max(HR_LIMITS[0], 0.7 * person.heart_bpm)
    hi = min(HR_LIMITS[1], 1.3 * person.heart_bpm)
    hr = np.clip(hr, lo, hi)
    # Integral pulse-frequency modulation: a beat at each whole number of the integral.
    cycles = np.concatenate([[0.0], np.cumsum(0.5 * (hr[1:] + hr[:-1]) / 60.0 * _GRID_S)])
    cycles += rng.uniform(0.0, 1.0)
    k = np.arange(np.ceil(cycles[0]), np.floor(cycles[-1]) + 1)
    r = np.interp(k, cycles, t)
    r += person.jitter_s * rng.standard_normal(r.size)
    r = np.sort(r)
    # Premature beats: earlier by 20-45 % of the interval; the next beat keeps its time
    # (full compensatory pause). Never two in a row.
    n = r.size
    ectopic = np.zeros(n, dtype=bool)
    if n > 2:
        p = person.ectopic_per_hour * (60.0 / person.heart_bpm) / 3600.0
        chosen = np.flatnonzero(rng.random(n) < p)
        chosen = chosen[(chosen > 0) & (chosen < n - 1)]
        keep = np.ones(chosen.size, dtype=bool)
        keep[1:] = np.diff(chosen) > 2
        chosen = chosen[keep]
        normal = r[chosen] - r[chosen - 1]
        # Coupling interval 55-80 % of the normal one, never under 0.3 s.
        coupling = np.maximum(
            rng.uniform(0.55, 0.8, chosen.size) * normal, np.minimum(0.3, 0.9 * normal)
        )
        r[chosen] = r[chosen - 1] + coupling
        ectopic[chosen] = True
    post = np.zeros(n, dtype=bool)
    post[1:] = ectopic[:-1]
    j = r + person.rj_delay_s
    keep = np.zeros(n, dtype=bool)
    for start, stop in in_bed_spans(scenario):
        keep |= (j >= start) & (j < stop)
    return Heartbeats(j[keep], ectopic[keep], post[keep])


def _bump(t: np.ndarray, start: float, stop: float, height: float, tau: float) -> np.ndarray:
    """0 before ``start``, linear rise to ``height`` at ``stop``, then exponential decay."""
    out = np.zeros_like(t)
    rise = (t >= start) & (t < stop)
    out[rise] = height * (t[rise] - start) / max(stop - start, 1e-9)
    after = (t >= stop) & (t < stop + 8 * tau)
    out[after] = height * np.exp(-(t[after] - stop) / tau)
    return out
