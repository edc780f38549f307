"""Labelled windows for the signal-quality model, from the night simulator (numpy only).

Training (``models/train.py``), evaluation (``models/evaluate.py``) and the tests draw their
windows here, so they share one scenario generator and one labelling rule.

Scenarios: a night of ``NIGHT_S`` seconds built from segments of all four states in roughly
equal time (a real night is ~90 % good; the model must also learn the rare states): empty bed,
getting in (movement), good stretches in a random posture, some at low SNR (16-22 dB), poor
stretches (low SNR or weak coupling at the mattress edge), twitches, bed exits. The sampling
rate of each night is drawn from 50 to 1000 Hz, so the features are learnt at every rate.

Labelling rule for a window: ``motion`` when it holds at least ``MOTION_MIN_S`` of movement,
else the state covering most of its samples. A window is *pure* when it holds one state only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.quality import FEATURE_NAMES, STATES, WindowFeatures
from edge.sim import POSTURES, Night, Scenario, State

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
DATA_VERSION = 1

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


def training_night(seed: int, duration_s: float = NIGHT_S) -> Night:
    """A seeded night with all four states in roughly equal time, at a drawn rate."""
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
    return Night(seed=seed, fs=fs, scenario=Scenario.chain(steps).truncated(duration_s))


def window_labels(states: np.ndarray, fs: float) -> tuple[int, bool]:
    """(label, pure) of a window from its per-sample simulator states (see the module doc)."""
    counts = np.bincount(states, minlength=4)
    pure = int(np.count_nonzero(counts)) == 1
    if counts[State.MOTION] >= MOTION_MIN_S * fs:
        return _STATE_CODE[State.MOTION], pure
    counts[State.MOTION] = 0
    return _STATE_CODE[State(int(np.argmax(counts)))], pure


def night_windows(night: Night, gain: float = 1.0, offset: int = 0) -> Windows:
    """Every window of a night through :class:`WindowFeatures`, with its label.

    ``gain`` scales the signal around its median (augmentation: another sensor gain);
    ``offset`` drops that many samples first (augmentation: another window grid).
    """
    x = night.samples()[offset:].astype(np.float64)
    if gain != 1.0:
        centre = np.median(x)
        x = np.clip(np.round(centre + gain * (x - centre)), 0, 65535)
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


def _augmented(seed: int) -> Windows:
    night = training_night(seed)
    rng = np.random.default_rng([seed, 0xA6])
    parts = [night_windows(night)]
    # A second pass with another gain and window grid: the level features must not hinge
    # on one sensor's gain, nor the windows on one alignment.
    gain = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
    parts.append(night_windows(night, gain, int(rng.integers(1, int(night.fs * 5)))))
    return Windows.concatenate(parts)


def dataset(seeds: range, augment: bool, cache_dir: Path | None = None) -> Windows:
    """Windows of the training nights of ``seeds`` (cached as .npz in ``cache_dir``)."""
    key = json.dumps([DATA_VERSION, FEATURE_NAMES, seeds.start, seeds.stop, augment])
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"quality_windows_{digest}.npz"
        if path.exists():
            with np.load(path) as data:
                return Windows(**{k: data[k] for k in data.files})
    make = _augmented if augment else (lambda s: night_windows(training_night(s)))
    out = Windows.concatenate([make(s) for s in seeds])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **out.__dict__)
    return out
