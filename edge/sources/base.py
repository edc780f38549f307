"""What every sample source gives the pipeline: chunks of samples and events about the sensor.

A source (``sim[:SEED]``, ``replay:PATH``, ``serial:PORT``) yields :class:`Chunk` objects in
order. Each chunk says where its first sample sits in the stream (``start_index``, counted
at the source's rate from the first sample ever delivered), so a gap (lost frames, a pulled
cable) shows as a jump in ``start_index`` and as ``gap_before`` samples: the pipeline never
measures an interval across it. Things the pipeline should record (a sequence gap, a
disconnect, a reconnect) come out of :meth:`Source.drain_events` as :class:`SourceEvent`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Chunk", "Source", "SourceEvent"]


@dataclass(frozen=True)
class Chunk:
    """Consecutive samples from a source.

    ``samples`` are ADC counts (a 1-D array, int32 from the sensor, float64 from a
    recording); ``start_index`` is the stream index of ``samples[0]``; ``t_utc`` the UTC time
    of ``samples[0]`` in Unix seconds; ``gap_before`` the number of samples missing just
    before this chunk (0 normally).
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
    ``sensor_error``; ``detail`` is a short human-readable text (no secrets, no paths beyond
    a device name).
    """

    t_utc: float
    kind: str
    detail: str = ""


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
