"""Which way up the sensor is: learned from the signal, never configured.

The J-peak detector looks for the J-wave as a positive peak of the beat band. A sensor mounted
the other way up, or an amplifier that inverts, turns each J-wave into a trough; the detector
then picks the waves beside it, and intervals that hop between them. A person can lie on
either kind of sensor, so the unit learns the polarity from the night itself.

:class:`BeatPicker` runs the detector of one gap-free stretch on the band the right way up. It
keeps the last :data:`TRIAL_S` of the beat band and runs trials on it: the first once the
stretch is :data:`FIRST_TRIAL_S` long (a short recording is judged too), then every
:data:`UNSETTLED_EVERY_S` until the way up is settled, then every :data:`TRIAL_EVERY_S`. A
trial scores each way up by the share of its intervals that agree with the rhythm the band's
envelope shows on its own (:func:`edge.rhythm.acf_period`, which no sign change alters): the
live detector's beats, and a fresh detector's on the band turned over. The differences add up
as evidence (:data:`TURN_EVIDENCE`; at a stretch's first trial, where the way the band comes
is no evidence, :data:`FIRST_TURN_MARGIN`); when it says the other way is clearly better, the
picker turns over: the fresh detector, which has just read the span, becomes the live one, and its
beats replace those of the span (:attr:`Picked.since`), so no interval mixes picks of the two
ways. A span whose envelope has no rhythm (motion, an empty bed, noise) moves nothing.

Cost: one extra detector run over :data:`TRIAL_S` per trial (a quarter more detector work
over a settled night). docs/dsp.md has the measured effect.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

import dsp_c

from .rhythm import AGREE_SHARE, ENVELOPE_RATE, acf_period

__all__ = [
    "FIRST_TURN_MARGIN",
    "TRIAL_EVERY_S",
    "TRIAL_S",
    "TURN_EVIDENCE",
    "BeatPicker",
    "Picked",
    "envelope_period",
    "rhythm_share",
]

#: Band signal a trial reads (s); the first trial comes once a stretch is
#: :data:`FIRST_TRIAL_S` long and reads all of it (a short recording is judged too).
TRIAL_S = 30.0
FIRST_TRIAL_S = 15.0
#: Until the evidence settles which way is up, one trial every this much signal (s) ...
UNSETTLED_EVERY_S = 30.0
#: ... and then one every this much (a sixth more detector work).
TRIAL_EVERY_S = 120.0
#: A fresh detector's first seconds of a span are its learning: no way is scored on them (s).
LEARNING_S = 4.0
#: Evidence: the sum over trials of (share of the live way's intervals on the rhythm - share
#: of the other way's), kept within +-EVIDENCE_CAP (so a change later in the night can
#: still win). The picker turns over when it falls to -TURN_EVIDENCE and the other way has
#: at least MIN_TURN_SCORE of its intervals on the rhythm; the live way is settled from
#: SETTLED_EVIDENCE on. (Measured on 20 s spans: the right way up scores 0.3-0.8 more on
#: Sadek's sensor and the simulated ones that prefer a way; 0.0 +- 0.1 where both are alike.)
TURN_EVIDENCE = 0.3
#: ... but the first trial of a stretch weighs the two ways as equals (the band as it comes is
#: no evidence for its way up): it turns when the other way leads by as much as the shares'
#: scatter where both ways are alike, so that a sensor and the same one inverted pick alike.
FIRST_TURN_MARGIN = 0.1
SETTLED_EVIDENCE = 0.5
EVIDENCE_CAP = 1.0
MIN_TURN_SCORE = 0.5


@dataclass(frozen=True)
class Picked:
    """Beats (stream sample indices, increasing) and, after a turn, the stream index from
    which they replace every beat given before (None: they follow them)."""

    beats: np.ndarray
    since: int | None = None


def rhythm_share(beats: np.ndarray, fs: float, period_s: float) -> float:
    """Share of the intervals between consecutive ``beats`` (sample indices) within
    :data:`edge.rhythm.AGREE_SHARE` of ``period_s``; 0 with fewer than two intervals."""
    intervals = np.diff(np.asarray(beats, dtype=np.float64)) / fs
    if intervals.size < 2:
        return 0.0
    return float(np.mean(np.abs(intervals / period_s - 1.0) <= AGREE_SHARE))


def envelope_period(band: np.ndarray, fs: float) -> float | None:
    """The rhythm's period (s) in the envelope of ``band`` (:func:`edge.rhythm.acf_period`
    of ``|band|`` averaged down to about :data:`edge.rhythm.ENVELOPE_RATE`), or None."""
    step = max(1, int(round(fs / ENVELOPE_RATE)))
    whole = band.size // step * step
    envelope = np.abs(band[:whole]).reshape(-1, step).mean(axis=1)
    found = acf_period(envelope, fs / step)
    return None if found is None else found[0]


class BeatPicker:
    """The J-peak detector of one stretch, fed the beat band the right way up.

    Args:
        fs: sampling rate, samples/s.
        origin: stream index of the stretch's first sample.
    """

    def __init__(self, fs: float, origin: int) -> None:
        self.fs = float(fs)
        self.origin = origin
        self.sign = 1.0  # the band as it comes, until the trials show otherwise
        self.turns = 0  # times the picker turned over in this stretch
        self._trials = 0  # trials in this stretch that found a rhythm to score against
        self.evidence = 0.0  # for the live way up (see TURN_EVIDENCE)
        self.detector = dsp_c.JPeakDetector(self.fs)
        self._detector_origin = origin  # stream index of the live detector's sample 0
        self._keep = int(round(TRIAL_S * self.fs))
        self._band: deque[np.ndarray] = deque()  # the last chunks of band, >= _keep samples
        self._live = np.empty(0, dtype=np.int64)  # the live beats in those chunks
        self._held = 0  # samples in _band
        self._seen = 0  # samples of this stretch so far
        self._next_trial = int(round(FIRST_TRIAL_S * self.fs))

    def process(self, band: np.ndarray) -> list[Picked]:
        """The beats of the next chunk of beat band (a checked float64 array, as the
        pipeline's intake gives it): one :class:`Picked` for the chunk, and one more from
        each turn on it. A trial runs at its own sample whatever the chunks, so chunking
        never changes the beats."""
        out = [Picked(np.empty(0, dtype=np.int64))]
        pos = 0
        while True:
            cut = min(band.size, pos + max(0, self._next_trial - self._seen))
            part = band[pos:cut]
            beats = self.detector._process_checked(self.sign * part) + self._detector_origin
            self._remember(part, beats)
            out[-1] = Picked(np.concatenate([out[-1].beats, beats]), out[-1].since)
            pos = cut
            if self._seen < self._next_trial:
                return out
            turned = self._trial()
            every = TRIAL_EVERY_S if self.evidence >= SETTLED_EVIDENCE else UNSETTLED_EVERY_S
            self._next_trial = self._seen + int(round(every * self.fs))
            if turned is not None:
                out.append(turned)
            if pos == band.size:
                return out

    def flush(self) -> np.ndarray:
        """The beats the detector still holds at the end of the stretch."""
        return self.detector.flush() + self._detector_origin

    def _remember(self, band: np.ndarray, beats: np.ndarray) -> None:
        if not band.size:
            return
        self._band.append(band)
        self._held += band.size
        self._seen += band.size
        while self._held - self._band[0].size >= self._keep:
            self._held -= self._band.popleft().size
        first = self.origin + self._seen - self._held
        self._live = np.concatenate([self._live[self._live >= first], beats])

    def _trial(self) -> Picked | None:
        """The other way up on the last :data:`TRIAL_S` against the live beats there: the
        evidence moves by the difference of their shares on the band's rhythm; a turn when
        it says so (None: the live way stays)."""
        span = np.concatenate(self._band)[-self._keep :]
        period = envelope_period(span, self.fs)
        if period is None:
            return None  # no rhythm (motion, an empty bed, noise): nothing to learn from
        start = self.origin + self._seen - span.size  # stream index of span[0]
        scored_from = start + int(round(LEARNING_S * self.fs))
        live = self._live
        live_share = rhythm_share(live[live >= scored_from], self.fs, period)
        detector = dsp_c.JPeakDetector(self.fs)
        other = detector._process_checked(-self.sign * span) + start
        other_share = rhythm_share(other[other >= scored_from], self.fs, period)
        self.evidence = float(
            np.clip(self.evidence + live_share - other_share, -EVIDENCE_CAP, EVIDENCE_CAP)
        )
        needed = FIRST_TURN_MARGIN if self._trials == 0 else TURN_EVIDENCE
        self._trials += 1
        if self.evidence > -needed or other_share < MIN_TURN_SCORE:
            return None
        self.sign, self.detector, self._detector_origin = -self.sign, detector, start
        # The turn's own margin is the new way's evidence: not yet settled, so the next
        # trials come soon and a turn on a misleading span (a movement) is soon undone.
        self.evidence = min(-self.evidence, TURN_EVIDENCE)
        self.turns += 1
        self._live = other  # the span's live beats are the other detector's now
        return Picked(other, since=start)
