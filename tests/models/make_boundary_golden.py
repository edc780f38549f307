"""Write tests/models/boundary_golden.json: held-out windows on the quality model's decision
boundaries, with the outputs TensorFlow's own TFLite interpreter gives for them.

    TF_USE_LEGACY_KERAS=1 .venv-train/bin/python tests/models/make_boundary_golden.py

``models/golden.npz`` pins 16 random held-out windows, and 15 of them are saturated (0.996
for one class): a change in the model file or in the runtime's quantization hardly moves
them. These windows are the ones whose two likeliest classes are closest, PER_PAIR for each
pair of classes that meet, so a small change shows. Run this again after ``make model``: the
file names the model's digest, and the test (test_boundary_golden.py) refuses another model.
Needs TensorFlow (the ``train`` extra), as ``make model`` does.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edge.quality import STATES  # noqa: E402
from models import MODEL_PATH  # noqa: E402
from models.data import dataset  # noqa: E402
from models.train import HELD_OUT_SEEDS, tflite_predict  # noqa: E402

OUT = HERE / "boundary_golden.json"
PER_PAIR = 3  #: windows for each pair of classes
MAX_MARGIN = 0.1  #: at most this between the two likeliest classes


def main() -> int:
    import tensorflow as tf

    held = dataset(HELD_OUT_SEEDS, False, ROOT / "build")
    model = MODEL_PATH.read_bytes()
    probs = tflite_predict(tf, model, held.features)
    top2 = np.sort(probs, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    order = np.argsort(probs, axis=1)
    pairs = {frozenset(p) for p in order[:, -2:].tolist()}
    chosen: list[int] = []
    for pair in sorted(itertools.combinations(range(len(STATES)), 2)):
        if frozenset(pair) not in pairs:
            continue
        rows = np.flatnonzero(
            (np.sort(order[:, -2:], axis=1) == pair).all(axis=1) & (margin <= MAX_MARGIN)
        )
        # The closest calls, ties broken by the window's place, so runs agree.
        chosen += rows[np.lexsort((rows, margin[rows]))][:PER_PAIR].tolist()
    doc = {
        "model_sha256": hashlib.sha256(model).hexdigest(),
        "made_by": "tests/models/make_boundary_golden.py, TensorFlow " + tf.__version__,
        "classes": list(STATES),
        "features": [[float(v) for v in held.features[i]] for i in chosen],
        "probs": [[float(v) for v in probs[i]] for i in chosen],
    }
    OUT.write_text(_dump(doc))
    pairs_seen = sorted({tuple(STATES[c] for c in sorted(order[i, -2:])) for i in chosen})
    print(f"wrote {OUT.relative_to(ROOT)}: {len(chosen)} windows on {pairs_seen}")
    return 0


def _dump(doc: dict) -> str:
    """JSON with one window per line (a diff shows which window changed)."""
    lines = ["{"]
    for n, (key, value) in enumerate(doc.items()):
        end = "," if n < len(doc) - 1 else ""
        if key in ("features", "probs"):
            rows = ",\n".join(f"  {json.dumps(row)}" for row in value)
            lines.append(f" {json.dumps(key)}: [\n{rows}\n ]{end}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{end}")
    return "\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    raise SystemExit(main())
