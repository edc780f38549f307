"""The quality model on its decision boundaries: held-out windows whose two likeliest classes
are (nearly) tied, and the outputs TensorFlow's own interpreter gave for them
(boundary_golden.json, written by make_boundary_golden.py).

models/golden.npz's vectors are mostly saturated (0.996 for one class), so a small change of
the model's weights, its quantization or the runtime's arithmetic hardly moves them; on a
boundary the same change moves the outputs by several quanta, and can flip the class.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from edge.model import QualityModel
from edge.quality import STATES
from models import MODEL_PATH

DATA = Path(__file__).with_name("boundary_golden.json")
QUANTUM = 1.0 / 256  # the int8 output's scale: the runtimes may differ by one


@pytest.fixture(scope="module")
def boundary() -> dict:
    return json.loads(DATA.read_text())


def test_the_vectors_are_of_the_committed_model(boundary: dict) -> None:
    digest = hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest()
    assert boundary["model_sha256"] == digest, "a new model: run make_boundary_golden.py"
    assert boundary["classes"] == list(STATES)


def test_the_vectors_lie_on_the_decision_boundaries(boundary: dict) -> None:
    probs = np.array(boundary["probs"])
    top2 = np.sort(probs, axis=1)[:, -2:]
    assert len(probs) >= 12
    assert np.all(top2[:, 1] - top2[:, 0] <= 0.1)
    pairs = {frozenset(np.argsort(p)[-2:].tolist()) for p in probs}
    assert len(pairs) >= 4  # the boundaries between several classes, not one


def test_the_runtime_gives_tensorflows_outputs_on_the_boundaries(boundary: dict) -> None:
    model = QualityModel()
    for x, expected in zip(boundary["features"], boundary["probs"], strict=True):
        got = model.predict(np.asarray(x, dtype=np.float32))
        np.testing.assert_allclose(got, expected, atol=QUANTUM + 1e-7)
        top2 = np.sort(expected)[-2:]
        if top2[1] - top2[0] > 2 * QUANTUM:  # a clear call stays the same call
            assert np.argmax(got) == np.argmax(expected)
