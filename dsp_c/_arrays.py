"""Validation and conversion of sample arrays passed to the C core."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_samples"]


def as_samples(x: Any, name: str = "x") -> np.ndarray:
    """Return ``x`` as a 1-D, C-contiguous float64 array (a copy only when needed).

    Accepts lists, tuples and arrays of bool, integer or real floating type (converted);
    an empty sequence gives an empty array. Raises ``TypeError`` naming ``name`` for
    complex, object, string or other non-real data, ``ValueError`` for anything that is
    not 1-D.
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
    return np.ascontiguousarray(arr, dtype=np.float64)
