"""Single-sample glitches out of a stream, before any filter sees them.

A sensor's ADC or its link now and then delivers one sample far off the signal: a bit
flipped, a read torn in half, a rail value. A band-pass turns that one sample into its
impulse response, which looks like a movement (the gate stores the window as ``motion``)
and rings at the beat band. One such sample every 30 s made a third of a real night
``motion``. :class:`Despiker` replaces each one by the mean of its two neighbours.

A sample is a glitch when both hold:

- **isolated**: it stands alone off the line through its neighbours. Its height above that
  line, ``h = x[n] - (x[n-1] + x[n+1]) / 2``, is at least twice each of the steps next to
  it (``x[n+1] - x[n-1]``, ``x[n-1] - x[n-2]``, ``x[n+2] - x[n+1]``). A beat or a
  movement, even at 50 Hz, rises and falls over several samples: the steps beside its
  peak are as large as the peak's height.
- **large**: ``|h|`` is more than :data:`GLITCH_RATIO` times this stretch's usual largest
  height: the median of its last :data:`SCALE_SECONDS` one-second maxima of the heights of
  the samples that are not isolated nor next to an isolated one (so glitches never raise
  it; a flat second, a stuck input, adds nothing). Relative to the signal itself: no
  level, gain or offset, and it follows the sensor and the night. On the real recordings
  and their transforms the largest isolated height is 2.2 times that scale, on the
  simulated sets 2.0 (the exceptions, a clipped movement and noise that jumps tenfold,
  are in docs/dsp.md, "Glitches").

A stretch's first second (the first that is not flat; flat ones pass as they came) is judged
by its own maximum, once it is whole: the despiker holds it until then. The first two and
last three samples of a stretch have too few neighbours and stay as they came. Two glitches
side by side are not isolated and stay: they are rare, and the gate then sees a movement.

Sample ``n`` is decided once ``x[n + 3]`` is in: :meth:`Despiker.process` holds back the
last three samples of each chunk (and a stretch's first second) and returns them with a
later call; :meth:`Despiker.flush` returns them, as they came, at the end of a stretch.
Whatever the chunking, the output is the same: every test and the scale are functions of
the samples alone.

>>> import numpy as np, dsp_c
>>> x = np.sin(np.arange(2000) / 10.0)
>>> x[1500] += 50.0
>>> d = dsp_c.Despiker(fs=250.0)
>>> y = np.concatenate([d.process(c) for c in np.array_split(x, 7)] + [d.flush()])
>>> bool(abs(y[1500] - np.sin(150.0)) < 0.01), d.replaced
(True, 1)
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from ._checks import as_samples, sampling_rate
from .filters import MAX_FS, MIN_FS

__all__ = ["GLITCH_RATIO", "ISOLATION", "LOOK_AHEAD", "SCALE_SECONDS", "Despiker"]

#: A glitch stands more than this many times the stretch's usual largest height off the
#: line through its neighbours. The real recordings reach 2.2, the simulated sets 2.0.
GLITCH_RATIO = 4.0
#: ... and each step beside it is at most this share of its height (a beat's or a
#: movement's peak has steps beside it as large as itself).
ISOLATION = 0.5
#: The usual largest height: the median of this many last one-second maxima.
SCALE_SECONDS = 10
#: Samples of look-ahead: sample n is decided once x[n + 3] is in (its own test needs
#: x[n + 2]; whether it may count for the scale needs its right neighbour's test).
LOOK_AHEAD = 3


class Despiker:
    """Streaming removal of single-sample glitches (module docstring) for one gap-free
    stretch of samples at ``fs`` samples/s; a new stretch needs a new object or
    :meth:`reset`."""

    def __init__(self, fs: float) -> None:
        self._fs = sampling_rate(fs, MIN_FS, MAX_FS)
        self._second = max(1, int(round(self._fs)))
        self.reset()

    @property
    def fs(self) -> float:
        """Sampling rate in samples/s."""
        return self._fs

    @property
    def replaced(self) -> int:
        """Glitches replaced since construction or :meth:`reset`."""
        return self._replaced

    @property
    def held(self) -> int:
        """Samples taken in but not yet returned (:data:`LOOK_AHEAD`, or up to a second
        more at a stretch's start)."""
        return self._received - self._decided

    def reset(self) -> None:
        """Start a new stretch: no samples held, no scale learnt."""
        self._tail = np.empty(0)  # the raw samples from stretch index _tail_start() on
        self._received = 0  # samples taken in this stretch
        self._decided = 0  # samples returned
        self._maxima: deque[float] = deque(maxlen=SCALE_SECONDS)
        self._second_max = 0.0  # the largest plain height so far in the current second
        self._replaced = 0

    def process(self, x: Any) -> np.ndarray:
        """Take in the chunk ``x`` and return the samples now decided, glitches replaced:
        those of the stretch up to the chunk's last :data:`LOOK_AHEAD` (at a stretch's
        start, up to its first whole second), the rest held for a later call. Refuses
        (``DspValueError``, naming ``x`` and the sample) a chunk with a sample that is not
        finite or beyond +-1e15; the state is then unchanged."""
        return self._process_checked(as_samples(x, "x", finite=True))

    def _process_checked(self, x: np.ndarray) -> np.ndarray:
        """:meth:`process` for a chunk already checked (float64, finite, in range)."""
        raw = np.concatenate([self._tail, x])
        self._received += x.size
        stop = self._received - LOOK_AHEAD
        out = self._decide(raw, stop) if stop > self._decided else np.empty(0)
        self._tail = raw[self._tail_start() - (self._received - raw.size) :]
        return out

    def flush(self) -> np.ndarray:
        """The held samples as they came: the stretch ended, they have no later neighbours
        (:meth:`reset` before another stretch)."""
        out = self._tail[self._decided - self._tail_start() :].copy()
        self._decided = self._received
        self._tail = self._tail[self._tail_start() - (self._received - self._tail.size) :]
        return out

    def _tail_start(self) -> int:
        """The stretch index of the first raw sample still needed: three before the first
        undecided one (the left neighbour's test reaches two further back)."""
        return max(0, self._decided - LOOK_AHEAD)

    def _decide(self, raw: np.ndarray, stop: int) -> np.ndarray:
        """Decide the stretch's samples ``[self._decided, stop)`` from ``raw``, the samples
        from stretch index ``self._received - raw.size`` on."""
        offset = self._received - raw.size  # the stretch index of raw[0]
        first = self._decided
        # Heights and isolation from one sample before to one after (the plain test needs
        # the neighbours'); samples 0 and 1 lack a second neighbour on the left: 0, False.
        lo = max(first - 1, 2)
        x = raw[lo - 2 - offset : stop + 3 - offset]  # x[j]: stretch sample lo - 2 + j
        left, mid, right = x[1:-3], x[2:-2], x[3:-1]
        height = np.abs(mid - 0.5 * (left + right))
        steps = np.maximum(
            np.abs(right - left), np.maximum(np.abs(left - x[:-4]), np.abs(x[4:] - right))
        )
        isolated = steps <= ISOLATION * height
        if lo > first - 1:
            pad = lo - (first - 1)
            height = np.concatenate([np.zeros(pad), height])
            isolated = np.concatenate([np.zeros(pad, dtype=bool), isolated])
        # A sample next to an isolated one stands half its height off its own line.
        plain = ~(isolated[1:-1] | isolated[:-2] | isolated[2:])
        height, isolated = height[1:-1], isolated[1:-1]
        glitch = np.zeros(height.size, dtype=bool)
        second, begin = self._second, 0
        while begin < height.size:  # a second at a time: judged by the seconds before it ...
            at = first + begin  # its stretch index
            end = min(height.size, begin + second - at % second)
            whole = (first + end) % second == 0
            if not self._maxima and not whole:
                break  # ... or, before there is a scale, by itself once it is whole
            scale = _median(self._maxima) if self._maxima else None
            self._second_max = max(
                self._second_max, float((height[begin:end] * plain[begin:end]).max())
            )
            if whole:
                if self._second_max > 0.0:  # a flat second (a stuck input) tells nothing
                    self._maxima.append(self._second_max)
                self._second_max = 0.0
            if scale is None and self._maxima:  # the stretch's first second with a scale
                scale = self._maxima[0]
            if scale is not None:
                glitch[begin:end] = isolated[begin:end] & (height[begin:end] > GLITCH_RATIO * scale)
            begin = end
        out = raw[first - offset : first + begin - offset].copy()
        k = np.flatnonzero(glitch[:begin])
        if k.size:
            at = k + (first - offset)
            out[k] = 0.5 * (raw[at - 1] + raw[at + 1])
            self._replaced += int(k.size)
        self._decided = first + begin
        return out


def _median(values: deque[float]) -> float:
    """The median of a few numbers (numpy's, without its overhead on ten values)."""
    ordered = sorted(values)
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2.0
