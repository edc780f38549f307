"""``sim[:SEED]``: a simulated night (:class:`edge.sim.Night`) as a sample source.

The night's ground truth stays reachable as :attr:`SimSource.night`, so tests compare what
the pipeline stored with what was simulated.

When it happens: a night simulated as fast as possible (``--speed max``) begins in the
evening, local time (22:00 to 23:00, a quarter hour set by the seed, :func:`evening_start`),
by default last night: the latest such evening whose night is over by now. ``bedside run``
then moves it to follow the nights the store already holds (:meth:`SimSource.follow`): the
first such evening after the last one ends, so simulated nights run one after another, a
night a day, never over each other. Only the clock labels move: the samples, and so every
figure of the night, are the seed's. A paced night (a speed factor, a live stand-in for the
sensor) starts now, as a sensor plugged in now would, and follows nothing.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable

from ..sim import Night
from ._pacing import Pacer
from .base import Chunk, SourceEvent

__all__ = ["EVENING_HOUR", "SimSource", "evening_start"]

#: A simulated night begins this many hours after local midnight, plus a quarter hour per
#: ``seed % 5`` (22:00 to 23:00).
EVENING_HOUR = 22

#: Chunk length when paced (one sensor frame burst a second, as the serial link delivers).
LIVE_CHUNK_S = 1.0
#: Chunk length at max speed: fewer, larger calls; results do not depend on it.
FAST_CHUNK_S = 10.0


class SimSource:
    """Samples of a simulated night, at max speed or paced to a multiple of real time.

    Args:
        seed: the night (see :class:`edge.sim.Night`); ignored when ``night`` is given.
        fs: sampling rate (50..1000 Hz).
        duration_s: length of the night (default 8 h).
        speed: None for as fast as possible, else a factor of real time (1.0 = real time).
        t0_utc: UTC time (Unix seconds) of the first sample; default last night's evening
            (:func:`evening_start`) at max speed, the wall clock now when paced.
        night: a ready :class:`Night` (a controlled scenario in a test).
        chunk_s: samples per chunk, in seconds (default 1 s paced, 10 s at max speed).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        fs: float = 250.0,
        duration_s: float | None = None,
        speed: float | None = None,
        t0_utc: float | None = None,
        night: Night | None = None,
        chunk_s: float | None = None,
    ) -> None:
        self.night = night if night is not None else Night(seed, fs=fs, duration_s=duration_s)
        self.fs = self.night.fs
        self.name = f"sim:{self.night.seed}"
        # A paced night is live: it starts now and keeps its time (follow() leaves it).
        self._chosen_t0 = t0_utc is not None or speed is not None
        if t0_utc is not None:
            self._t0 = float(t0_utc)
        else:
            self._t0 = time.time() if speed is not None else self._evening(None)
        chunk_s = chunk_s or (FAST_CHUNK_S if speed is None else LIVE_CHUNK_S)
        self._size = max(1, int(round(chunk_s * self.fs)))
        self._pacer = Pacer(self.fs, speed)
        self._next = 0
        self._closed = False

    @property
    def length_s(self) -> float:
        """Length of the whole stream in seconds (for a progress estimate)."""
        return self.night.n_samples / self.fs

    @property
    def t0_utc(self) -> float:
        """UTC time of sample 0 (Unix seconds)."""
        return self._t0

    def follow(self, ends_utc: Iterable[float | None]) -> None:
        """Begin on the first evening after the latest of ``ends_utc`` (the ends of the
        nights already stored; None ones are skipped), unless ``t0_utc`` was given, the
        night is paced, or reading has begun."""
        latest = max((t for t in ends_utc if t is not None), default=None)
        if latest is None or self._chosen_t0 or self._next:
            return
        self._t0 = self._evening(latest)

    def _evening(self, after_utc: float | None) -> float:
        return evening_start(self.night.seed, self.length_s, after_utc=after_utc)

    def read(self, timeout_s: float | None = None) -> Chunk | None:
        """The next chunk; an empty one if it is not due within ``timeout_s``; None at the
        end of the night or after :meth:`close`."""
        start = self._next
        if self._closed or start >= self.night.n_samples:
            return None
        stop = min(start + self._size, self.night.n_samples)
        if not self._pacer.wait(stop, timeout_s):
            return Chunk(start, self.night.samples(start, start), self._t0 + start / self.fs)
        self._next = stop
        return Chunk(start, self.night.samples(start, stop), self._t0 + start / self.fs)

    def drain_events(self) -> list[SourceEvent]:
        """A simulated sensor has no link faults: always empty."""
        return []

    def close(self) -> None:
        """End the stream; safe to call twice."""
        self._closed = True


def evening_start(
    seed: int, length_s: float, *, after_utc: float | None = None, now_utc: float | None = None
) -> float:
    """When a simulated night of ``seed`` begins (Unix s): at :data:`EVENING_HOUR` plus
    ``seed % 5`` quarter hours, local time; the first such evening after ``after_utc``, or
    without it the latest one whose ``length_s`` is over by ``now_utc`` (default now)."""
    minutes = EVENING_HOUR * 60 + 15 * (seed % 5)
    clock = datetime.time(minutes // 60, minutes % 60)
    if after_utc is not None:
        day = datetime.datetime.fromtimestamp(after_utc).astimezone().date()
        while (start := _local(day, clock)) <= after_utc:
            day += datetime.timedelta(days=1)
        return start
    now = time.time() if now_utc is None else now_utc
    day = datetime.datetime.fromtimestamp(now).astimezone().date()
    while (start := _local(day, clock)) + length_s > now:
        day -= datetime.timedelta(days=1)
    return start


def _local(day: datetime.date, clock: datetime.time) -> float:
    """``day`` at ``clock`` in this machine's time zone, as Unix seconds."""
    return datetime.datetime.combine(day, clock).astimezone().timestamp()
