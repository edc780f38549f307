"""Sensor models: how a bed, its transducer and its converter turn the body into samples.

The default night has one kind of sensor: the beat as the body makes it, a 16-bit
converter with its bias near mid-scale, samples in counts. Real sensors differ (see
docs/sim.md, "Sensor models and the real recordings they come from"), and a unit must
give the same answer on all of them. A :class:`SensorModel` says how one differs:

- the bed's **transfer**: damped 2nd-order resonances (:class:`Resonance`) that make each
  beat ring, or smooth it (a fiber mat), and **several comparable waves per beat**
  (copies of the systolic complex a fixed delay apart, of similar height);
- the **converter**: its bits, its offset, its gain relative to the default sensor, the
  polarity, and the units of the samples (``scale``: 1 gives counts as int32, any other
  value float samples, e.g. volts);
- **faults**: more slow drift, short dropouts to 0 and movements that swing the sensor to
  both rails.

Presets (:meth:`SensorModel.preset`, by :data:`KINDS` name) draw a model of one kind from a
seed; :func:`random_sensor_model` draws a random mix of all of them. numpy only.

The truth does not move with the sensor: a night's ``beats`` stay the mechanical beat
instants (the J-peak of the force the body applies, a constant delay after the ECG R-peak);
``Night.beat_lag_s`` says where the sensor's first comparable wave peaks after them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ._random import stream
from .person import N_SYSTOLIC, Morphology, check_range

__all__ = [
    "COMPARABLE",
    "KINDS",
    "Resonance",
    "SensorModel",
    "FIRST_WAVE",
    "band_view",
    "beat_response",
    "first_wave_lag",
    "random_sensor_model",
]

#: The sensor kinds :meth:`SensorModel.preset` draws.
KINDS = ("default", "ringing", "multiwave", "fiber_mat", "adc12")
#: A wave of a beat is "comparable" to the tallest from this fraction of its height on.
COMPARABLE = 0.7
#: ``Night.beat_lag_s`` is the peak of the first wave that reaches this fraction of the
#: tallest: the first of the comparable waves, allowing for the overlaps that make a wave
#: drawn at 0.7 x the tallest come out a little smaller.
FIRST_WAVE = 0.5
#: The band a beat is looked at in for its waves (Hz): a cardiac band, zero-phase.
VIEW_BAND_HZ = (1.0, 20.0)
#: Sampling rates :func:`random_sensor_model` draws from (samples/s), as sold.
COMMON_FS = (50.0, 100.0, 125.0, 200.0, 250.0, 500.0, 1000.0)
#: A resonance's impulse response is cut where its envelope has fallen to this (-120 dB).
RING_CUT = 1e-6
#: Resonances stay below this fraction of the sampling rate (as the noise tones do).
MAX_RESONANCE_FRACTION = 0.4
#: The fine rate the beat's response to the transfer is worked out at (samples/s).
FINE_FS = 2000.0
_MAX_WAVES = 4


@dataclass(frozen=True)
class Resonance:
    """One mode of the bed: a damped 2nd-order resonator ``w0^2 / (s^2 + s w0 / Q + w0^2)``.

    Unity gain at 0 Hz, ``q`` at ``freq_hz``; after a beat it rings at ``freq_hz`` and its
    amplitude falls by ``exp(-pi f t / Q)`` (to 1/e in ``Q / pi`` cycles). A Q of 0.7 makes
    it a smooth low-pass (a fiber mat). ``weight``: its share of the bed's response.
    """

    freq_hz: float
    q: float
    weight: float = 1.0

    def __post_init__(self) -> None:
        check_range("freq_hz", self.freq_hz, (0.5, 200.0))
        check_range("q", self.q, (0.55, 50.0))
        check_range("weight", self.weight, (1e-3, 1e3))

    @property
    def decay_s(self) -> float:
        """How long the ringing lasts: its envelope falls to :data:`RING_CUT` (s)."""
        return math.log(1.0 / RING_CUT) * self.q / (math.pi * self.freq_hz)

    def impulse(self, t_s: np.ndarray) -> np.ndarray:
        """The impulse response at times ``t_s`` (0 before 0; integrates to 1)."""
        w0 = 2 * math.pi * self.freq_hz
        alpha = w0 / (2 * self.q)
        wd = w0 * math.sqrt(1.0 - 1.0 / (4 * self.q * self.q))
        t = np.asarray(t_s, dtype=np.float64)
        tp = np.maximum(t, 0.0)
        return np.where(t >= 0, (w0 * w0 / wd) * np.exp(-alpha * tp) * np.sin(wd * tp), 0.0)


@dataclass(frozen=True)
class SensorModel:
    """One kind of sensor (see the module doc); ``SensorModel()`` is the default sensor.

    Attributes:
        kind: a label: the preset(s) it was drawn from, e.g. ``"ringing+adc12"``.
        fs: the rate the sensor samples at; None: the night's (250 Hz by default).
        resonances: the bed's modes; empty: the beat reaches the sensor as it is.
        wave_delays_s: delays of the later waves of a beat after its first wave (s,
            increasing); empty: one wave per beat.
        wave_heights: height of the first wave and of each later one relative to the
            tallest (so the largest is 1); one more than ``wave_delays_s``.
        wave_jitter: beat-to-beat variation of each wave's height (fraction, RMS): which
            wave is the tallest may change from beat to beat.
        adc_bits: converter resolution; samples are clipped to ``0 .. 2**adc_bits - 1``.
        adc_offset: counts at zero input; None: mid-scale plus the night's drawn bias.
        adc_gain: counts per count of the default sensor (its gain is drawn per night).
        polarity: +1, or -1 for a sensor mounted the other way up (the beat points down).
        scale: output units per count: 1 gives int32 counts; anything else float64
            samples (``scale * counts``: volts, or any gain from 1e-3 to 1e4).
        drift_gain: the slow baseline drift relative to the default sensor's.
        dropouts_per_hour: short runs of 0 counts (the signal lost for 20 to 500 ms).
        rail_hit_chance: the chance that a movement swings the sensor to both rails.
    """

    kind: str = "default"
    fs: float | None = None
    resonances: tuple[Resonance, ...] = ()
    wave_delays_s: tuple[float, ...] = ()
    wave_heights: tuple[float, ...] = (1.0,)
    wave_jitter: float = 0.0
    adc_bits: int = 16
    adc_offset: int | None = None
    adc_gain: float = 1.0
    polarity: int = 1
    scale: float = 1.0
    drift_gain: float = 1.0
    dropouts_per_hour: float = 0.0
    rail_hit_chance: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError(f"kind: must be a non-empty name, got {self.kind!r}")
        if self.fs is not None:
            check_range("fs", self.fs, (50.0, 1000.0))
        if not all(isinstance(r, Resonance) for r in self.resonances):
            raise ValueError("resonances: must be Resonance objects")
        delays = tuple(check_range("wave_delays_s", d, (0.01, 1.0)) for d in self.wave_delays_s)
        if len(delays) >= _MAX_WAVES or any(np.diff(delays) <= 0):
            raise ValueError(
                f"wave_delays_s: up to {_MAX_WAVES - 1} increasing delays, got {delays}"
            )
        heights = tuple(check_range("wave_heights", h, (0.05, 1.0)) for h in self.wave_heights)
        if len(heights) != len(delays) + 1 or max(heights) != 1.0:
            raise ValueError(
                f"wave_heights: one per wave ({len(delays) + 1}) with the tallest 1, got {heights}"
            )
        check_range("wave_jitter", self.wave_jitter, (0.0, 0.3))
        if isinstance(self.adc_bits, bool) or self.adc_bits not in range(8, 25):
            raise ValueError(f"adc_bits: must be a whole number 8..24, got {self.adc_bits!r}")
        if self.adc_offset is not None:
            check_range("adc_offset", self.adc_offset, (0, self.adc_max))
        check_range("adc_gain", self.adc_gain, (1e-4, 1e4))
        if self.polarity not in (1, -1) or isinstance(self.polarity, bool):
            raise ValueError(f"polarity: must be 1 or -1, got {self.polarity!r}")
        check_range("scale", self.scale, (1e-6, 1e6))
        check_range("drift_gain", self.drift_gain, (0.0, 100.0))
        check_range("dropouts_per_hour", self.dropouts_per_hour, (0.0, 3600.0))
        check_range("rail_hit_chance", self.rail_hit_chance, (0.0, 1.0))

    @property
    def is_default(self) -> bool:
        """True when it renders as the default sensor (whatever its ``kind`` label)."""
        return dataclasses.replace(self, kind="default") == SensorModel()

    @property
    def adc_max(self) -> int:
        """The converter's largest count."""
        return 2**self.adc_bits - 1

    @property
    def n_waves(self) -> int:
        """Comparable waves per beat."""
        return len(self.wave_heights)

    @property
    def dtype(self) -> np.dtype:
        """The samples' type: int32 counts, or float64 when ``scale`` is not 1."""
        return np.dtype(np.int32) if self.scale == 1.0 else np.dtype(np.float64)

    @classmethod
    def preset(cls, kind: str, seed: int = 0) -> SensorModel:
        """A sensor of ``kind`` (one of :data:`KINDS`), its parameters drawn from ``seed``.

        ``ringing``: one or two bed modes at 4-15 Hz, Q 3-10. ``multiwave``: 2-4 waves per
        beat 100-250 ms apart, heights within 30 % of the tallest. ``fiber_mat``: the
        Sadek-like microbend mat: 50 Hz, 16-bit counts on a low baseline, a smooth beat,
        slow drift, dropouts and rail hits. ``adc12``: a 12-bit converter at an offset near
        2000 counts with a small gain.
        """
        if kind not in KINDS:
            raise ValueError(f"sensor_model: must be one of {', '.join(KINDS)}, got {kind!r}")
        return cls(kind=kind, **_draw(kind, stream(seed, "sensor model", KINDS.index(kind))))

    def impulse_response(self, fs: float) -> np.ndarray | None:
        """The bed's response to a unit impulse, sampled at ``fs`` (its taps sum to about 1
        before ``Night`` scales them), or None without resonances."""
        if not self.resonances:
            return None
        for r in self.resonances:
            if r.freq_hz >= MAX_RESONANCE_FRACTION * fs:
                raise ValueError(
                    f"resonances: {r.freq_hz:g} Hz is above {MAX_RESONANCE_FRACTION:g} x the "
                    f"sampling rate {fs:g} Hz"
                )
        length = max(r.decay_s for r in self.resonances)
        t = np.arange(int(np.ceil(length * fs)) + 1) / fs
        total = sum(r.weight for r in self.resonances)
        h = sum(r.weight / total * r.impulse(t) for r in self.resonances)
        return np.asarray(h) / fs  # impulse invariance: the taps of a unit-area response

    def beat_waves(
        self,
        offsets: np.ndarray,
        widths: np.ndarray,
        amplitudes: np.ndarray,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each beat's waves (rows; :data:`~edge.sim.person.WAVES` columns) with this
        sensor's later waves appended: copies of the systolic complex (H..N) at
        ``wave_delays_s``, the whole beat scaled by the first wave's height.

        ``rng`` draws the beat-to-beat height jitter (None: none).
        """
        if self.n_waves == 1:
            return offsets, widths, amplitudes
        n = offsets.shape[0]
        heights = np.broadcast_to(np.asarray(self.wave_heights), (n, self.n_waves))
        if rng is not None and self.wave_jitter > 0:
            jitter = rng.standard_normal((n, self.n_waves)) * self.wave_jitter
            heights = heights * np.clip(1.0 + jitter, 0.5, 1.5)
        sys = slice(0, N_SYSTOLIC)
        off, wid, amp = [offsets], [widths], [amplitudes * heights[:, :1]]
        for k, delay in enumerate(self.wave_delays_s, start=1):
            off.append(offsets[:, sys] + delay)
            wid.append(widths[:, sys])
            amp.append(amplitudes[:, sys] * heights[:, k : k + 1])
        return np.hstack(off), np.hstack(wid), np.hstack(amp)


def beat_response(
    model: SensorModel, morph: Morphology, fs: float = FINE_FS
) -> tuple[np.ndarray, np.ndarray]:
    """(times from the J-peak s, signal) of the systolic complex of ``morph`` (H..N, J = 1)
    as this sensor sees it before its converter: with its later waves, through its
    resonances (unscaled taps). The diastolic complex is left out: it is not a J-wave."""
    t = np.arange(int(-0.5 * fs), int(2.0 * fs)) / fs
    sys = slice(0, N_SYSTOLIC)
    off, wid, amp = model.beat_waves(
        morph.offsets_s[None, sys], morph.widths_s[None, sys], morph.amplitudes[None, sys]
    )
    z = (t[:, None] - off[0]) / wid[0]
    y = np.exp(-0.5 * z * z) @ amp[0]
    ring = model.impulse_response(fs)
    if ring is not None:
        n = 1 << int(np.ceil(np.log2(y.size + ring.size - 1)))
        y = np.fft.irfft(np.fft.rfft(y, n) * np.fft.rfft(ring, n), n)[: t.size]
    return t, y


def band_view(y: np.ndarray, fs: float, band_hz: tuple[float, float] = VIEW_BAND_HZ) -> np.ndarray:
    """``y`` as a zero-phase 2nd-order Butterworth band-pass run forward and backward sees
    it (the view of tests/bench/sensor_recordings.py and of the sensor tests)."""
    n = 1 << int(np.ceil(np.log2(2 * y.size)))
    f = np.fft.rfftfreq(n, 1 / fs)
    lo, hi = band_hz
    with np.errstate(divide="ignore"):
        gain = 1.0 / (1.0 + (lo / f) ** 4) / (1.0 + (f / hi) ** 4)
    return np.fft.irfft(np.fft.rfft(y - y.mean(), n) * gain, n)[: y.size]


def first_wave_lag(t_s: np.ndarray, y: np.ndarray, fs: float = FINE_FS) -> float:
    """Where the first wave of a beat's response peaks (s from the mechanical beat): the
    first local maximum from -20 ms on, in :func:`band_view`, that reaches
    :data:`FIRST_WAVE` x the tallest."""
    v = band_view(y, fs)
    top = float(v[t_s >= -0.02].max())
    ok = (v[1:-1] >= v[:-2]) & (v[1:-1] > v[2:]) & (v[1:-1] >= FIRST_WAVE * top)
    ok &= t_s[1:-1] >= -0.02
    return float(t_s[1:-1][np.flatnonzero(ok)[0]])


def random_sensor_model(seed: int, fs: float | None = None) -> SensorModel:
    """A random realistic sensor: any mix of the :data:`KINDS`, a random polarity, output
    units (counts, or floats at a gain of 1e-3 to 1e4) and sampling rate (``fs`` if given,
    else one of :data:`COMMON_FS`; a fiber mat samples at 50 Hz unless ``fs`` says
    otherwise).

    A quarter of them have a plain beat, a quarter ring, a quarter have several waves per
    beat and a quarter both; 40 % have the default 16-bit converter, 30 % the 12-bit one and
    30 % are fiber mats.
    """
    rng = stream(seed, "random sensor model")
    transfer = ("default", "ringing", "multiwave", "ringing+multiwave")[int(rng.integers(4))]
    converter = str(rng.choice(["default", "adc12", "fiber_mat"], p=[0.4, 0.3, 0.3]))
    polarity = 1 if rng.random() < 0.5 else -1
    scale = 1.0 if rng.random() < 0.5 else float(np.exp(rng.uniform(np.log(1e-3), np.log(1e4))))
    drawn_fs = float(rng.choice(COMMON_FS))
    kinds = [k for k in (converter, *transfer.split("+")) if k != "default"]
    fields: dict = {"resonances": ()}
    for kind in kinds:
        drawn = _draw(kind, stream(seed, "sensor model", KINDS.index(kind)))
        # A mat on a ringing bed: the bed rings and the mat smooths, both.
        fields["resonances"] += drawn.pop("resonances", ())
        fields.update(drawn)
    fields["fs"] = float(fs if fs is not None else fields.get("fs", drawn_fs))
    top = 0.9 * MAX_RESONANCE_FRACTION * fields["fs"]
    fields["resonances"] = tuple(
        dataclasses.replace(r, freq_hz=min(r.freq_hz, top)) for r in fields["resonances"]
    )
    return SensorModel(kind="+".join(kinds) or "default", polarity=polarity, scale=scale, **fields)


#: The fiber mat's smoothing: its beat is within 20 dB of its peak up to 7.4 Hz (Sadek),
#: the default beat up to 10-11 Hz. A Butterworth-like pole pair (Q 0.7) at this corner (Hz)
#: brings the simulated beat there (tests/bench/sensor_recordings.py measures both).
FIBER_CORNER_HZ = (2.0, 3.0)


def _draw(kind: str, rng: np.random.Generator) -> dict:
    """The fields of a ``kind`` sensor, drawn."""
    if kind == "default":
        return {}
    if kind == "ringing":
        f0 = float(np.exp(rng.uniform(np.log(4.0), np.log(15.0))))
        modes = [Resonance(f0, float(rng.uniform(3.0, 10.0)))]
        if rng.random() < 0.4:  # a second mode of the frame, higher and weaker
            f1 = min(15.0, f0 * float(rng.uniform(1.5, 2.5)))
            modes.append(Resonance(f1, float(rng.uniform(3.0, 10.0)), float(rng.uniform(0.2, 0.5))))
        return {"resonances": tuple(modes)}
    if kind == "multiwave":
        n = int(rng.choice([2, 3, 4], p=[0.4, 0.4, 0.2]))
        # Spacing 100-250 ms, all the waves within 450 ms: a beat stays shorter than the
        # interval at the drawn heart rates (<= 85 bpm, >= 700 ms). Three or four waves
        # closer than 120-130 ms merge (one's K-wave cancels the next one's J-wave).
        spacing = float(rng.uniform((0.10, 0.12, 0.13)[n - 2], min(0.25, 0.45 / (n - 1))))
        steps = spacing * rng.uniform(0.95, 1.05, n - 1)
        heights = rng.uniform(0.7, 1.0, n)
        return {
            "wave_delays_s": tuple(float(d) for d in np.cumsum(steps)),
            "wave_heights": tuple(float(h) for h in heights / heights.max()),
            "wave_jitter": float(rng.uniform(0.05, 0.12)),
        }
    if kind == "fiber_mat":
        return {
            "fs": 50.0,
            "resonances": (Resonance(float(rng.uniform(*FIBER_CORNER_HZ)), 0.7),),
            "adc_offset": int(rng.integers(6000, 14001)),  # Sadek: 9500 counts
            "adc_gain": float(np.exp(rng.uniform(np.log(0.5), np.log(1.5)))),
            "drift_gain": float(rng.uniform(1.0, 2.0)),
            "dropouts_per_hour": float(rng.uniform(0.5, 3.0)),
            "rail_hit_chance": float(rng.uniform(0.2, 0.5)),
        }
    # adc12
    return {
        "adc_bits": 12,
        "adc_offset": int(rng.integers(1850, 2151)),
        "adc_gain": float(np.exp(rng.uniform(np.log(0.05), np.log(0.25)))),
    }
