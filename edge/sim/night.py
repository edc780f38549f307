"""A simulated night: ADC samples rendered on demand, with its ground truth.

Everything is decided when the :class:`Night` is made (the person, the timeline, every
breath and beat, the movement, the sensor: a fraction of a second for 8 hours); samples
are rendered when asked for, so an 8 h night streams in 1 s chunks without ever holding
its 7.2 M samples.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ._random import stream
from .motion import SUPPORT_WIDTHS, Pulses, movement
from .person import N_SYSTOLIC, Person, check_range
from .physiology import Breathing, Heartbeats, SleepStages, beat, breathe
from .render import FRAME_BLOCKS, Beats, Converter, Levels, Plan, render_blocks
from .scenario import GOOD_MIN_SNR_DB, POOR_MAX_SNR_DB, POSTURES, Scenario, State
from .sensor import Sensor, band_fraction
from .sensor_model import SensorModel, beat_response, first_wave_lag

__all__ = ["FS_RANGE", "MAX_DURATION_S", "Night", "SegmentTruth"]

#: Sampling rates a night can be rendered at (samples/s), as the product supports.
FS_RANGE = (50.0, 1000.0)
#: Longest night (s).
MAX_DURATION_S = 48 * 3600.0
#: Default night length (s).
DEFAULT_DURATION_S = 8 * 3600.0
#: SNR of GOOD segments a night may be given (dB).
SNR_RANGE_DB = (GOOD_MIN_SNR_DB, 60.0)
#: A drawn night's nominal SNR (supine, centre of the mattress), dB.
DRAWN_SNR_DB = (18.0, 32.0)
#: A POOR segment's SNR when drawn, dB.
DRAWN_POOR_SNR_DB = (-6.0, POOR_MAX_SNR_DB)
#: Levels change over this long between two still segments (s).
RAMP_S = 0.5
#: Default sampling rate (samples/s) when neither the night nor its sensor model sets one.
DEFAULT_FS = 250.0
#: Blocks rendered together (about two minutes): one pass of array arithmetic amortizes the
#: per-call overhead, and a 1 s chunk reader gets the next 127 from the cache. A ringing
#: bed is filtered in frames of as many blocks, so a run is one frame.
_RUN_BLOCKS = FRAME_BLOCKS
_CACHE_RUNS = 2


@dataclass(frozen=True)
class SegmentTruth:
    """One segment of the night as rendered, with what the evaluation splits by.

    ``start``/``stop`` are sample indices (``[start, stop)``, possibly empty for a
    segment shorter than a sample). Rates are NaN where they do not exist (no beats in an
    empty bed, no breaths in an apnea) or fewer than two events fall inside.
    """

    index: int
    start: int
    stop: int
    start_s: float
    stop_s: float
    state: State
    posture: str | None
    apnea: bool
    coupling: float
    snr_db: float  #: actual J-wave SNR (see Segment.snr_db); NaN for EMPTY and MOTION
    j_counts: float  #: J-wave amplitude (counts) before breathing modulation; 0 if empty
    heart_bpm: float  #: from the normal (NN) beat intervals inside the segment
    breaths_per_min: float  #: from the breath intervals inside the segment
    n_beats: int
    n_ectopic: int
    n_breaths: int


class Night:
    """A simulated night of under-mattress BCG with ground truth.

    Args:
        seed: the night (a whole number >= 0): the same arguments, the same samples and
            truth, bit for bit, on any machine with the same numpy.
        fs: sampling rate, 50 to 1000 samples/s; default the sensor model's, else 250.
        duration_s: length, up to 48 h; default 8 h, or the scenario's length.
        scenario: the timeline; default ``Scenario.random(seed, duration_s)``.
        heart_bpm: mean heart rate (40-150); default drawn (45-85).
        breaths_per_min: mean breathing rate (6-30); default drawn (9-22).
        snr_db: J-wave SNR of every GOOD segment (16-60 dB) that does not set its own;
            default: the night's noise level is drawn so that a supine sleeper at the
            centre has 18 to 32 dB, and the other postures have less (their beats are
            weaker), never under 17 dB.
        sensor_model: the kind of sensor (:class:`~edge.sim.sensor_model.SensorModel`), or
            a preset name (``"ringing"``, ``"multiwave"``, ``"fiber_mat"``, ``"adc12"``)
            whose parameters are drawn from the seed; default the 16-bit sensor below.
            The person, the timeline and the truth do not depend on it.

    Samples are ADC counts as int32 (16-bit unipolar converter: 0..65535, bias near
    32768), rendered on demand by :meth:`samples` and :meth:`chunks`; a sensor model
    sets its own bits, offset, polarity and units.

    Ground truth: :attr:`beats` (J-peak sample indices), :attr:`ibi_ms`,
    :attr:`ectopic`, :attr:`breaths` (ends of inspiration), :meth:`state_at` (label per
    sample), :attr:`segments` (per-segment posture, SNR, heart and breathing rate),
    :meth:`heart_rate_at`, :meth:`breathing_rate_at`, :attr:`events`.
    """

    def __init__(
        self,
        seed: int = 0,
        fs: float | None = None,
        duration_s: float | None = None,
        scenario: Scenario | None = None,
        heart_bpm: float | None = None,
        breaths_per_min: float | None = None,
        snr_db: float | None = None,
        sensor_model: SensorModel | str | None = None,
    ) -> None:
        self._seed = _check_seed(seed)
        self._model = _resolve_model(sensor_model, self._seed)
        self._fs = _resolve_fs(fs, self._model)
        if scenario is not None and not isinstance(scenario, Scenario):
            raise ValueError(f"scenario: must be a Scenario or None, got {type(scenario).__name__}")
        if duration_s is not None:
            duration_s = _check_duration(duration_s)
            if scenario is not None and not math.isclose(duration_s, scenario.duration_s):
                raise ValueError(
                    f"duration_s: {duration_s:g} s differs from the scenario's "
                    f"{scenario.duration_s:g} s; leave it out or truncate the scenario"
                )
        elif scenario is not None:
            duration_s = _check_duration(scenario.duration_s)
        else:
            duration_s = DEFAULT_DURATION_S
        if snr_db is not None:
            snr_db = check_range("snr_db", snr_db, SNR_RANGE_DB)
        n_samples = int(round(duration_s * self._fs))
        if n_samples < 1:
            raise ValueError(f"duration_s: shorter than one sample at {self._fs:g} Hz")
        self._duration_s = float(duration_s)
        self._n_samples = n_samples
        self._scenario = scenario if scenario is not None else Scenario.random(seed, duration_s)
        self._person = Person.random(seed, heart_bpm, breaths_per_min)
        self._sensor = Sensor.random(seed, self._fs, duration_s)
        if self._model.drift_gain != 1.0:
            drift = self._sensor.drift_counts * self._model.drift_gain
            self._sensor = dataclasses.replace(self._sensor, drift_counts=drift)
        drawn_snr = float(stream(seed, "snr").uniform(*DRAWN_SNR_DB))
        self._snr_db = drawn_snr if snr_db is None else snr_db
        self._bounds = np.array(
            [int(round(seg.start_s * self._fs)) for seg in self._scenario] + [n_samples],
            dtype=np.int64,
        )
        self._bounds = np.minimum(self._bounds, n_samples)
        self._states = np.array([seg.state for seg in self._scenario], dtype=np.int8)

        stages = SleepStages.random(stream(seed, "sleep"), duration_s)
        breathing = breathe(self._person, self._scenario, stages, stream(seed, "breathing"))
        hearts = beat(self._person, self._scenario, stages, breathing, stream(seed, "heart"))
        seg_levels = self._segment_levels(snr_db)
        levels = _levels(self._scenario, seg_levels)
        self._seg_levels = seg_levels
        self._make_truth(hearts, breathing)
        beats = self._beat_waves(hearts, breathing, levels, seg_levels)
        scale = self._person.j_amplitude * np.array([seg.coupling for seg in self._scenario])
        shifts, jerks = movement(seed, self._scenario, scale)
        ring, converter = None, None
        self._beat_lags = MappingProxyType(dict.fromkeys(POSTURES, 0.0))
        self._faults: tuple[tuple[int, int, str], ...] = ()
        if not self._model.is_default:
            ring, lags = self._transfer()
            self._beat_lags = MappingProxyType(lags)
            shifts = self._rail_hits(shifts, 1.0 if ring is None else float(ring.sum()))
            converter = self._converter()
        self._plan = Plan(
            seed=self._seed,
            fs=self._fs,
            n_samples=n_samples,
            block=max(1, int(round(self._fs))),
            sensor=self._sensor,
            levels=levels,
            breathing=breathing,
            beats=beats,
            shifts=shifts,
            jerks=jerks,
            ring=ring,
            converter=converter,
        )
        self._cache: dict[int, np.ndarray] = {}
        self._segments = self._segment_truth()

    # --- construction helpers -----------------------------------------------------------

    def _segment_levels(self, snr_db: float | None) -> dict[str, np.ndarray]:
        """Per segment: J amplitude, breathing, baseline (units), body noise (counts), SNR."""
        person, sensor = self._person, self._sensor
        rng = stream(self._seed, "levels")
        n = len(self._scenario)
        out = {k: np.zeros(n) for k in ("j", "resp", "dc", "body", "drift", "snr")}
        floor = sensor.floor_counts()
        if not self._model.is_default:  # this converter's rounding, in default counts
            step = math.sqrt(band_fraction(self._fs) / 12.0) / self._model.adc_gain
            floor = float(math.hypot(sensor.noise_counts, step))
        white_per_band = 1.0 / math.sqrt(band_fraction(self._fs))
        supine_counts = person.j_amplitude * sensor.gain
        # The night's body noise (band RMS, counts) when its SNR is drawn.
        body_noise = supine_counts / 10 ** (self._snr_db / 20)
        for i, seg in enumerate(self._scenario):
            # Draw for every segment so a segment's numbers do not depend on the others.
            wobble, poor_snr = rng.uniform(0.85, 1.2), rng.uniform(*DRAWN_POOR_SNR_DB)
            if not seg.in_bed:
                out["drift"][i] = sensor.drift_counts
                out["snr"][i] = np.nan
                continue
            morph = person.morphology[seg.posture]
            j_units = person.j_amplitude * morph.gain * seg.coupling
            j_counts = j_units * sensor.gain
            out["j"][i] = j_units
            out["resp"][i] = person.j_amplitude * person.resp_depth * morph.resp_gain * seg.coupling
            out["dc"][i] = person.j_amplitude * morph.dc * seg.coupling
            out["drift"][i] = 3.0 * sensor.drift_counts
            if seg.snr_db is not None:
                target = seg.snr_db
            elif seg.state is State.POOR:
                target = poor_snr
            elif seg.state is State.GOOD and snr_db is not None:
                target = snr_db
            else:  # GOOD drawn (and MOTION, whose noise hardly matters)
                target = 20 * math.log10(j_counts / (body_noise * wobble))
                target = min(max(target, GOOD_MIN_SNR_DB + 1.0), 45.0)
            total = j_counts / 10 ** (target / 20)
            body = math.sqrt(max(total**2 - floor**2, 0.0))
            out["body"][i] = body * white_per_band
            actual = 20 * math.log10(j_counts / math.hypot(body, floor))
            out["snr"][i] = actual if seg.state in (State.GOOD, State.POOR) else np.nan
        return out

    def _make_truth(self, hearts: Heartbeats, breathing: Breathing) -> None:
        fs, n = self._fs, self._n_samples
        idx = np.rint(hearts.j_s * fs).astype(np.int64)
        keep = (idx >= 0) & (idx < n)
        keep[keep] = self._state_of(idx[keep]) != State.EMPTY
        self._beat_s = _frozen(hearts.j_s[keep])
        self._beats = _frozen(idx[keep])
        self._ectopic = _frozen(hearts.ectopic[keep])
        post = hearts.post_ectopic[keep]
        # Intervals: NaN across an empty bed (or before the first beat).
        span = np.searchsorted(self._empty_starts(), self._beats, side="right")
        ibi = np.full(self._beats.size, np.nan)
        same = np.zeros(self._beats.size, dtype=bool)
        same[1:] = span[1:] == span[:-1]
        ibi[1:] = 1000.0 * np.diff(self._beat_s)
        ibi[~same] = np.nan
        self._ibi_ms = _frozen(ibi)
        self._ibi_normal = _frozen(np.isfinite(ibi) & ~self._ectopic & ~post)
        # The interval the heart rate is read from: a premature beat and its pause count
        # as two normal beats (half the pair), as a cardiologist reads the rhythm.
        rate_ibi = ibi.copy()
        k = np.flatnonzero(self._ectopic)
        for i in k:
            pair = np.nan
            if i + 1 < ibi.size and np.isfinite(ibi[i]) and np.isfinite(ibi[i + 1]):
                pair = 0.5 * (ibi[i] + ibi[i + 1])
            rate_ibi[i] = pair
            if i + 1 < ibi.size:
                rate_ibi[i + 1] = pair
        self._rate_ibi = rate_ibi
        # Breaths: ends of inspiration.
        peak_s = breathing.peak_s
        bidx = np.rint(peak_s * fs).astype(np.int64)
        keep = (bidx >= 0) & (bidx < n)
        keep[keep] = self._state_of(bidx[keep]) != State.EMPTY
        self._breath_s = _frozen(peak_s[keep])
        self._breaths = _frozen(bidx[keep])
        intervals = np.diff(self._breath_s)
        ok = np.ones(intervals.size, dtype=bool)
        for seg in self._scenario:
            if seg.apnea or not seg.in_bed:
                ok &= ~((self._breath_s[:-1] < seg.stop_s) & (self._breath_s[1:] > seg.start_s))
        self._breath_interval = np.where(ok, intervals, np.nan)

    def _beat_waves(
        self,
        hearts: Heartbeats,
        breathing: Breathing,
        levels: Levels,
        seg_levels: dict[str, np.ndarray],
    ) -> Beats:
        """Each truth beat's waves: posture morphology, timing, amplitude."""
        person, rng = self._person, stream(self._seed, "beat shape")
        j = self._beat_s
        n = j.size
        seg = self._segment_index_s(j)
        posture_id = np.array(
            [POSTURES.index(s.posture) if s.posture else 0 for s in self._scenario]
        )[seg]
        morph = [person.morphology[p] for p in POSTURES]
        off = np.stack([m.offsets_s for m in morph])[posture_id]
        wid = np.stack([m.widths_s for m in morph])[posture_id]
        amp = np.stack([m.amplitudes for m in morph])[posture_id]
        # Beat-to-beat variation: timing scale +-2 %, amplitude +-4 %.
        scale = np.clip(1 + 0.02 * rng.standard_normal(n), 0.94, 1.06)
        off = off * scale[:, None]
        wid = wid * scale[:, None]
        nxt = np.full(n, 60.0 / person.heart_bpm)
        if n > 1:
            gaps = np.diff(j)
            nxt[:-1] = np.where(gaps < 2.5, gaps, nxt[:-1])
        off[:, N_SYSTOLIC:] += np.clip(person.diastolic_frac * nxt, 0.18, 0.55)[:, None]
        j_level = np.interp(j, levels.knots_s, _knot_values(self._scenario, seg_levels["j"]))
        breath = np.clip(breathing.volume(j), 0.0, 1.5)
        size = j_level * (1 + person.resp_mod * (breath - 0.5))
        size *= np.clip(1 + 0.04 * rng.standard_normal(n), 0.85, 1.15)
        size *= np.where(self._ectopic, rng.uniform(0.3, 0.6, n), 1.0)
        post = np.zeros(n, dtype=bool)
        post[1:] = self._ectopic[:-1]
        size *= np.where(post, rng.uniform(1.15, 1.4, n), 1.0)
        self._beat_counts = _frozen(size * self._sensor.gain)
        if self._model.is_default:
            return Beats(j, off, wid, amp * size[:, None])
        self._beat_counts = _frozen(size * (self._sensor.gain * self._model.adc_gain))
        rng = stream(self._seed, "sensor waves")
        return Beats(j, *self._model.beat_waves(off, wid, amp * size[:, None], rng))

    def _transfer(self) -> tuple[np.ndarray | None, dict[str, float]]:
        """The bed's impulse response at fs (None without resonances), scaled so that the
        supine systolic complex keeps its height, and where the first wave of each
        posture's beat peaks (see :attr:`beat_lags_s`)."""
        morph = self._person.morphology
        flat = dataclasses.replace(self._model, resonances=())
        lags = {p: first_wave_lag(*beat_response(self._model, morph[p])) for p in POSTURES}
        ring = self._model.impulse_response(self._fs)
        if ring is not None:
            _, raw = beat_response(flat, morph["supine"])
            _, rung = beat_response(self._model, morph["supine"])
            ring = ring * (raw.max() / rung.max())
        return ring, lags

    def _rail_hits(self, shifts: Pulses, gain: float) -> Pulses:
        """``shifts`` plus, in some MOTION segments, a swing that hits both rails.

        A Gabor pulse a few times the converter's full scale (through the bed's ``gain``)
        inside the segment, as the Sadek mat swung from 0 to its top when its sleeper got up.
        """
        model = self._model
        if model.rail_hit_chance == 0.0:
            return shifts
        rng = stream(self._seed, "rail hits")
        full = model.adc_max / (self._sensor.gain * model.adc_gain * gain)  # sensor units
        rows, faults = [], []
        for seg in self._scenario:
            # Draw for every segment so a segment's numbers do not depend on the others.
            hit = rng.random() < model.rail_hit_chance
            width, where, phase = rng.uniform(0.15, 0.3), rng.random(), rng.uniform(0, 2 * np.pi)
            size = rng.uniform(3.0, 6.0) * full
            # Inside the segment as the movement pulses are (SUPPORT_WIDTHS each side).
            room = seg.duration_s - 2 * SUPPORT_WIDTHS * width
            if not hit or seg.state is not State.MOTION or room <= 0:
                continue
            centre = seg.start_s + SUPPORT_WIDTHS * width + where * room
            rows.append((centre, width, 1.0 / (2 * width), phase, size))
            span = (centre - 3 * width, centre + 3 * width)
            faults.append((*(int(round(v * self._fs)) for v in span), "rails"))
        self._faults += tuple(faults)
        if not rows:
            return shifts
        add = np.array(rows).T
        fields = zip(_pulse_fields(shifts), add, strict=True)
        merged = [np.concatenate([old, new]) for old, new in fields]
        order = np.argsort(merged[0], kind="stable")
        return Pulses(*(m[order] for m in merged))

    def _converter(self) -> Converter:
        """The model's converter, with its dropouts (runs of 20 to 500 ms at 0 counts)."""
        model, sensor = self._model, self._sensor
        offset = model.adc_offset
        if offset is None:  # the night's bias, at this converter's scale
            offset = sensor.offset * (model.adc_max + 1) / 65536
        rng = stream(self._seed, "dropouts")
        k = int(rng.poisson(model.dropouts_per_hour * self._duration_s / 3600.0))
        start = np.sort(rng.integers(0, self._n_samples, k))
        length = np.maximum(1, np.rint(rng.uniform(0.02, 0.5, k) * self._fs)).astype(np.int64)
        stop = np.minimum(start + length, self._n_samples)
        self._faults += tuple((int(a), int(b), "dropout") for a, b in zip(start, stop, strict=True))
        self._faults = tuple(sorted(self._faults))
        return Converter(
            bias=float(sensor.offset),
            offset=float(offset),
            gain=model.adc_gain,
            polarity=model.polarity,
            adc_max=model.adc_max,
            scale=model.scale,
            dropout_start=start,
            dropout_stop=stop,
        )

    def _segment_truth(self) -> tuple[SegmentTruth, ...]:
        out = []
        gain = self._sensor.gain * self._model.adc_gain  # counts of this sensor per unit
        for i, seg in enumerate(self._scenario):
            start, stop = int(self._bounds[i]), int(self._bounds[i + 1])
            lo, hi = np.searchsorted(self._beats, [start, stop])
            # Normal intervals with both beats in the segment.
            normal = self._ibi_ms[lo + 1 : hi][self._ibi_normal[lo + 1 : hi]]
            b_lo, b_hi = np.searchsorted(self._breaths, [start, stop])
            br = self._breath_interval[b_lo : max(b_lo, b_hi - 1)]
            br = br[np.isfinite(br)]
            out.append(
                SegmentTruth(
                    index=i,
                    start=start,
                    stop=stop,
                    start_s=seg.start_s,
                    stop_s=seg.stop_s,
                    state=seg.state,
                    posture=seg.posture,
                    apnea=seg.apnea,
                    coupling=seg.coupling,
                    snr_db=float(self._seg_levels["snr"][i]),
                    j_counts=float(self._seg_levels["j"][i] * gain),
                    heart_bpm=60000.0 / float(np.mean(normal)) if normal.size else math.nan,
                    breaths_per_min=60.0 / float(np.mean(br)) if br.size else math.nan,
                    n_beats=int(hi - lo),
                    n_ectopic=int(np.count_nonzero(self._ectopic[lo:hi])),
                    n_breaths=int(b_hi - b_lo),
                )
            )
        return tuple(out)

    def _state_of(self, index: np.ndarray) -> np.ndarray:
        """State of each sample index."""
        return self._states[np.searchsorted(self._bounds, index, side="right") - 1]

    def _segment_index_s(self, t_s: np.ndarray) -> np.ndarray:
        starts = np.array([seg.start_s for seg in self._scenario])
        return np.clip(np.searchsorted(starts, t_s, side="right") - 1, 0, len(starts) - 1)

    def _empty_starts(self) -> np.ndarray:
        return self._bounds[:-1][self._states == State.EMPTY]

    # --- parameters -----------------------------------------------------------------------

    @property
    def seed(self) -> int:
        """The night's seed."""
        return self._seed

    @property
    def fs(self) -> float:
        """Sampling rate, samples/s."""
        return self._fs

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self._duration_s

    @property
    def n_samples(self) -> int:
        """Samples in the night: ``round(duration_s * fs)``."""
        return self._n_samples

    @property
    def scenario(self) -> Scenario:
        """The timeline (seconds)."""
        return self._scenario

    @property
    def person(self) -> Person:
        """The sleeper (physiology and BCG morphology)."""
        return self._person

    @property
    def sensor(self) -> Sensor:
        """The sensor front end (gain, offset, noise, hum, vibration)."""
        return self._sensor

    @property
    def heart_bpm(self) -> float:
        """The person's mean heart rate asleep (given or drawn)."""
        return self._person.heart_bpm

    @property
    def breaths_per_min(self) -> float:
        """The person's mean breathing rate asleep (given or drawn)."""
        return self._person.breaths_per_min

    @property
    def snr_db(self) -> float:
        """The GOOD segments' SNR if given, else the drawn supine nominal SNR."""
        return self._snr_db

    @property
    def sensor_model(self) -> SensorModel:
        """The kind of sensor (``SensorModel()``: the default one)."""
        return self._model

    @property
    def beat_lag_s(self) -> float:
        """Where the sensor's first wave peaks after each truth beat, supine (s).

        The truth beats (:attr:`beats`) are the mechanical beat instants, the J-peak of the
        force the body applies, whatever the sensor. A sensor shows each beat as one or more
        waves; this is the delay of the first of them: the first local maximum of the
        rendered systolic complex (noise-free, in the sensor's own polarity, seen through a
        zero-phase 1-20 Hz band) that reaches ``FIRST_WAVE`` (0.5) x the tallest. 0 for the
        default sensor, about 0 for several waves per beat (the first is the J-wave),
        5 to 90 ms through resonances and a fiber mat's smoothing. :attr:`beat_lags_s`
        has it per posture.
        """
        return self._beat_lags["supine"]

    @property
    def beat_lags_s(self) -> Mapping[str, float]:
        """:attr:`beat_lag_s` for each posture (each has its own beat)."""
        return self._beat_lags

    @property
    def sensor_faults(self) -> tuple[tuple[int, int, str], ...]:
        """(start, stop, kind) sample ranges where the sensor model misbehaves: ``dropout``
        (0 counts) and ``rails`` (a movement that swings to both rails); none by default."""
        return self._faults

    def __repr__(self) -> str:
        return (
            f"Night(seed={self._seed}, fs={self._fs:g}, duration_s={self._duration_s:g}, "
            f"{len(self._scenario)} segments, {self._beats.size} beats, "
            f"{self._breaths.size} breaths)"
        )

    # --- samples ----------------------------------------------------------------------------

    @property
    def block_size(self) -> int:
        """Samples per render block (about one second)."""
        return self._plan.block

    def samples(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """ADC counts of samples ``[start, stop)`` as an int32 array (0..65535).

        With a sensor model: its counts (0 .. ``2**adc_bits - 1``), or float64 samples
        when its ``scale`` is not 1. The same sample has the same value whatever range it
        is asked for in.
        """
        start = _check_index("start", start, self._n_samples)
        stop = self._n_samples if stop is None else _check_index("stop", stop, self._n_samples)
        if stop < start:
            raise ValueError(f"stop: must be >= start = {start}, got {stop}")
        out = np.empty(stop - start, dtype=self._model.dtype)
        size = self._plan.block * _RUN_BLOCKS
        for r in range(start // size, -(-stop // size)):
            run = self._run(r)
            lo, hi = max(start, r * size), min(stop, r * size + run.size)
            out[lo - start : hi - start] = run[lo - r * size : hi - r * size]
        return out

    def chunks(self, chunk_s: float = 1.0) -> Iterator[np.ndarray]:
        """The whole night in consecutive chunks of ``round(chunk_s * fs)`` samples.

        The last chunk may be shorter. Concatenated, they equal ``samples()``.
        """
        if isinstance(chunk_s, bool) or not isinstance(chunk_s, int | float | np.number):
            raise ValueError(f"chunk_s: must be a number of seconds, got {chunk_s!r}")
        if not (math.isfinite(chunk_s) and chunk_s > 0):
            raise ValueError(f"chunk_s: must be positive, got {chunk_s!r}")
        size = max(1, int(round(chunk_s * self._fs)))
        for start in range(0, self._n_samples, size):
            yield self.samples(start, min(start + size, self._n_samples))

    def _run(self, r: int) -> np.ndarray:
        """Samples of blocks ``r * _RUN_BLOCKS`` on (the last run may be short), cached."""
        run = self._cache.get(r)
        if run is None:
            first = r * _RUN_BLOCKS
            run = render_blocks(self._plan, first, min(first + _RUN_BLOCKS, self._plan.n_blocks))
            run.flags.writeable = False
            if len(self._cache) >= _CACHE_RUNS:
                del self._cache[next(iter(self._cache))]  # the oldest
            self._cache[r] = run
        return run

    # --- ground truth ---------------------------------------------------------------------

    @property
    def beats(self) -> np.ndarray:
        """J-peak sample indices (int64), including beats during movement, none in EMPTY."""
        return self._beats

    @property
    def beat_times_s(self) -> np.ndarray:
        """J-peak times in seconds (exact; :attr:`beats` rounds them to samples)."""
        return self._beat_s

    @property
    def ibi_ms(self) -> np.ndarray:
        """Interval ending at each beat, ms (from the exact times); NaN for the first beat
        and for the first after an empty bed."""
        return self._ibi_ms

    @property
    def ectopic(self) -> np.ndarray:
        """True for premature (ectopic) beats; the beat after one ends the compensatory
        pause."""
        return self._ectopic

    @property
    def ibi_normal(self) -> np.ndarray:
        """True where :attr:`ibi_ms` is a normal-to-normal interval: finite, and neither
        ending at an ectopic beat nor at the pause after one. HRV truth uses these."""
        return self._ibi_normal

    @property
    def beat_amplitude_counts(self) -> np.ndarray:
        """J-wave height of each beat in counts (posture, coupling, breathing, ectopy)."""
        return self._beat_counts

    @property
    def breaths(self) -> np.ndarray:
        """Sample index of each end of inspiration (int64); none in apnea or EMPTY."""
        return self._breaths

    @property
    def breath_times_s(self) -> np.ndarray:
        """Ends of inspiration in seconds (exact)."""
        return self._breath_s

    @property
    def segments(self) -> tuple[SegmentTruth, ...]:
        """Per-segment truth: samples, state, posture, SNR, heart and breathing rate."""
        return self._segments

    def segment_at(self, index: int) -> SegmentTruth:
        """The segment holding sample ``index``."""
        index = _check_index("index", index, self._n_samples - 1)
        return self._segments[int(np.searchsorted(self._bounds, index, side="right") - 1)]

    def state_at(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """State label (:class:`State` values, int8) of each sample in ``[start, stop)``."""
        start = _check_index("start", start, self._n_samples)
        stop = self._n_samples if stop is None else _check_index("stop", stop, self._n_samples)
        if stop < start:
            raise ValueError(f"stop: must be >= start = {start}, got {stop}")
        bounds = np.clip(self._bounds, start, stop) - start
        return np.repeat(self._states, np.diff(bounds)).astype(np.int8)

    def heart_rate_at(self, t_s: Any) -> np.ndarray | float:
        """True heart rate (bpm) at times ``t_s`` (seconds; scalar or array).

        60000 / the beat interval holding ``t``; a premature beat and its compensatory
        pause count as two average intervals. NaN before the first beat of a stay in bed
        and while the bed is empty.
        """
        t = np.asarray(t_s, dtype=np.float64)
        k = np.searchsorted(self._beat_s, t, side="right")
        ok = (k > 0) & (k < self._beat_s.size)
        ibi = np.where(ok, self._rate_ibi[np.minimum(k, self._beat_s.size - 1)], np.nan)
        if self._beat_s.size == 0:
            ibi = np.full(t.shape, np.nan)
        out = 60000.0 / ibi
        return float(out) if out.ndim == 0 else out

    def breathing_rate_at(self, t_s: Any) -> np.ndarray | float:
        """True breathing rate (breaths/min) at times ``t_s`` (seconds; scalar or array).

        60 / the interval between the ends of inspiration around ``t``; NaN in an apnea,
        in an empty bed, or for an interval that spans either.
        """
        t = np.asarray(t_s, dtype=np.float64)
        k = np.searchsorted(self._breath_s, t, side="right")
        n = self._breath_s.size
        ok = (k > 0) & (k < n)
        if n < 2:
            out = np.full(t.shape, np.nan)
        else:
            out = np.where(ok, 60.0 / self._breath_interval[np.clip(k - 1, 0, n - 2)], np.nan)
        return float(out) if out.ndim == 0 else out

    @property
    def events(self) -> tuple[tuple[int, str], ...]:
        """(sample, kind) of each bed_entry, bed_exit, posture_change, apnea_start."""
        out = []
        segs = self._scenario.segments
        posture = None
        for i, seg in enumerate(segs):
            start = int(self._bounds[i])
            prev = segs[i - 1] if i else None
            if prev is not None and prev.in_bed != seg.in_bed:
                out.append((start, "bed_entry" if seg.in_bed else "bed_exit"))
            if seg.in_bed and seg.state is not State.MOTION:
                if posture is not None and seg.posture != posture and prev and prev.in_bed:
                    out.append((start, "posture_change"))
                posture = seg.posture
            if seg.apnea and not (prev is not None and prev.apnea):
                out.append((start, "apnea_start"))
        return tuple(out)


def _levels(scenario: Scenario, seg: dict[str, np.ndarray]) -> Levels:
    """Piecewise-linear levels: constant through each still segment, a short ramp between
    two still segments, a ramp across a movement (the posture changes while moving)."""
    knots = _knot_times(scenario)
    return Levels(
        knots_s=knots,
        resp=_knot_values(scenario, seg["resp"]),
        dc=_knot_values(scenario, seg["dc"]),
        body_noise=_knot_values(scenario, seg["body"]),
        drift=_knot_values(scenario, seg["drift"]),
    )


def _knot_segments(scenario: Scenario) -> list[tuple[int, float, float]]:
    """(segment, first knot, last knot) for each segment that holds knots."""
    segs = scenario.segments
    still = [s.state is not State.MOTION for s in segs]
    if not any(still):  # only movement: the levels of its postures, held
        still = [True] * len(segs)
    out = []
    for i, seg in enumerate(segs):
        if not still[i]:
            continue
        ramp = min(RAMP_S / 2, seg.duration_s / 4)
        a = seg.start_s + (ramp if i > 0 and still[i - 1] else 0.0)
        b = seg.stop_s - (ramp if i + 1 < len(segs) and still[i + 1] else 0.0)
        out.append((i, a, b))
    return out


def _knot_times(scenario: Scenario) -> np.ndarray:
    return np.array([t for _, a, b in _knot_segments(scenario) for t in (a, b)])


def _knot_values(scenario: Scenario, values: np.ndarray) -> np.ndarray:
    return np.array([values[i] for i, _, _ in _knot_segments(scenario) for _ in (0, 1)])


def _pulse_fields(p: Pulses) -> tuple[np.ndarray, ...]:
    return (p.centre_s, p.width_s, p.freq_hz, p.phase, p.amplitude)


def _resolve_model(model: SensorModel | str | None, seed: int) -> SensorModel:
    """The night's sensor model: a model, a preset name drawn from the seed, or None."""
    if model is None:
        return SensorModel()
    if isinstance(model, str):
        return SensorModel.preset(model, seed)
    if not isinstance(model, SensorModel):
        raise ValueError(
            f"sensor_model: must be a SensorModel, a preset name or None, "
            f"got {type(model).__name__}"
        )
    return model


def _resolve_fs(fs: Any, model: SensorModel) -> float:
    """The night's rate: ``fs``, else the sensor model's, else DEFAULT_FS."""
    if fs is None:
        return model.fs if model.fs is not None else DEFAULT_FS
    fs = check_range("fs", fs, FS_RANGE)
    if model.fs is not None and fs != model.fs:
        raise ValueError(
            f"fs: the {model.kind!r} sensor samples at {model.fs:g} Hz, got {fs:g}; "
            "leave fs out or give the model another rate"
        )
    return fs


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed: must be a whole number >= 0, got {seed!r}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed: must be in 0..2**63-1, got {seed}")
    return int(seed)


def _check_duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"duration_s: must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and 0 < value <= MAX_DURATION_S):
        raise ValueError(f"duration_s: must be in (0, {MAX_DURATION_S:g}] s, got {value!r}")
    return float(value)


def _check_index(name: str, value: Any, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}: must be a whole sample index, got {value!r}")
    if not 0 <= value <= n:
        raise ValueError(f"{name}: must be in 0..{n}, got {value}")
    return int(value)
