"""Labelled windows for the signal-quality model, from the night simulator (numpy only).

Training (``models/train.py``), evaluation (``models/evaluate.py``) and the tests draw their
windows here, so they share one scenario generator and one labelling rule.

Scenarios: a night of ``NIGHT_S`` seconds built from segments of all four states in roughly
equal time (a real night is ~90 % good; the model must also learn the rare states): empty bed,
getting in (movement), good stretches in a random posture, some at low SNR (16-22 dB), poor
stretches (low SNR or weak coupling at the mattress edge), twitches, bed exits. The sampling
rate of each night is drawn from 50 to 1000 Hz, so the features are learnt at every rate.

With ``random_sensors`` (``dataset(..., random_sensors=True)``, ``training_night(seed,
random_sensor=True)``) each night is seen through its own random sensor
(``edge.sim.random_sensor_model(seed)``: ringing beds, several waves per beat, fiber mats,
12-bit converters, any polarity, gain and units) at the same drawn rate: augmentation for a
model that must not hinge on one kind of sensor.

Labelling rule for a window: ``motion`` when it holds at least ``MOTION_MIN_S`` of movement,
else the state covering most of its samples. A window is *pure* when it holds one state only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.eval.transforms import resonator
from edge.quality import FEATURE_NAMES, STATES, WindowFeatures
from edge.sim import POSTURES, Night, Scenario, State, random_sensor_model

__all__ = [
    "DEV_SEEDS",
    "FS_CHOICES",
    "HELD_OUT_FIRST_SEED",
    "MOTION_MIN_S",
    "Windows",
    "dataset",
    "night_windows",
    "training_night",
    "window_labels",
]

NIGHT_S = 900.0  #: length of one training night (s)
MOTION_MIN_S = 0.5  #: movement in a window that makes it a motion window (s)
FS_CHOICES = (50.0, 100.0, 125.0, 200.0, 250.0, 250.0, 500.0, 1000.0)
DEV_SEEDS = range(0, 1000)  #: tuning and training (edge/eval/harness.py: "dev")
HELD_OUT_FIRST_SEED = 1000  #: reported figures only ("held-out")
#: Bump when the generator, the labels or the features change: the cache key includes it.
DATA_VERSION = 3
#: Augmentation: the second pass's gain is drawn log-uniformly in this range.
GAIN_RANGE = (0.05, 1.6)
#: Augmentation: a bed-frame resonance between these frequencies (Hz), this sharp, mixed in
#: at this share (the ringing is then about as tall as the beat itself).
RING_HZ = (4.0, 15.0)
RING_Q = 5.0
RING_MIX = 1.0

_STATE_CODE = {State.EMPTY: 0, State.MOTION: 1, State.POOR: 2, State.GOOD: 3}
assert tuple(s.label for s in _STATE_CODE) == STATES  # model classes == simulator labels


@dataclass
class Windows:
    """Feature vectors with their labels and where they come from (one row per window)."""

    features: np.ndarray  #: (n, len(FEATURE_NAMES)) float32
    labels: np.ndarray  #: (n,) int8, index into STATES
    pure: np.ndarray  #: (n,) bool: the window holds one state only
    seed: np.ndarray  #: (n,) int32: the night's seed
    fs: np.ndarray  #: (n,) float32: the night's sampling rate

    @classmethod
    def concatenate(cls, parts: list[Windows]) -> Windows:
        """All windows of ``parts``, in order."""
        return cls(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("features", "labels", "pure", "seed", "fs")
            )
        )

    def __len__(self) -> int:
        return int(self.labels.size)


def training_night(seed: int, duration_s: float = NIGHT_S, *, random_sensor: bool = False) -> Night:
    """A seeded night with all four states in roughly equal time, at a drawn rate; with
    ``random_sensor``, through ``random_sensor_model(seed)`` at that rate."""
    rng = np.random.default_rng([seed, 0x51])
    fs = float(rng.choice(FS_CHOICES))
    steps: list[tuple] = []
    t = 0.0
    in_bed = rng.random() < 0.6
    posture = str(rng.choice(POSTURES))

    def add(duration: float, *step: object) -> None:
        nonlocal t
        steps.append((round(float(duration), 1), *step))
        t += round(float(duration), 1)

    while t < duration_s:
        if not in_bed:
            add(rng.uniform(30, 240), "empty")
            posture = str(rng.choice(POSTURES))
            add(rng.uniform(3, 20), "motion", posture)  # getting into bed
            in_bed = True
            continue
        kind = rng.choice(["good", "poor", "twitch", "turn", "exit"], p=[0.4, 0.25, 0.15, 0.1, 0.1])
        if kind == "good":
            extra = {"snr_db": float(rng.uniform(16, 22))} if rng.random() < 0.3 else {}
            add(rng.uniform(30, 240), "good", posture, extra)
        elif kind == "poor":
            if rng.random() < 0.5:
                extra = {"snr_db": float(rng.uniform(-6, 8))}
            else:  # the edge of the mattress: weak coupling, the simulator draws a poor SNR
                extra = {"coupling": float(rng.uniform(0.15, 0.4))}
            add(rng.uniform(30, 180), "poor", posture, extra)
        elif kind == "twitch":
            add(rng.uniform(1, 6), "motion", posture)
        elif kind == "turn":
            posture = str(rng.choice([p for p in POSTURES if p != posture]))
            add(rng.uniform(3, 20), "motion", posture)
        else:
            add(rng.uniform(3, 15), "motion", posture)  # getting out
            in_bed = False
    model = random_sensor_model(seed, fs=fs) if random_sensor else None
    scenario = Scenario.chain(steps).truncated(duration_s)
    return Night(seed=seed, fs=fs, scenario=scenario, sensor_model=model)


def window_labels(states: np.ndarray, fs: float) -> tuple[int, bool]:
    """(label, pure) of a window from its per-sample simulator states (see the module doc)."""
    counts = np.bincount(states, minlength=4)
    pure = int(np.count_nonzero(counts)) == 1
    if counts[State.MOTION] >= MOTION_MIN_S * fs:
        return _STATE_CODE[State.MOTION], pure
    counts[State.MOTION] = 0
    return _STATE_CODE[State(int(np.argmax(counts)))], pure


def night_windows(
    night: Night,
    gain: float = 1.0,
    offset: int = 0,
    *,
    invert: bool = False,
    ring_hz: float | None = None,
) -> Windows:
    """Every window of a night through :class:`WindowFeatures`, with its label.

    Augmentation, each a sensor unlike the simulated one: ``gain`` scales the signal around
    its median (rounded to whole counts again: a small gain is a coarse ADC); ``offset``
    drops that many samples first (another window grid); ``invert`` turns the sensor over;
    ``ring_hz`` adds a bed-frame resonance there (Q about 5), so every beat rings on.
    """
    x = night.samples()[offset:].astype(np.float64)
    if gain != 1.0 or invert or ring_hz is not None:
        centre = np.median(x)
        y = x - centre
        if ring_hz is not None:
            y = y + RING_MIX * resonator(ring_hz, RING_Q, night.fs).process(y)
        if invert:
            y = -y
        x = _as_sensor_output(night, centre + gain * y)
    states = night.state_at(offset, night.n_samples)
    rows = WindowFeatures(night.fs).process(x)
    labels = [window_labels(states[a:b], night.fs) for a, b, _ in rows]
    n = len(rows)
    return Windows(
        features=np.array([f for _, _, f in rows], dtype=np.float32).reshape(n, -1),
        labels=np.array([lab for lab, _ in labels], dtype=np.int8),
        pure=np.array([p for _, p in labels], dtype=bool),
        seed=np.full(n, night.seed, dtype=np.int32),
        fs=np.full(n, night.fs, dtype=np.float32),
    )


def _as_sensor_output(night: Night, x: np.ndarray) -> np.ndarray:
    """``x`` as the night's sensor gives it: whole counts within its converter's range (0 to
    65535 by default), or, for a sensor in other units, floats within that range scaled."""
    model = night.sensor_model
    if model.scale == 1.0:
        return np.clip(np.round(x), 0, model.adc_max)
    return np.clip(x, 0.0, model.adc_max * model.scale)


def _augmented(seed: int, random_sensor: bool = False) -> Windows:
    night = training_night(seed, random_sensor=random_sensor)
    rng = np.random.default_rng([seed, 0xA6])
    parts = [night_windows(night)]
    # A second pass as another sensor: another gain (down to a coarse 12-bit-like ADC),
    # window grid, polarity, and half the time a ringing bed frame. The features do not
    # depend on gain or polarity by construction; quantization and ringing are learnt here.
    gain = float(np.exp(rng.uniform(np.log(GAIN_RANGE[0]), np.log(GAIN_RANGE[1]))))
    grid = int(rng.integers(1, int(night.fs * 5)))
    invert = bool(rng.random() < 0.5)
    ring_hz = None
    if rng.random() < 0.5:
        ring_hz = float(rng.uniform(RING_HZ[0], min(RING_HZ[1], 0.3 * night.fs)))
    parts.append(night_windows(night, gain, grid, invert=invert, ring_hz=ring_hz))
    return Windows.concatenate(parts)


def dataset(
    seeds: range, augment: bool, cache_dir: Path | None = None, *, random_sensors: bool = False
) -> Windows:
    """Windows of the training nights of ``seeds`` (cached as .npz in ``cache_dir``); with
    ``random_sensors``, each night through its own random sensor (see the module doc)."""
    parts = [DATA_VERSION, FEATURE_NAMES, seeds.start, seeds.stop, augment]
    key = json.dumps(parts + (["random sensors"] if random_sensors else []))
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"quality_windows_{digest}.npz"
        if path.exists():
            with np.load(path) as data:
                return Windows(**{k: data[k] for k in data.files})

    def make(seed: int) -> Windows:
        if augment:
            return _augmented(seed, random_sensors)
        return night_windows(training_night(seed, random_sensor=random_sensors))

    out = Windows.concatenate([make(s) for s in seeds])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **out.__dict__)
    return out
