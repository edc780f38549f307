"""A lossy sensor link, for fault injection: another source's stream with frames lost at random.

The sensor sends ten frames a second (:func:`edge.firmware.protocol.samples_per_frame`); on a
noisy cable some fail their CRC and the serial source drops them. :class:`LossySource` gives
the pipeline what :class:`edge.sources.serial.SerialSource` would then give it: the frames
that got through, merged into chunks, a jump in ``start_index`` and ``gap_before`` at each
loss, and a ``sensor_gap`` event per gap worded as the serial source words it. Seeded, so a
test or a benchmark sees the same losses every run.

    source = LossySource(SimSource(seed=42, speed=None, duration_s=3600), loss=0.03, seed=1)
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..firmware.protocol import samples_per_frame
from .base import Chunk, Source, SourceEvent

__all__ = ["LossySource"]


class LossySource:
    """``source``'s samples with each frame lost with probability ``loss``.

    Args:
        source: the stream to damage (a simulation or a replay).
        loss: share of frames lost, 0 to 1.
        seed: seed of the losses.
        frame_samples: samples per frame (default: the firmware's, ten frames a second).
    """

    def __init__(
        self, source: Source, loss: float, *, seed: int = 0, frame_samples: int | None = None
    ) -> None:
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"loss: must be within 0..1, got {loss}")
        self.source = source
        self.fs = source.fs
        self.name = f"{source.name} (lossy {loss:.1%})"
        self.loss = loss
        self.frame_samples = frame_samples or samples_per_frame(int(round(self.fs)))
        self.lost_frames = 0
        self._rng = np.random.default_rng(seed)
        self._events: list[SourceEvent] = []
        self._ready: deque[Chunk] = deque()
        self._frame = 0  # frames judged so far (the sequence number the firmware would send)
        self._delivered: int | None = None  # stream index past the last sample delivered
        self._last_kept = True  # the fate of frame self._frame - 1

    def read(self, timeout_s: float | None = None) -> Chunk | None:
        """The next run of frames that got through; an empty chunk while none is ready."""
        if not self._ready:
            chunk = self.source.read(timeout_s)
            self._events.extend(self.source.drain_events())
            if chunk is None:
                return None
            self._split(chunk)
            if not self._ready:
                return Chunk(chunk.stop_index, chunk.samples[:0], chunk.t_utc)
        return self._ready.popleft()

    def _split(self, chunk: Chunk) -> None:
        """Lose frames of ``chunk``; queue the runs that got through, note each gap."""
        n = len(chunk.samples)
        if n == 0:
            return
        # Frames on the stream's own grid: a chunk boundary never makes two frames of one.
        first = chunk.start_index // self.frame_samples
        last = (chunk.stop_index - 1) // self.frame_samples
        # A frame that the previous chunk began keeps its fate; the others are drawn.
        known = max(0, min(self._frame, last + 1) - first)
        new = self._rng.random(last + 1 - first - known) >= self.loss
        kept = np.concatenate([np.full(known, self._last_kept), new])
        self.lost_frames += int(np.count_nonzero(~new))
        self._frame = last + 1
        self._last_kept = bool(kept[-1])
        offset = chunk.start_index - first * self.frame_samples
        keep = np.repeat(kept, self.frame_samples)[offset : offset + n]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], keep, [0]]).astype(np.int8)))
        for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            start = chunk.start_index + a
            gap = start - self._delivered if self._delivered is not None else 0
            t = chunk.t_utc + a / self.fs
            if gap > 0:
                frame = start // self.frame_samples
                detail = f"{gap} samples ({gap / self.fs:.2f} s) lost before frame {frame}"
                self._events.append(SourceEvent(t, "sensor_gap", detail))
            self._ready.append(Chunk(start, chunk.samples[a:b], t, gap_before=max(gap, 0)))
            self._delivered = chunk.start_index + b

    def drain_events(self) -> list[SourceEvent]:
        """The gaps (and the wrapped source's events) since the last call."""
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        """Close the wrapped source."""
        self.source.close()
