"""``replay:PATH``: a recording file (any format :mod:`edge.readers` knows) as a source.

Missing samples in the file (NaN: empty CSV cells, WFDB invalid samples), and values beyond
what the DSP core takes (+-1e15: no sensor gives them, a damaged file does), are a sensor
gap, as a lost stretch of frames would be: they are never passed on, the next chunk carries
``gap_before`` and a ``sensor_gap`` event says how long it was. A recording with no usable
sample at all is refused (E203) before anything is written.
"""

from __future__ import annotations

import os
import time
from datetime import UTC

import numpy as np

from dsp_c.filters import MAX_ABS_SAMPLE

from ..readers import Recording, read_recording
from ..readers._base import EMPTY, fail
from ._pacing import Pacer
from .base import Chunk, SourceEvent

__all__ = ["ReplaySource"]

#: Chunk length when paced (as the serial link delivers).
LIVE_CHUNK_S = 1.0
#: Chunk length at max speed.
FAST_CHUNK_S = 10.0


class ReplaySource:
    """Samples of one recording channel, at max speed or paced to a multiple of real time.

    Args:
        recording: what :func:`edge.readers.read_recording` returned (see :meth:`open`).
        speed: None for as fast as possible, else a factor of real time (1.0 = real time).
        t0_utc: UTC time of the first sample; default the recording's start time when it
            states one (a time without a zone, as EDF and WFDB store it, is taken as UTC),
            else the wall clock now.
        duration_s: play only this much of the recording.
        chunk_s: samples per chunk, in seconds (default 1 s paced, 10 s at max speed).
    """

    def __init__(
        self,
        recording: Recording,
        *,
        speed: float | None = None,
        t0_utc: float | None = None,
        duration_s: float | None = None,
        chunk_s: float | None = None,
    ) -> None:
        self.recording = recording
        self.fs = float(recording.fs)
        self.name = f"replay:{recording.source}"
        self._t0 = _start_utc(recording) if t0_utc is None else float(t0_utc)
        signal = recording.signal
        if duration_s is not None:
            signal = signal[: int(round(duration_s * self.fs))]
        self._signal = signal
        # [start, stop) of each run of usable samples: the chunks never cross a gap.
        with np.errstate(invalid="ignore"):
            usable = np.abs(signal) <= MAX_ABS_SAMPLE  # False for NaN too
        edges = np.flatnonzero(np.diff(np.concatenate([[0], usable, [0]]).astype(np.int8)))
        self._runs = list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
        if not self._runs and signal.size:
            fail(
                EMPTY,
                f"{recording.source}: no usable sample (every one missing or beyond ±1e15)",
                "check the channel and the recording",
            )
        self._run = 0
        self._next = self._runs[0][0] if self._runs else signal.size
        chunk_s = chunk_s or (FAST_CHUNK_S if speed is None else LIVE_CHUNK_S)
        self._size = max(1, int(round(chunk_s * self.fs)))
        self._pacer = Pacer(self.fs, speed)
        self._events: list[SourceEvent] = []
        self._emitted = 0  # where the previous chunk ended
        self._closed = False

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        channel: str | None = None,
        fs: float | None = None,
        **options: float | None,
    ) -> ReplaySource:
        """Read ``path`` (E201-E212 when it cannot be used) and replay it."""
        return cls(read_recording(path, channel=channel, fs=fs), **options)

    @property
    def t0_utc(self) -> float:
        """UTC time of the recording's first sample (Unix seconds)."""
        return self._t0

    @property
    def length_s(self) -> float:
        """Length of the replay in seconds, gaps included (for a progress estimate)."""
        return self._signal.size / self.fs

    def read(self, timeout_s: float | None = None) -> Chunk | None:
        """The next chunk of finite samples; an empty one if it is not due within
        ``timeout_s``; None at the end of the recording or after :meth:`close`."""
        if self._closed or self._run >= len(self._runs):
            return None
        run_stop = self._runs[self._run][1]
        start = self._next
        stop = min(start + self._size, run_stop)
        t = self._t0 + start / self.fs
        if not self._pacer.wait(stop, timeout_s):
            return Chunk(start, self._signal[start:start], t)
        gap = start - self._emitted
        if gap:
            self._events.append(SourceEvent(t, "sensor_gap", _missing(gap, self.fs)))
        self._emitted = self._next = stop
        if stop == run_stop:
            self._run += 1
            if self._run < len(self._runs):
                self._next = self._runs[self._run][0]
        return Chunk(start, self._signal[start:stop], t, gap_before=gap)

    def drain_events(self) -> list[SourceEvent]:
        """The gaps found since the last call."""
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        """End the stream; safe to call twice."""
        self._closed = True


def _missing(samples: int, fs: float) -> str:
    """A sensor gap's detail: seconds to 0.1 s, or the count when that rounds to none."""
    if samples >= 0.05 * fs:
        return f"{samples / fs:.1f} s of samples missing"
    return f"{samples} sample{'s' if samples > 1 else ''} missing"


def _start_utc(recording: Recording) -> float:
    start = recording.start_time
    if start is None:
        return time.time()
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start.timestamp()
