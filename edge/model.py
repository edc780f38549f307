"""The TFLite runtime of the signal-quality model: one feature vector in, class probabilities out.

    model = QualityModel()                      # the packaged models/bcg_quality.tflite
    probs = model.predict(features)             # float32 (4,), sums to ~1

Loads the model with ``tflite_runtime`` and falls back to ``ai_edge_litert`` (its successor,
the only one published for Python 3.12 and later). The interpreter is built and its tensors
allocated once; each window is one ``invoke``. An int8 model's input is quantized and its output
dequantized with the tensors' own scale and zero point, so a float model of the same shape runs
through the same code.

Everything that can be wrong with a model file is found at construction (start-up), never in
the middle of a night: E220 missing or unreadable; E221 damaged or not a TFLite model (its
structure is broken, or its SHA-256 differs from the ``NAME.sha256`` that must lie beside it);
E222 a model of another shape or type; E223 no TFLite runtime installed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import fail
from edge.tflite_file import verify

__all__ = ["DEFAULT_MODEL", "MODELS_DIR", "QualityModel", "load_interpreter_class"]

#: The packaged model files: the ``models`` package's folder beside ``edge`` (in the source
#: tree, an installed package, a slot), found without importing ``models``.
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
#: The packaged model (models/bcg_quality.tflite).
DEFAULT_MODEL = MODELS_DIR / "bcg_quality.tflite"
_SUPPORTED = (np.float32, np.int8)


def load_interpreter_class() -> type:
    """The TFLite ``Interpreter`` class: tflite_runtime's, else ai_edge_litert's.

    Raises:
        BedsideError: E223 when neither package is installed.
    """
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            fail(
                "E223",
                "no TFLite runtime: neither tflite_runtime nor ai_edge_litert is installed",
                'reinstall the unit software (pip install "bedside-bcg") to get its dependencies',
            )
    return Interpreter


class QualityModel:
    """A TFLite classifier of one feature vector, loaded and allocated once.

    Args:
        path: the ``.tflite`` file; None for :data:`DEFAULT_MODEL`.
        n_features: the input size the caller will pass (checked against the model).
        n_classes: the output size the caller expects (checked against the model).

    Raises:
        BedsideError: E220-E223 (see the module docstring).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        n_features: int | None = None,
        n_classes: int | None = None,
    ) -> None:
        self.path = Path(DEFAULT_MODEL if path is None else path)
        name = self.path.name
        try:
            content = self.path.read_bytes()
        except OSError as exc:
            fail(
                "E220",
                f"quality model {name} cannot be read ({exc.strerror or type(exc).__name__})",
                "reinstall the unit software, or pass the path of a .tflite model",
            )
        interpreter_class = load_interpreter_class()
        # The interpreter trusts the flatbuffer: a damaged file can crash the process instead
        # of raising. So the structure is walked and bounds-checked first, and the file must
        # match the digest recorded beside it (NAME.sha256, written by models/train.py): a
        # damaged model is an error here, never a crash.
        digest_file = self.path.with_name(name + ".sha256")
        try:
            verify(content)
            try:
                expected = digest_file.read_text(encoding="ascii").split()[0]
            except (OSError, UnicodeDecodeError, IndexError):
                raise ValueError(f"no readable digest {digest_file.name} beside it") from None
            if hashlib.sha256(content).hexdigest() != expected.lower():
                raise ValueError(f"its SHA-256 differs from {digest_file.name}")
        except ValueError as exc:
            fail(
                "E221",
                f"quality model {name} is damaged or not a TFLite model ({exc})",
                "reinstall the unit software to restore the model file; a model of your own "
                "needs its NAME.sha256 beside it (make model writes it)",
            )
        try:
            self._interp = interpreter_class(model_content=content, num_threads=1)
            self._interp.allocate_tensors()
            inputs = self._interp.get_input_details()
            outputs = self._interp.get_output_details()
        except Exception as exc:  # whatever the runtime raises, the file is bad
            fail(
                "E221",
                f"quality model {name} cannot be loaded ({str(exc).splitlines()[0][:120]})",
                "reinstall the unit software to restore the model file",
            )
        self.size_bytes = len(content)
        if len(inputs) != 1 or len(outputs) != 1:
            fail(
                "E222",
                f"quality model {name} has {len(inputs)} inputs and {len(outputs)} outputs, not 1",
                "use a model made by models/train.py for this software version",
            )
        self._in, self._out = inputs[0], outputs[0]
        self.n_features = self._check_shape(self._in, n_features, "input")
        self.n_classes = self._check_shape(self._out, n_classes, "output")
        self._x = np.zeros((1, self.n_features), dtype=self._in["dtype"])
        self._in_scale, self._in_zero = self._in["quantization"]
        self._out_scale, self._out_zero = self._out["quantization"]

    def _check_shape(self, detail: dict[str, Any], expected: int | None, what: str) -> int:
        shape = tuple(int(v) for v in detail["shape"])
        ok = len(shape) == 2 and shape[0] == 1 and (expected is None or shape[1] == expected)
        dtype_ok = any(detail["dtype"] == t for t in _SUPPORTED)
        if not ok or not dtype_ok:
            want = f"(1, {expected})" if expected is not None else "(1, n)"
            fail(
                "E222",
                f"quality model {self.path.name} has {what} shape {shape} of "
                f"{np.dtype(detail['dtype']).name}, expected {want} of float32 or int8",
                "use a model made by models/train.py for this software version",
            )
        return shape[1]

    @property
    def quantized(self) -> bool:
        """True for a full-integer (int8) model."""
        return self._in["dtype"] == np.int8

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (float32, ``n_classes``) of one feature vector."""
        x = np.asarray(features, dtype=np.float32).reshape(-1)
        if x.size != self.n_features:
            raise ValueError(f"features: expected {self.n_features} values, got {x.size}")
        if self.quantized:
            q = np.round(x / self._in_scale) + self._in_zero
            self._x[0] = np.clip(q, -128, 127)
        else:
            self._x[0] = x
        self._interp.set_tensor(self._in["index"], self._x)
        self._interp.invoke()
        y = self._interp.get_tensor(self._out["index"])[0]
        if self._out["dtype"] == np.int8:
            return ((y.astype(np.float32) - self._out_zero) * self._out_scale).astype(np.float32)
        return y.astype(np.float32)

    def __repr__(self) -> str:
        kind = "int8" if self.quantized else "float32"
        return f"QualityModel({self.path.name!r}, {kind}, {self.n_features} -> {self.n_classes})"
