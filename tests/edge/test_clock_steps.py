"""Wall-clock steps on a board without a real-time clock (issue 16, item 2).

The run is timed by sample counts and the monotonic clock; the wall clock only labels it.
A step of the wall clock, either way and of any size, is a ``clock_step`` event: later
samples are labelled on the new time (forward) or run on from the last label (back); it
opens no session, makes no gap and no loop over the time it skipped, and every record stays
inside its session. The serial runs are real time on the virtual sensor (about 3 s each),
with the wall clock the unit reads stepped by the test, and the cable pulled before the
step and after it.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

import numpy as np
import pytest

from edge.firmware.virtual import VirtualSensor
from edge.pipeline import OpenGate, Pipeline, Settings, next_local_time
from edge.quality import Judgement
from edge.sim import Night
from edge.sources.base import Chunk, ClockStep, SourceEvent, WallClock
from edge.sources.serial import SerialSource
from edge.sources.sim import SimSource
from edge.store import SessionInfo, Store

DAY = 86400.0
FS = 250.0
FAST = {"answer_timeout_s": 0.2, "stall_s": 1.0, "backoff_s": (0.1, 0.4)}
RAMP = list(range(60000))  # the sensor's ADC; the signal does not matter here


class _QuickGate:
    """Every chunk judged "good" as one window, so a run of seconds has epochs (the real
    gate's first window takes 10 s)."""

    def process(self, samples: np.ndarray, start_index: int | None = None) -> list[Judgement]:
        start = int(start_index or 0)
        return [Judgement(start, start + len(samples), "good", 1.0, (0.0, 0.0, 0.0, 1.0))]


class _Recorded:
    """A source whose chunks with samples are kept, to look at the stream's gaps."""

    def __init__(self, source) -> None:
        self.source = source
        self.chunks: list[Chunk] = []

    def __getattr__(self, name: str):
        return getattr(self.source, name)

    def read(self, timeout_s: float | None = None) -> Chunk | None:
        chunk = self.source.read(timeout_s)
        if chunk is not None and len(chunk.samples):
            self.chunks.append(chunk)
        return chunk


def _clock_case(case: str) -> tuple[float, float]:
    """(the wall clock's error when the run starts, the step that comes mid-run), in s."""
    if case == "1970, then NTP":  # no RTC: the board starts at 1970-01-01 00:00:30
        error = 30.0 - time.time()
        return error, -error  # about +56.9 years
    return 0.0, {"back 2 days": -2 * DAY, "forward 30 days": 30 * DAY}[case]


def _inside(session: SessionInfo, store: Store) -> None:
    """Every epoch and event of ``session`` lies within its start and end."""
    epochs = [e for _, e in store.epochs(session_id=session.id)]
    events = [e for _, e in store.events(session_id=session.id)]
    assert all(session.started_utc <= e.t_utc for e in epochs + events)
    assert all(e.t_utc + e.duration_s <= session.ended_utc for e in epochs)
    assert all(e.t_utc <= session.ended_utc for e in events)


def test_labels_follow_a_step_forward_and_never_run_back():
    wall, monotonic = [1_800_000_000.0], [100.0]
    clock = WallClock(lambda: wall[0], lambda: monotonic[0])

    def tick(wall_s: float, monotonic_s: float = 10.0) -> ClockStep | None:
        wall[0] += wall_s
        monotonic[0] += monotonic_s
        return clock.check()

    assert tick(10.4) is None and tick(10.5) is None  # under 1 s: not a step, yet
    assert tick(10.2) == ClockStep(pytest.approx(1.1), pytest.approx(1.1), 0.0)  # added up
    before = clock.now()
    assert tick(-2 * DAY, 0.0) == ClockStep(-2 * DAY, 0.0, 2 * DAY)
    assert clock.now() == before  # held: labels run on from the last one
    assert tick(DAY, 0.0) == ClockStep(DAY, 0.0, DAY)  # still behind the labels
    assert tick(2 * DAY, 0.0) == ClockStep(2 * DAY, DAY, 0.0)  # past them: followed
    assert clock.now() == pytest.approx(wall[0]) and clock.label(0.0) == clock.now() - 130.0


@pytest.mark.parametrize("case", ["back 2 days", "forward 30 days", "1970, then NTP"])
def test_a_clock_step_in_a_serial_run_is_an_event_not_a_session_or_a_gap(tmp_path, case):
    error, step = _clock_case(case)
    offset = [error]

    def wall() -> float:  # the wall clock the unit reads; the test steps it
        return time.time() + offset[0]

    # A daily session change 12 h away: crossed by every step but never by the run itself.
    at = datetime.fromtimestamp(time.time() + DAY / 2).astimezone().strftime("%H:%M")
    settings = Settings(epoch_s=1.0, new_session_at=at)
    done: set[str] = set()
    with VirtualSensor(RAMP) as sensor:
        source = _Recorded(SerialSource(sensor.url, fs=FS, wall_clock=wall, **FAST))
        store = Store(tmp_path / "night.db")
        begin, begin_wall = time.monotonic(), time.time()

        def timeline() -> str | None:
            t = time.monotonic() - begin
            for name, when in (("pull", 0.5), ("step", 1.0), ("pull again", 1.4)):
                if t >= when and name not in done:
                    done.add(name)
                    if name == "step":
                        offset[0] += step
                    else:
                        sensor.drop()  # the cable pulled and plugged back in
            return "stopped by test" if t >= 2.2 else None

        pipeline = Pipeline(source, store, _QuickGate(), settings, wall_clock=wall)
        result = pipeline.run(timeline)
        took = time.monotonic() - begin
    assert result.reason == "stopped by test"
    assert took < 15, f"the run took {took:.1f} s"  # never a loop over the time skipped

    (session,) = store.sessions()  # the step opened no session, nor one per day crossed
    assert result.sessions == [session.id] and session.clean
    _inside(session, store)
    events = [e for _, e in store.events()]
    kinds = [e.kind for e in events]
    assert kinds.count("sensor_reconnect") == 2 and kinds.count("clock_step") == 1
    (event,) = [e for e in events if e.kind == "clock_step"]
    said = float(re.search(r"\(([+-]\d+\.\d+) s\)", event.detail).group(1))
    assert abs(said - step) < 0.1  # its size and direction
    assert ("forward" if step > 0 else "back") in event.detail

    # The stream: no gap but the time the cable was out, whatever the step.
    gaps = [c.gap_before / FS for c in source.chunks]
    assert max(gaps) < 3.0, gaps
    epochs = [e for _, e in store.epochs()]
    labels = [e.t_utc for e in epochs]
    assert len(epochs) >= 2 and all(b > a for a, b in zip(labels, labels[1:], strict=False))
    start_label = begin_wall + error
    assert abs(labels[0] - start_label) < 5  # the first samples keep the old time
    if step > 0:  # the last ones are on the new time
        assert abs(labels[-1] - (start_label + step)) < 10
    else:  # a step back is not followed: the labels ran on from the last one
        assert labels[-1] - labels[0] < 10
        assert "ahead of the clock" in event.detail


def test_a_sensor_away_for_a_day_fills_its_sessions_with_gap_epochs(tmp_path):
    """The other way to many sessions of one epoch: a real gap of a day with a daily session
    change. Every epoch of the gap is stored ("sensor gap", issue 16), so each daily change
    it crosses starts a session full of them, and each session holds its records."""
    start = 1_750_000_020.0
    at = datetime.fromtimestamp(start + 120.0).astimezone().strftime("%H:%M")
    noon = next_local_time(start, at)
    rate = 50.0  # the lowest: the rhythm check fills a gap with blocks (up to 100 a second)
    n, away = int(60 * rate), int((DAY + 300.0) * rate)
    x = np.random.default_rng(0).normal(0.0, 100.0, n)

    class TwoStretches:  # a minute, a day and 5 minutes away, a minute
        name, fs, t0_utc = "test:away", rate, start
        chunks = [Chunk(0, x, start), Chunk(n + away, x, start + (n + away) / rate, away)]

        def read(self, timeout_s=None):
            return self.chunks.pop(0) if self.chunks else None

        def drain_events(self) -> list[SourceEvent]:
            return []

        def close(self) -> None:
            pass

    store = Store(tmp_path / "night.db")
    result = Pipeline(TwoStretches(), store, OpenGate(rate), Settings(new_session_at=at)).run()
    first, second, third = store.sessions()  # the gap crosses two daily changes
    assert result.sessions == [first.id, second.id, third.id]
    assert first.ended_utc == second.started_utc == noon
    assert second.ended_utc == third.started_utc == next_local_time(noon + 1.0, at)
    for session in (first, second, third):
        _inside(session, store)
    day = [e for _, e in store.epochs(session_id=second.id)]
    assert len(day) >= DAY / 30 - 2  # the whole day, one epoch every 30 s ...
    assert {(e.state, e.hr_reason) for e in day} == {("poor", "sensor gap")}  # ... all gap
    after = [e.t_utc for _, e in store.epochs(session_id=third.id)]
    assert after and min(after) >= start + DAY


def test_a_simulation_keeps_its_own_time_in_a_session_that_holds_it(tmp_path):
    """A source with its own time (a simulation; a replay likewise) is labelled from it:
    no step, no event, and the session opens at its first label."""
    t0 = 1_700_000_000.0  # long before the wall clock
    source = SimSource(night=Night(seed=5, duration_s=120.0), t0_utc=t0)
    store = Store(tmp_path / "night.db")
    Pipeline(source, store, OpenGate(FS), Settings()).run()
    (session,) = store.sessions()
    assert session.started_utc == t0
    _inside(session, store)
    assert [e.t_utc for _, e in store.epochs()] == [t0 + 30 * k for k in range(4)]
    assert "clock_step" not in [e.kind for _, e in store.events()]
