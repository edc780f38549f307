"""``sim[:SEED]``: a simulated night (:class:`edge.sim.Night`) as a sample source.

The night's ground truth stays reachable as :attr:`SimSource.night`, so tests compare what
the pipeline stored with what was simulated.
"""

from __future__ import annotations

import time

from ..sim import Night
from ._pacing import Pacer
from .base import Chunk, SourceEvent

__all__ = ["SimSource"]

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
        t0_utc: UTC time (Unix seconds) of the first sample; default the wall clock now.
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
        self._t0 = time.time() if t0_utc is None else float(t0_utc)
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
