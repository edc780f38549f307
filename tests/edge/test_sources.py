"""Sample sources: sim[:SEED] and replay:PATH give every sample once, in order, with gaps
marked; open_source parses specs and refuses bad ones with E281."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from edge.errors import BedsideError
from edge.readers import Recording
from edge.sim import Night, Scenario, State
from edge.sources import open_source
from edge.sources.base import Source
from edge.sources.replay import ReplaySource
from edge.sources.sim import SimSource

DATA = Path(__file__).resolve().parents[1] / "data"


def _drain(source) -> list:
    chunks = []
    while (chunk := source.read(timeout_s=5.0)) is not None:
        chunks.append(chunk)
    return chunks


def test_sim_source_delivers_the_night_in_order():
    night = Night(seed=4, duration_s=95.0)
    source = SimSource(night=night, t0_utc=1_700_000_000.0, chunk_s=7.0)
    assert isinstance(source, Source) and source.name == "sim:4" and source.fs == 250.0
    chunks = _drain(source)
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), night.samples())
    starts = [c.start_index for c in chunks]
    assert starts == list(range(0, night.n_samples, 7 * 250))
    assert all(c.gap_before == 0 for c in chunks)
    assert chunks[3].t_utc == pytest.approx(1_700_000_000.0 + 3 * 7.0)
    assert source.read() is None and source.drain_events() == []


def test_paced_sim_source_waits_for_real_time():
    source = SimSource(night=Night(seed=1, duration_s=10.0), speed=20.0)  # 1 s chunks, 50 ms
    begin = time.monotonic()
    chunks = [source.read(timeout_s=1.0) for _ in range(4)]
    waited = time.monotonic() - begin
    print(f"4 paced chunks of 50 ms: {waited:.3f} s")
    # It waits (4 x 50 ms, less the first chunk's); the upper bound is generous on purpose:
    # a shared machine's scheduling is not what this checks (make bench times things).
    assert 0.15 < waited < 5.0, waited
    assert [len(c.samples) for c in chunks] == [250] * 4
    # Not due within the timeout: an empty chunk, nothing consumed.
    slow = SimSource(night=Night(seed=1, duration_s=10.0), speed=0.5)
    empty = slow.read(timeout_s=0.01)
    assert empty is not None and len(empty.samples) == 0 and empty.start_index == 0
    slow.close()
    assert slow.read() is None


def _npz(tmp_path: Path, signal: np.ndarray, fs: float = 250.0, **extra) -> Path:
    path = tmp_path / "night.npz"
    np.savez(path, bcg=signal, fs=fs, **extra)
    return path


def test_replay_source_skips_missing_samples_as_a_gap(tmp_path):
    x = Night(seed=2, duration_s=60.0).samples().astype(np.float64)
    x[:100] = np.nan  # the file starts with missing samples
    x[5000:5750] = np.nan  # 3 s lost in the middle
    source = open_source(f"replay:{_npz(tmp_path, x)}", speed=None)
    assert source.name == "replay:night.npz" and source.fs == 250.0
    chunks = _drain(source)
    got = np.concatenate([c.samples for c in chunks])
    assert np.array_equal(got, x[np.isfinite(x)])
    gaps = [(c.start_index, c.gap_before) for c in chunks if c.gap_before]
    assert gaps == [(100, 100), (5750, 750)]
    for c in chunks:  # no chunk crosses a gap
        assert np.isfinite(x[c.start_index : c.stop_index]).all()
    events = source.drain_events()
    assert [e.kind for e in events] == ["sensor_gap", "sensor_gap"]
    assert events[1].detail == "3.0 s of samples missing"
    assert source.drain_events() == []


def test_replay_source_time_duration_and_real_recording():
    rec = Recording(np.arange(1000.0), 100.0, "bcg", ("bcg",), datetime(2024, 5, 1, 22, 0))
    source = ReplaySource(rec, duration_s=4.0, chunk_s=1.5)
    chunks = _drain(source)
    assert sum(len(c.samples) for c in chunks) == 400  # --duration cuts the replay
    start = datetime(2024, 5, 1, 22, 0, tzinfo=UTC).timestamp()  # naive = UTC
    assert chunks[0].t_utc == start and chunks[1].t_utc == pytest.approx(start + 1.5)

    real = open_source(f"replay:{DATA / 'sadek_sample.npz'}")
    first = real.read()
    assert real.fs == 50.0 and first.start_index == 0 and len(first.samples) == 500
    real.close()
    assert real.read() is None


@pytest.mark.parametrize(
    ("spec", "options", "needle"),
    [
        ("", {}, "empty"),
        ("simulator", {}, "names no source"),
        ("sim:abc", {}, "SEED"),
        ("sim:-1", {}, "SEED"),
        ("replay:", {}, "names no source"),
        ("serial:", {}, "names no source"),
        ("sim:1", {"channel": "bcg"}, "--channel is for replay"),
        ("sim:1", {"fs": 20.0}, "fs"),
        ("serial:/dev/null", {"speed": 60.0}, "cannot be sped up"),
    ],
)
def test_bad_source_specs_are_refused_with_e281(spec, options, needle):
    with pytest.raises(BedsideError) as err:
        open_source(spec, **options)
    assert err.value.code == "E281" and needle in str(err.value)
    assert " — " in str(err.value)


def test_replay_of_a_missing_file_is_the_readers_error(tmp_path):
    with pytest.raises(BedsideError) as err:
        open_source(f"replay:{tmp_path / 'none.edf'}")
    assert err.value.code == "E202" and str(tmp_path) not in str(err.value)


def test_sim_spec_options_reach_the_night():
    source = open_source("sim:7", fs=100.0, duration_s=30.0, speed=None)
    assert source.night.seed == 7 and source.fs == 100.0 and source.night.n_samples == 3000
    good = Scenario.constant(30.0, State.GOOD, "supine")
    assert SimSource(night=Night(seed=7, scenario=good)).night.segments[0].state is State.GOOD
