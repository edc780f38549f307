"""The C harness's findings (tests/fuzz/findings/dsp_c/), replayed through the Python
binding so `make test` keeps them fixed without clang.

The inputs are decoded exactly as tests/fuzz/fuzz_dsp_c.c decodes them (selector byte,
parameters, chunked int16 stream). All were in the J-peak detector's rhythm estimate at
fs ~ 29 Hz: its median interval left the documented 0.3-2.0 s (30-200 bpm) range, below
the refractory period when a beat moved to its earlier wave, and above the longest
interval after a re-lock to half the rate doubled every remembered interval. The detector
now keeps each remembered interval within that range (``rhythm_interval`` in jpeak.c).
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest

from dsp_c.beats import JPeakDetector

FINDINGS = Path(__file__).resolve().parent / "findings" / "dsp_c"
SPECIAL = [np.nan, np.inf, -np.inf, 2e15, -2e15, 1e15, -1e15, 0.0]
SCALES = [1.0, 1e-3, 1e3, 1e9, 1e-9, 0.5]
MAX_SAMPLES = 4096


class _Input:
    """The harness's byte reader: front to back, zeros past the end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def u8(self) -> int:
        v = self.data[self.at] if self.at < len(self.data) else 0
        self.at += 1
        return v

    def u16(self) -> int:
        return self.u8() | self.u8() << 8

    def param(self, lo: float, hi: float) -> float:
        if self.u8() < 32:
            return struct.unpack("<d", bytes(self.u8() for _ in range(8)))[0]
        return lo + (hi - lo) * (self.u16() / 65535.0)

    def chunks(self) -> list[np.ndarray]:
        scale = SCALES[self.u8() % len(SCALES)]
        out, n = [], 0
        while self.at < len(self.data) and n < MAX_SAMPLES:
            size = min(1 + self.u16() % 700, MAX_SAMPLES - n)
            chunk = []
            for _ in range(size):
                v = struct.unpack("<h", struct.pack("<H", self.u16()))[0]
                chunk.append(SPECIAL[self.u8() % len(SPECIAL)] if v == -32768 else v * scale)
            out.append(np.array(chunk))
            n += size
        return out


def _intervals(data: bytes) -> tuple[float, list[float]]:
    """fs and the detector's median interval after every accepted chunk."""
    src = _Input(data)
    assert src.u8() % 5 == 2, "not a J-peak input"
    fs = src.param(5.0, 2100.0)
    detector = JPeakDetector(fs)
    seen = []
    for chunk in src.chunks():
        if np.all(np.isfinite(chunk)) and np.all(np.abs(chunk) <= 1e15):
            detector.process(chunk)
            seen.append(detector.interval_s)
    return fs, seen


@pytest.mark.parametrize("path", sorted(FINDINGS.glob("jpeak_ibi_*")), ids=lambda p: p.name)
def test_jpeak_median_interval_stays_within_30_to_200_bpm(path: Path) -> None:
    fs, intervals = _intervals(path.read_bytes())
    # Counted in whole samples: 0.3 s and 2.0 s rounded to the sample grid.
    low, high = round(0.3 * fs) / fs, round(2.0 * fs) / fs
    known = [v for v in intervals if not math.isnan(v)]  # nan: no rhythm yet
    assert known, "the input never gave the detector a rhythm"
    assert all(low - 1e-9 <= v <= high + 1e-9 for v in known), (fs, intervals)


def test_the_findings_decode_as_the_harness_does() -> None:
    """The reader above is the harness's: each finding drives the detector at fs ~ 29 Hz
    and yields a known interval (else the test above would pass for the wrong reason)."""
    for path in sorted(FINDINGS.glob("jpeak_ibi_*")):
        fs, intervals = _intervals(path.read_bytes())
        assert 29.0 < fs < 29.1
        assert any(v > 0 for v in intervals)
