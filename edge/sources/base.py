"""What every sample source gives the pipeline: chunks of samples and events about the sensor.

A source (``sim[:SEED]``, ``replay:PATH``, ``serial:PORT``) yields :class:`Chunk` objects in
order. Each chunk says where its first sample sits in the stream (``start_index``, counted
at the source's rate from the first sample ever delivered), so a gap (lost frames, a pulled
cable) shows as a jump in ``start_index`` and as ``gap_before`` samples: the pipeline never
measures an interval across it. Things the pipeline should record (a sequence gap, a
disconnect, a reconnect) come out of :meth:`Source.drain_events` as :class:`SourceEvent`.

Time: a chunk's ``t_utc`` only labels its samples; the stream's timing is its sample
indices. A recording or a simulation labels them from its own start time. A live source
labels them from the wall clock, read through a :class:`WallClock` so that a step of the
wall clock (the first NTP sync of a board without a real-time clock) moves the labels of
later samples only, never the stream, and never back: such a source reports the step as a
``clock_step`` event. A source that knows the label of its first sample before it is read
gives it as ``t0_utc`` (the pipeline then opens its session no later than that).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["CLOCK_STEP_MIN_S", "Chunk", "ClockStep", "Source", "SourceEvent", "WallClock"]

#: A change of the wall clock against the monotonic clock smaller than this (s) is not a
#: step worth an event: the labels keep to the sample count. Smaller changes add up until
#: they pass it (NTP slews both clocks alike, so only a step changes their difference).
CLOCK_STEP_MIN_S = 1.0


@dataclass(frozen=True)
class Chunk:
    """Consecutive samples from a source.

    ``samples`` are ADC counts (a 1-D array, int32 from the sensor, float64 from a
    recording); ``start_index`` is the stream index of ``samples[0]``; ``t_utc`` the UTC time
    of ``samples[0]`` in Unix seconds (a label: it follows the sample count, except where a
    live source's wall clock stepped forward, and it never runs back); ``gap_before`` the
    number of samples missing just before this chunk (0 normally).
    """

    start_index: int
    samples: np.ndarray
    t_utc: float
    gap_before: int = 0

    @property
    def stop_index(self) -> int:
        """The stream index just past the last sample."""
        return self.start_index + len(self.samples)


@dataclass(frozen=True)
class SourceEvent:
    """Something about the sensor worth an event in the store.

    ``kind`` is one of ``sensor_gap``, ``sensor_disconnect``, ``sensor_reconnect``,
    ``sensor_error``, ``clock_step``; ``detail`` is a short human-readable text (no secrets,
    no paths beyond a device name); ``shift_s``, for a ``clock_step``, how far the labels
    moved forward with it (:attr:`ClockStep.shift_s`), else 0.
    """

    t_utc: float
    kind: str
    detail: str = ""
    shift_s: float = 0.0


@runtime_checkable
class Source(Protocol):
    """A stream of samples at a fixed rate.

    ``name`` is the spec it was opened from, safe to log (``sim:42``, ``replay:night.edf``,
    ``serial:/dev/ttyUSB0``); ``fs`` the sampling rate in Hz.
    """

    name: str
    fs: float

    def read(self, timeout_s: float | None = None) -> Chunk | None:
        """The next chunk; ``None`` once the stream has ended for good.

        A live source returns an empty chunk when ``timeout_s`` passes with nothing new, so
        the caller can keep its status line and shutdown checks going.
        """
        ...

    def drain_events(self) -> list[SourceEvent]:
        """Events since the last call, oldest first."""
        ...

    def close(self) -> None:
        """Release the device or file; safe to call twice."""
        ...


@dataclass(frozen=True)
class ClockStep:
    """A step of the wall clock, as :meth:`WallClock.check` saw it (seconds)."""

    step_s: float  #: the wall clock's step; positive: forward
    shift_s: float  #: how far the labels moved forward with it (never back: >= 0)
    ahead_s: float  #: how far the labels now run ahead of the wall clock (>= 0)


class WallClock:
    """UTC labels for a live source: the monotonic clock plus an offset taken from the wall
    clock, so that a step of the wall clock is seen as one and never runs the labels back.

    The wall clock can be stepped (NTP's first sync on a board without a real-time clock, a
    person setting it); the monotonic clock cannot, and NTP slews both alike. So
    ``wall() - monotonic()`` changes only at a step, and :meth:`check` reports it. A step
    forward moves the labels with it; after a step back the labels run on from where they
    were, ahead of the wall clock by the step (:attr:`ahead_s`), until a later step forward
    catches up with them: within a run, labels never go back.

    Args:
        wall: the wall clock, Unix seconds (``time.time``; tests pass a clock they step).
        monotonic: the monotonic clock, seconds (``time.monotonic``).
        min_step_s: the smallest change reported as a step (:data:`CLOCK_STEP_MIN_S`).
    """

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        min_step_s: float = CLOCK_STEP_MIN_S,
    ) -> None:
        self._wall, self._monotonic = wall, monotonic
        self._min_step_s = min_step_s
        self._seen = wall() - monotonic()  # the wall clock's offset when last looked at
        self._offset = self._seen  # the labels' offset: never decreases

    def label(self, monotonic_s: float) -> float:
        """The UTC label of a moment of the monotonic clock (as the offset now stands)."""
        return monotonic_s + self._offset

    def now(self) -> float:
        """The UTC label of this moment."""
        return self.label(self._monotonic())

    @property
    def ahead_s(self) -> float:
        """How far the labels run ahead of the wall clock (s): 0 unless it stepped back."""
        return self._offset - self._seen

    def check(self) -> ClockStep | None:
        """The wall clock's step since the last one seen, or None; the labels of moments
        from now on follow it as the class says."""
        seen = self._wall() - self._monotonic()
        step = seen - self._seen
        if abs(step) < self._min_step_s:
            return None
        offset = max(self._offset, seen)
        shift, self._seen, self._offset = offset - self._offset, seen, offset
        return ClockStep(step, shift, self.ahead_s)
