"""One wave per beat: each picked beat placed on the beat's whole shape.

A bed frame that rings gives every heartbeat two or three waves of comparable height, 170 to
190 ms apart. The J-peak detector picks one of them, not always the same one, and in some
beats two. Its interval series then jumps by the waves' spacing: the rate is read from the
few intervals that happen to join the same wave, or from none ("irregular").

:class:`BeatAligner` looks at each beat as a whole. It keeps a template of the beat band's
envelope around a beat (``|beat band|`` averaged to about :data:`ALIGN_RATE`, +-
:data:`TEMPLATE_S`), learnt from the night's counted beats (a running mean), and slides each
picked beat's envelope over it, up to :data:`REACH_SHARE` of the beat period either way (the
period: the median of the last :data:`PERIODS_KEPT` periods of the rhythm check, so a
span read at twice the rate does not narrow the search). Where the shapes match best:

- within :data:`KEEP_S` of the pick, or not :data:`MOVE_MARGIN` better (correlation) than
  at the pick: the pick stays where the detector put it (its own timing, to the sample);
- further: the pick moves there, by the lag of the best match (the whole shape times it,
  not one sample of it), when there is a wave at least :data:`COMPARABLE` of the picked
  one's height within :data:`WAVE_NEAR_S` of that place (the template's wave);
- a pick that lands within :data:`MIN_SPACING_S` of the beat before it is the same beat
  picked twice: it is dropped.

When :data:`RESTART_SHARE` of the last :data:`MOVES_KEPT` counted picks move the same way,
the template sits on another wave than the one the detector usually takes, and it starts
again on the picks: every copy of a recording ends on the detector's own wave.

Each counted beat is then timed to a fraction of a sample (:meth:`BeatAligner.fine_times`):
its envelope at the full sampling rate slid over a full-rate template, the vertex of the
parabola through the best correlation and its neighbours. The HRV reads those times (a 50
Hz sample is 20 ms, as much as a calm heart's beat-to-beat change); the rate, the whole
samples.

Only picks in windows judged good are placed (no rate is read from the others). A sensor
with one clear J-wave per beat keeps its picks (the template's best match is the pick
itself); a ringing one gets one wave per beat. Everything here is a correlation or a share
of the period: no level, so any gain, offset or polarity (the envelope has no sign) gives
the same beats. docs/dsp.md ("One wave per beat") has the measured effect.
"""

from __future__ import annotations

import numpy as np

from .rhythm import interpolated_peak

__all__ = ["ALIGN_RATE", "BeatAligner"]

#: The envelope the shapes are compared on is kept at about this rate (samples/s).
ALIGN_RATE = 250.0
#: The template: the envelope this long either side of a beat (s).
TEMPLATE_S = 0.3
#: A beat's shape is searched this share of the beat period either way of its pick ...
REACH_SHARE = 0.45
#: ... and never further than this (s): three waves 0.18 s apart fit.
MAX_REACH_S = 0.4
#: A pick within this of the best match stays where the detector put it (s).
KEEP_S = 0.06
#: A pick moves only when the shapes match better there by this much (correlation) ...
MOVE_MARGIN = 0.1
#: ... and onto a wave at least this share of the picked one's height.
COMPARABLE = 0.6
#: A pick moves only onto a wave: its tallest band sample within this of the best match (s).
WAVE_NEAR_S = 0.02
#: Two aligned beats closer than this are one beat picked twice (s).
MIN_SPACING_S = 0.2
#: Weight of a counted beat's envelope in the template's running mean.
TEMPLATE_RATE = 0.1
#: When this share of the last MOVES_KEPT counted picks move the same way, the template
#: starts again on the picks (two waves picked half and half leave it where it is).
MOVES_KEPT = 30
RESTART_SHARE = 2 / 3
#: The beat period is the median of this many of the rhythm check's last periods.
PERIODS_KEPT = 6
#: A counted beat's time is refined this far (s) either way of where it was placed, on the
#: envelope at the full sampling rate: one sample of a 50 Hz sensor is 20 ms, as much as a
#: resting heart's beat-to-beat change, so whole-sample times swell the HRV.
FINE_REACH_S = 0.03


class BeatAligner:
    """The beat band's envelope of the last stretch of signal and the night's beat template.

    Args:
        fs: sampling rate, samples/s.
        memory_s: signal kept before the newest chunk (s): the longest a beat waits to be
            aligned once the chunk that completes its epoch is in, plus its reach and the
            template's half-width. Counted
            from the chunk's start, not its end, so a source that delivers 10 s at a time
            (a replay at full speed) keeps the same beats in reach as one that delivers 1 s.
    """

    def __init__(self, fs: float, memory_s: float) -> None:
        self.fs = float(fs)
        self.step = max(1, int(round(self.fs / ALIGN_RATE)))
        self.rate = self.fs / self.step
        self._half = int(round(TEMPLATE_S * self.rate))
        self._keep = int(round(memory_s * self.fs))
        self._start = 0  # stream index of self._band[0]
        self._band = np.empty(0)  # |beat band| at fs; NaN where no signal came
        self._env = np.empty(0)  # its blocks of `step` samples, for the alignment under way
        self._next: int | None = None
        self.template: np.ndarray | None = None
        self._periods: list[float] = []
        self._last: int | None = None  # the last aligned beat (stream index)
        self._moves: list[int] = []  # how far each of the last counted picks moved
        # The template at the full sampling rate, for beat times to a fraction of a sample.
        self.fine_template: np.ndarray | None = None

    def add(self, start_index: int, beat_band: np.ndarray) -> None:
        """The next chunk of beat band, from stream index ``start_index`` (a jump is a gap:
        no signal there, and nothing is aligned across it)."""
        chunk = np.abs(np.asarray(beat_band, dtype=np.float64))
        if self._next is None or start_index - self._next >= self._keep:
            # Blocks of the envelope sit on a grid of whole steps of the stream index.
            self._band = np.full(start_index % self.step, np.nan)
            self._start = start_index - self._band.size
        elif start_index != self._next:
            chunk = np.concatenate([np.full(start_index - self._next, np.nan), chunk])
        new = np.asarray(beat_band).size
        self._next = start_index + new
        self._band = np.concatenate([self._band, chunk])
        drop = (self._band.size - new - self._keep) // self.step * self.step
        if drop > 0:
            self._band = self._band[drop:]
            self._start += drop

    def note_period(self, period_s: float | None) -> None:
        """The rhythm check's beat period (s) of the latest span, or None when it found none."""
        if period_s is not None:
            self._periods = [*self._periods[-(PERIODS_KEPT - 1) :], float(period_s)]

    def align(self, index: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Picks ``index`` (stream indices, in order, none aligned before) placed on the
        template: (their new indices, which of them are kept). ``counts``: which picks lie in
        windows judged good; only those are placed and teach the template (no rate is read
        from the others)."""
        out = np.asarray(index, dtype=np.int64).copy()
        kept = np.ones(out.size, dtype=bool)
        whole = self._band.size // self.step * self.step
        self._env = self._band[:whole].reshape(-1, self.step).mean(axis=1)
        reach = 0
        if self._periods:
            period = float(np.median(self._periods))
            reach = int(min(MAX_REACH_S, REACH_SHARE * period) * self.rate)
        for k, pick in enumerate(out):
            placed = self._place(int(pick), reach) if counts[k] else int(pick)
            if self._last is not None and placed - self._last < MIN_SPACING_S * self.fs:
                kept[k] = False  # the beat before it, picked on another of its waves
                continue
            out[k] = self._last = placed
            if counts[k]:
                shift = placed - int(pick)
                self._moves = [*self._moves[-(MOVES_KEPT - 1) :], shift]
                if shift and self._alike(shift) >= RESTART_SHARE * MOVES_KEPT:
                    # Most picks move the same way: the template sits on another wave than
                    # the one the detector takes. Start it again on the detector's wave.
                    self.template, self.fine_template, self._moves = None, None, []
                    self._learn(int(pick))
                else:
                    self._learn(placed)
        return out, kept

    def fine_times(self, placed: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The times (stream indices, fractional) of the beats ``placed`` (as :meth:`align`
        returned them) that ``counts``: where the envelope at the full rate matches the
        night's full-rate template best within :data:`FINE_REACH_S` of the placed beat, to a
        fraction of a sample (the vertex of the parabola through the best correlation and
        its neighbours). NaN for the others, and where the best match lies at the edge of
        the search (another wave), the signal is not all there, or no template is learnt
        yet. Each counted beat then teaches the template, at its placed sample."""
        out = np.full(np.asarray(placed).size, np.nan)
        half = int(round(TEMPLATE_S * self.fs))
        reach = max(2, int(round(FINE_REACH_S * self.fs)))
        for k, beat in enumerate(np.asarray(placed, dtype=np.int64)):
            if not counts[k]:
                continue
            j = int(beat) - self._start
            if j - half - reach < 0 or j + half + reach + 1 > self._band.size:
                continue
            seg = self._band[j - half - reach : j + half + reach + 1]
            if not np.isfinite(seg).all():
                continue
            if self.fine_template is not None:
                # lags -reach..reach, to the last bit on any CPU: a time is read off them
                match = _normalized_correlation(seg, self.fine_template, exact=True)
                best = int(np.argmax(match))
                if 0 < best < match.size - 1:
                    out[k] = beat - reach + interpolated_peak(match, best)
            own = seg[reach : reach + 2 * half + 1]
            if self.fine_template is None:
                self.fine_template = own.copy()
            else:
                self.fine_template += TEMPLATE_RATE * (own - self.fine_template)
        return out

    def _alike(self, shift: int) -> int:
        """How many of the last counted picks moved about as far as ``shift``."""
        return sum(abs(m - shift) <= KEEP_S * self.fs for m in self._moves)

    def forget_after(self, last: int | None) -> None:
        """The beats after ``last`` (a stream index; None: all) were withdrawn (the picker
        turned over): the next beat is compared with ``last``."""
        self._last = last

    def _segment(self, centre: int, half: int) -> np.ndarray | None:
        """The envelope (blocks of :attr:`step` samples) over ``centre`` +- ``half`` blocks,
        None where it is not all there."""
        j = (centre - self._start) // self.step
        if j - half < 0 or j + half + 1 > self._env.size:
            return None
        seg = self._env[j - half : j + half + 1]
        return seg if np.isfinite(seg).all() else None

    def _place(self, pick: int, reach: int) -> int:
        """Where ``pick`` lands on the template, searched ``reach`` blocks either way."""
        if self.template is None or reach < 1:
            return pick
        seg = self._segment(pick, self._half + reach)
        if seg is None:
            return pick
        match = _normalized_correlation(seg, self.template)  # lags -reach..+reach
        best = int(np.argmax(match))
        shift = (best - reach) * self.step
        if abs(shift) <= KEEP_S * self.fs or match[best] - match[reach] < MOVE_MARGIN:
            return pick
        near = int(round(WAVE_NEAR_S * self.fs))
        lo = pick + shift - near - self._start
        if (
            np.nanmax(self._band[lo : lo + 2 * near + 1])
            < COMPARABLE * self._band[pick - self._start]
        ):
            return pick  # no wave there as tall as the one picked
        # Moved by the lag of the best match, not onto the wave's tallest sample: the pick
        # keeps the detector's own timing (its template's point on the wave, not the peak),
        # so an interval between a moved pick and one left alone mixes no two timings.
        return pick + shift

    def _learn(self, beat: int) -> None:
        seg = self._segment(beat, self._half)
        if seg is None:
            return
        if self.template is None:
            self.template = seg.copy()
        else:
            self.template += TEMPLATE_RATE * (seg - self.template)


def _normalized_correlation(
    seg: np.ndarray, template: np.ndarray, exact: bool = False
) -> np.ndarray:
    """The correlation coefficient of ``template`` with each window of ``seg`` as long,
    one per lag (each window's mean and spread from running sums: no copy per lag).
    ``exact``: summed as products, the same to the last bit on any CPU (slower)."""
    n = template.size
    t = template - template.mean()
    sums = np.concatenate([[0.0], np.cumsum(seg)])
    squares = np.concatenate([[0.0], np.cumsum(seg * seg)])
    total = sums[n:] - sums[:-n]
    spread = (squares[n:] - squares[:-n]) - total * total / n
    # sum((w - mean(w)) * t) == sum(w * t): t sums to zero. BLAS's dot (np.correlate, `@`)
    # rounds differently from one CPU to another: fine for where the best match lies, not
    # for a time read off the values (make arm64 compares the stored HRV bit for bit).
    if exact:
        step = seg.strides[0]  # each row a window of seg (a view: no copy)
        windows = np.lib.stride_tricks.as_strided(
            seg, (seg.size - n + 1, n), (step, step), writeable=False
        )
        dots = np.sum(windows * t, axis=1)
    else:
        dots = np.correlate(seg, t, mode="valid")
    return dots / (np.sqrt(np.maximum(spread, 0.0) * float(np.sum(t * t))) + 1e-300)
