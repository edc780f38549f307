"""Training data: the labelling rule, the scenario generator, the cache."""

from __future__ import annotations

import numpy as np

from edge.model import QualityModel
from edge.quality import FEATURE_NAMES, STATES, QualityGate
from edge.sim import State
from models.data import (
    FS_CHOICES,
    MOTION_MIN_S,
    dataset,
    night_windows,
    training_night,
    window_labels,
)

FS = 100.0
E, M, P, G = (int(s) for s in (State.EMPTY, State.MOTION, State.POOR, State.GOOD))


def _window(*parts: tuple[int, float]) -> np.ndarray:
    return np.concatenate([np.full(int(s * FS), state, dtype=np.int8) for state, s in parts])


def test_the_labelling_rule() -> None:
    label = {name: i for i, name in enumerate(STATES)}
    assert window_labels(_window((G, 10)), FS) == (label["good"], True)
    assert window_labels(_window((E, 10)), FS) == (label["empty"], True)
    # movement of MOTION_MIN_S or more makes a motion window, whatever else is in it
    assert window_labels(_window((G, 10 - MOTION_MIN_S), (M, MOTION_MIN_S)), FS) == (
        label["motion"],
        False,
    )
    # less than that: the majority of the rest
    assert window_labels(_window((P, 6), (M, 0.2), (G, 3.8)), FS) == (label["poor"], False)
    assert window_labels(_window((E, 3), (G, 7)), FS) == (label["good"], False)


def test_training_nights_are_seeded_and_cover_every_state() -> None:
    a, b = training_night(5), training_night(5)
    assert a.fs == b.fs and a.fs in FS_CHOICES
    assert a.scenario == b.scenario
    seen = set()
    for seed in range(6):
        night = training_night(seed)
        seen |= {seg.state for seg in night.scenario}
    assert seen == set(State)
    assert {training_night(s).fs for s in range(20)} > {250.0}  # rates vary


def test_night_windows_labels_and_shapes() -> None:
    night = training_night(3, duration_s=120.0)
    w = night_windows(night)
    assert w.features.shape == (len(w), len(FEATURE_NAMES))
    assert len(w) == int((120.0 - 10.0) // 5.0) + 1
    assert set(np.unique(w.labels)) <= set(range(len(STATES)))
    assert np.all(w.seed == 3)
    # the augmentations keep the labels; gain and polarity do not move the features (the
    # levels are relative to the night's own), a resonance does
    g = night_windows(night, gain=1.5, invert=True)
    np.testing.assert_array_equal(g.labels, w.labels)
    assert np.median(np.abs(g.features - w.features)) < 0.02
    ringing = night_windows(night, ring_hz=8.0)
    np.testing.assert_array_equal(ringing.labels, w.labels)
    moved = np.median(np.abs(ringing.features - w.features), axis=0)
    for name in ("breath_to_beat", "high_to_beat", "spikiness"):  # what a ring changes
        assert moved[FEATURE_NAMES.index(name)] > 0.02, name


def test_the_cache_gives_back_what_was_made(tmp_path, monkeypatch) -> None:
    import models.data as data

    monkeypatch.setattr(data, "NIGHT_S", 60.0)
    monkeypatch.setattr(data.training_night, "__defaults__", (60.0,))
    made = dataset(range(2000, 2002), augment=False, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("quality_windows_*.npz"))) == 1
    again = dataset(range(2000, 2002), augment=False, cache_dir=tmp_path)
    for field in ("features", "labels", "pure", "seed", "fs"):
        np.testing.assert_array_equal(getattr(made, field), getattr(again, field))


def test_training_sees_what_the_unit_sees() -> None:
    # One feature implementation: the windows training learns from are the windows the gate
    # judges on the unit, so the model's outputs on them are the gate's outputs.
    night = training_night(7, duration_s=90.0)
    w = night_windows(night)
    gate = QualityGate(night.fs)
    judged = [j for chunk in night.chunks(1.3) for j in gate.process(chunk)]
    assert len(judged) == len(w)
    model = QualityModel()
    for j, f in zip(judged, w.features, strict=True):
        assert j.probs == tuple(float(p) for p in model.predict(f))


def test_the_model_tolerates_another_sensor_gain() -> None:
    # Held-out nights with the signal scaled (and rounded to counts again): the features are
    # relative to the night's own levels, so the verdicts stay the same.
    model = QualityModel()

    def verdicts(gain: float) -> np.ndarray:
        parts = [night_windows(training_night(s, 300.0), gain=gain) for s in range(1000, 1004)]
        features = np.concatenate([p.features for p in parts])
        return np.array([np.argmax(model.predict(f)) for f in features])

    base = verdicts(1.0)
    for gain in (0.5, 2.0):
        assert np.mean(verdicts(gain) == base) >= 0.97, gain
