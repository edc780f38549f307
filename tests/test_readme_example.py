"""The README's "Using the DSP core" example runs as written, on a simulated recording (not
on the emulated board of `make arm64`, whose tree holds no README)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import dsp_c
from dsp_c.synthetic import bcg_signal

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_dsp_example_runs_and_finds_the_beats() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Using the DSP core") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    rec = bcg_signal(250.0, 60.0, seed=3)
    chunks = np.array_split(rec.x, 60)
    first_seconds = np.concatenate(chunks[:2])
    names = {"first_seconds": first_seconds, "sensor_chunks": chunks[2:], "x": rec.x}
    found: list[np.ndarray] = []
    wrapped = code.replace("det = dsp_c.JPeakDetector(250)", "det = _Recording(250)")
    exec(compile(wrapped, "README.md", "exec"), {**names, "_Recording": _recording(found)})
    streamed = np.concatenate(found)
    assert abs(streamed.size - rec.beats.size) <= 2  # one beat a J-peak, streaming
    whole = dsp_c.detect_beats(rec.x, fs=250.0)
    assert abs(whole.size - rec.beats.size) <= 2


def _recording(found: list[np.ndarray]):
    """A JPeakDetector that keeps every beat it returns (the example overwrites ``beats``)."""

    class _Recording(dsp_c.JPeakDetector):
        def process(self, y):
            beats = super().process(y)
            found.append(np.asarray(beats))
            return beats

        def flush(self):
            beats = super().flush()
            found.append(np.asarray(beats))
            return beats

    return _Recording
