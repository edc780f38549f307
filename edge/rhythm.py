"""A second opinion on the heart rate, and on whether the rhythm is a person's at all.

The J-peak detector picks beats one by one; on a sensor it was never tuned to it can lock to
half or twice the rate, or follow a machine (a fan, a pump) as happily as a heart. Before an
epoch's heart rate is stored, :class:`RhythmCheck` looks at the same stretch of signal another
way, without the beat picker:

- **rate cross-check**: the autocorrelation of the beat band's envelope (``|beat band|``,
  averaged down to about 100 Hz) over the span the rate is read from. Its first strong peak
  in 0.3-2.0 s (30-200 bpm) is the rhythm's period; the smallest lag whose peak reaches
  :data:`FUNDAMENTAL_SHARE` of the highest is taken, so a peak at two or three periods never
  wins over the period itself. The picker's rate must agree within :data:`AGREE_SHARE`;
  otherwise (half, double, a third, or no clear rhythm) the epoch stores no heart rate and the
  reason ``rate uncertain``.
- **re-lock on one wave**: when the picked beats sit on two or three different waves of each
  beat by turns (:meth:`RhythmCheck.stride`: with comparable waves per beat the envelope
  repeats at the picker's rate as well, and only the shapes tell), the rate is read from the
  intervals between picks on the same wave (every second or third pick). The envelope's
  first strong peak can then be the waves' spacing, so the beat's period must be a strong
  peak, not necessarily the first, and clearly higher than the peak at the picks' spacing
  (:func:`acf_prefers_period`: a heart picked once a beat correlates less at two beats than
  at one, so its rate is never halved this way).
- **a person, not a machine**: a heart is never strictly periodic (beat-to-beat variability)
  and a person breathes at a rate of their own. A rhythm whose successive intervals differ by
  less than :data:`MACHINE_RMSSD_MS` (or one sample, at low rates) *and* whose breathing band
  repeats at every multiple of the beat period (nothing in it but the machine's own period) is
  classified ``not a person``: no heart rate, no breathing rate. No breathing of its own with
  more variability than that, or too little signal yet to judge the breathing, is ``rate
  uncertain``.

Everything here is relative to the signal itself (correlations, ratios, periods): no level in
counts, so it holds for any sensor gain, offset or polarity.
"""

from __future__ import annotations

import numpy as np

import dsp_c

from .quality import BREATH_BAND_HZ, BREATH_LAGS_S, autocorrelation

__all__ = [
    "AGREE_SHARE",
    "FUNDAMENTAL_SHARE",
    "MACHINE_RMSSD_MS",
    "RhythmCheck",
    "acf_prefers_period",
    "acf_period",
    "interpolated_peak",
]

#: The rhythm's period is looked for at these lags (s): 30-200 bpm.
PERIOD_RANGE_S = (0.3, 2.0)
#: The smallest lag whose autocorrelation peak reaches this share of the highest peak is the
#: period (a heart's peaks at 2 and 3 periods are as high as at one: the first one wins).
FUNDAMENTAL_SHARE = 0.8
#: The envelope compared around each picked beat: this long before and after it (s).
WAVE_SPAN_S = 0.25
#: Picks on two waves by turns: the next-but-one beat's envelope correlates at least this
#: much, and this much more than the next beat's (measured on the envelope before it was
#: smoothed: 0.4-0.8 more on simulated three-wave beats picked at twice the rate, 0.2 less
#: to 0.1 more on true beats; smoothed, 0.85 more on a bed ringing at 5.5 Hz).
ALTERNATION_LIKE = 0.6
ALTERNATION_GAP = 0.3
MIN_ALTERNATION_BEATS = 6
#: Re-locked on one wave, the beat's autocorrelation peak exceeds that at the picks' spacing
#: by at least this (measured before the envelope was smoothed: 0.1-0.2 on simulated
#: three-wave beats).
PREFER_MARGIN = 0.05
#: An autocorrelation peak below this is no rhythm at all (noise): nothing is confirmed.
MIN_PEAK = 0.2
#: The picker's rate and the autocorrelation's agree when within this share of each other.
AGREE_SHARE = 0.12
#: Successive intervals of a heart differ by more than this RMS (ms), even at rest.
MACHINE_RMSSD_MS = 5.0
#: A breathing band (the gate's, 0.1-0.8 Hz) that still correlates this much at every
#: multiple of the beat period in 2-10 s (the gate's breathing lags) holds nothing but the
#: beat's own period: no breathing of its own.
LOCKED_ACF = 0.5
#: The breathing band is judged on at least this much signal (s): two breaths at 12/min.
MIN_BREATH_SPAN_S = 10.0
#: The rate cross-check reads the envelope averaged over this long (s): a 0.1 s mean keeps
#: a heartbeat's hump and removes the ripple of a frame ringing at 4 Hz or more.
SMOOTH_S = 0.1
#: The envelope and the breathing band are kept at about this rate (samples/s).
ENVELOPE_RATE = 100.0
#: Signal kept before the newest chunk (s): the longest span any check reads, with room for
#: the epoch's lag. Counted from the chunk's start, so any chunking keeps the same span.
MEMORY_S = 360.0


def _acf_peaks(envelope: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The autocorrelation of ``envelope`` (sampled at ``rate``) and the lags of its local
    maxima in :data:`PERIOD_RANGE_S` (a peak at the range's edge is no period); None when
    the span is shorter than three periods of the longest, or no peak reaches
    :data:`MIN_PEAK`."""
    lo = max(1, int(np.floor(PERIOD_RANGE_S[0] * rate)))
    hi = int(np.ceil(PERIOD_RANGE_S[1] * rate))
    if envelope.size < 3 * hi:
        return None
    acf = autocorrelation(envelope, hi + 1)
    inner = acf[lo : hi + 1]
    k = np.flatnonzero((inner[1:-1] >= inner[:-2]) & (inner[1:-1] > inner[2:])) + lo + 1
    if k.size == 0 or float(acf[k].max()) < MIN_PEAK:
        return None
    return acf, k


def interpolated_peak(acf: np.ndarray, k: int) -> float:
    """The peak of ``acf`` at index ``k`` (0 < k < size - 1) to a fraction of an index: the
    vertex of the parabola through it and its neighbours (``k`` itself when they do not
    curve down)."""
    a, b, c = acf[k - 1], acf[k], acf[k + 1]
    denom = a - 2 * b + c
    return k + (0.5 * (a - c) / denom if denom < 0 else 0.0)


def acf_period(envelope: np.ndarray, rate: float) -> tuple[float, float] | None:
    """The rhythm's period (s) and its autocorrelation peak, from a beat-band envelope
    sampled at ``rate``; None when no peak in :data:`PERIOD_RANGE_S` reaches
    :data:`MIN_PEAK` or the span is shorter than three periods of the longest."""
    found = _acf_peaks(envelope, rate)
    if found is None:
        return None
    acf, k = found
    first = int(k[np.argmax(acf[k] >= FUNDAMENTAL_SHARE * acf[k].max())])
    return interpolated_peak(acf, first) / rate, float(acf[first])


def acf_prefers_period(envelope: np.ndarray, rate: float, period_s: float, over_s: float) -> bool:
    """True when the envelope's autocorrelation peaks within :data:`AGREE_SHARE` of
    ``period_s``, at least :data:`FUNDAMENTAL_SHARE` as high as its highest peak, and
    :data:`PREFER_MARGIN` higher than any peak within :data:`AGREE_SHARE` of ``over_s``.

    Picks on two waves of each beat by turns: the envelope repeats at their spacing
    (``over_s``) only in part, and in full at the beat (``period_s``). A heart picked once a
    beat is the other way round: its peak at two beats is lower than at one."""
    found = _acf_peaks(envelope, rate)
    if found is None:
        return False
    acf, k = found
    lags = np.array([interpolated_peak(acf, int(j)) for j in k]) / rate
    at = acf[k][np.abs(lags / period_s - 1.0) <= AGREE_SHARE]
    if at.size == 0 or at.max() < FUNDAMENTAL_SHARE * acf[k].max():
        return False
    rival = acf[k][np.abs(lags / over_s - 1.0) <= AGREE_SHARE]
    return bool(rival.size == 0 or at.max() >= rival.max() + PREFER_MARGIN)


class RhythmCheck:
    """The beat-band envelope and the breathing band of the stream, kept for the checks.

    Args:
        fs: sampling rate, samples/s.
    """

    def __init__(self, fs: float) -> None:
        self.fs = float(fs)
        self.step = max(1, int(round(self.fs / ENVELOPE_RATE)))
        self.rate = self.fs / self.step
        self._breath_filter = dsp_c.SosFilter(dsp_c.butter_bandpass(2, *BREATH_BAND_HZ, self.fs))
        self._keep = int(MEMORY_S * self.rate)
        self._start = 0  # stream index (in samples) of self._env[0] * step
        self._env = np.empty(0)
        self._breath = np.empty(0)
        self._next: int | None = None  # stream index of the next raw sample expected
        self._carry = np.empty((2, 0))  # samples not yet making a whole block

    def add(
        self, start_index: int, beat_band: np.ndarray, raw: np.ndarray, *, checked: bool = False
    ) -> None:
        """The next chunk: its beat band (the detector's input) and its raw samples, from
        stream index ``start_index``. A jump in the index is a gap: it reads as no signal.
        ``checked=True``: ``raw`` was checked already (the pipeline's intake: a 1-D,
        C-contiguous float64 array of finite samples), so it is not checked again."""
        if self._next is None or start_index != self._next:
            self._new_stretch(start_index, dsp_c.priming_level(raw, self.fs))
        self._next = start_index + raw.size
        f = self._breath_filter
        breath = f._process_checked(raw) if checked else f.process(raw)
        both = np.concatenate([self._carry, np.stack([np.abs(beat_band), breath])], axis=1)
        whole = both.shape[1] // self.step * self.step
        blocks = both[:, :whole].reshape(2, -1, self.step).mean(axis=2)
        self._carry = both[:, whole:]
        self._env = np.concatenate([self._env, blocks[0]])
        self._breath = np.concatenate([self._breath, blocks[1]])
        drop = self._env.size - blocks.shape[1] - self._keep
        if drop > 0:
            self._env, self._breath = self._env[drop:], self._breath[drop:]
            self._start += drop * self.step

    def _new_stretch(self, start_index: int, level: float) -> None:
        self._breath_filter.reset(steady_input=level)
        self._carry = np.empty((2, 0))
        if self._next is None:
            self._start = start_index - start_index % self.step
            return
        # Blocks up to the new start: NaN (no signal), so no check spans the gap.
        end = self._start + self._env.size * self.step
        missing = max(0, -(-(start_index - end) // self.step))
        if missing >= self._keep:  # a gap longer than the memory: nothing before it is kept
            self._env, self._breath = np.empty(0), np.empty(0)
            self._start = start_index
            return
        self._env = np.concatenate([self._env, np.full(missing, np.nan)])
        self._breath = np.concatenate([self._breath, np.full(missing, np.nan)])
        # Blocks are aligned to the new stretch from here on (the old ones move by less
        # than one block, a few ms).
        self._start = start_index - self._env.size * self.step

    def _span(self, data: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """The blocks inside stream indices [lo, hi): the longest run of them with signal
        (no check reads across a gap)."""
        a = max(0, -(-(lo - self._start) // self.step))
        b = max(a, (hi - self._start) // self.step)
        x = data[a:b]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], np.isfinite(x), [0]]).astype(int)))
        if edges.size == 0:
            return x[:0]
        runs = edges.reshape(-1, 2)
        first, last = runs[np.argmax(runs[:, 1] - runs[:, 0])]
        return x[first:last]

    def period(self, lo: int, hi: int) -> tuple[float, float] | None:
        """The beat band's rhythm over stream indices [lo, hi): (period s, peak) or None.
        The envelope is smoothed over :data:`SMOOTH_S` first: a bed frame ringing at a few Hz
        leaves a ripple in ``|beat band|`` that repeats every cycle or two of the ringing,
        and a picker on every second ringing cycle would find it agreeing."""
        return acf_period(self._smoothed(self._span(self._env, lo, hi)), self.rate)

    def _smoothed(self, env: np.ndarray) -> np.ndarray:
        """``env`` averaged over :data:`SMOOTH_S`: a moving mean, where the whole window
        lies inside (shorter by the window's length less one)."""
        width = max(1, int(round(SMOOTH_S * self.rate)))
        if env.size <= width:
            return env
        return np.convolve(env, np.full(width, 1.0 / width), mode="valid")

    def prefers_period(self, lo: int, hi: int, period_s: float, over_s: float) -> bool:
        """True when the beat band's rhythm over stream indices [lo, hi) repeats in full at
        ``period_s`` rather than at ``over_s`` (:func:`acf_prefers_period`), on the envelope
        smoothed as :meth:`period` smooths it (the ripple of a ringing frame repeats at the
        picks' spacing too)."""
        env = self._smoothed(self._span(self._env, lo, hi))
        return acf_prefers_period(env, self.rate, period_s, over_s)

    def stride(self, beats: np.ndarray) -> int:
        """How many picks one beat holds: 1, or 2 or 3 when the picked ``beats`` (stream
        indices, in order) sit on two or three different waves of a longer rhythm by turns.
        Two or three comparable waves per beat (a ringing frame) make a picker report twice
        the rate this way, and the envelope repeats at the picker's rate as well: only the
        shapes tell. The envelope around each beat is then much more like that around the
        beat ``stride`` picks on than that around the next one (median correlations apart by
        over :data:`ALTERNATION_GAP`); true beats, tall and short by turns or not, all have
        one shape. The shapes are compared on the envelope smoothed as :meth:`period`
        smooths it."""
        half = int(round(WAVE_SPAN_S * self.rate))
        k = (np.asarray(beats, dtype=np.int64) - self._start) // self.step
        if k.size == 0:
            return 1
        # The shapes on the smoothed envelope, as period() reads it: the ripple a frame
        # ringing at 4-6 Hz leaves in |beat band| repeats every 80-120 ms, and it made a
        # beat's shape and its echo's two cycles later look alike (measured on a 5.5 Hz
        # mode: 0.70 at one pick, 0.88 at two; smoothed, 0.0 and 0.85).
        lo = max(0, int(k.min()) - 2 * half)
        region = self._env[lo : int(k.max()) + 2 * half + 1]
        env = self._smoothed(region)
        # env[j] is centred on region[j + lead] (half a block later for an even window:
        # the same for every beat, so no shape moves against another)
        k = k - lo - (region.size - env.size) // 2
        k = k[(k >= half) & (k + half < env.size)]
        if k.size < MIN_ALTERNATION_BEATS:
            return 1
        shapes = env[k[:, None] + np.arange(-half, half + 1)]
        if not np.isfinite(shapes).all():
            return 1  # a gap inside: nothing to compare
        shapes = shapes - shapes.mean(axis=1, keepdims=True)
        shapes /= np.linalg.norm(shapes, axis=1, keepdims=True) + 1e-300
        alike = [
            float(np.median(np.sum(shapes[lag:] * shapes[:-lag], axis=1))) for lag in (1, 2, 3)
        ]
        for stride in (2, 3):
            if (
                alike[stride - 1] >= ALTERNATION_LIKE
                and alike[stride - 1] - alike[0] > ALTERNATION_GAP
            ):
                return stride
        return 1

    def breathing_locked(self, lo: int, hi: int, beat_period_s: float) -> bool | None:
        """True when the breathing band over [lo, hi) repeats at every multiple of the beat
        period in 2-10 s (up to half the signal there): nothing in it but the beat's own
        period, no breathing; None with under :data:`MIN_BREATH_SPAN_S` of signal or no
        multiple to look at (too short to tell)."""
        x = self._span(self._breath, lo, hi)
        if x.size < MIN_BREATH_SPAN_S * self.rate:
            return None
        max_lag = min(int(BREATH_LAGS_S[1] * self.rate) + 1, x.size // 2)
        acf = autocorrelation(x, max_lag)
        multiples = np.arange(1, int(max_lag / self.rate / beat_period_s) + 1) * beat_period_s
        multiples = multiples[multiples >= BREATH_LAGS_S[0]]
        if multiples.size == 0:
            return None
        lags = np.round(multiples * self.rate).astype(int)
        return bool(acf[lags].min() >= LOCKED_ACF)
