"""Signal-quality gate: which 10 s windows of the raw BCG can be trusted for vitals.

Every 5 s the gate judges the last 10 s of the stream as one of :data:`STATES` (empty bed,
body movement, poor signal, good BCG) with the pruned int8 model of ``models/`` run by
:mod:`edge.model`. Only a "good" window should become a heart rate.

    gate = QualityGate(fs=250)                  # the packaged model; errors E220-E239 here
    for chunk in chunks:                        # raw ADC counts, any chunking
        for j in gate.process(chunk):           # judgements completed by this chunk
            print(j.start_index, j.stop_index, j.state, j.quality)

The features (:class:`WindowFeatures`) are the one implementation that training
(``models/train.py``) and the runtime share. They are defined in physical units (Hz, seconds)
on signals band-passed by dsp_c filters designed at the stream's own rate, so the same model
serves any rate from 50 to 1000 Hz, and **no feature depends on the sensor's gain, offset or
polarity**: a level is only ever compared with another level of the same night.

- the level of the beat band (2.5-12 Hz, the J-peak detector's band) against the night's
  *recent* level (the median quiet level of the windows of the last 2 min: movement is a jump)
  against its *floor* (a low percentile over the last 2 h: an empty bed is the quietest
  the night has been) and against its *in-bed* level (the clear, still heartbeats of the
  last 2 h: a sleeper at the mattress edge is a little below it, an empty bed far below);
  the breathing band (0.1-0.8 Hz) and a band above the heartbeat
  (14-20 Hz) against the beat band (in bed the breathing band rises most);
- burstiness: the loudest 1 s of the beat band over its median 1 s (movement is bursts);
- periodicity: the highest normalised autocorrelation of the beat band and of its envelope at
  lags of 0.33-1.6 s (heart rates 37-180 bpm), and of the breathing band at 2-10 s (6-30
  breaths/min): a heartbeat repeats, noise does not;
- spikiness: the kurtosis of the beat band (J-waves stand out of Gaussian noise);
- clipping: samples piled up at the window's extreme values (an ADC at its rails), told apart
  from the few samples any quantized peak spends at its top count.

Streams are causal and chunk-proof: the filters keep their state across chunks, windows lie on
a fixed grid from the first sample (or the sample after a gap), so feeding a stream in any
chunking gives the same judgements, bit for bit.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

import dsp_c
from dsp_c._checks import as_samples
from dsp_c.beats import DEFAULT_BAND_HZ, beat_filter
from dsp_c.filters import PRIMING_S, priming_level
from edge.errors import fail
from edge.records import STATES  # the model's classes, in its output order

__all__ = [
    "FEATURE_NAMES",
    "FS_RANGE",
    "HOP_S",
    "NightLevels",
    "STATES",
    "WINDOW_S",
    "Judgement",
    "QualityGate",
    "WindowFeatures",
    "autocorrelation",
    "quiet_level",
    "window_features",
]

WINDOW_S = 10.0  #: a judgement covers the last 10 s
HOP_S = 5.0  #: one judgement every 5 s
FS_RANGE = (50.0, 1000.0)  #: sampling rates the features are made for (samples/s)

FEATURE_NAMES = (
    "level_recent",  # log10 RMS of the 2.5-12 Hz band over the night's recent quiet level
    "level_floor",  # the same over the night's floor (quietest windows of the last 2 h)
    "level_in_bed",  # the same over the level of the night's clear heartbeats (last 2 h)
    "in_bed_known",  # 1 when the night has had such a window in the last 2 h, else 0
    "breath_to_beat",  # log10 RMS of the 0.1-0.8 Hz band over that of the beat band
    "high_to_beat",  # log10 RMS of the 14-20 Hz band over that of the beat band
    "burst",  # log10 of the loudest 1 s over the median 1 s of the beat band
    "beat_periodicity",  # best autocorrelation of the beat band at 0.33-1.6 s
    "envelope_periodicity",  # the same for its envelope |beat band|
    "breath_periodicity",  # best autocorrelation of the breathing band at 2-10 s
    "spikiness",  # log10 kurtosis of the beat band
    "clipping",  # log10 of the seconds piled up at the window's extremes + 0.01
)

BEAT_BAND_HZ = DEFAULT_BAND_HZ  # the J-peak detector's band: one filter serves both
BREATH_BAND_HZ = (0.1, 0.8)
HIGH_BAND_HZ = (14.0, 20.0)  # below 0.45 fs even at 50 Hz; above the J-wave's energy
BEAT_LAGS_S = (0.33, 1.6)
BREATH_LAGS_S = (2.0, 10.0)
BURST_SLICE_S = 1.0
#: The night's recent level: the median quiet level of this many windows before (2 min).
RECENT_WINDOWS = 24
#: The night's floor: this percentile of the quiet levels of the last FLOOR_WINDOWS (2 h).
FLOOR_PERCENTILE = 10.0
FLOOR_WINDOWS = 1440
#: A window is a clear heartbeat (its level teaches the night's in-bed level) when its
#: envelope repeats at least this much and its loudest second is within this factor
#: (log10) of its median one: no movement.
CLEAR_BEAT_PERIODICITY = 0.4
CLEAR_BEAT_BURST = 0.2
#: Relative levels (decades) are held to +-this: a dead sensor reads as far below, not -inf.
LEVEL_SPAN = 4.0
#: A pile at an extreme value: more than this many times the samples at the next value
#: (a quantized smooth peak spends about 2.4 times as long at its top count as at the next).
PILE_RATIO = 3.0


def _log_rms(x: np.ndarray) -> float:
    """log10 RMS; a silent input reads as very quiet (finite), never -inf."""
    return float(np.log10(max(float(np.sqrt(np.mean(x * x))), 1e-300)))


def _piled(raw: np.ndarray) -> int:
    """Samples piled up at the window's extreme values: at each end, those at the extreme
    beyond PILE_RATIO times the samples at the next value in (zero for a smooth peak,
    quantized or not; most of them for a signal held at an ADC rail)."""
    values, counts = np.unique(raw, return_counts=True)
    if values.size < 3:  # flat (or two-valued): everything is at an extreme
        return int(raw.size)
    top = max(0, int(counts[-1]) - int(PILE_RATIO * counts[-2]))
    bottom = max(0, int(counts[0]) - int(PILE_RATIO * counts[1]))
    return top + bottom


def _relative(level: float, reference: float) -> float:
    return float(np.clip(level - reference, -LEVEL_SPAN, LEVEL_SPAN))


@functools.cache
def _fast_length(n: int) -> int:
    """The smallest 2**a * 3**b at or above ``n`` (a length numpy's FFT handles fast)."""
    best = 1 << int(np.ceil(np.log2(n)))
    three = 1
    while three < best:
        length = three << max(0, int(np.ceil(np.log2(n / three))))
        best = min(best, length)
        three *= 3
    return best


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelation of ``x`` (mean removed) at lags 0..``max_lag``, normalised to lag 0;
    zeros when ``x`` is flat.

    Each lag's sum is divided by the number of overlapping samples (unbiased), so long lags
    are not penalised for their shorter overlap.
    """
    x = x - x.mean()
    n = x.size
    # Zero padding to n + max_lag keeps lags 0..max_lag free of circular wrap-around, so they
    # are exact; longer lags are never read. A 2**a * 3**b length keeps the FFT fast.
    spectrum = np.fft.rfft(x, _fast_length(n + max_lag))
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: max_lag + 1]
    if acf[0] <= 0.0:
        return np.zeros(max_lag + 1)
    return acf / (n - np.arange(max_lag + 1)) * (n / acf[0])


def _best_autocorrelation(x: np.ndarray, fs: float, lags_s: tuple[float, float]) -> float:
    """Highest :func:`autocorrelation` of ``x`` in the lag range (s)."""
    lo = max(1, int(round(lags_s[0] * fs)))
    hi = min(x.size - 1, int(round(lags_s[1] * fs)))
    return float(np.clip(autocorrelation(x, hi)[lo:].max(), -1.0, 1.0))


def _slice_rms(beat: np.ndarray, fs: float) -> np.ndarray:
    """RMS of each whole 1 s slice of a window's beat band."""
    n_slice = max(1, int(round(BURST_SLICE_S * fs)))
    n_slices = max(1, beat.size // n_slice)
    slices = beat[: n_slices * n_slice].reshape(n_slices, -1)
    return np.sqrt(np.mean(slices * slices, axis=1))


def quiet_level(beat: np.ndarray, fs: float) -> float:
    """log10 of the median 1 s RMS of a window's beat band: its level without the bursts
    of a movement (what the night's levels are learnt from)."""
    return float(np.log10(max(float(np.median(_slice_rms(beat, fs))), 1e-300)))


def window_features(
    raw: np.ndarray,
    beat: np.ndarray,
    breath: np.ndarray,
    high: np.ndarray,
    fs: float,
    recent: float | None = None,
    floor: float | None = None,
    in_bed: float | None = None,
) -> np.ndarray:
    """The feature vector (float32, in :data:`FEATURE_NAMES` order) of one window.

    Args:
        raw: the window's raw samples (any units, offset and polarity).
        beat, breath, high: the same samples through the beat, breathing and high band-passes
            (causal, run continuously over the stream, as :class:`WindowFeatures` does).
        fs: sampling rate, samples/s.
        recent, floor: the night's recent level and floor (log10, the units of
            :func:`quiet_level`); None for the window's own quiet level (the first window
            of a night has nothing else to go by).
        in_bed: the night's level of clear heartbeats (:class:`NightLevels`); None when it
            has had none lately (then ``level_in_bed`` is 0 and ``in_bed_known`` 0).
    """
    slice_rms = _slice_rms(beat, fs)
    median_rms = float(np.median(slice_rms))
    burst = float(slice_rms.max()) / median_rms if median_rms > 0 else 1.0
    centred = beat - beat.mean()
    squared = centred * centred  # squared again below: far faster than centred**4 (pow)
    var = float(np.mean(squared))
    kurtosis = float(np.mean(squared * squared)) / var**2 if var > 0 else 1.0
    if recent is None or floor is None:  # the first window of a night: its own level
        own = quiet_level(beat, fs)
        recent, floor = (own if recent is None else recent), (own if floor is None else floor)
    beat_level = _log_rms(beat)
    return np.array(
        [
            _relative(beat_level, recent),
            _relative(beat_level, floor),
            0.0 if in_bed is None else _relative(beat_level, in_bed),
            0.0 if in_bed is None else 1.0,
            _relative(_log_rms(breath), beat_level),
            _relative(_log_rms(high), beat_level),
            np.log10(burst),
            _best_autocorrelation(beat, fs, BEAT_LAGS_S),
            _best_autocorrelation(np.abs(beat), fs, BEAT_LAGS_S),
            _best_autocorrelation(breath, fs, BREATH_LAGS_S),
            np.log10(kurtosis),
            np.log10(_piled(raw) / fs + 0.01),
        ],
        dtype=np.float32,
    )


class NightLevels:
    """The night's beat-band levels, learnt window by window (one quiet level per window):
    the *recent* level (median of the last :data:`RECENT_WINDOWS`), the *floor*
    (:data:`FLOOR_PERCENTILE` of the last :data:`FLOOR_WINDOWS`) and the *in-bed* level
    (median of the clear heartbeats among those: a person was there, still). A sensor gap
    keeps them: the bed and the sensor are the same after it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the night."""
        self._levels: list[float] = []
        self._clear: list[bool] = []

    def references(self) -> tuple[float | None, float | None, float | None]:
        """(recent, floor, in bed), each None before there is anything to learn it from."""
        if not self._levels:
            return None, None, None
        levels = np.asarray(self._levels)
        recent = float(np.median(levels[-RECENT_WINDOWS:]))
        floor = float(np.percentile(levels, FLOOR_PERCENTILE))
        clear = levels[np.asarray(self._clear)]
        return recent, floor, (float(np.median(clear)) if clear.size else None)

    def add(self, level: float, features: np.ndarray) -> None:
        """The quiet level of the window just judged, and its features (which say whether it
        was a clear heartbeat)."""
        periodicity = features[FEATURE_NAMES.index("envelope_periodicity")]
        burst = features[FEATURE_NAMES.index("burst")]
        self._levels.append(level)
        clear = periodicity >= CLEAR_BEAT_PERIODICITY and burst <= CLEAR_BEAT_BURST
        self._clear.append(bool(clear))
        if len(self._levels) > FLOOR_WINDOWS:
            del self._levels[: len(self._levels) - FLOOR_WINDOWS]
            del self._clear[: len(self._clear) - FLOOR_WINDOWS]


def _check_fs(fs: Any) -> float:
    try:
        value = float(fs)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(fs, bool) or not FS_RANGE[0] <= value <= FS_RANGE[1]:
        fail(
            "E227",
            f"sampling rate {fs!r} is outside {FS_RANGE[0]:g}..{FS_RANGE[1]:g} Hz",
            "configure the sensor's real rate (50 to 1000 samples/s)",
        )
    return value


def _checked_samples(samples: Any) -> np.ndarray:
    """``samples`` as a 1-D float64 array of finite numbers, else E226."""
    try:
        return as_samples(samples, "samples", finite=True)
    except (TypeError, ValueError) as exc:
        fail(
            "E226",
            f"quality gate got unusable samples ({exc})",
            "split the stream at the gap and pass the next chunk with its start_index",
        )


class WindowFeatures:
    """Streaming feature extractor: raw ADC counts in, one feature vector per window out.

    Window k covers stream samples ``[origin + k * hop, origin + k * hop + window)`` with
    ``hop = round(HOP_S * fs)`` and ``window = round(WINDOW_S * fs)``; ``origin`` is the first
    sample fed (or the one after a gap). It is reported by the call that supplies its last
    sample. Chunking never changes the result.

    Args:
        fs: sampling rate, 50..1000 samples/s.

    Raises:
        BedsideError: E227 when ``fs`` is outside that range.
    """

    def __init__(self, fs: float) -> None:
        self.fs = _check_fs(fs)
        self.hop = int(round(HOP_S * self.fs))
        self.window = int(round(WINDOW_S * self.fs))
        # The beat band is the J-peak detector's (dsp_c.beats.beat_filter; at 50 Hz and up
        # exactly BEAT_BAND_HZ), so a caller that runs the detector can hand it over.
        # Power-line hum out of the beat and high bands, which a band's skirt lets it into
        # (the breathing band's skirt is far from it).
        self._filters = [
            beat_filter(self.fs, mains=True),
            dsp_c.SosFilter(dsp_c.butter_bandpass(2, *BREATH_BAND_HZ, self.fs)),
            dsp_c.SosFilter(
                dsp_c.with_mains_notches(dsp_c.butter_bandpass(2, *HIGH_BAND_HZ, self.fs), self.fs)
            ),
        ]
        self.levels = NightLevels()
        self.reset()

    def reset(self, origin: int = 0) -> None:
        """Forget everything (the night's levels too); the next sample fed is stream sample
        ``origin``."""
        self.levels.reset()
        self.restart(origin)

    def restart(self, origin: int) -> None:
        """A new stretch after a sensor gap: the next sample fed is stream sample ``origin``;
        the filters and windows start afresh, the night's levels are kept."""
        self._origin = int(origin)
        self._next = self._origin  # stream index of the next sample expected
        self._buffer = np.empty((4, 0))  # raw, beat, breath, high; from self._buffer_start
        self._buffer_start = self._origin
        self._next_window = self._origin  # start of the next window to report
        self._primed = False
        # The stretch's first chunks until they hold PRIMING_S: the filters are primed from
        # those samples however they were cut (no window ends that early).
        self._head: list[tuple[np.ndarray, np.ndarray | None]] = []
        self._band_given: bool | None = None  # whether this stretch's caller hands the band

    @property
    def next_index(self) -> int:
        """Stream index of the next sample expected."""
        return self._next

    def process(self, samples: Any) -> list[tuple[int, int, np.ndarray]]:
        """Feed the next chunk; returns ``(start, stop, features)`` of each window it completes.

        Raises:
            BedsideError: E226 when the chunk is not a 1-D array of finite real numbers
                (nothing is consumed then).
        """
        return self._process_checked(_checked_samples(samples))

    def _process_checked(
        self, x: np.ndarray, beat_band: np.ndarray | None = None
    ) -> list[tuple[int, int, np.ndarray]]:
        """:meth:`process` for a chunk checked already (a 1-D, C-contiguous float64 array of
        finite samples). ``beat_band``: the chunk through ``beat_filter(fs, mains=True)``,
        primed with ``reset(steady_input=priming_level(...))`` of the stretch, as the J-peak
        detector's band-pass is; then it is not filtered again. A stretch takes it with every
        chunk or with none (ValueError otherwise: our own band-pass would have missed some)."""
        if x.size == 0:
            return []
        if self._band_given is None:
            self._band_given = beat_band is not None
        elif self._band_given != (beat_band is not None):
            raise ValueError("a stretch's beat band must come with every chunk or none")
        if not self._primed:
            # Copies: a caller may refill the same buffer for its next chunk.
            self._head.append((x.copy(), None if beat_band is None else beat_band.copy()))
            self._next += x.size
            if self._next - self._origin < PRIMING_S * self.fs:
                return []
            x = np.concatenate([c for c, _ in self._head])
            if self._band_given:
                beat_band = np.concatenate([b for _, b in self._head])
            self._head, self._next = [], self._origin
            own = self._filters[1:] if self._band_given else self._filters
            level = priming_level(x, self.fs)
            for f in own:  # the steady state of the ADC offset: no start-up ring
                f.reset(steady_input=level)
            self._primed = True
        if beat_band is None:
            beat_band = self._filters[0]._process_checked(x)
        bands = [x, beat_band] + [f._process_checked(x) for f in self._filters[1:]]
        self._buffer = np.concatenate([self._buffer, np.stack(bands)], axis=1)
        self._next += x.size
        out = []
        while self._next_window + self.window <= self._next:
            a = self._next_window - self._buffer_start
            raw, beat, breath, high = self._buffer[:, a : a + self.window]
            stop = self._next_window + self.window
            features = window_features(raw, beat, breath, high, self.fs, *self.levels.references())
            self.levels.add(quiet_level(beat, self.fs), features)
            out.append((self._next_window, stop, features))
            self._next_window += self.hop
        drop = self._next_window - self._buffer_start
        if drop > 0:  # keep only what a later window still needs
            self._buffer = self._buffer[:, drop:]
            self._buffer_start += drop
        return out


@dataclass(frozen=True)
class Judgement:
    """The gate's verdict on one window."""

    start_index: int  #: stream sample index of the window's first sample
    stop_index: int  #: just past its last sample
    state: str  #: one of STATES
    quality: float  #: probability of "good", 0..1
    probs: tuple[float, float, float, float]  #: probability of each of STATES


class QualityGate:
    """Streaming signal-quality gate over raw ADC counts (see the module docstring).

    Args:
        fs: sampling rate, 50..1000 samples/s.
        model_path: a ``.tflite`` model; None for the packaged ``models/bcg_quality.tflite``.

    Raises:
        BedsideError: at construction, never later for the model: E220 model file missing or
            unreadable, E221 not a TFLite model (corrupt), E222 a model of another shape,
            E223 no TFLite runtime installed; E227 ``fs`` out of range.
    """

    def __init__(self, fs: float, model_path: str | os.PathLike | None = None) -> None:
        from edge.model import QualityModel  # the runtime import stays out of feature-only use

        self._features = WindowFeatures(fs)
        self._model = QualityModel(model_path, n_features=len(FEATURE_NAMES), n_classes=len(STATES))

    @property
    def fs(self) -> float:
        """Sampling rate, samples/s."""
        return self._features.fs

    def process(self, samples: np.ndarray, start_index: int | None = None) -> list[Judgement]:
        """Feed the next chunk of raw ADC counts; returns the judgements it completes.

        Args:
            samples: 1-D raw samples, any length.
            start_index: stream index of ``samples[0]``; None means right after the previous
                chunk. Ahead of that is a gap: the windows restart at ``start_index`` (no window
                spans a gap).

        Raises:
            BedsideError: E225 when ``start_index`` is behind the stream (samples fed twice),
                E226 when the samples are not finite real numbers; nothing is consumed then.
        """
        x = _checked_samples(samples)  # before anything changes: a refused chunk loses nothing
        return self._process_checked(x, start_index)

    def _process_checked(
        self, x: np.ndarray, start_index: int | None = None, beat_band: np.ndarray | None = None
    ) -> list[Judgement]:
        """:meth:`process` for a chunk checked already (the pipeline's intake: a 1-D,
        C-contiguous float64 array of finite samples), with the J-peak detector's band of it
        when the caller has one (see :meth:`WindowFeatures._process_checked`)."""
        expected = self._features.next_index
        if start_index is not None and int(start_index) != expected:
            if int(start_index) < expected:
                fail(
                    "E225",
                    f"chunk starts at sample {int(start_index)}, behind the stream "
                    f"(next expected {expected})",
                    "feed each sample once, in order; call reset() to start a new stream",
                )
            self._features.restart(int(start_index))
        out = []
        for start, stop, features in self._features._process_checked(x, beat_band):
            probs = self._model.predict(features)
            out.append(
                Judgement(
                    start_index=start,
                    stop_index=stop,
                    state=STATES[int(np.argmax(probs))],
                    quality=float(probs[STATES.index("good")]),
                    probs=tuple(float(p) for p in probs),
                )
            )
        return out

    def reset(self) -> None:
        """Forget the stream: the next chunk starts a new one at sample 0 (or its start_index)."""
        self._features.reset()
