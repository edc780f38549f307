"""Respiration from the raw BCG signal: the streaming extractor and a one-call rate.

The raw signal (ADC counts, DC offset allowed) is decimated to about 10 Hz, band-passed to
0.1..0.7 Hz (6..42 breaths/min) and one breath is found per cycle, at the upward zero crossing
of the band-passed signal, when the signal swings by more than one ADC step (+-0.5 count) about
it. See ``dsp_c/include/bcg_dsp.h`` ("respiration") for the filters, the detector and its
latency.

The rate is the rhythm found in the band, not a verdict that someone is breathing: noise
larger than an ADC step has a rhythm too, so a noisy empty bed can give a rate. Whether a
window is trustworthy is for the signal-quality gate to decide, not for the DSP core.

>>> ext = RespirationExtractor(fs=250)
>>> resp, breaths = ext.process(chunk)   # repeat per chunk; chunking never changes results
>>> ext.rate_bpm                         # breaths/min, nan while unknown

Samples must be finite and within +-1e15, as for every streaming object of the core: a chunk
holding a NaN, an infinity or a larger value raises ``ValueError`` naming ``x`` and is not
consumed (the state is left unchanged):
the caller decides how to bridge a gap, e.g. by :meth:`RespirationExtractor.reset`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._bcg_dsp import ffi, lib
from ._checks import as_samples, check_samples
from ._status import check
from .filters import _check_fs

__all__ = ["MIN_SWING", "RespirationExtractor", "respiration_rate"]

#: Breathing rates the band-pass is designed for (breaths/min).
MIN_BPM: int = 60 * lib.BCG_RESP_LOW_MHZ // 1000
MAX_BPM: int = 60 * lib.BCG_RESP_HIGH_MHZ // 1000
#: Smallest swing about zero that counts as a breath, in ADC counts (+-half a step).
MIN_SWING: float = lib.BCG_RESP_MIN_SWING_MCOUNTS / 1000.0


class RespirationExtractor:
    """Causal, streaming respiration extractor.

    Each :meth:`process` call returns the new samples of the respiration signal (band-passed
    to 0.1..0.7 Hz, at :attr:`output_rate`, in the input's unit) and the breaths confirmed in
    that call, as absolute input-sample indices counted from construction or :meth:`reset`.
    Output sample k is centred on input sample ``k * decimation``; a breath index is the
    upward zero crossing of the respiration signal (about 0.8..1.1 s behind the raw signal at
    15..42 breaths/min, up to 5 s at 6/min).

    Args:
        fs: sampling rate of the raw signal in samples/s, in ``dsp_c.filters.MIN_FS`` ..
            ``MAX_FS`` (10..20000).

    Raises:
        ValueError: fs out of range, not finite or not a number.
    """

    def __init__(self, fs: float) -> None:
        self._fs = _check_fs(fs)
        self._state = ffi.new("bcg_resp *")
        check(lib.bcg_resp_init(self._state, self._fs), "fs")
        self._n_resp = ffi.new("size_t *")
        self._n_breaths = ffi.new("size_t *")

    @property
    def fs(self) -> float:
        """Input sampling rate in samples/s."""
        return self._fs

    @property
    def output_rate(self) -> float:
        """Sampling rate of the respiration signal, ``fs / decimation`` (10..20 Hz)."""
        return float(lib.bcg_resp_output_rate(self._state))

    @property
    def decimation(self) -> int:
        """Input samples per respiration-signal sample, ``floor(fs / 10)``."""
        return round(self._fs / self.output_rate)

    @property
    def rate_bpm(self) -> float:
        """Current breathing rate in breaths/min, ``nan`` when unknown.

        60 / the median of the last (up to 8) breath intervals; unknown until 3 intervals
        are seen, after an interval over 12 s, and when no breath came for 24 s. It is the
        rhythm found in the band (see :func:`respiration_rate`), not a quality verdict.
        """
        value = float(lib.bcg_resp_rate(self._state))
        return value if value > 0.0 else float("nan")

    def process(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Feed the next chunk of raw samples.

        Args:
            x: 1-D sequence of real samples in ADC counts, finite and within +-1e15 (ints are
                converted; may be empty).

        Returns:
            ``(resp, breaths)``: the new respiration-signal samples (float64) and the breaths
            confirmed in this call (int64 input-sample indices, increasing).

        Raises:
            TypeError / ValueError: naming ``x`` when it is not a 1-D real array or holds a
                NaN, an infinity or a sample beyond +-1e15 (nothing is consumed then).
        """
        return self._process_checked(as_samples(x, "x"))

    def _process_checked(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`process` without its Python-side checks, for a caller that has checked the
        chunk once already: ``samples`` must be a 1-D, C-contiguous, aligned float64 array.
        The C core still refuses samples that are not finite or beyond +-1e15 (raising as
        :meth:`process` does)."""
        cap = lib.bcg_resp_max_out(self._state, samples.size)
        resp = np.empty(cap, dtype=np.float64)
        breaths = np.empty(cap, dtype=np.int64)
        check_samples(
            lib.bcg_resp_process(
                self._state,
                ffi.from_buffer("double[]", samples),
                samples.size,
                ffi.from_buffer("double[]", resp),
                cap,
                self._n_resp,
                ffi.from_buffer("int64_t[]", breaths),
                cap,
                self._n_breaths,
            ),
            samples,
            "x",
        )
        return resp[: self._n_resp[0]], breaths[: self._n_breaths[0]].copy()

    def reset(self) -> None:
        """Forget all samples and breaths; indices restart at 0 (fs is kept)."""
        lib.bcg_resp_reset(self._state)

    def __repr__(self) -> str:
        return f"RespirationExtractor(fs={self._fs:g})"


def respiration_rate(x: Any, fs: float) -> float:
    """Breathing rate at the end of a raw recording in breaths/min, or ``nan``.

    Runs a fresh :class:`RespirationExtractor` over all of ``x`` and returns its rate at the
    end: 60 / the median of the last (up to 8) breath intervals, so the recording needs at
    least 4 breaths plus about 10 s of filter start-up (use 60 s or more for slow breathing).
    ``nan`` when fewer than 3 intervals were found since the last gap (an interval over
    12 s) or no breath came in the last 24 s; a breath needs a swing of more than one ADC
    step, so a flat signal with +-1-count noise gives ``nan`` at fs >= 50 Hz.

    This is the rhythm found in the 0.1..0.7 Hz band, not proof of breathing: on noise well
    above one ADC step (or at fs below 50 Hz, where less averaging is done) it returns the
    rhythm of the noise. The signal-quality gate decides whether a window is trustworthy.

    Args:
        x: 1-D sequence of real raw samples in ADC counts, finite and within +-1e15.
        fs: sampling rate in samples/s (10..20000).

    Raises:
        TypeError / ValueError: naming ``x`` or ``fs``.
    """
    extractor = RespirationExtractor(fs)
    extractor.process(x)
    return extractor.rate_bpm
