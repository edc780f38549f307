"""The night's timeline: contiguous segments, each with a bed state and a posture.

A :class:`Scenario` is independent of the sampling rate (times are seconds) and of the
person: it says *when* the bed is empty, the sleeper moves, lies badly coupled or sleeps
still, and where breathing pauses. :meth:`Scenario.random` draws a realistic night;
:meth:`Scenario.constant` and :meth:`Scenario.chain` build controlled ones for tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

import numpy as np

from ._random import stream

__all__ = [
    "GOOD_MIN_SNR_DB",
    "POOR_MAX_SNR_DB",
    "POSTURES",
    "Scenario",
    "Segment",
    "State",
]

#: Lying positions. Left/right are the lateral decubitus positions.
POSTURES = ("supine", "left", "right", "prone")

#: A GOOD segment has a J-wave SNR of at least this (dB, see :class:`Segment`): every beat
#: stands out of the noise (the beats of a typical sleeper are all found at this level).
GOOD_MIN_SNR_DB = 16.0
#: A POOR segment has a J-wave SNR of at most this (dB): the beats are there but many are
#: lost in the noise. Between the two limits no segment is drawn, so the labels are
#: unambiguous.
POOR_MAX_SNR_DB = 8.0


class State(IntEnum):
    """Bed state label of a sample or segment (the classes the unit reports)."""

    EMPTY = 0  #: nobody in bed: sensor noise, mains hum, building vibration only
    MOTION = 1  #: gross body movement (posture change, getting in or out, twitch)
    POOR = 2  #: in bed and still, but the heartbeat is too weak against the noise
    GOOD = 3  #: in bed, still, beats clearly visible

    @property
    def label(self) -> str:
        """Lower-case name: 'empty', 'motion', 'poor' or 'good'."""
        return self.name.lower()

    def __str__(self) -> str:
        return self.label

    @classmethod
    def parse(cls, value: State | int | str) -> State:
        """A State from itself, its value (0..3) or its name (any case)."""
        if isinstance(value, State):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        elif isinstance(value, int | np.integer) and not isinstance(value, bool):
            try:
                return cls(int(value))
            except ValueError:
                pass
        names = ", ".join(s.label for s in cls)
        raise ValueError(f"state: must be one of {names} (or 0..3), got {value!r}")


@dataclass(frozen=True)
class Segment:
    """A stretch of the night ``[start_s, stop_s)`` with one state.

    Attributes:
        start_s, stop_s: seconds from the start of the night.
        state: the ground-truth label of every sample in the segment.
        posture: one of :data:`POSTURES`; ``None`` for EMPTY (and the default for it).
            In bed it defaults to 'supine'. For MOTION it is the posture the person
            ends in (the one before, when getting out of bed).
        snr_db: J-wave SNR: 20 log10 of the J-wave amplitude over the RMS of the
            broadband noise in the 2-20 Hz band (sensor plus body noise; the narrow-band
            hum and building vibration are not counted). ``None``: drawn by the night
            (GOOD from the night's noise level, POOR between -6 dB and
            :data:`POOR_MAX_SNR_DB`). Only for GOOD (>= :data:`GOOD_MIN_SNR_DB`) and
            POOR (<= :data:`POOR_MAX_SNR_DB`).
        coupling: how well the body couples into the sensor, 0 < coupling <= 1: 1 at the
            centre of the mattress, 0.15 to 0.4 lying at its edge (every body signal,
            heartbeat, breathing and movement, is scaled by it).
        apnea: breathing paused (GOOD or POOR only): no breathing movement and no
            breaths in the truth; the heart goes on.
    """

    start_s: float
    stop_s: float
    state: State
    posture: str | None = None
    snr_db: float | None = None
    coupling: float = 1.0
    apnea: bool = False

    def __post_init__(self) -> None:
        state = State.parse(self.state)
        object.__setattr__(self, "state", state)
        for name in ("start_s", "stop_s", "coupling"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise ValueError(f"{name}: must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name}: must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.start_s < 0:
            raise ValueError(f"start_s: must be >= 0, got {self.start_s:g}")
        if self.stop_s <= self.start_s:
            raise ValueError(
                f"stop_s: must be after start_s = {self.start_s:g}, got {self.stop_s:g}"
            )
        if state is State.EMPTY:
            if self.posture is not None:
                raise ValueError(f"posture: an empty bed has none, got {self.posture!r}")
        elif self.posture is None:
            object.__setattr__(self, "posture", "supine")
        elif self.posture not in POSTURES:
            raise ValueError(f"posture: must be one of {', '.join(POSTURES)}, got {self.posture!r}")
        if not 0.0 < self.coupling <= 1.0:
            raise ValueError(f"coupling: must be in (0, 1], got {self.coupling:g}")
        if self.apnea and state not in (State.GOOD, State.POOR):
            raise ValueError(f"apnea: only in a good or poor segment, not {state.label}")
        object.__setattr__(self, "apnea", bool(self.apnea))
        if self.snr_db is not None:
            snr = self.snr_db
            if isinstance(snr, bool) or not isinstance(snr, int | float | np.number):
                raise ValueError(f"snr_db: must be a number or None, got {snr!r}")
            if not math.isfinite(snr):
                raise ValueError(f"snr_db: must be finite, got {snr!r}")
            if state is State.GOOD and snr < GOOD_MIN_SNR_DB:
                raise ValueError(
                    f"snr_db: a good segment needs >= {GOOD_MIN_SNR_DB:g} dB, got {snr:g}"
                )
            if state is State.POOR and snr > POOR_MAX_SNR_DB:
                raise ValueError(
                    f"snr_db: a poor segment needs <= {POOR_MAX_SNR_DB:g} dB, got {snr:g}"
                )
            if state in (State.EMPTY, State.MOTION):
                raise ValueError(f"snr_db: only for good or poor segments, not {state.label}")
            object.__setattr__(self, "snr_db", float(snr))

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.stop_s - self.start_s

    @property
    def in_bed(self) -> bool:
        """True unless the bed is empty."""
        return self.state is not State.EMPTY


class Scenario:
    """A night's plan: contiguous :class:`Segment` s from 0 to ``duration_s``.

    Example:
        >>> Scenario.chain([(60, "good", "supine"), (8, "motion", "left"), (120, "good", "left")])
    """

    def __init__(self, segments: Iterable[Segment]) -> None:
        segs = tuple(segments)
        if not segs:
            raise ValueError("segments: a scenario needs at least one segment")
        for i, seg in enumerate(segs):
            if not isinstance(seg, Segment):
                raise ValueError(f"segments[{i}]: must be a Segment, got {type(seg).__name__}")
        if segs[0].start_s != 0.0:
            raise ValueError(f"segments[0]: must start at 0 s, starts at {segs[0].start_s:g}")
        for i in range(1, len(segs)):
            if segs[i].start_s != segs[i - 1].stop_s:
                raise ValueError(
                    f"segments[{i}]: must start where the previous one stops "
                    f"({segs[i - 1].stop_s:g} s), starts at {segs[i].start_s:g}"
                )
        self._segments = segs

    # --- views ---------------------------------------------------------------------------

    @property
    def segments(self) -> tuple[Segment, ...]:
        """The segments in time order."""
        return self._segments

    @property
    def duration_s(self) -> float:
        """Length of the night in seconds (the stop of the last segment)."""
        return self._segments[-1].stop_s

    def __len__(self) -> int:
        return len(self._segments)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self._segments)

    def __getitem__(self, i: int) -> Segment:
        return self._segments[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scenario) and self._segments == other._segments

    def __hash__(self) -> int:
        return hash(self._segments)

    def __repr__(self) -> str:
        counts = {s.label: sum(seg.state is s for seg in self) for s in State}
        return f"Scenario({self.duration_s:g} s, {len(self)} segments, {counts})"

    def time_in(self, state: State | int | str) -> float:
        """Seconds spent in ``state``."""
        state = State.parse(state)
        return sum(seg.duration_s for seg in self if seg.state is state)

    def truncated(self, duration_s: float) -> Scenario:
        """The first ``duration_s`` seconds of this scenario."""
        if not 0 < duration_s <= self.duration_s:
            raise ValueError(f"duration_s: must be in (0, {self.duration_s:g}], got {duration_s}")
        kept = [seg for seg in self if seg.start_s < duration_s]
        kept[-1] = replace(kept[-1], stop_s=min(kept[-1].stop_s, duration_s))
        return Scenario(kept)

    # --- constructors ----------------------------------------------------------------------

    @classmethod
    def constant(
        cls,
        duration_s: float,
        state: State | int | str = State.GOOD,
        posture: str | None = "supine",
        snr_db: float | None = None,
        coupling: float = 1.0,
    ) -> Scenario:
        """One segment for the whole night (posture ignored when the bed is empty)."""
        _check_duration(duration_s)
        state = State.parse(state)
        if state is State.EMPTY:
            posture = None
        return cls([Segment(0.0, float(duration_s), state, posture, snr_db, coupling)])

    @classmethod
    def chain(cls, steps: Iterable[tuple[Any, ...]]) -> Scenario:
        """Segments back to back from ``(duration_s, state[, posture[, extra]])`` tuples.

        ``extra`` is a mapping of further :class:`Segment` fields (``snr_db``,
        ``coupling``, ``apnea``).
        """
        segments, t = [], 0.0
        for i, step in enumerate(steps):
            if not isinstance(step, tuple) or not 2 <= len(step) <= 4:
                raise ValueError(
                    f"steps[{i}]: must be (duration_s, state[, posture[, extra]]), got {step!r}"
                )
            duration, state = step[0], State.parse(step[1])
            posture = step[2] if len(step) > 2 else None
            extra: Mapping[str, Any] = step[3] if len(step) > 3 else {}
            _check_duration(duration, f"steps[{i}] duration_s")
            segments.append(Segment(t, t + float(duration), state, posture, **extra))
            t += float(duration)
        return cls(segments)

    @classmethod
    def random(cls, seed: int, duration_s: float = 8 * 3600.0) -> Scenario:
        """A realistic night drawn from ``seed`` (the same seed, the same night).

        In bed most of the time: often a few minutes of empty bed before the person lies
        down, about one bed exit of 1 to 10 minutes per 4 hours, posture bouts of a few
        minutes to over an hour (supine and the sides most often, prone rarely) separated
        by 3 to 20 s of movement, short twitches (about 3 an hour), restless poor-signal
        stretches (about 0.6 an hour, 1 to 8 min) and bouts at the edge of the mattress
        (about 1 in 10, weak coupling, poor signal). About 3 nights in 10 have apnea:
        clusters of 10 to 40 s breathing pauses every 30 to 100 s, more often on the back.
        Times are multiples of 0.1 s.
        """
        _check_duration(duration_s)
        return cls(_RandomNight(stream(seed, "scenario"), float(duration_s)).draw())


def _check_duration(value: Any, name: str = "duration_s") -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name}: must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: must be positive and finite, got {value!r}")


class _RandomNight:
    """The state machine behind :meth:`Scenario.random` (one use)."""

    #: posture preference of a typical sleeper (supine, left, right, prone)
    POSTURE_WEIGHTS = np.array([0.38, 0.27, 0.25, 0.10])

    def __init__(self, rng: np.random.Generator, duration_s: float) -> None:
        self.rng = rng
        self.end = duration_s
        self.segments: list[Segment] = []
        self.t = 0.0
        # Each sleeper has their own preferences around the typical ones.
        self.weights = rng.dirichlet(40 * self.POSTURE_WEIGHTS)
        self.apnea_night = rng.random() < 0.3
        # How likely a bout holds an apnea cluster (supine: airway collapses most easily).
        self.apnea_bout_p = {p: (0.8 if p == "supine" else 0.3) for p in POSTURES}

    def add(self, duration: float, state: State, posture: str | None = None, **extra: Any) -> bool:
        """Append a segment (cut at the end of the night); False once the night is full."""
        stop = min(round(self.t + max(duration, 0.1), 1), self.end)
        if stop > self.t:
            self.segments.append(Segment(self.t, stop, state, posture, **extra))
            self.t = stop
        return self.t < self.end

    def posture(self, not_this: str | None = None) -> str:
        weights = np.array(
            [0.0 if p == not_this else w for p, w in zip(POSTURES, self.weights, strict=True)]
        )
        return POSTURES[int(self.rng.choice(len(POSTURES), p=weights / weights.sum()))]

    def draw(self) -> list[Segment]:
        rng = self.rng
        # Before going to bed: the recording often starts on an empty bed.
        if rng.random() < 0.75 and not self.add(rng.uniform(30, 900), State.EMPTY):
            return self.segments
        posture = self.posture()
        if not self.add(rng.uniform(5, 20), State.MOTION, posture):  # getting into bed
            return self.segments
        while True:
            if not self.bout(posture):
                return self.segments
            # ~1 exit per 4 h: bouts average ~20 min, so 1 in 12 bouts ends with one.
            if rng.random() < 1 / 12:
                if not self.add(rng.uniform(5, 15), State.MOTION, posture):
                    return self.segments
                if not self.add(60 * rng.lognormal(np.log(3.0), 0.6), State.EMPTY):
                    return self.segments
                posture = self.posture()
                if not self.add(rng.uniform(5, 20), State.MOTION, posture):
                    return self.segments
            else:
                posture = self.posture(not_this=posture)
                if not self.add(rng.uniform(3, 20), State.MOTION, posture):
                    return self.segments

    def bout(self, posture: str) -> bool:
        """One stretch in a posture, with its twitches, restless spells and apneas."""
        rng = self.rng
        edge = rng.random() < 0.1
        if edge:
            length = 60 * float(np.clip(rng.lognormal(np.log(5.0), 0.6), 1, 30))
            base, extra = State.POOR, {"coupling": round(float(rng.uniform(0.15, 0.4)), 2)}
        else:
            length = 60 * float(np.clip(rng.lognormal(np.log(20.0), 0.8), 1, 120))
            base, extra = State.GOOD, {}
        end = self.t + length
        apneas = self.apnea_night and rng.random() < self.apnea_bout_p[posture]
        if apneas:  # a cluster covering part of the bout, starting after a calm stretch
            cluster_start = self.t + rng.uniform(0.0, 0.5) * length
            cluster_end = cluster_start + rng.uniform(0.3, 1.0) * (end - cluster_start)
        while self.t < end - 1.0:
            # Next event: twitch (3/h), restless spell (0.6/h; not at the edge), apnea.
            gap = rng.exponential(3600 / (3.0 + (0 if edge else 0.6)))
            kind = "twitch" if edge or rng.random() < 3.0 / 3.6 else "restless"
            if apneas and cluster_start <= self.t + 30 < cluster_end:
                gap, kind = rng.uniform(20, 60), "apnea"  # periodic breathing in the cluster
            elif apneas and self.t < cluster_start < self.t + gap:
                gap, kind = cluster_start - self.t, "apnea"
            if self.t + gap >= end - 1.0:
                return self.add(end - self.t, base, posture, **extra)
            if not self.add(gap, base, posture, **extra):
                return False
            if kind == "twitch":
                ok = self.add(rng.uniform(1, 6), State.MOTION, posture)
            elif kind == "restless":
                snr = round(float(rng.uniform(-6.0, POOR_MAX_SNR_DB)), 1)
                ok = self.add(60 * rng.uniform(1, 8), State.POOR, posture, snr_db=snr)
            else:
                ok = self.add(rng.uniform(10, 40), base, posture, apnea=True, **extra)
            if not ok:
                return False
        return self.add(end - self.t, base, posture, **extra)
