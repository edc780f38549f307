"""Argument checks of the Python API: sample arrays, real numbers, sampling rates.

One place for them, so every function names a bad argument the same way."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["as_samples", "real_number", "sampling_rate"]


def as_samples(x: Any, name: str = "x", finite: bool = False) -> np.ndarray:
    """Return ``x`` as a 1-D, C-contiguous float64 array (a copy only when needed).

    Accepts lists, tuples and arrays of bool, integer or real floating type (converted);
    an empty sequence gives an empty array. Raises ``TypeError`` naming ``name`` for
    complex, object, string or other non-real data, ``ValueError`` for anything that is
    not 1-D, and with ``finite=True`` for NaN or infinite samples (naming the first).
    """
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name}: expected a 1-D array of real numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a 1-D array of real numbers ({exc})") from exc
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    samples = np.ascontiguousarray(arr, dtype=np.float64)
    if finite and not np.isfinite(samples).all():
        bad = np.flatnonzero(~np.isfinite(samples))
        raise ValueError(
            f"{name}: {bad.size} non-finite sample(s), the first at index {bad[0]}; split the "
            "recording at the gap or interpolate it"
        )
    return samples


def real_number(value: Any, name: str) -> float:
    """``value`` as a finite float; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name}: must be finite, got {result!r}")
    return result


def sampling_rate(fs: Any, low: float, high: float, hint: str = "") -> float:
    """``fs`` as a float in ``[low, high]`` samples/s; ``ValueError`` naming ``fs`` otherwise."""
    value = real_number(fs, "fs")
    if not low <= value <= high:
        raise ValueError(f"fs: sampling rate must be in {low:g}..{high:g} Hz, got {value:g}{hint}")
    return value
