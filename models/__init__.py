"""The signal-quality model: its training, its files and its card.

Files here: ``bcg_quality.tflite`` (the pruned int8 model the unit runs through
:mod:`edge.model`), ``bcg_quality_float.tflite`` (the same pruned weights in float32, the
benchmark's peer), ``golden.npz`` (fixed inputs and the outputs they must give),
``train_metrics.json`` (what the training run measured), ``MODEL_CARD.md``.
Modules: :mod:`models.data` (labelled windows from the simulator), :mod:`models.train`
(``make model``, needs the ``train`` extra), :mod:`models.evaluate` (the gate on the accuracy
harness). What a .tflite file stores is read by :mod:`edge.tflite_file` (the unit checks
every model it loads with it).
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL_PATH = HERE / "bcg_quality.tflite"
FLOAT_MODEL_PATH = HERE / "bcg_quality_float.tflite"
GOLDEN_PATH = HERE / "golden.npz"
METRICS_PATH = HERE / "train_metrics.json"
CARD_PATH = HERE / "MODEL_CARD.md"
