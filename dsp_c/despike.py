"""Single-sample glitches out of a stream, before any filter sees them.

A sensor's ADC or its link now and then delivers one sample far off the signal: a bit
flipped, a read torn in half, a rail value. A band-pass turns that one sample into its
impulse response, which looks like a movement (the gate stores the window as ``motion``)
and rings at the beat band. One such sample every 30 s made a third of a real night
``motion``. :class:`Despiker` replaces each one by the line through its neighbours: their
mean (at a stretch's first or last sample, the line through the two on its other side).

A sample is a glitch when both hold:

- **isolated**: it stands alone off the line through its neighbours. Its height above that
  line, ``h = x[n] - (x[n-1] + x[n+1]) / 2``, is not 0 and at least twice each of the steps
  next to it (``x[n+1] - x[n-1]``, ``x[n-1] - x[n-2]``, ``x[n+2] - x[n+1]``). A beat or a
  movement, from 50 samples/s up, rises and falls over several samples: the steps beside
  its peak are as large as the peak's height. (Below about 30 samples/s a J-wave can be
  one sample wide; the unit takes 50 and up.)
- **large**: ``|h|`` is more than :data:`GLITCH_RATIO` times the usual largest height of
  its one-second block of the stretch: the larger of the block's own largest height and the
  median of the last :data:`SCALE_SECONDS` blocks' largest. Heights here are those of the
  samples neither isolated, nor next to an isolated one, nor at a stretch's ends, so
  glitches, however many, never raise the scale; a flat block (a stuck input, a start-up
  step run over) adds nothing to the median, and a stretch flat from its start has no
  scale: nothing in it is judged. Relative to the signal itself: no level, gain or offset,
  and it follows the sensor and the night. On the real recordings and their transforms the
  largest isolated height is 2.0 times that scale, on the simulated sets 2.7 (docs/dsp.md,
  "Glitches").

Each one-second block is judged once it is whole and the three samples after it are in:
:meth:`Despiker.process` returns whole blocks and holds the rest (up to a second and two
samples). :meth:`Despiker.flush` judges what it holds at the end of a stretch. A first or
last sample is judged against the line through the two samples on its other side, with the
steps that exist (beside an isolated sample it is not one: two side by side). A stretch of
fewer than 5 samples comes back as it went in. Whatever the chunking, the output is the
same: every test and the scale are functions of the samples alone. Two glitches side by
side are not isolated and stay: they are rare, and the gate then sees a movement.

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

#: A glitch stands more than this many times the usual largest height off the line
#: through its neighbours. The real recordings reach 2.0, the simulated sets 2.7.
GLITCH_RATIO = 4.0
#: ... and each step beside it is at most this share of its height (a beat's or a
#: movement's peak has steps beside it as large as itself).
ISOLATION = 0.5
#: The usual largest height: at least the median of this many last one-second maxima.
SCALE_SECONDS = 10
#: Samples either side of a sample that its decision reads: its own test reaches two,
#: whether it may count for the scale needs its neighbours' tests, one more. A block is
#: judged once this many samples after it are in.
REACH = LOOK_AHEAD = 3


class Despiker:
    """Streaming removal of single-sample glitches (module docstring) for one gap-free
    stretch of samples at ``fs`` samples/s; a new stretch needs a new object or
    :meth:`reset`."""

    def __init__(self, fs: float) -> None:
        self._fs = sampling_rate(fs, MIN_FS, MAX_FS)
        self._block = max(1, int(round(self._fs)))  # one second of samples
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
        """Samples taken in but not yet returned (up to a second and two samples)."""
        return self._received - self._decided

    def reset(self) -> None:
        """Start a new stretch: no samples held, no scale learnt."""
        self._tail = np.empty(0)  # the raw samples from stretch index _tail_start() on
        self._received = 0  # samples taken in this stretch
        self._decided = 0  # samples returned
        self._maxima: deque[float] = deque(maxlen=SCALE_SECONDS)
        self._replaced = 0

    def process(self, x: Any) -> np.ndarray:
        """Take in the chunk ``x`` and return the samples now decided, glitches replaced:
        the stretch's whole one-second blocks whose next :data:`LOOK_AHEAD` samples are in;
        the rest is held for a later call. Refuses (``DspValueError``, naming ``x`` and the
        sample) a chunk with a sample that is not finite or beyond +-1e15; the state is then
        unchanged."""
        return self._process_checked(as_samples(x, "x", finite=True))

    def _process_checked(self, x: np.ndarray) -> np.ndarray:
        """:meth:`process` for a chunk already checked (float64, finite, in range)."""
        raw = np.concatenate([self._tail, x])
        self._received += x.size
        ready = self._received - LOOK_AHEAD
        stop = ready - ready % self._block  # whole blocks only
        out = self._decide(raw, stop) if stop > self._decided else np.empty(0)
        self._tail = raw[self._tail_start() - (self._received - raw.size) :]
        return out

    def flush(self) -> np.ndarray:
        """The held samples, judged: the stretch ended (nothing beyond it). :meth:`reset`
        before another stretch."""
        if self._received <= self._decided:
            return np.empty(0)
        out = self._decide(self._tail, self._received, end=True)
        self._tail = np.empty(0)
        return out

    def _tail_start(self) -> int:
        """The stretch index of the first raw sample still needed: :data:`REACH` before the
        first undecided one."""
        return max(0, self._decided - REACH)

    def _decide(self, raw: np.ndarray, stop: int, end: bool = False) -> np.ndarray:
        """Decide the stretch's samples ``[self._decided, stop)``, whole blocks but for the
        last at the ``end``, from ``raw``, the samples from stretch index
        ``self._received - raw.size`` on."""
        offset = self._received - raw.size  # the stretch index of raw[0]
        first = self._decided
        x = raw[max(0, first - REACH) - offset : stop + REACH - offset]
        if x.size < 5:  # a stretch of a few samples: nothing to judge by
            self._decided = stop
            return raw[first - offset : stop - offset].copy()
        # Beyond either end of the stretch there is nothing (NaN): the line through a
        # first or last sample's neighbours is the one through the two on its other side,
        # and only the steps that exist are compared.
        ends = first < REACH or end
        if first < REACH:
            x = np.concatenate([np.full(REACH - first, np.nan), x])
        if end:
            x = np.concatenate([x, np.full(REACH, np.nan)])
        # x[j] is stretch sample first - REACH + j. Heights and isolation from one sample
        # before the first to one after the last (the plain test needs the neighbours').
        m2, m1, mid, p1, p2 = x[:-4], x[1:-3], x[2:-2], x[3:-1], x[4:]
        line = 0.5 * (m1 + p1)
        if ends:
            line = np.where(
                np.isnan(m1), 2.0 * p1 - p2, np.where(np.isnan(p1), 2.0 * m1 - m2, line)
            )
        height = np.abs(mid - line)
        steps = np.fmax(np.abs(p1 - m1), np.fmax(np.abs(m1 - m2), np.abs(p2 - p1)))
        isolated = (steps <= ISOLATION * height) & (height > 0.0)  # False where NaN
        one_sided = np.isnan(m1) | np.isnan(p1)  # a first or last sample (or the padding)
        if ends:  # an end sample beside an isolated one: two side by side, neither is one
            beside = np.zeros_like(isolated)
            beside[:-1] |= isolated[1:]
            beside[1:] |= isolated[:-1]
            isolated &= ~(one_sided & beside)
        # A sample next to an isolated one stands half its height off its own line, and an
        # end sample's line runs through its neighbours on one side: neither sets the scale.
        plain = ~(isolated[1:-1] | isolated[:-2] | isolated[2:] | one_sided[1:-1])
        height, isolated, line = height[1:-1], isolated[1:-1], line[1:-1]
        glitch = np.zeros(height.size, dtype=bool)
        for begin in range(0, height.size, self._block):  # first is a block's start
            block = slice(begin, begin + self._block)
            own = float((height[block] * plain[block]).max())
            scale = max(own, _median(self._maxima)) if self._maxima else own
            if scale > 0.0:  # else flat from the start (an idle input): nothing to judge by
                glitch[block] = isolated[block] & (height[block] > GLITCH_RATIO * scale)
            if own > 0.0:  # a flat block (a stuck input) tells nothing
                self._maxima.append(own)
        out = x[REACH : REACH + height.size].copy()
        out[glitch] = line[glitch]
        self._replaced += int(np.count_nonzero(glitch))
        self._decided = stop
        return out


def _median(values: deque[float]) -> float:
    """The median of a few numbers (numpy's, without its overhead on ten values)."""
    ordered = sorted(values)
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2.0
