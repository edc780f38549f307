"""Pacing of a source that plays stored samples: as fast as possible, or at a speed."""

from __future__ import annotations

import time

__all__ = ["Pacer"]


class Pacer:
    """Holds samples back until the wall clock reaches them at ``speed`` x real time.

    ``speed`` None means no pacing (``--speed max``). :meth:`wait` returns False when the
    chunk is not due within ``timeout_s``, so a live caller keeps control (status line,
    shutdown checks) while a slow replay waits.
    """

    def __init__(self, fs: float, speed: float | None) -> None:
        self._fs = fs
        self._speed = speed
        self._start: float | None = None

    def wait(self, stop_index: int, timeout_s: float | None) -> bool:
        """Sleep until the sample before ``stop_index`` is due; False if that is later
        than ``timeout_s`` from now (nothing is then consumed by the caller)."""
        if self._speed is None:
            return True
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + stop_index / (self._fs * self._speed)
        delay = due - now
        if delay <= 0:
            return True
        if timeout_s is not None and delay > timeout_s:
            time.sleep(max(timeout_s, 0.0))
            return False
        time.sleep(delay)
        return True
