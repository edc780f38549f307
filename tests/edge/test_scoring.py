"""Window-by-window scoring of beats (edge.eval.scoring)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.eval.scoring import EvalRecord, Score, score_record


def record(beats: np.ndarray, fs: float = 100.0, seconds: int = 60, **kw) -> EvalRecord:
    return EvalRecord(
        name="r", group="g", x=np.zeros(int(seconds * fs)), fs=fs, ref_beats=beats, **kw
    )


def test_perfect_detection_scores_perfectly():
    truth = np.arange(50, 6000, 80)  # 75 bpm at 100 Hz
    s = score_record(record(truth), truth).summary()
    assert s["sensitivity"] == 100.0 and s["ppv"] == 100.0
    assert s["ibi_mae_ms"] == 0.0 and s["hr_mae_bpm"] == 0.0
    assert s["coverage"] == 100.0 and s["windows"] == 6


def test_misses_false_beats_and_constant_delay():
    truth = np.arange(50, 6000, 80)
    found = np.delete(truth + 3, [10, 11])  # a constant 30 ms lag, two beats missed
    found = np.sort(np.append(found, [2000 + 40]))  # and one false beat
    s = score_record(record(truth), found).summary()
    assert s["sensitivity"] == pytest.approx(100 * (truth.size - 2) / truth.size)
    assert s["ppv"] == pytest.approx(100 * (found.size - 1) / found.size)
    assert s["ibi_mae_ms"] == 0.0  # the lag is removed by the delay alignment


def test_unscored_windows_do_not_count_and_splits_add_up():
    truth = np.arange(50, 6000, 80)
    scored = np.array([True, True, False, True, True, True])
    cond = np.array(["a", "a", "a", "b", "b", "b"], dtype=object)
    found = truth[truth < 2000]  # nothing found after 20 s
    score = score_record(record(truth, scored=scored, conditions={"c": cond}), found)
    whole = score.summary()
    a, b = score.summary(cond == "a"), score.summary(cond == "b")
    assert a["windows"] + b["windows"] == whole["windows"] == 5
    assert a["sensitivity"] == 100.0 and b["sensitivity"] == 0.0
    assert a["ref_beats"] + b["ref_beats"] == whole["ref_beats"]
    both = Score.concatenate([score, score]).summary()
    assert both["ref_beats"] == 2 * whole["ref_beats"]
    assert whole["coverage"] == pytest.approx(100 * 2 / 5)


def test_no_reference_gives_nan_not_invented_numbers():
    s = score_record(record(None), np.arange(0, 6000, 80)).summary()
    assert np.isnan(s["sensitivity"]) and np.isnan(s["hr_mae_bpm"])
