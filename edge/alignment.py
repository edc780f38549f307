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
the beat band at the full sampling rate matched to a full-rate template of it, the vertex of
the parabola through the best correlation and its neighbours, kept when within a sample of
the placed beat. The HRV reads those times (a 50 Hz sample is 20 ms, as much as a calm
heart's beat-to-beat change); the rate, the whole samples. A beat whose best match lies
further than :data:`KEEP_S` from where it was placed may sit on another wave than the beats
before it: it gets no time, and no HRV reads an interval to or from it.

Only picks in windows judged good are placed (no rate is read from the others). A sensor
with one clear J-wave per beat keeps its picks (the template's best match is the pick
itself); a ringing one gets one wave per beat. Everything here is a correlation or a share
of the period: no level, so any gain, offset or polarity (the envelope has no sign) gives
the same beats. docs/dsp.md ("One wave per beat") has the measured effect.
"""

from __future__ import annotations

import bisect
from collections import deque

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
#: A counted beat's time is refined to a fraction of a sample within this many samples of
#: where it was placed (one sample of a 50 Hz sensor is 20 ms, as much as a resting heart's
#: beat-to-beat change, so whole-sample times swell the HRV); a best match further off is
#: the detector and the template disagreeing, not a rounding: no fine time then.
FINE_OFF_SAMPLES = 1.0
#: The full-rate template is the mean of the last this many counted beats: a template of
#: the whole night would carry a difference in one beat's placing (by how the source
#: chunked the stream, say) into every later HRV; this one forgets it.
FINE_BEATS = 16
#: ... and the best match is sought this far either way (s; to the nearest sample): past
#: the next wave of a ringing frame (waves 170-250 ms apart), so a beat placed on another
#: wave than the template's gets no fine time.
FINE_SEARCH_S = 0.25


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
        self._start = 0  # stream index of self._wave[0]
        self._wave = np.empty(0)  # the beat band at fs; NaN where no signal came
        self._env = np.empty(0)  # its blocks of `step` samples, for the alignment under way
        self._next: int | None = None
        self.template: np.ndarray | None = None
        self._periods: list[float] = []
        self._last: int | None = None  # the last aligned beat (stream index)
        self._moves: list[int] = []  # how far each of the last counted picks moved
        # The beat band around the last counted beats at the full sampling rate, signed
        # (|band| folds back into the band at 50 Hz): their mean is the template for beat
        # times to a fraction of a sample. And where in the last align() the template
        # started again (fine_times starts its own there too).
        self._fine_beats: deque[np.ndarray] = deque(maxlen=FINE_BEATS)
        self._restarts: list[int] = []
        self._fine_restarts: list[int] = []  # stream indices (forget_after), in order

    def add(self, start_index: int, beat_band: np.ndarray) -> None:
        """The next chunk of beat band, from stream index ``start_index`` (a jump is a gap:
        no signal there, and nothing is aligned across it)."""
        chunk = np.asarray(beat_band, dtype=np.float64)
        if self._next is None or start_index - self._next >= self._keep:
            # Blocks of the envelope sit on a grid of whole steps of the stream index.
            self._wave = np.full(start_index % self.step, np.nan)
            self._start = start_index - self._wave.size
        elif start_index != self._next:
            chunk = np.concatenate([np.full(start_index - self._next, np.nan), chunk])
        new = np.asarray(beat_band).size
        self._next = start_index + new
        self._wave = np.concatenate([self._wave, chunk])
        drop = (self._wave.size - new - self._keep) // self.step * self.step
        if drop > 0:
            self._wave = self._wave[drop:]
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
        whole = self._wave.size // self.step * self.step
        self._env = np.abs(self._wave[:whole]).reshape(-1, self.step).mean(axis=1)
        self._restarts = []
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
                    self.template, self._moves = None, []
                    self._restarts.append(k)
                    self._learn(int(pick))
                else:
                    self._learn(placed)
        return out, kept

    def fine_times(self, placed: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The times (stream indices, fractional) of the beats ``placed`` (what the last
        :meth:`align` returned) that ``counts``, for the HRV. Each is matched to the
        full-rate template (the beat band at the full rate, the mean of the last
        :data:`FINE_BEATS` counted beats) over +-:data:`FINE_SEARCH_S`:

        - the best match within :data:`FINE_OFF_SAMPLES` of the placed beat: the time to a
          fraction of a sample (the vertex of the parabola through it and its neighbours);
        - further, but within :data:`KEEP_S`: the placed beat's whole sample;
        - further still: NaN. The template's wave is elsewhere: the beat may sit on
          another wave than the beats before it (a ringing frame's next cycle, a hop of
          90-250 ms that can pass for a beat-to-beat change), so its time is not trusted.
          On a frame ringing with a high Q one cycle on can match about as well as the
          beat's own wave: such a beat loses its time too (no HRV rather than a wrong one).

        The placed whole sample too where the signal is not all there or no beat came
        before; NaN for the beats that do not count, and for the beat where :meth:`align`
        started its template again (it sits on the old wave, the beats after it on the
        new: an interval across it mixes the two). Each counted beat then joins the
        template, at its placed sample (one on another wave too, so that a template begun
        on a wave the picks seldom take follows them within :data:`FINE_BEATS` beats);
        where :meth:`align` started its template again, this one starts again too, from
        the beat after."""
        placed = np.asarray(placed, dtype=np.int64)
        out = np.where(np.asarray(counts, dtype=bool), placed.astype(np.float64), np.nan)
        half = int(round(TEMPLATE_S * self.fs))
        near = int(FINE_OFF_SAMPLES) + 1  # the best may lie a sample off, with a neighbour
        reach = max(near, int(round(FINE_SEARCH_S * self.fs)))
        far = KEEP_S * self.fs
        restarts = set(self._restarts)
        for k, beat in enumerate(placed):
            if self._fine_restarts and beat >= self._fine_restarts[0]:
                self._fine_restarts = [at for at in self._fine_restarts if at > beat]
                self._fine_beats.clear()
            if k in restarts:  # placed on the old wave; the beats after it on the new one
                self._fine_beats.clear()
                out[k] = np.nan
                continue
            if not counts[k]:
                continue
            j = int(beat) - self._start
            if j - half - reach < 0 or j + half + reach + 1 > self._wave.size:
                continue
            seg = self._wave[j - half - reach : j + half + reach + 1]
            if not np.isfinite(seg).all():
                continue
            if self._fine_beats:
                template = np.mean(np.stack(self._fine_beats), axis=0)
                # Where the best match lies (lags -reach..reach) ...
                best = int(np.argmax(_normalized_correlation(seg, template))) - reach
                if abs(best) > far:
                    out[k] = np.nan  # maybe on another wave: no time
                else:
                    # ... and the time, read off lags -near..near summed to the last bit on
                    # any CPU (make arm64 compares the stored HRV bit for bit).
                    close = seg[reach - near : reach + near + 2 * half + 1]
                    match = _normalized_correlation(close, template, exact=True)
                    top = int(np.argmax(match))
                    if 0 < top < match.size - 1:
                        off = interpolated_peak(match, top) - near
                        if abs(off) <= FINE_OFF_SAMPLES:
                            out[k] = beat + off
            self._fine_beats.append(seg[reach : reach + 2 * half + 1].copy())
        return out

    def _alike(self, shift: int) -> int:
        """How many of the last counted picks moved about as far as ``shift``."""
        return sum(abs(m - shift) <= KEEP_S * self.fs for m in self._moves)

    def forget_after(self, last: int | None, since: int) -> None:
        """The beats from stream index ``since`` on were withdrawn (the picker turned over):
        the next beat is compared with ``last`` (the last aligned beat before them; None:
        none), and the full-rate template starts again there (:meth:`restart_fine_at`)."""
        self._last = last
        self.restart_fine_at(since)

    def restart_fine_at(self, index: int) -> None:
        """The full-rate template starts again at the first beat from stream index ``index``
        on that :meth:`fine_times` sees: the beats from there on are another picker's (a
        turned one, a new stretch's), which may keep to another point of the beat. At a
        beat, not at once, so that how the source chunked the stream does not matter."""
        bisect.insort(self._fine_restarts, int(index))

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
        picked = abs(self._wave[pick - self._start])
        if np.nanmax(np.abs(self._wave[lo : lo + 2 * near + 1])) < COMPARABLE * picked:
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
