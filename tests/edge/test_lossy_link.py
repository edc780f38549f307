"""A lossy sensor link keeps the night (issue 16, finding 1): short gaps are bridged without
restarting the DSP, the rate reads beat intervals across one but the HRV does not, and gap
events come in runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main
from edge.events import GAP_RUN_MAX_S, GapRuns
from edge.pipeline import Pipeline, RunResult, Settings
from edge.quality import QualityGate
from edge.records import Epoch, Event
from edge.sources.lossy import LossySource
from edge.sources.sim import SimSource
from edge.store import Store
from edge.vitals import EpochVitals

EPOCH_S = 30.0


def _night(
    tmp_path: Path, loss: float, name: str
) -> tuple[dict[int, Epoch], list[Event], RunResult]:
    source = SimSource(seed=42, speed=None, duration_s=3600.0)
    if loss:
        source = LossySource(source, loss, seed=7)
    with Store(str(tmp_path / name)) as store:
        result = Pipeline(source, store, QualityGate(source.fs), Settings(epoch_s=EPOCH_S)).run()
        rows = [e for _, e in store.epochs()]
        events = [e for _, e in store.events()]
    t0 = rows[0].t_utc
    return {round((e.t_utc - t0) / EPOCH_S): e for e in rows}, events, result


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[int, Epoch]:
    return _night(tmp_path_factory.mktemp("clean"), 0.0, "clean.db")[0]


def test_the_lossy_source_loses_whole_frames_and_says_so() -> None:
    source = LossySource(SimSource(seed=1, speed=None, duration_s=120.0), 0.05, seed=3)
    delivered, gaps, previous = 0, 0, None
    while (chunk := source.read()) is not None:
        if len(chunk.samples) == 0:
            continue
        if previous is not None and chunk.start_index != previous:
            gaps += 1
            assert chunk.gap_before == chunk.start_index - previous
            assert chunk.gap_before % source.frame_samples == 0  # whole frames
            assert chunk.start_index % source.frame_samples == 0
        previous, delivered = chunk.stop_index, delivered + len(chunk.samples)
    frames = 120 * 10
    assert delivered == (frames - source.lost_frames) * source.frame_samples
    assert 0.03 < source.lost_frames / frames < 0.07
    events = source.drain_events()
    assert len(events) == gaps > 20 and all(e.kind == "sensor_gap" for e in events)
    with pytest.raises(ValueError, match="loss"):
        LossySource(SimSource(seed=1), 1.5)


def test_three_percent_of_frames_lost_keeps_the_heart_rate(clean, tmp_path) -> None:
    """The issue's target: with 3 % of frames lost, >= 90 % of the epochs with an HR in the
    clean run have one, within 1 bpm of it (measured: 80 of 80, all within 0.45 bpm; 79
    within 1 bpm, one at 1.03, while the rate read no interval across a bridge). Before
    bridging: no epoch at all."""
    lossy, events, result = _night(tmp_path, 0.03, "lossy.db")
    assert set(lossy) == set(clean)  # every epoch exists
    with_rate = [k for k, e in clean.items() if e.hr_bpm is not None]
    both = [k for k in with_rate if lossy[k].hr_bpm is not None]
    assert len(with_rate) >= 60 and len(both) >= 0.9 * len(with_rate)
    diff = np.array([abs(lossy[k].hr_bpm - clean[k].hr_bpm) for k in both])
    assert np.mean(diff <= 1.0) >= 0.95 and diff.max() <= 2.0
    assert result.bridged_samples > 0.02 * 3600 * 250
    gaps = [e for e in events if e.kind == "sensor_gap"]
    assert 1 <= len(gaps) <= 3600 / GAP_RUN_MAX_S + 1  # runs, not frames (about 1000 lost)
    assert all("gaps in" in e.detail and "bridged" in e.detail for e in gaps)


def test_ten_percent_of_frames_lost_keeps_the_heart_rate(clean, tmp_path) -> None:
    """With one frame in ten lost, a bridge every second or so: the rate reads its intervals
    across the bridges (one with a lost beat as two beats), so >= 90 % of the clean run's
    epochs with an HR keep one, >= 95 % of them within 1 bpm, as the 3 % target asks
    (measured: 80 of 80, 79 within 1 bpm, the largest 1.03; while no interval was read
    across a bridge, 2 of 80)."""
    lossy, _, _ = _night(tmp_path, 0.10, "lossy10.db")
    with_rate = [k for k, e in clean.items() if e.hr_bpm is not None]
    both = [k for k in with_rate if lossy[k].hr_bpm is not None]
    assert len(both) >= 0.9 * len(with_rate)
    diff = np.array([abs(lossy[k].hr_bpm - clean[k].hr_bpm) for k in both])
    assert np.mean(diff <= 1.0) >= 0.95 and diff.max() <= 2.0


def test_every_other_sample_missing_is_one_event_not_thousands(tmp_path, capsys) -> None:
    x = np.random.default_rng(1).normal(size=250 * 40) * 100 + 2000
    x[1::2] = np.nan
    np.savez(tmp_path / "holes.npz", bcg=x, fs=250.0)
    db = tmp_path / "v.db"
    assert main(["run", "--source", f"replay:{tmp_path / 'holes.npz'}", "--speed", "max",
                 "--db", str(db)]) == 0  # fmt: skip
    capsys.readouterr()
    with sqlite3.connect(db) as c:
        kinds = [k for (k,) in c.execute("SELECT kind FROM events")]
        [(detail,)] = c.execute("SELECT detail FROM events WHERE kind = 'sensor_gap'")
    assert kinds.count("sensor_gap") == 1
    assert detail.startswith("4999 gaps in 40 s, 20.0 s of samples missing in all")


def test_no_beat_inside_a_bridge_and_its_interval_for_the_rate_only() -> None:
    vitals = EpochVitals(100.0, 10.0, lambda i: i / 100.0, check_rhythm=False)
    vitals.add_samples(0, 1000)
    vitals.bridge(1000, 1020)
    vitals.add_samples(1000, 3000)
    vitals.add_beats(np.arange(0, 3000, 100) + 10)  # one beat (1010) inside the bridge
    beats = vitals._beats
    assert 1010 not in beats.index and beats.index.size == 29
    counts = np.ones(beats.index.size, dtype=bool)
    intervals = vitals._intervals(beats, counts, 0, 3000)
    across = vitals._across_bridge(beats, 0, 3000)
    assert np.all(np.isfinite(intervals))  # 910 -> 1110 is read, as two beats, by the rate
    np.testing.assert_array_equal(np.flatnonzero(across), [np.flatnonzero(intervals == 200)[0]])
    assert np.all(intervals[~across] == 100)


def test_an_interval_across_a_bridge_moves_the_rate_not_the_hrv() -> None:
    """Beats 1 s apart, their intervals 10 ms longer and shorter by turns (RMSSD 20 ms), a
    beat lost in a bridge at 25 s and the one after it moved 70 ms by the line: the epoch's
    rate is the beats' (60 bpm) and its HRV that of the intervals not across the bridge."""
    vitals = EpochVitals(100.0, 30.0, lambda i: i / 100.0, check_rhythm=False)
    vitals.add_samples(0, 2500)
    vitals.bridge(2500, 2530)
    vitals.add_samples(2500, 6000)
    beats = np.arange(10, 6000, 100) + np.arange(60) % 2  # intervals 101, 99, 101, ...
    beats[beats == 2611] += 7  # the beat after the bridge, moved 70 ms by the line
    vitals.add_beats(beats)
    for a in range(0, 5001, 500):
        vitals.add_judgement(a, a + 1000, "good", 1.0)
    second = vitals.finish(6000)[0]
    assert second.hr_bpm == pytest.approx(60.0, abs=0.3)
    assert second.hrv_rmssd_ms == pytest.approx(20.0)


def test_gap_runs_merge_close_gaps_and_end_after_a_quiet_minute() -> None:
    runs = GapRuns(250.0)
    assert runs.add(Event(0.0, "sensor_gap", "20 samples (0.08 s) lost before frame 3")) is None
    runs.missing(20, bridged=True)
    assert runs.add(Event(30.0, "sensor_gap", "x")) is None
    runs.missing(500, bridged=False)
    done = runs.add(Event(100.0, "sensor_gap", "one alone"))  # 70 s later: a new run
    assert done == Event(
        0.0, "sensor_gap", "2 gaps in 30 s, 2.1 s of samples missing in all (1 bridged)"
    )
    assert runs.flush() == Event(100.0, "sensor_gap", "one alone")  # a run of one keeps its words
    assert runs.flush() is None
    for t in range(0, 700, 50):  # gaps all along: a run is written every 10 min at least
        done = runs.add(Event(float(t), "sensor_gap", "g")) or done
    assert done.t_utc == 0.0 and done.detail.startswith("13 gaps in 600 s")
