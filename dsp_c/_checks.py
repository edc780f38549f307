"""Argument checks of the Python API: sample arrays, real numbers, sampling rates.

One place for them, so every function names a bad argument the same way. A bad value raises
:class:`~dsp_c._status.DspValueError` (a ``ValueError``) with the error code of the C status
that the core would return for it (``.code``, docs/errors.md)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._bcg_dsp import lib
from ._status import DspValueError, check

__all__ = [
    "MAX_ABS_SAMPLE",
    "as_samples",
    "check_samples",
    "real_number",
    "samples_error",
    "sampling_rate",
]

#: Largest magnitude of a sample the streaming objects accept (``BCG_MAX_ABS_SAMPLE`` in
#: dsp_c/src/internal.h): a larger value is corrupt and would overflow the filter state.
MAX_ABS_SAMPLE = 1e15


def as_samples(x: Any, name: str = "x", finite: bool = False) -> np.ndarray:
    """Return ``x`` as a 1-D, C-contiguous, aligned float64 array (a copy only when needed).

    Accepts lists, tuples and arrays of bool, integer or real floating type (converted);
    an empty sequence gives an empty array. Raises ``TypeError`` naming ``name`` for
    complex, object, string or other non-real data and for numpy masked arrays (the mask
    would be silently dropped), ``ValueError`` for anything that is not 1-D, and with
    ``finite=True`` for samples that are NaN, infinite or beyond +-MAX_ABS_SAMPLE (the C
    core checks those itself; see :func:`samples_error`).
    """
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name}: expected a 1-D array of real numbers, got {type(x).__name__}")
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{name}: masked arrays are not accepted (the mask would be ignored); fill the "
            f"masked samples (e.g. {name}.filled(...)) or split the recording at them"
        )
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a 1-D array of real numbers ({exc})") from exc
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise DspValueError(
            f"{name}: expected a 1-D array, got shape {arr.shape}", lib.BCG_ERR_PARAM
        )
    samples = np.require(arr, np.float64, ["C", "A"])
    if finite:
        error = samples_error(samples, name)
        if error is not None:
            raise error
    return samples


def samples_error(samples: np.ndarray, name: str = "x") -> DspValueError | None:
    """The error for samples that are NaN, infinite or beyond +-MAX_ABS_SAMPLE, or None.

    The rule every streaming object of the C core applies (it refuses the whole chunk with
    ``BCG_ERR_PARAM``); this builds the message, naming the count and the first bad sample:
    ``x: 1 sample(s) not finite or beyond ±1e15, the first at index 17 (nan); split the
    recording at the gap or interpolate it``. Call it after the C core refused a chunk, so
    the fast path pays for no check in Python.
    """
    if samples.size == 0 or (-MAX_ABS_SAMPLE <= samples.min() and samples.max() <= MAX_ABS_SAMPLE):
        return None  # min/max are NaN when a sample is: the comparison is then False
    bad = np.flatnonzero(~(np.abs(samples) <= MAX_ABS_SAMPLE))
    first = int(bad[0])
    return DspValueError(
        f"{name}: {bad.size} sample(s) not finite or beyond ±1e15, the first at "
        f"index {first} ({float(samples[first])!r}); split the recording at the gap or "
        "interpolate it",
        lib.BCG_ERR_PARAM,
    )


def check_samples(status: int, samples: np.ndarray, name: str = "x") -> None:
    """Raise for the status of a process call of the C core that was given ``samples``.

    ``BCG_ERR_PARAM`` means the chunk held bad samples: raises :func:`samples_error`'s
    message naming ``name``; any other error status goes to :func:`~dsp_c._status.check`.
    """
    if status == lib.BCG_ERR_PARAM:
        error = samples_error(samples, name)
        if error is not None:
            raise error
    check(status, name)


#: The native float64 dtype: ``x.dtype is F64`` is the cheapest test for the fast path
#: (another float64 dtype object, e.g. byte-swapped, takes the converting path).
F64 = np.dtype(np.float64)


def samples_for_c(x: Any, name: str = "x") -> np.ndarray:
    """``x`` ready for the C core: the streaming fast path returns a float64, 1-D,
    C-contiguous, aligned ndarray as it is (no copy, no scan); anything else goes through
    :func:`as_samples` (converted or copied, or refused naming ``name``)."""
    if type(x) is np.ndarray and x.dtype is F64 and x.ndim == 1:
        flags = x.flags
        if flags.c_contiguous and flags.aligned:
            return x
    return as_samples(x, name)


def real_number(value: Any, name: str, status: int = lib.BCG_ERR_PARAM) -> float:
    """``value`` as a finite float; ``DspValueError`` naming ``name`` (with ``status``'s
    error code) otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DspValueError(f"{name}: expected a real number, got {value!r}", status)
    result = float(value)
    if not math.isfinite(result):
        raise DspValueError(f"{name}: must be finite, got {result!r}", status)
    return result


def sampling_rate(fs: Any, low: float, high: float, hint: str = "") -> float:
    """``fs`` as a float in ``[low, high]`` samples/s; ``DspValueError`` naming ``fs``
    (E103) otherwise."""
    value = real_number(fs, "fs", lib.BCG_ERR_FS)
    if not low <= value <= high:
        raise DspValueError(
            f"fs: sampling rate must be in {low:g}..{high:g} Hz, got {value:g}{hint}",
            lib.BCG_ERR_FS,
        )
    return value
