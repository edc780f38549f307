"""The whole pipeline with the real quality gate and model: accuracy against the simulator's
ground truth, chunk-proofness, sensor gaps, stalls, a source that dies, batched commits."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsp_c
from edge.errors import BedsideError
from edge.eval.harness import oximeter_rates
from edge.pipeline import (
    BRIDGE_END_SAMPLES,
    OpenGate,
    Pipeline,
    Settings,
    _bridge_end,
    _bridged,
    next_local_time,
    settling_samples,
)
from edge.quality import QualityGate
from edge.readers import Recording
from edge.sim import Night, Scenario, State
from edge.sources.base import Chunk
from edge.sources.replay import ReplaySource
from edge.sources.sim import SimSource
from edge.store import Store
from edge.vitals import EpochVitals

T0 = 1_750_000_000.0
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def gate_night():
    """Seed 16, 1 h: 6 min of empty bed, good sleep, a bed exit, 8 min of poor signal."""
    night = Night(seed=16, duration_s=3600.0)
    return night, night.samples()


def _run(source, tmp_path, gate=None, name="night.db", **settings):
    store = Store(tmp_path / name)
    pipeline = Pipeline(source, store, gate or QualityGate(source.fs), Settings(**settings))
    result = pipeline.run()
    epochs = [e for _, e in store.epochs(session_id=result.session_id)]
    events = [e for _, e in store.events(session_id=result.session_id)]
    store.close()
    return result, epochs, events


def _truth(night: Night, epoch, t0=T0):
    """The label of an epoch (None when it holds more than one) and its true mean HR."""
    i0 = int(round((epoch.t_utc - t0) * night.fs))
    i1 = min(i0 + int(round(epoch.duration_s * night.fs)), night.n_samples)
    labels = np.unique(night.state_at(i0, i1))
    label = State(int(labels[0])) if labels.size == 1 else None
    hr = night.heart_rate_at(np.arange(i0, i1, 10) / night.fs)
    return label, float(np.nanmean(hr)) if np.isfinite(hr).any() else np.nan


def test_heart_rate_matches_ground_truth_and_no_rate_in_an_empty_bed(gate_night, tmp_path):
    night, _ = gate_night
    result, epochs, events = _run(SimSource(night=night, t0_utc=T0), tmp_path)
    assert result.reason == "end of source" and len(epochs) == 120
    truth = [_truth(night, e) for e in epochs]
    rated = [(e.hr_bpm, hr) for e, (_, hr) in zip(epochs, truth, strict=True) if e.hr_bpm]
    errors = np.abs(np.array(rated)[:, 0] - np.array(rated)[:, 1])
    assert errors.mean() < 1.0, errors  # HR MAE over the epochs given a rate
    for e, (label, _) in zip(epochs, truth, strict=True):
        if label is State.EMPTY:
            assert e.hr_bpm is None and e.hrv_rmssd_ms is None and e.rr_bpm is None
            assert e.hr_reason == "empty bed" and e.beats == 0
        if label is State.POOR:
            assert e.hr_bpm is None, e  # a poor signal gives no heart rate
        assert (e.hr_bpm is None) == (e.hr_reason is not None)
        assert (e.rr_bpm is None) == (e.rr_reason is not None)
    empty = [e for e, (label, _) in zip(epochs, truth, strict=True) if label is State.EMPTY]
    assert len(empty) >= 15 and all(e.state == "empty" for e in empty)
    good = [e for e, (label, _) in zip(epochs, truth, strict=True) if label is State.GOOD]
    assert sum(e.hr_bpm is not None for e in good) >= 0.8 * len(good)  # coverage
    kinds = [e.kind for e in events]
    assert kinds.count("bed_entry") == 2 and kinds.count("bed_exit") == 1
    assert kinds[-1] == "shutdown"
    entry = next(e for e in events if e.kind == "bed_entry")
    assert abs(entry.t_utc - (T0 + 378)) < 30  # got into bed at 378 s


def test_the_night_does_not_depend_on_the_chunking(tmp_path):
    short = Night(seed=16, duration_s=900.0)
    a = _run(SimSource(night=short, t0_utc=T0, chunk_s=1.0), tmp_path, name="a.db")[1]
    b = _run(SimSource(night=short, t0_utc=T0, chunk_s=37.0), tmp_path, name="b.db")[1]
    assert a == b and len(a) == 30


def _replay(x: np.ndarray, fs: float = 250.0) -> ReplaySource:
    return ReplaySource(Recording(x, fs, "bcg", ("bcg",)), t0_utc=T0)


def test_a_sensor_gap_is_an_event_and_splits_the_beats(gate_night, tmp_path):
    _, samples = gate_night
    x = samples[: 250 * 1200].astype(np.float64)  # 20 min: empty, then in bed from 394 s
    x[250 * 700 : 250 * 745] = np.nan  # 45 s of lost frames while asleep
    result, epochs, events = _run(_replay(x), tmp_path)
    gaps = [e for e in events if e.kind == "sensor_gap"]
    assert len(gaps) == 1 and gaps[0].detail == "45.0 s of samples missing"
    starts = [round(e.t_utc - T0) for e in epochs]
    assert starts == list(range(0, 1200, 30))
    # [690, 720) s and [720, 750) s hold the gap: no heart rate across it, a reason instead
    # (each keeps a rate only from enough beats of its own on one side).
    for e in epochs[23:25]:
        assert e.hr_bpm is not None or e.hr_reason == "sensor gap"
    assert epochs[24].hr_reason == "sensor gap"  # 5 s of samples: too few beats
    assert result.samples == np.isfinite(x).sum()


class _Stalling:
    """Fault injection: a live source that delivers nothing for a while, then goes on."""

    def __init__(self, inner, stall_after: int, stall_s: float) -> None:
        self.inner, self.name, self.fs = inner, inner.name, inner.fs
        self._reads, self._after, self._stall_s = 0, stall_after, stall_s
        self._stalled_at: float | None = None

    def read(self, timeout_s=None):
        self._reads += 1
        if self._reads > self._after:
            if self._stalled_at is None:
                self._stalled_at = time.monotonic()
            if time.monotonic() - self._stalled_at < self._stall_s:
                time.sleep(0.01)
                return Chunk(0, np.empty(0, dtype=np.int32), time.time())
        return self.inner.read(timeout_s)

    def drain_events(self):
        return self.inner.drain_events()

    def close(self):
        self.inner.close()


class _Dying(_Stalling):
    """Fault injection: the sensor disappears for good after some chunks."""

    def read(self, timeout_s=None):
        self._reads += 1
        if self._reads > self._after:
            raise BedsideError("E249", "sensor link lost — check the cable")
        return self.inner.read(timeout_s)


def test_a_stalled_source_is_an_event_and_the_night_goes_on(tmp_path):
    night = Night(seed=21, duration_s=300.0)
    source = _Stalling(SimSource(night=night, t0_utc=T0, chunk_s=10.0), 12, 0.3)
    result, epochs, events = _run(source, tmp_path, stall_s=0.1)
    stalls = [e for e in events if e.kind == "sensor_gap"]
    assert len(stalls) == 1 and stalls[0].detail == "no samples for 0.1 s"
    assert result.reason == "end of source" and result.samples == night.n_samples
    assert len(epochs) == 10


def test_a_source_that_dies_ends_the_session_cleanly_with_an_event(tmp_path):
    night = Night(seed=21, duration_s=600.0)
    source = _Dying(SimSource(night=night, t0_utc=T0, chunk_s=10.0), 30, 0.0)
    store = Store(tmp_path / "night.db")
    with pytest.raises(BedsideError) as err:
        Pipeline(source, store, QualityGate(250.0), Settings()).run()
    assert err.value.code == "E249"
    store.close()
    store = Store(tmp_path / "night.db", readonly=True)
    (session,) = store.sessions()
    assert session.clean
    kinds = [e.kind for _, e in store.events()]
    assert kinds[-2:] == ["sensor_error", "shutdown"]
    epochs = [e for _, e in store.epochs()]
    assert len(epochs) == 10  # 300 s delivered: every epoch the gate judged is saved


class _CountingStore(Store):
    """The real store, noting how many rows (epochs and events) each commit made durable."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.committed: list[int] = []
        self.added = 0

    def add_epoch(self, epoch) -> None:
        super().add_epoch(epoch)
        self.added += 1

    def add_event(self, event) -> None:
        super().add_event(event)
        self.added += 1

    def commit(self) -> None:
        super().commit()
        if self.session_id is not None:  # not open_session's own commit
            self.committed.append(self.added)


def test_epochs_are_committed_in_batches_and_a_stop_loses_nothing(tmp_path):
    night = Night(seed=21, duration_s=1800.0)
    store = _CountingStore(tmp_path / "night.db")
    calls = iter(range(10**6))
    pipeline = Pipeline(
        SimSource(night=night, t0_utc=T0, chunk_s=10.0),
        store,
        OpenGate(250.0),  # the bench mode is part of the product too
        Settings(commit_epochs=4, commit_s=3600.0),
        # Wall time stands still: epochs that close a second or more apart are committed
        # one by one (EPOCH_COMMIT_BATCH_S), and on a slow board (the emulated one of
        # make arm64) a 10 s chunk can take that long. The batches are the subject here.
        clock=lambda: 0.0,
    )
    result = pipeline.run(should_stop=lambda: next(calls) >= 90)  # stop after 900 s
    assert result.reason == "stopped" and result.samples == 250 * 900
    batches = np.diff([0, *store.committed])
    assert len(store.committed) >= 7 and set(batches[:-1]) == {4}  # the last: at the stop
    store.close()
    epochs = [e for _, e in Store(tmp_path / "night.db", readonly=True).epochs()]
    # Everything processed is saved: epochs up to the last one the windows reached.
    assert len(epochs) == 30 and epochs[-1].t_utc == T0 + 870
    assert all(e.state == "good" for e in epochs)  # --no-gate: every window good


def test_a_unit_that_runs_for_days_stores_one_session_a_night(tmp_path):
    start = 1_750_000_020.0  # a whole minute
    at = datetime.fromtimestamp(start + 600.0).astimezone().strftime("%H:%M")
    assert next_local_time(start, at) == start + 600.0
    source = SimSource(night=Night(seed=21, duration_s=1200.0), t0_utc=start)
    store = Store(tmp_path / "night.db")
    result = Pipeline(source, store, OpenGate(250.0), Settings(new_session_at=at)).run()
    first, second = store.sessions()
    assert result.sessions == [first.id, second.id] and result.session_id == second.id
    assert first.clean and first.ended_utc == start + 600.0 and second.started_utc == start + 600
    before = [e.t_utc for _, e in store.epochs(session_id=first.id)]
    after = [e.t_utc for _, e in store.epochs(session_id=second.id)]
    assert before == [start + 30 * k for k in range(20)]
    assert after == [start + 30 * k for k in range(20, 40)]
    assert [e.kind for _, e in store.events(session_id=second.id)][-1] == "shutdown"
    assert "restart" not in [e.kind for _, e in store.events()]


class _FailingGate:
    """Fault injection: the real gate, then an unexpected exception (a bug) mid-night."""

    def __init__(self, after: int) -> None:
        self.gate, self.calls, self.after = QualityGate(250.0), 0, after

    def process(self, samples, start_index=None):
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("a bug")
        return self.gate.process(samples, start_index)


def test_a_crash_saves_what_was_processed_and_marks_the_session_unclean(tmp_path):
    night = Night(seed=21, duration_s=900.0)
    store = Store(tmp_path / "night.db")
    pipeline = Pipeline(SimSource(night=night, t0_utc=T0, chunk_s=10.0), store, _FailingGate(40))
    with pytest.raises(RuntimeError):
        pipeline.run()
    (session,) = store.sessions()
    assert session.clean is False and session.n_epochs == 14  # 400 s, the last epoch partly
    assert [e for _, e in store.events()][-1].detail == "failed: RuntimeError"
    store.close()
    store = Store(tmp_path / "night.db")  # the next start says the last one ended badly
    store.open_session(source="sim:21", fs=250.0, epoch_s=30.0, software_version="x", t_utc=T0)
    assert [e.kind for _, e in store.events()][-1] == "restart"
    store.close()


class _RandomChunks:
    """A recording delivered in the chunk sizes given (a live link's arbitrary bursts)."""

    def __init__(self, samples: np.ndarray, sizes: list[int]) -> None:
        self.name, self.fs = "replay:random", 250.0
        self._x, self._sizes, self._next, self._reads = samples, sizes, 0, 0

    def read(self, timeout_s=None):
        if self._next >= self._x.size:
            return None
        size = self._sizes[self._reads % len(self._sizes)]  # the sizes, over and over
        self._reads += 1
        start, self._next = self._next, min(self._next + size, self._x.size)
        return Chunk(start, self._x[start : self._next], T0 + start / self.fs)

    def drain_events(self):
        return []

    def close(self):
        pass


@pytest.fixture(scope="module")
def six_minutes() -> np.ndarray:
    return Night(seed=16, duration_s=360.0).samples()


@settings(max_examples=4, deadline=None)
@given(st.lists(st.integers(20, 4000), min_size=1, max_size=20))
def test_any_chunking_gives_the_same_epochs_and_events(six_minutes, tmp_path_factory, sizes):
    tmp = tmp_path_factory.mktemp("chunks")
    whole = _run(_RandomChunks(six_minutes, [six_minutes.size]), tmp, name="whole.db")
    parts = _run(_RandomChunks(six_minutes, sizes), tmp, name="parts.db")
    assert parts[1] == whole[1] and len(whole[1]) == 12
    assert [e for e in parts[2] if e.kind != "shutdown"] == [
        e for e in whole[2] if e.kind != "shutdown"
    ]


def _switched_on(x: np.ndarray) -> np.ndarray:
    """``x`` as a sensor just switched on gives it: its first 20 samples charge up from zero
    (a front end's time constant of 4 samples), then it runs on."""
    out = np.asarray(x, dtype=np.float64).copy()
    out[:20] *= 1.0 - np.exp(-np.arange(20) / 4.0)
    return out


def test_a_start_up_step_is_a_sensor_settling_and_nothing_else_is(six_minutes, rng):
    fs = 250.0
    assert settling_samples(_switched_on(six_minutes), fs) == 250
    assert settling_samples(six_minutes, fs) == 0
    # Relative to the signal itself: any gain, offset or polarity.
    for gain, offset in ((1e-3, 0.0), (-1.0, 0.0), (1e4, -5e6)):
        assert settling_samples(offset + gain * _switched_on(six_minutes), fs) == 250
        assert settling_samples(offset + gain * six_minutes, fs) == 0
    # A body moving when the sensor starts moves for longer than a quarter second.
    moving = six_minutes.astype(np.float64).copy()
    moving[:500] += 20 * np.std(moving) * rng.standard_normal(500)
    assert settling_samples(moving, fs) == 0
    # Too short to tell, or not finite (left to the chunk check): no settling.
    assert settling_samples(_switched_on(six_minutes)[:250], fs) == 0
    with_nan = _switched_on(six_minutes)
    with_nan[3] = np.nan
    assert settling_samples(with_nan, fs) == 0
    with_nan = _switched_on(six_minutes)
    with_nan[80] = np.nan  # between the head and the second half: not run over either
    assert settling_samples(with_nan, fs) == 0
    # A stuck input (no scale to judge a step by) is no settling either.
    assert settling_samples(np.array([2049] + [2048] * 599, dtype=np.int32), fs) == 0


def test_a_sensor_settling_is_told_through_mains_hum(six_minutes):
    """Hum larger than the start-up step (the hum's range is the second half's, by which the
    step was judged) is fitted on that half and taken out first: the step is still found, and
    hum alone is still no settling."""
    fs = 250.0
    t = np.arange(six_minutes.size) / fs
    step = float(np.median(six_minutes[:250]))
    hum = 0.4 * step * (np.sin(2 * np.pi * 50.0 * t + 1.0) + 0.3 * np.sin(2 * np.pi * 100.0 * t))
    assert settling_samples(_switched_on(six_minutes) + hum, fs) == 250
    assert settling_samples(six_minutes + hum, fs) == 0
    assert settling_samples(2048.0 + hum, fs) == 0  # an idle input that picks up hum


@settings(max_examples=3, deadline=None)
@given(st.lists(st.integers(20, 400), min_size=1, max_size=8))
def test_a_sensor_settling_is_run_over_in_any_chunking(six_minutes, tmp_path_factory, sizes):
    """The first second of a stream that starts with a step waits, then runs over at the level
    after it: the same epochs and events as the stream whose first second is that level,
    however the samples come."""
    tmp = tmp_path_factory.mktemp("settle")
    step = _switched_on(six_minutes)
    level = step.copy()
    level[:250] = np.median(step[248:251])  # the settled level: the last three's median
    parts = _run(_RandomChunks(step, sizes), tmp, name="parts.db")
    flat = _run(_RandomChunks(level, [level.size]), tmp, name="flat.db")
    assert parts[0].settled_samples == 250 and flat[0].settled_samples == 0
    assert parts[1] == flat[1] and len(parts[1]) == 12
    assert [e for e in parts[2] if e.kind != "shutdown"] == [
        e for e in flat[2] if e.kind != "shutdown"
    ]


def test_a_glitch_where_a_sensor_settled_does_not_set_its_level(six_minutes, tmp_path):
    """The settled level is the median of the first second's last three samples: a glitch
    on the last one stores the same night as without it (the despiker takes it out after;
    the level was that one sample, a step of the glitch's height)."""
    step = _switched_on(six_minutes)
    glitched = step.copy()
    glitched[250] += 50.0 * np.ptp(six_minutes[250:5000])
    clean = _run(_RandomChunks(step, [250]), tmp_path, name="clean.db")
    other = _run(_RandomChunks(glitched, [250]), tmp_path, name="glitched.db")
    assert other[0].settled_samples == 250 and other[0].glitch_samples == 1
    assert clean[0].glitch_samples == 0
    assert len(clean[1]) == 12
    assert [(e.state, e.hr_reason) for e in other[1]] == [(e.state, e.hr_reason) for e in clean[1]]


class _Scripted:
    """Chunks as given: (start index, samples) each, gaps wherever the starts jump."""

    def __init__(self, chunks: list[tuple[int, np.ndarray]]) -> None:
        self.name, self.fs, self._chunks = "replay:scripted", 250.0, list(chunks)

    def read(self, timeout_s=None):
        if not self._chunks:
            return None
        start, x = self._chunks.pop(0)
        return Chunk(start, x, T0 + start / self.fs)

    def drain_events(self):
        return []

    def close(self):
        pass


def test_every_sample_reaches_the_dsp_once_in_order_past_the_despiker(
    six_minutes, tmp_path, monkeypatch
):
    """Glitches, chunks of 1 to 700 samples, short gaps (bridged), long gaps (new
    stretches) and a stretch shorter than the despiker's second: per stretch, what the DSP
    gets is one Despiker over what went in, each sample once, in order; and no epoch is
    written before its samples went through."""
    rng = np.random.default_rng(5)
    x = six_minutes[: 250 * 120].astype(np.float64)
    where = rng.choice(x.size, 40, replace=False)
    x[where] += np.ptp(x) * rng.choice([-5.0, 5.0], where.size)
    chunks, i, alone = [], 0, False
    while i < x.size:
        if rng.random() < 0.04:
            i += int(rng.integers(1, 100)) if rng.random() < 0.5 else int(rng.integers(500, 900))
        if not alone and i > 60 * 250:  # 0.4 s alone between two long gaps
            chunks.append((i + 1000, x[i + 1000 : i + 1100]))
            i, alone = i + 2100, True
        size = int(rng.choice([1, int(rng.integers(2, 700))]))
        chunks.append((i, x[i : i + size]))
        i += size
    chunks = [c for c in chunks if c[1].size]
    went_in: dict[int, list[np.ndarray]] = {}
    came_out: dict[int, list[tuple[int, np.ndarray]]] = {}
    ingest, analyse, ready = Pipeline._ingest, Pipeline._analyse, EpochVitals.ready

    def spy_ingest(self, start, samples):
        went_in.setdefault(self._stretch.origin, []).append(samples.copy())
        return ingest(self, start, samples)

    def spy_analyse(self, samples):
        out = came_out.setdefault(self._stretch.origin, [])
        out.append((self._stretch.emitted, samples.copy()))
        return analyse(self, samples)

    def spy_ready(self, processed):
        # Up to the samples through the DSP, or a new stretch's start (none of the old
        # stretch can come any more).
        done = max(start + samples.size for out in came_out.values() for start, samples in out)
        assert processed <= done or processed in went_in
        return ready(self, processed)

    monkeypatch.setattr(Pipeline, "_ingest", spy_ingest)
    monkeypatch.setattr(Pipeline, "_analyse", spy_analyse)
    monkeypatch.setattr(EpochVitals, "ready", spy_ready)
    result = _run(_Scripted(chunks), tmp_path)[0]
    assert len(went_in) >= 3 and result.glitch_samples >= 20
    for origin, parts in went_in.items():
        despiker = dsp_c.Despiker(250.0)
        raw = np.concatenate(parts)
        expected = np.concatenate([despiker.process(raw), despiker.flush()])
        starts = [start for start, _ in came_out[origin]]
        got = [samples for _, samples in came_out[origin]]
        assert starts == list(origin + np.cumsum([0] + [g.size for g in got[:-1]]))
        np.testing.assert_array_equal(np.concatenate(got), expected)


@pytest.mark.parametrize("where", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_bridge_ends_at_the_line_not_at_a_glitch_beside_it(where, sign) -> None:
    """A short gap's bridge meets each side at its nearest sample, on a curve too; when that
    sample is a glitch, at the line through the others; a glitch further in leaves it be."""
    line = 3.0 + 0.5 * np.arange(BRIDGE_END_SAMPLES)
    assert _bridge_end(line) == line[0]
    curve = line + 0.1 * np.arange(BRIDGE_END_SAMPLES) ** 2
    assert _bridge_end(curve) == curve[0]
    torn = line.copy()
    torn[where] += sign * 1e6
    assert _bridge_end(torn) == pytest.approx(line[0])
    assert _bridge_end(torn[: BRIDGE_END_SAMPLES - 1]) == torn[0]  # too few to tell


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_glitch_at_a_bridge_end_is_replaced_by_the_line_through_the_others(sign) -> None:
    """Not by a line the glitch itself pulls: the value of the (robust) line through the
    four others (slopes 2, 0.5, 1, -1, 0.5, 2: median 0.75; intercepts 0.25, 1.5, -0.25,
    1: median 0.625)."""
    assert _bridge_end(np.array([sign * 1e6, 1.0, 3.0, 2.0, 4.0])) == pytest.approx(0.625)


def test_the_settling_look_bridges_a_gap_as_the_dsp_does() -> None:
    """The first second waits for the settling look, which reads its short gaps bridged as
    the DSP will bridge them: a line between the levels either side, which a glitch beside
    the gap does not pull (two chunks and a third, back to back with the second, after a
    gap of 4 samples)."""
    ramp = np.arange(20, dtype=np.float64)
    torn = ramp.copy()
    torn[7] = torn[12] = 1e6  # torn reads on both sides of the gap
    chunks = [
        Chunk(0, torn[:8], T0),
        Chunk(12, torn[12:14], T0 + 0.048),  # fewer than BRIDGE_END_SAMPLES: read on with
        Chunk(14, torn[14:20], T0 + 0.056),  # the chunk after it
    ]
    x = _bridged(chunks)
    assert x.size == 20 and x[7] == x[12] == 1e6
    np.testing.assert_allclose(x[8:12], ramp[8:12])  # the line from 7 to 12 (not 1e6)
    np.testing.assert_array_equal(x[13:], ramp[13:])


@pytest.mark.parametrize("inward", [0, 1, 2])
def test_glitches_beside_short_gaps_store_the_same_night(tmp_path, inward):
    """A torn read beside a lost frame: a glitch on the last sample before each short gap
    and on the first after it (or ``inward`` samples further in). The bridge's ends are
    fitted to the samples beside the gap, not to the glitch, so each glitch is a sample
    alone off the line, which the despiker takes out: the same states as with the same
    gaps and no glitch, each rate within 1 bpm. (A bridge from the glitch itself made a ramp
    of it: a movement to the gate, every epoch `motion`.)"""
    night = Night(seed=3, scenario=Scenario.chain([(300, "good", "supine")]))
    x = night.samples().astype(np.float64)
    starts, i = [], 0
    while i < x.size:  # 1 s frames, and 0.2 s lost after every tenth (bridged)
        starts.append(i)
        i += 250 + (50 if len(starts) % 10 == 6 else 0)

    def chunks(y: np.ndarray) -> list[tuple[int, np.ndarray]]:
        return [(i, y[i : i + 250]) for i in starts]

    glitched, height = x.copy(), 50.0 * np.ptp(x[:2500])
    for before, after in zip(starts[:-1], starts[1:], strict=True):
        if after - before > 250:
            glitched[after - 51 - inward] += height
            glitched[after + inward] -= height
    clean = _run(_Scripted(chunks(x)), tmp_path, name="clean.db", epoch_s=10.0)
    other = _run(_Scripted(chunks(glitched)), tmp_path, name="glitched.db", epoch_s=10.0)
    assert clean[0].bridged_samples > 0 and clean[0].glitch_samples == 0
    assert other[0].glitch_samples == np.count_nonzero(glitched != x)
    assert len(clean[1]) == 30 and sum(e.hr_bpm is not None for e in clean[1]) >= 27
    assert [(e.state, e.hr_reason) for e in other[1]] == [(e.state, e.hr_reason) for e in clean[1]]
    for e, c in zip(other[1], clean[1], strict=True):
        assert e.hr_bpm is None or abs(e.hr_bpm - c.hr_bpm) <= 1.0


class _Dropping(_RandomChunks):
    """Chunks of a fixed size, some of them lost on the way (their numbers in ``lost``)."""

    def __init__(self, samples: np.ndarray, size: int, lost: set[int]) -> None:
        super().__init__(samples, [size])
        self._lost = lost

    def read(self, timeout_s=None):
        chunk = super().read(timeout_s)
        while chunk is not None and self._reads - 1 in self._lost:
            chunk = super().read(timeout_s)
        return chunk


def test_a_sensor_settles_at_the_start_of_a_stream_only(six_minutes, tmp_path):
    """A frame lost in the first second is bridged and the settling still run over; a
    step after a long gap mid-stream is left alone (the end of a movement looks alike)."""
    step = _switched_on(six_minutes)
    result, epochs, _ = _run(_Dropping(step, 25, {4}), tmp_path, name="lost.db")
    assert result.settled_samples == 250 and result.bridged_samples == 25
    later = six_minutes.astype(np.float64).copy()
    later[30000:30020] = _switched_on(later[30000:30250])[:20]  # after the gap below
    gapped = _Dropping(later, 250, set(range(100, 120)))  # 20 s lost from 100 s on
    result, epochs, _ = _run(gapped, tmp_path, name="gap.db")
    assert result.settled_samples == 0


def test_a_bad_sample_after_a_settling_is_named_as_anywhere(tmp_path):
    """A sample that is no number where the settled level would be read: the chunk check's
    error, naming the sample, as in a stream without the step."""
    x = Night(seed=16, duration_s=20.0).samples()
    errors = []
    for samples in (x.astype(np.float64), _switched_on(x)):
        samples[250] = np.nan
        with pytest.raises(ValueError) as caught:
            _run(_RandomChunks(samples, [100]), tmp_path, name=f"bad{len(errors)}.db")
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "not finite" in errors[1] and "index 50" in errors[1]


def test_a_real_recording_against_its_pulse_oximeter(tmp_path):
    """The Sadek fiber-optic mat sample (50 Hz, 18.6 min): the whole pipeline with the real
    gate, 10 s epochs, against the pulse oximeter recorded with it (read 28 s later: its
    delay, edge.eval.harness.SADEK_OXIMETER_DELAY_S)."""
    source = ReplaySource.open(DATA / "sadek_sample.npz")
    oximeter = source.recording.reference["pulse_ox_bpm"]
    result, epochs, _ = _run(source, tmp_path, epoch_s=10.0)
    assert len(epochs) == 112
    t0 = source.recording.start_time.timestamp()
    starts = [int(round((e.t_utc - t0) * 50)) for e in epochs]
    reference = oximeter_rates(oximeter, 50.0, [(a, a + 500) for a in starts])
    as_recorded = oximeter_rates(oximeter, 50.0, [(a, a + 500) for a in starts], delay_s=0.0)
    hr = np.array([np.nan if e.hr_bpm is None else e.hr_bpm for e in epochs])
    assert np.isfinite(hr).sum() >= 0.85 * len(epochs)  # coverage (measured 103 of 112)
    scored = np.isfinite(hr) & np.isfinite(reference)
    assert np.mean(np.abs(hr - reference)[scored]) < 0.6  # bpm (measured 0.36)
    assert np.max(np.abs(hr - reference)[scored]) < 3.0  # (measured 2.1)
    assert np.mean(np.abs(hr - as_recorded)[scored]) < 3.0  # (measured 2.55)


class _FullDiskStore(Store):
    """Fault injection: the first commits fail as on a full disk (the store keeps its batch)."""

    def __init__(self, *args, failures: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures

    def commit(self) -> None:
        if self.session_id is not None and self.failures > 0:
            self.failures -= 1
            raise BedsideError("E261", "disk full — free disk space")
        super().commit()


def test_a_full_disk_delays_commits_and_loses_nothing(tmp_path):
    night = Night(seed=21, duration_s=900.0)
    store = _FullDiskStore(tmp_path / "night.db", failures=3)
    pipeline = Pipeline(
        SimSource(night=night, t0_utc=T0), store, OpenGate(250.0), Settings(commit_epochs=5)
    )
    result = pipeline.run()
    assert result.store_errors == ["E261: disk full — free disk space"]  # told once
    assert result.store_failures == 3
    assert [e.t_utc - T0 for _, e in store.epochs()] == [30.0 * k for k in range(30)]
    store.close()


def test_a_full_disk_all_night_is_said_once_then_rarely(tmp_path, caplog):
    """Every commit of 2 h fails (about 240 of them): one warning, then one per 5 min of
    wall time at most (none here: the run takes seconds), never one per commit."""
    night = Night(seed=21, duration_s=7200.0)
    store = _FullDiskStore(tmp_path / "night.db", failures=10**9)
    pipeline = Pipeline(
        SimSource(night=night, t0_utc=T0), store, OpenGate(250.0), Settings(commit_epochs=1)
    )
    with caplog.at_level(logging.WARNING, logger="edge.pipeline"), pytest.raises(BedsideError):
        pipeline.run()  # the last commit, at the close, raises
    warnings = [r for r in caplog.records if "commit failed" in r.getMessage()]
    assert pipeline.result.store_failures >= 200
    assert len(warnings) == 1 and len(pipeline.result.store_errors) == 1


class _Cut:
    """A source giving ``samples`` in the chunks ``[a, b)`` listed (stream indices), so a gap
    lies wherever one chunk stops short of the next."""

    name = "cut"

    def __init__(self, samples: np.ndarray, fs: float, bounds: list[tuple[int, int]]) -> None:
        self.fs = fs
        self._chunks = [Chunk(a, samples[a:b], T0 + a / fs) for a, b in reversed(bounds)]

    def read(self, timeout_s=None):
        return self._chunks.pop() if self._chunks else None

    def drain_events(self):
        return []

    def close(self):
        pass


def test_a_bad_first_chunk_gives_its_own_error(tmp_path):
    """A sample out of range in the very first chunk: the error names it (not a failure of
    the clean-up that follows), and the session is still closed."""
    x = np.zeros(250)
    x[3] = 1e20
    with Store(tmp_path / "night.db") as store:
        pipeline = Pipeline(_Cut(x, 250.0, [(0, x.size)]), store, QualityGate(250.0), Settings())
        with pytest.raises(ValueError, match="1e\\+20|out of range|finite"):
            pipeline.run()
        assert [e.kind for _, e in store.events()] == ["shutdown"]


def test_a_stretch_after_a_gap_is_primed_alike_in_any_chunks(tmp_path):
    """Every stretch's filters are primed from its first 0.2 s (the power-line hum fitted
    there is taken out of its first sample): a stretch after a gap that starts with a few
    samples at a time stores what it stores when those come at once."""
    from edge.eval.transforms import add_mains_hum
    from edge.sim.scenario import Scenario

    night = Night(seed=16, duration_s=240.0, scenario=Scenario.constant(240.0, State.GOOD))
    x, fs = add_mains_hum(night.samples(), night.fs)  # at 500 Hz, to carry the harmonics
    gap = (60000, 62000)  # 4 s lost: a new stretch
    whole = [(0, gap[0]), (gap[1], x.size)]
    tiny = np.cumsum([gap[1], 1, 2, 3, 5, 8, 13, 21, 34])
    cut = [(0, gap[0])] + list(zip(tiny[:-1], tiny[1:], strict=True)) + [(tiny[-1], x.size)]
    _, once, _ = _run(_Cut(x, fs, whole), tmp_path, name="a.db")
    _, in_bits, _ = _run(_Cut(x, fs, [(int(a), int(b)) for a, b in cut]), tmp_path, name="b.db")
    assert in_bits == once
    assert len(once) == 8 and sum(e.hr_bpm is not None for e in once) >= 6  # 30 s epochs
