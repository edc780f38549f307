"""Per-epoch vitals from the streams of beats, breaths, motion and gate judgements.

The pipeline feeds :class:`EpochVitals` what the DSP core and the quality gate produce, in
stream sample indices; it hands back finished :class:`edge.records.Epoch` rows. The rules, which
never invent a value:

- **state** of an epoch: the gate state covering most of it (each judged window weighted by
  its overlap with the epoch; a tie goes to the more cautious state: motion, empty, poor,
  good). **quality**: the overlap-weighted mean probability of "good".
- a **beat counts** only when every judged window holding it was judged good;
- each counted beat is **placed on the beat's whole shape** (:class:`edge.alignment.
  BeatAligner`: one wave a beat on a ringing frame, a beat picked twice dropped) once its
  windows are judged; the rate and HRV below are read from the placed beats and, when
  those give none, from the beats as picked;
- an **interval** is measured only between two consecutive detected beats that both count
  and lie in one stretch of samples (never across a sensor gap; across a short gap the
  pipeline bridged, for the rate but not for the HRV);
- **HR** (bpm) of a good epoch: 60 / the mean of its steady intervals (the normal ones, within
  25 % of their median, that are also within :data:`RATE_SHARE` of it: an extra beat, or a
  pick on the next wave, does not move the rate; those further than
  :data:`RATE_FULL_SHARE` from it weigh less the further they lie, so that no interval's
  last millisecond decides whether it moves the rate; an interval of two beats, a missed
  one, counts as two of half its length), over the intervals that end
  in the epoch (or, for epochs shorter than 10 s, in the last 10 s), at least
  :data:`MIN_INTERVALS` of them; **HRV** (RMSSD, ms) from the successive differences of
  adjacent steady intervals (a pick on another wave is the sensor, not the heart), at least
  :data:`MIN_HRV_DIFFS`;
- **RR** (breaths/min) of an epoch in bed and still (good or poor signal: breathing is far
  stronger than the heartbeat): 60 / the median interval between consecutive breaths of one
  stretch, both in still in-bed windows, ending in the epoch (or the last 30 s for shorter
  epochs), at least :data:`MIN_BREATH_INTERVALS`, and at least :data:`MIN_NORMAL_SHARE` of
  them within :data:`BREATH_NORMAL_SHARE` of their median (else "irregular");
- **a person, two rhythms**: a heart rate is stored only when a second look agrees with it
  (within 12 %): the rate the checks passed in the epoch before it, stored or not, or the
  next epoch's (the epoch then waits one epoch to be written); else the reason is "rate
  unconfirmed". A rate that leaps more than :data:`JUMP_SHARE` from the last one written
  (within :data:`JUMP_MEMORY_S`) is "rate unconfirmed" until it has held for
  :data:`JUMP_HOLD_S`. A breathing rate is stored only within :data:`PERSON_S` after an epoch
  written with a heart rate (else "no heart rhythm"): a breathing-like rhythm with no heart
  (a pump, a swaying frame, a recording read at the wrong rate, where the heartbeat lands in
  the breathing band) is no person breathing;
- a heart rate is kept only when :class:`edge.rhythm.RhythmCheck` confirms it: the
  autocorrelation of the beat band's envelope over the same span must give the same rate
  (within 12 %), else the reason is "rate uncertain" (the picker at half or twice the rate,
  or no clear rhythm); a rhythm too regular for a heart (successive intervals within
  :data:`edge.rhythm.MACHINE_RMSSD_MS`) whose breathing band holds nothing but the beat's
  own period over the last :data:`MACHINE_SPAN_S` is "not a person": the state is then
  "poor" and neither rate is stored; picks on two or three waves of each beat by turns
  (a ringing frame) are re-locked on one wave: the rate and HRV come from every second or
  third pick, when they keep to their waves and the envelope repeats in full at that beat
  (:meth:`edge.rhythm.RhythmCheck.stride`, :data:`PATTERN_SHARE`);
- otherwise the value is None and the reason says why: "empty bed", "motion", "poor signal",
  "sensor gap" (samples missing in the epoch), "few beats" / "few breaths", "irregular"
  (under 60 % of the intervals are normal: noise peaks, not a rhythm).
- **motion**: the epoch's mean motion energy over the night's usual level (the median of the
  last :data:`MOTION_MEMORY_S` of one-second values): 1 is this sensor's ordinary stillness
  tonight, whatever its gain; a movement is many times that.

An epoch is written once no later sample can change it (:data:`LAG_S` of signal after its
end, or the end of the stream; one epoch later when its heart rate waits for the next).
One that no judged window covers because samples were missing (a sensor gap, and the 10 s
the gate needs after it) is written too, as ``poor`` with quality 0 and the reason "sensor
gap": every epoch of a session exists. Only the first seconds of a
stream, received but not yet judged, have no epoch.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .alignment import MAX_REACH_S, TEMPLATE_S, BeatAligner
from .polarity import TRIAL_S
from .quality import WINDOW_S
from .records import GAP_REASON, STATES, Epoch
from .rhythm import AGREE_SHARE, MACHINE_RMSSD_MS, RhythmCheck

__all__ = ["LAG_S", "EpochVitals"]

#: Signal after an epoch's end before it is final: the last window overlapping it (10 s),
#: beats (the detector reports within 4.5 s) and breaths (about 5 s at 6/min) are all in.
LAG_S = WINDOW_S + 5.0
#: Shortest stretch the heart rate of an epoch is read from (s).
HR_SPAN_S = 10.0
#: Shortest stretch the breathing rate of an epoch is read from (s).
RR_SPAN_S = 30.0
MIN_INTERVALS = 5
MIN_HRV_DIFFS = 10
MIN_BREATH_INTERVALS = 2
#: An interval further than this share from the median is not "normal" (ectopy, a miss).
NORMAL_SHARE = 0.25
#: The rate is the mean of the intervals within this share of their median: wider than a
#: resting heart's beat-to-beat change (RMSSD 20-60 ms, breathing's sinus arrhythmia under
#: 10 %), narrower than one interval stretched by a pick moving to the next wave.
RATE_SHARE = 0.15
#: ... an interval within this share of the median weighs in full; from here to
#: RATE_SHARE its weight falls to zero. A hard edge made the rate jump by a bpm when one
#: interval of 16 crossed it by a few ms (8 ms, one sample's rounding at another rate).
RATE_FULL_SHARE = 0.1
#: An interval this many times the median (each part steady, as above) is that many beats,
#: the ones between missed: its time still counts. Two: longer gaps are seldom a rhythm.
MAX_MISSED_RUN = 2
#: Fewer normal intervals than this share of all: no rhythm to read a rate from.
MIN_NORMAL_SHARE = 0.6
#: Picks on two or three waves of each beat keep to their waves when each interval is within
#: this share of a beat of the one a beat on (the waves' spacing varies little; the beat
#: intervals by the heart's variability, RMSSD 20-60 ms at rest).
PATTERN_SHARE = 0.1
#: Ties between states go to the first of these.
CAUTION = ("motion", "empty", "poor", "good")
_REASON = {"empty": "empty bed", "motion": "motion", "poor": "poor signal"}
NOT_A_PERSON = "not a person"
#: The reason of a heart rate that neither the epoch before nor the one after agrees with.
UNCONFIRMED = "rate unconfirmed"
#: The reason of a breathing rate with no heart rate stored near it (:data:`PERSON_S`).
NO_HEART = "no heart rhythm"
RR_STATES = ("good", "poor")
#: The person-or-machine check reads this much signal (s): enough for breathing to show.
MACHINE_SPAN_S = 30.0
#: A breath interval further than this share from the median is not a steady breath (a
#: sleeper's breath-to-breath variation is 10-25 %).
BREATH_NORMAL_SHARE = 0.3
#: A breathing rate is stored only within this many seconds after a stored heart rate.
PERSON_S = 1800.0
#: The motion value is relative to the median one-second motion energy of this long (s).
MOTION_MEMORY_S = 1800.0
#: A heart rate more than this share above or below the last one stored, within
#: :data:`JUMP_MEMORY_S` of it, is a jump: a resting heart drifts, it does not leap, while a
#: picker or a cross-check caught on two modes of a ringing frame does.
JUMP_SHARE = 0.3
JUMP_MEMORY_S = 600.0
#: A jump is stored only once the checked rates of the epochs of this long (s) agree on it,
#: each with the one before (at least two epochs): a real change of that size holds. With
#: epochs of 15 s or more, the two epochs of a confirmed rate already span it.
JUMP_HOLD_S = 30.0


@dataclass
class _Events:
    """Sorted event indices with the stretch each came from (numpy, pruned as we go)."""

    index: np.ndarray
    stretch: np.ndarray
    aligned: np.ndarray  #: placed on the beat template already (edge.alignment)
    #: the time of an aligned event, for the HRV (stream index, to a fraction of a sample
    #: where refined; NaN: no time at all, for a beat that may sit on another wave than the
    #: ones before it, the beat where the template started again, or one that does not
    #: count: BeatAligner.fine_times); unused (NaN) until the event is aligned: ``index``
    #: is its time then
    time: np.ndarray

    @classmethod
    def empty(cls) -> _Events:
        return cls(
            np.empty(0, dtype=np.int64),
            np.empty(0, dtype=np.int64),
            np.empty(0, dtype=bool),
            np.empty(0),
        )

    def add(self, index: np.ndarray, stretch: int | np.ndarray) -> None:
        if index.size:
            self.index = np.concatenate([self.index, index.astype(np.int64)])
            runs = np.broadcast_to(np.asarray(stretch, dtype=np.int64), index.shape)
            self.stretch = np.concatenate([self.stretch, runs])
            self.aligned = np.concatenate([self.aligned, np.zeros(index.size, dtype=bool)])
            self.time = np.concatenate([self.time, np.full(index.size, np.nan)])

    def drop_from(self, since: int) -> None:
        self._keep(slice(0, int(np.searchsorted(self.index, since))))

    def prune(self, before: int) -> None:
        # Keep one event before the cut: it starts the first interval still needed.
        self._keep(slice(max(int(np.searchsorted(self.index, before)) - 1, 0), None))

    def _keep(self, which: slice | np.ndarray) -> None:
        self.index, self.stretch = self.index[which], self.stretch[which]
        self.aligned, self.time = self.aligned[which], self.time[which]


class EpochVitals:
    """Streaming epoch builder (see the module docstring for the rules).

    Args:
        fs: sampling rate, samples/s.
        epoch_s: epoch length, s (1..300).
        origin_utc: gives the UTC time (Unix s) of a stream sample index.
        check_rhythm: confirm each heart rate with :class:`edge.rhythm.RhythmCheck` (the
            unit always does; False only for tests of the other rules on beats alone).
    """

    def __init__(
        self,
        fs: float,
        epoch_s: float,
        origin_utc: Callable[[int], float],
        *,
        check_rhythm: bool = True,
    ) -> None:
        self.fs = float(fs)
        self.epoch_s = float(epoch_s)
        self.epoch_len = max(1, int(round(epoch_s * fs)))
        self._utc = origin_utc
        self._lag = int(round(LAG_S * fs))
        self._hr_span = max(self.epoch_len, int(round(HR_SPAN_S * fs)))
        self._rr_span = max(self.epoch_len, int(round(RR_SPAN_S * fs)))
        self._beats = _Events.empty()  # as the detector picked them
        # The same beats placed on the beat template (one wave a beat), or None without the
        # rhythm check (tests of the interval rules on beats alone).
        self._placed = _Events.empty() if check_rhythm else None
        self._breaths = _Events.empty()
        # Judged windows: start, stop, state index, quality (lists; pruned).
        self._win: list[tuple[int, int, int, float]] = []
        self._stretches: list[list[int]] = []  # [start, stop) of received samples (pruned)
        self._stretch = 0  # number of the current stretch: never reused, unlike list places
        # Where a new run of beats begins (stream indices, sorted): each stretch and each
        # turn of the beat picker (restart_beats); not a bridged gap (bridge), across which
        # the rate still reads its interval. A beat's run is the
        # number of breaks up to it (plus those pruned); intervals stay within a run.
        self._beat_breaks: list[int] = []
        self._pruned_breaks = 0
        self._bridges: list[tuple[int, int]] = []  # [start, stop) of bridged gaps (pruned)
        self._next_epoch: int | None = None  # index k of the next epoch to write
        # The rhythm check reads the signal (add_signal); without it (check_rhythm=False, for
        # tests of the interval rules on beats alone) every picked rate is taken as it is.
        self.rhythm = RhythmCheck(self.fs) if check_rhythm else None
        # Each beat placed on the beat's whole shape (one wave per beat on a ringing frame),
        # once every window holding it is judged: when its epoch is written, after the chunk
        # that takes the stream past the epoch's end plus the lag, a chunk that starts before
        # then. So the aligner keeps, counted back from the newest chunk's start, the epoch,
        # the lag, the search reach, the template's half-width, and 1 s to spare; and the
        # span a turned picker gives its beats again for (up to TRIAL_S before the turn),
        # which are placed at the next epoch written: else whether their signal is still
        # there would depend on how the source chunked the stream.
        memory_s = self.epoch_s + LAG_S + MAX_REACH_S + TEMPLATE_S + 1.0 + TRIAL_S
        self.aligner = BeatAligner(self.fs, memory_s) if check_rhythm else None
        self._machine_span = max(self._hr_span, int(round(MACHINE_SPAN_S * fs)))
        # The start and rate of the last epoch whose rate the checks passed (stored or not),
        # and how many epochs in a row, up to it, passed them each agreeing with the last.
        self._checked: tuple[int, float] | None = None
        self._checked_run = 0
        self._jump_epochs = max(2, math.ceil(JUMP_HOLD_S / self.epoch_s - 1e-9))
        self._heart_rate: float | None = None  # the last heart rate written
        # The epoch held back for its unconfirmed (rate, HRV), and the last epoch's such pair.
        self._held: tuple[Epoch, tuple[float, float | None]] | None = None
        self._unconfirmed: tuple[float, float | None] | None = None
        self._heart_utc: float | None = None  # the end of the last epoch written with an HR
        # (start index, energy) of the motion windows since MOTION_MEMORY_S before the next
        # epoch: the night's usual level, and each epoch's own.
        self._motion_history = np.empty((2, 0))

    # --- input ---------------------------------------------------------------------------

    def add_samples(self, start: int, stop: int) -> None:
        """Samples ``[start, stop)`` were received (a new stretch after a gap)."""
        if self._next_epoch is None:
            self._next_epoch = start // self.epoch_len
        if self._stretches and self._stretches[-1][1] == start:
            self._stretches[-1][1] = stop
        else:
            self._stretches.append([start, stop])
            self._stretch += 1
            bisect.insort(self._beat_breaks, start)
            if self.aligner is not None:  # a new picker: the beats may keep to another wave
                self.aligner.restart_fine_at(start)

    @property
    def stretch(self) -> int:
        """Number of the current stretch (changes after every gap)."""
        return self._stretch

    def add_beats(self, index: np.ndarray) -> None:
        """Beats (stream sample indices, increasing) of the current stretch. A beat inside a
        bridged gap (:meth:`bridge`) is dropped: it was found on a straight line."""
        index = np.asarray(index, dtype=np.int64)
        if self._bridges and index.size:
            starts = [lo for lo, _ in self._bridges]  # bridges come in order, never overlap
            k = np.searchsorted(starts, index, side="right") - 1
            stops = np.array([hi for _, hi in self._bridges])
            index = index[(k < 0) | (index >= stops[np.maximum(k, 0)])]
        runs = self._pruned_breaks + np.searchsorted(self._beat_breaks, index, side="right")
        self._beats.add(index, runs)
        if self._placed is not None:
            self._placed.add(index, runs)

    def restart_beats(self, since: int) -> None:
        """The beats from stream index ``since`` on are withdrawn: another detector's beats
        replace them (:class:`edge.polarity.BeatPicker` turned over). No interval joins a
        beat before ``since`` to one after it. Epochs already written keep what they read."""
        self._beats.drop_from(since)
        bisect.insort(self._beat_breaks, since)
        if self._placed is not None:
            self._placed.drop_from(since)
            placed = self._placed.index[self._placed.aligned]
            self.aligner.forget_after(int(placed[-1]) if placed.size else None, since)

    def bridge(self, start: int, stop: int) -> None:
        """Samples ``[start, stop)`` were missing and the pipeline bridges them (a straight
        line, so the filters run on; it adds them with :meth:`add_samples`): no beat inside
        them counts. An interval across one counts for the rate (a beat lost in it leaves an
        interval of two beats, which the rate reads as two) but not for the HRV: the line
        moves the beats beside it by a few ms. (The machine test reads it: a few ms of jitter
        more can only turn its "not a person" into "rate uncertain".) Bridges come in order;
        one that starts within the last (a gap inside a sensor's settling) extends it."""
        if self._bridges and start <= self._bridges[-1][1]:  # within the last: one bridge
            self._bridges[-1] = (self._bridges[-1][0], max(stop, self._bridges[-1][1]))
        else:
            self._bridges.append((start, stop))

    def add_breaths(self, index: np.ndarray) -> None:
        """Breaths (stream sample indices, increasing) of the current stretch."""
        self._breaths.add(index, self.stretch)

    def add_motion(self, starts: np.ndarray, energy: np.ndarray) -> None:
        """Motion energy of windows starting at ``starts`` (stream sample indices)."""
        if energy.size:
            self._motion_history = np.concatenate(
                [self._motion_history, np.stack([starts.astype(np.float64), energy])], axis=1
            )

    def add_signal(
        self, start: int, beat_band: np.ndarray, raw: np.ndarray, *, checked: bool = False
    ) -> None:
        """A chunk's beat band (the detector's input) and raw samples, from stream index
        ``start``, for the rhythm checks (``checked``: as for
        :meth:`edge.rhythm.RhythmCheck.add`)."""
        if self.rhythm is not None:
            self.rhythm.add(start, beat_band, raw, checked=checked)
        if self.aligner is not None:
            self.aligner.add(start, beat_band)

    def add_judgement(self, start: int, stop: int, state: str, quality: float) -> None:
        """A window the gate judged (in stream order)."""
        self._win.append((int(start), int(stop), STATES.index(state), float(quality)))

    # --- output --------------------------------------------------------------------------

    def ready(self, processed: int) -> list[Epoch]:
        """The epochs that no sample after ``processed`` (a stream index) can change."""
        return self._emit(lambda e1: e1 + self._lag <= processed, processed)

    def finish(self, processed: int) -> list[Epoch]:
        """End of stream at ``processed``: every epoch that holds a judged window."""
        return self._emit(lambda e1: True, processed, final=True)

    def _emit(
        self, is_final: Callable[[int], bool], processed: int, final: bool = False
    ) -> list[Epoch]:
        out: list[Epoch] = []
        if self._next_epoch is None:
            return out
        while True:
            k = self._next_epoch
            e0, e1 = k * self.epoch_len, (k + 1) * self.epoch_len
            if e0 >= processed or not is_final(e1):
                break
            self._unconfirmed = None
            self._align(e1)
            epoch = self._epoch(e0, min(e1, processed) if final else e1)
            if epoch is not None:
                out += self._release(epoch)
            self._next_epoch = k + 1
        if final and self._held is not None:
            out.append(self._held[0])
            self._held = None
        self._prune(self._next_epoch * self.epoch_len)
        return out

    def _align(self, hi: int) -> None:
        """Place the beats before stream index ``hi`` not placed yet on the beat template
        (:class:`edge.alignment.BeatAligner`); a beat picked twice is dropped."""
        beats = self._placed
        if beats is None:
            return
        todo = np.flatnonzero(~beats.aligned & (beats.index < hi))
        if not todo.size:
            return
        found = self.rhythm.period(hi - self._hr_span, hi)
        self.aligner.note_period(None if found is None else found[0])
        counts = self._counting(beats.index[todo])
        placed, kept = self.aligner.align(beats.index[todo], counts)
        beats.index[todo] = placed
        beats.time[todo] = self.aligner.fine_times(placed, counts & kept)
        beats.aligned[todo] = True
        if not kept.all():
            beats._keep(np.delete(np.arange(beats.index.size), todo[~kept]))
        beats._keep(np.argsort(beats.index, kind="stable"))

    def _release(self, epoch: Epoch) -> list[Epoch]:
        """The epochs ready to write now that ``epoch`` is known. An epoch whose heart rate
        the epoch before did not confirm (:data:`UNCONFIRMED`) is held back one epoch:
        when the next one's rate agrees, it gets its rate after all (the first epoch of a
        night or after a movement is confirmed by the one after it)."""
        out: list[Epoch] = []
        if self._held is not None:
            held, (hr, hrv) = self._held
            self._held = None
            agrees = epoch.hr_bpm is not None and abs(epoch.hr_bpm / hr - 1.0) <= AGREE_SHARE
            if agrees and not self._leaps(held.t_utc, hr, run=2):  # two epochs agree on it
                held = replace(held, hr_bpm=hr, hrv_rmssd_ms=hrv, hr_reason=None)
            out.append(self._with_person(held))
        if self._unconfirmed is not None:
            self._held = (epoch, self._unconfirmed)
        else:
            out.append(self._with_person(epoch))
        return out

    def _with_person(self, epoch: Epoch) -> Epoch:
        """``epoch`` as written: its breathing rate only when a heart rate was stored in it
        or in the :data:`PERSON_S` before it (else the reason :data:`NO_HEART`). A signal
        with a breathing-like rhythm and no heart (a pump, a bed frame swaying, a recording
        read at the wrong rate) is not a person breathing."""
        if epoch.hr_bpm is not None:
            self._heart_utc = epoch.t_utc + epoch.duration_s
            self._heart_rate = epoch.hr_bpm
        if epoch.rr_bpm is None:
            return epoch
        if self._heart_utc is None or epoch.t_utc - self._heart_utc > PERSON_S:
            return replace(epoch, rr_bpm=None, rr_reason=NO_HEART)
        return epoch

    def _prune(self, next_start: int) -> None:
        keep = next_start - max(self._hr_span, self._rr_span) - self.epoch_len
        self._beats.prune(keep)
        if self._placed is not None:
            self._placed.prune(keep)
        self._breaths.prune(keep)
        # Breaks and bridges before the first beat kept (and its detector's latency) no
        # longer matter; the run numbers of the beats kept stay as they are.
        old_break = (self._beats.index[0] if self._beats.index.size else keep) - self._lag
        k = bisect.bisect_left(self._beat_breaks, old_break)
        self._pruned_breaks += k
        del self._beat_breaks[:k]
        self._bridges = [b for b in self._bridges if b[1] > old_break]
        old = next_start - MOTION_MEMORY_S * self.fs - self.epoch_len
        k = int(np.searchsorted(self._motion_history[0], old))
        self._motion_history = self._motion_history[:, k:]
        self._win = [w for w in self._win if w[1] > keep]
        self._stretches = [s for s in self._stretches[:-1] if s[1] > keep] + self._stretches[-1:]

    def _windows(self, lo: int, hi: int) -> list[tuple[int, int, int, float]]:
        return [w for w in self._win if w[0] < hi and w[1] > lo]

    def _received(self, e0: int, e1: int) -> int:
        return sum(max(0, min(b, e1) - max(a, e0)) for a, b in self._stretches)

    def _epoch(self, e0: int, e1: int) -> Epoch | None:
        windows = self._windows(e0, e1)
        if not windows:
            return self._gap_epoch(e0, e1)
        weight = np.zeros(len(STATES))
        quality = 0.0
        for a, b, s, q in windows:
            overlap = min(b, e1) - max(a, e0)
            weight[s] += overlap
            quality += overlap * q
        quality /= weight.sum()
        state = max(CAUTION, key=lambda st: (weight[STATES.index(st)], -CAUTION.index(st)))
        gap = self._received(e0, e1) < e1 - e0

        beats = self._beats
        hr = hrv = None
        hr_reason = _REASON.get(state)
        person = True
        stride = 1
        counting = None
        if state == "good":
            # One wave a beat; where that gives no rate (or without it), the picks as they came.
            for beats in (b for b in (self._placed, self._beats) if b is not None):
                counting = self._counting(beats.index)
                hr, hrv, hr_reason, stride = self._heart(e1, beats, counting)
                if hr is not None:
                    break
            if hr is not None and not self._seen_before(e0, hr):
                self._unconfirmed = (hr, hrv)  # the next epoch may still confirm it
                hr = hrv = None
                hr_reason = UNCONFIRMED
            elif hr is not None and self._leaps(self._utc(e0), hr, self._checked_run):
                hr = hrv = None
                hr_reason = UNCONFIRMED
            if hr_reason in ("rate uncertain", "few beats") and gap:
                hr_reason = "sensor gap"  # too little signal left to find or confirm the rate
            person = hr_reason != NOT_A_PERSON
        rr = None
        rr_reason = _REASON.get(state) if state not in RR_STATES else None
        if not person:
            state, rr_reason = "poor", NOT_A_PERSON
        elif state in RR_STATES:
            still = self._covered_by(self._breaths.index, RR_STATES)
            intervals = self._intervals(self._breaths, still, e1 - self._rr_span, e1)
            intervals = intervals[np.isfinite(intervals)]
            if intervals.size < MIN_BREATH_INTERVALS:
                rr_reason = "sensor gap" if gap else "few breaths"
            elif (
                np.count_nonzero(_normal(intervals, BREATH_NORMAL_SHARE))
                < MIN_NORMAL_SHARE * intervals.size
            ):
                rr_reason = "irregular"  # breaths scattered like noise: no rate to read
            else:
                rr = 60.0 * self.fs / float(np.median(intervals))
        motion = self._relative_motion(e0, e1)
        if counting is None:  # not a good epoch: its picks as they came
            counting = self._counting(beats.index)
        return Epoch(
            t_utc=self._utc(e0),
            duration_s=(e1 - e0) / self.fs,
            state=state,
            quality=float(min(max(quality, 0.0), 1.0)),
            hr_bpm=hr,
            hrv_rmssd_ms=hrv,
            rr_bpm=rr,
            motion=motion,
            beats=round(self._picks(beats, counting, e0, e1) / stride),  # a beat picked twice: one
            hr_reason=None if hr is not None else hr_reason,
            rr_reason=None if rr is not None else rr_reason,
        )

    def _gap_epoch(self, e0: int, e1: int) -> Epoch | None:
        """An epoch that no judged window covers because samples were missing in or before
        it (a sensor gap, and the 10 s the gate then needs): stored as ``poor`` with quality
        0 and the reason "sensor gap", so every epoch of a session exists. None for the first
        seconds of a stream, which were all received and simply not judged yet."""
        if self._received(e0, e1) == e1 - e0 or not self._stretches:
            return None
        if e1 <= self._stretches[0][0]:  # before the stream began
            return None
        return Epoch(
            t_utc=self._utc(e0),
            duration_s=(e1 - e0) / self.fs,
            state="poor",
            quality=0.0,
            hr_bpm=None,
            hrv_rmssd_ms=None,
            rr_bpm=None,
            motion=self._relative_motion(e0, e1),
            beats=0,
            hr_reason=GAP_REASON,
            rr_reason=GAP_REASON,
        )

    @staticmethod
    def _picks(beats: _Events, counting: np.ndarray, e0: int, e1: int) -> int:
        """How many of ``beats`` in [e0, e1) count (``counting``: :meth:`_counting` of them)."""
        idx = beats.index
        return int(np.count_nonzero(counting & (idx >= e0) & (idx < e1)))

    def _heart(
        self, e1: int, beats: _Events, counting: np.ndarray
    ) -> tuple[float | None, float | None, str | None, int]:
        """Heart rate (bpm), HRV (ms), the reason when they are None, and the picks per beat,
        from ``beats`` (picked, or placed on the template) of the span ending at ``e1``;
        ``counting``: which of them count (:meth:`_counting`). Picks on two or three waves of
        each beat by turns (:meth:`RhythmCheck.stride`) are read on one wave: intervals
        between every second or third pick."""
        lo = e1 - self._hr_span
        stride = 1
        if self.rhythm is not None:
            idx = beats.index
            stride = self.rhythm.stride(idx[counting & (idx >= lo) & (idx < e1)])
        intervals = self._intervals(beats, counting, lo, e1, stride)
        normal = _normal(intervals)
        n_normal = np.count_nonzero(normal)
        if n_normal < MIN_INTERVALS:
            return None, None, "few beats", stride
        if n_normal < MIN_NORMAL_SHARE * np.isfinite(intervals).sum():
            # intervals scattered like noise peaks, not a rhythm
            return None, None, "irregular", stride
        hr = 60.0 * self.fs / _rate_interval(intervals, normal)
        if stride > 1 and not self._repeats(beats, counting, lo, e1, stride, 60.0 * self.fs / hr):
            return None, None, "rate uncertain", stride  # picks hop between the waves
        reason = self._doubt(beats, hr, e1, counting, stride)
        if reason is not None:
            return None, None, reason, stride
        # The HRV: steady intervals, none across a bridged gap, timed to a fraction of a
        # sample where the beats were refined, none to a beat on another wave than the
        # ones before it (edge.alignment.BeatAligner.fine_times).
        timed = _steady(intervals, normal) & ~self._across_bridge(beats, lo, e1, stride)
        fine = self._intervals(beats, counting, lo, e1, stride, fine=True)
        timed &= np.isfinite(fine)
        return hr, _rmssd_ms(fine, timed, self.fs, lag=stride), None, stride

    def _seen_before(self, e0: int, hr: float) -> bool:
        """Remember ``hr``, which the checks passed for the epoch starting at ``e0``; True when
        the epoch before passed them with a rate within :data:`AGREE_SHARE` of it. A heart
        keeps its rate from one epoch to the next; a breath, a ringing tail or a wave spacing
        that passes every check once rarely does twice in a row."""
        before = self._checked
        self._checked = (e0, hr)
        agrees = (
            before is not None
            and before[0] == e0 - self.epoch_len
            and abs(hr / before[1] - 1.0) <= AGREE_SHARE
        )
        self._checked_run = self._checked_run + 1 if agrees else 1
        return agrees

    def _leaps(self, t_utc: float, hr: float, run: int) -> bool:
        """True when ``hr``, of the epoch starting at ``t_utc`` and agreed on by ``run``
        epochs in a row, leaps more than :data:`JUMP_SHARE` from the last heart rate
        written, within :data:`JUMP_MEMORY_S`, and has not yet held for :data:`JUMP_HOLD_S`."""
        if self._heart_rate is None or self._heart_utc is None:
            return False
        if t_utc - self._heart_utc > JUMP_MEMORY_S:
            return False
        leap = max(hr / self._heart_rate, self._heart_rate / hr) > 1.0 + JUMP_SHARE
        return leap and run < self._jump_epochs

    def _repeats(
        self, beats: _Events, counting: np.ndarray, lo: int, hi: int, stride: int, beat: float
    ) -> bool:
        """True when the ``beats`` in ``[lo, hi)`` keep to their waves: each interval is within
        :data:`PATTERN_SHARE` of a ``beat`` (samples) of the one ``stride`` picks on, for at
        least :data:`MIN_NORMAL_SHARE` of them. A picker that hops from wave to wave gives
        every-``stride``-th intervals that mix waves: no rate to read."""
        single = self._intervals(beats, counting, lo, hi)
        pairs = np.isfinite(single[stride:]) & np.isfinite(single[:-stride])
        steady = np.abs(single[stride:] - single[:-stride])[pairs] <= PATTERN_SHARE * beat
        return pairs.any() and np.count_nonzero(steady) >= MIN_NORMAL_SHARE * pairs.sum()

    def _doubt(
        self, beats: _Events, hr: float, e1: int, counting: np.ndarray, stride: int
    ) -> str | None:
        """Why the rate ``hr`` (bpm), read from every ``stride``-th of ``beats`` in the span
        ending at ``e1``, cannot be stored: "not a person", "rate uncertain", or None when the
        rhythm check confirms it. ``counting``: which of the beats count (:meth:`_counting`)."""
        if self.rhythm is None:
            return None
        machine_lo = e1 - self._machine_span
        intervals = self._intervals(beats, counting, machine_lo, e1, stride)
        rmssd = _rmssd_ms(
            intervals, _normal(intervals), self.fs, min_diffs=MIN_INTERVALS, lag=stride
        )
        if rmssd is None:
            return "rate uncertain"  # too little rhythm to tell a heart from a machine
        locked = self.rhythm.breathing_locked(machine_lo, e1, 60.0 / hr)
        if locked is None:  # too little signal yet to see breathing
            return "rate uncertain"
        if locked:  # no breathing of its own: a machine if as regular as one, else unsure
            if rmssd <= max(MACHINE_RMSSD_MS, 1000.0 / self.fs):
                return NOT_A_PERSON
            return "rate uncertain"
        lo = e1 - self._hr_span
        if stride > 1:  # the first period can be the waves' spacing: the beat's must win
            beat_s = 60.0 / hr
            if self.rhythm.prefers_period(lo, e1, beat_s, beat_s / stride):
                return None
            return "rate uncertain"
        found = self.rhythm.period(lo, e1)
        if found is None or abs(hr * found[0] / 60.0 - 1.0) > AGREE_SHARE:
            return "rate uncertain"
        return None

    def _relative_motion(self, e0: int, e1: int) -> float | None:
        """The epoch's mean motion energy over the night's usual level up to its end."""
        starts, energy = self._motion_history
        in_epoch = (starts >= e0) & (starts < e1)
        if not in_epoch.any():
            return None
        usual = energy[(starts < e1) & (starts >= e1 - MOTION_MEMORY_S * self.fs)]
        level = float(np.median(usual)) if usual.size else 0.0
        mean = float(np.mean(energy[in_epoch]))
        if level <= 0.0:  # a dead sensor, or nothing but zeros so far
            return 0.0 if mean <= 0.0 else None
        return mean / level

    def _counting(self, index: np.ndarray) -> np.ndarray:
        """True for each event index that every judged window holding it judged good."""
        return self._covered_by(index, ("good",))

    def _covered_by(self, index: np.ndarray, states: tuple[str, ...]) -> np.ndarray:
        """True where at least one judged window holds the index and all that do are in
        ``states``. Windows have one length, so starts and stops are both sorted."""
        if not self._win or not index.size:
            return np.zeros(index.size, dtype=bool)
        win = np.array([(a, b, s) for a, b, s, _ in self._win], dtype=np.int64)
        wanted = np.zeros(len(STATES), dtype=bool)
        wanted[[STATES.index(s) for s in states]] = True
        ok = wanted[win[:, 2]]
        starts, stops = np.sort(win[:, 0]), np.sort(win[:, 1])
        cover = np.searchsorted(starts, index, "right") - np.searchsorted(stops, index, "right")
        good_starts, good_stops = np.sort(win[ok, 0]), np.sort(win[ok, 1])
        good = np.searchsorted(good_starts, index, "right") - np.searchsorted(
            good_stops, index, "right"
        )
        return (cover > 0) & (good == cover)

    def _across_bridge(self, events: _Events, lo: int, hi: int, stride: int = 1) -> np.ndarray:
        """For each interval :meth:`_intervals` gives for the same arguments: True when a
        bridged gap (:meth:`bridge`) lies between its two events."""
        idx = events.index
        if idx.size <= stride:
            return np.zeros(0, dtype=bool)
        ends, begins = idx[stride:], idx[:-stride]
        span = (ends >= lo) & (ends < hi)
        starts = np.array([a for a, _ in self._bridges], dtype=np.int64)
        if not starts.size:
            return np.zeros(int(np.count_nonzero(span)), dtype=bool)
        after_end = np.searchsorted(starts, ends[span], side="right")
        return after_end > np.searchsorted(starts, begins[span], side="right")

    @staticmethod
    def _intervals(
        events: _Events, counts: np.ndarray, lo: int, hi: int, stride: int = 1, fine: bool = False
    ) -> np.ndarray:
        """Intervals (samples, float) from each detected event to the one ``stride`` events
        on, in order, for those ending in ``[lo, hi)``; NaN where an event from one to the
        other does not count or a gap lies between them (so neighbours in the result are
        neighbours in time). ``fine``: between the aligned events' times (``_Events.time``:
        NaN where one has none), the others' whole-sample indices."""
        idx = events.index
        if idx.size <= stride:
            return np.empty(0)
        ok = counts[stride:] & (events.stretch[stride:] == events.stretch[:-stride])
        for k in range(stride):
            ok &= counts[k : idx.size - stride + k]
        ends = idx[stride:]
        span = (ends >= lo) & (ends < hi)
        intervals = (idx[stride:] - idx[:-stride]).astype(np.float64)
        if fine:
            time = np.where(events.aligned, events.time, idx)
            intervals = time[stride:] - time[:-stride]
        intervals[~ok] = np.nan
        return intervals[span]


def _normal(intervals: np.ndarray, share: float = NORMAL_SHARE) -> np.ndarray:
    """True for the finite intervals within ``share`` of their median (beats:
    :data:`NORMAL_SHARE`; breaths: :data:`BREATH_NORMAL_SHARE`)."""
    finite = np.isfinite(intervals)
    if not finite.any():
        return finite
    median = np.median(intervals[finite])
    with np.errstate(invalid="ignore"):
        return finite & (np.abs(intervals - median) <= share * median)


def _steady(intervals: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """The ``normal`` intervals within :data:`RATE_SHARE` of their median: the ones a rate is
    read from. A pick that moves to another wave of the beat and stays there lengthens or
    shortens one interval by the waves' spacing (15-25 % of a beat); that interval is normal
    but must not move the rate."""
    finite = intervals[normal]
    median = np.median(finite)
    steady = normal & (np.abs(intervals - median) <= RATE_SHARE * median)
    return steady if steady.any() else normal


def _rate_interval(intervals: np.ndarray, normal: np.ndarray) -> float:
    """The interval (samples) a rate is read from: the intervals' total time over the beats
    in it, each weighted 1 within :data:`RATE_FULL_SHARE` of the median of the ``normal``
    ones, falling linearly to 0 at :data:`RATE_SHARE` (the steady ones of :func:`_steady`,
    their edge tapered). An interval about twice the median is a missed beat: two beats,
    each half its length. The plain mean of the normal intervals when none lies within
    :data:`RATE_SHARE`."""
    values = intervals[normal]
    median = float(np.median(values))
    spans = intervals[np.isfinite(intervals)]
    beats = np.clip(np.round(spans / median), 1, MAX_MISSED_RUN)
    off = np.abs(spans / beats - median) / median
    weight = np.clip((RATE_SHARE - off) / (RATE_SHARE - RATE_FULL_SHARE), 0.0, 1.0)
    # Sums of products, not `@`: BLAS's dot rounds differently from one CPU to another, and
    # the weights are fractions (make arm64 compares the board's rates bit for bit).
    total = float(np.sum(weight * beats))
    return float(np.sum(weight * spans)) / total if total > 0.0 else float(np.mean(values))


def _rmssd_ms(
    intervals: np.ndarray,
    normal: np.ndarray,
    fs: float,
    min_diffs: int = MIN_HRV_DIFFS,
    lag: int = 1,
) -> float | None:
    """RMSSD (ms) over pairs of normal intervals ``lag`` apart (1: adjacent; on picks read
    every ``lag``-th, the same wave's successive intervals): a pair touching an abnormal
    interval (an ectopic beat's pause, a missed beat, a gap) is left out; None with fewer
    than ``min_diffs`` pairs."""
    if intervals.size <= lag:
        return None
    pairs = normal[lag:] & normal[:-lag]
    diffs = (intervals[lag:] - intervals[:-lag])[pairs] * (1000.0 / fs)
    if diffs.size < min_diffs:
        return None
    return math.sqrt(float(np.mean(diffs * diffs)))
