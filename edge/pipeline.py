"""The bedside pipeline: source -> dsp_c -> quality gate -> vitals and events -> store.

    pipeline = Pipeline(source, store, gate=QualityGate(source.fs), settings=Settings())
    result = pipeline.run(should_stop=lambda: stopping)   # until the source ends or a stop

Per chunk of samples, checked once as it comes in: the despiker (single-sample glitches
replaced before any filter rings with them; it holds up to a second of a stretch back, to
judge whole seconds), the beat band-pass and J-peak detector, the respiration extractor and
the motion meter of :mod:`dsp_c` (all streaming and chunk-proof), and the quality gate
(which takes the beat band from here, the same band-pass as its own, rather than filtering
the chunk again); :class:`edge.vitals.EpochVitals` turns their outputs into epochs,
:mod:`edge.events` into events, and the store commits them in batches (every
``commit_epochs`` epochs or ``commit_s`` seconds of wall time, whichever comes first).

A short sensor gap (a jump in the chunks' ``start_index`` of up to :data:`BRIDGE_MAX_S`, a
few lost frames) is bridged: the DSP runs on over a straight line between the samples either
side, and no beat inside it and no beat interval across it counts. A longer gap ends a
stretch: the detector is flushed and every DSP object starts afresh after it, so no beat,
breath or interval spans the gap.
The first :data:`SETTLE_S` of a stream wait to be looked at before they go in: a sensor just
switched on may start with a step while its front end settles (:func:`settling_samples`).
That second is then run over at the level the sensor settled to, like a bridged gap: a step
the filters would ring with for seconds is no movement and no empty bed. (Only at the start:
later, the end of a movement can look the same.)
A stop (SIGTERM, SIGINT, ``--duration`` reached, the source ending) writes every epoch the
gate has judged, commits and closes the session cleanly: nothing that was processed is lost.

Time: the run is timed by sample counts and the monotonic clock; UTC only labels it. A
sample's label comes from the source (:attr:`Chunk.t_utc <edge.sources.base.Chunk>`) and
runs on with the sample count, except where the source's labels run ahead of it: a live
source's wall clock stepped forward (it records a ``clock_step`` event), and later samples
take the new labels while earlier ones keep theirs. Such a step is no gap in the stream
(nothing runs over the time it skipped), and it moves the day's session change
(``new_session_at``) to the first one after the new time, so it never opens a session.
Labels never run back: after a step back the source labels on from its last label. A
session opens at the wall clock, or at the source's first label (``t0_utc``) if that is
earlier, and closes at its last record, or the wall clock if that is later, so a step never
leaves a record outside its session.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

import dsp_c
from dsp_c._checks import as_samples, samples_error, samples_for_c
from dsp_c.beats import beat_filter
from dsp_c.filters import mains_hum, priming_level

from .errors import BedsideError
from .events import BedPresence, GapRuns, RangeWatch
from .heartbeat import Heartbeat
from .polarity import BeatPicker
from .quality import HOP_S, WINDOW_S, Judgement, QualityGate
from .records import Epoch, Event
from .sources.base import Chunk, Source
from .store import Store
from .vitals import EpochVitals

__all__ = [
    "OpenGate",
    "Pipeline",
    "RunResult",
    "Settings",
    "Status",
    "next_local_time",
    "settling_samples",
]

log = logging.getLogger(__name__)

#: Motion energy window (s): one value a second, averaged per epoch.
MOTION_WINDOW_S = 1.0
#: How long one read may block, so a stop or a stall is noticed in time (s).
READ_TIMEOUT_S = 0.5
#: Epochs that close within this much wall time (s) are committed together; live, each epoch
#: is committed as it closes, so a power cut loses at most the epoch in progress and the
#: LAG_S (15 s) the last closed one waited for.
EPOCH_COMMIT_BATCH_S = 1.0
#: While commits keep failing, the warning is repeated at most this often (wall s).
COMMIT_WARN_EVERY_S = 300.0
#: Distinct commit errors kept in RunResult.store_errors (the count is store_failures).
MAX_STORE_ERRORS = 20
#: A gap up to this long (s) is bridged, not a new stretch (see Pipeline._bridge): a few lost
#: frames, under half a beat at 120 bpm.
BRIDGE_MAX_S = 0.5
#: A bridge's end is judged on this many samples beside the gap (see _bridge_end) ...
BRIDGE_END_SAMPLES = 5
#: ... and the sample next to the gap is a glitch, not an end, when it stands off their line
#: by more than this many times the largest step between the others.
BRIDGE_END_OFF = 2.0
#: Stretch anchors kept (an epoch is final long before this many gaps have passed).
_MAX_ANCHORS = 64
#: The start of a stream that is looked at for a sensor settling (s) ...
SETTLE_S = 1.0
#: ... and a settling: its first SETTLE_HEAD_S lie more than SETTLE_RATIO times the range of
#: the second half of SETTLE_S away from that half's median. Measured at the start of every
#: recording, simulated night and machine signal of make eval: 0.5 to 3.5; the start-up step
#: of the goodbcg1 recording: 12 to 100, whatever its gain, units or rate. Later in a night
#: the end of a movement can reach it (a quarter second of movement, then still): the rule
#: is for the start of a stream only.
SETTLE_HEAD_S = 0.25
SETTLE_RATIO = 8.0


@dataclass(frozen=True)
class Settings:
    """What the pipeline needs from the configuration (see :mod:`edge.config`)."""

    epoch_s: float = 30.0
    duration_s: float | None = None  # of signal; None: until the source ends
    commit_s: float = 30.0
    commit_epochs: int = 100
    stall_s: float = 10.0
    bed_entry_s: float = 30.0
    bed_exit_s: float = 60.0
    hr_range_bpm: tuple[float, float] = (40.0, 120.0)
    rr_range_bpm: tuple[float, float] = (8.0, 25.0)
    range_hold_s: float = 60.0  # out of range this long (s of epochs) before an event
    new_session_at: str | None = None  # "HH:MM" local time: a new session every day then


@dataclass
class Status:
    """A snapshot for the live status line."""

    stream_s: float = 0.0  # signal processed, s
    total_s: float | None = None  # signal to come in all, when known (sim, replay, --duration)
    wall_s: float = 0.0  # since the start
    occupied: bool | None = None
    state: str | None = None  # of the last epoch
    hr_bpm: float | None = None
    rr_bpm: float | None = None
    quality: float | None = None
    epochs: int = 0
    committed: int = 0
    events: int = 0


@dataclass
class RunResult:
    """How a run ended and what it wrote."""

    session_id: int  # the last session (one per night with ``new_session_at``)
    reason: str  # "end of source", "duration reached", "stopped", "source error"
    samples: int = 0
    bridged_samples: int = 0  # lost in short gaps, run over as a straight line
    settled_samples: int = 0  # a sensor's start-up step, run over at its settled level
    glitch_samples: int = 0  # single-sample glitches, replaced by the line through their neighbours
    stream_s: float = 0.0
    wall_s: float = 0.0
    epochs: int = 0
    events: int = 0
    # Commit errors (retried), each told once in a row, at most MAX_STORE_ERRORS of them ...
    store_errors: list[str] = field(default_factory=list)
    store_failures: int = 0  # ... and how many commits failed in all
    sessions: list[int] = field(default_factory=list)  # every session this run wrote

    def __post_init__(self) -> None:
        if not self.sessions:
            self.sessions.append(self.session_id)


def next_local_time(t_utc: float, hh_mm: str) -> float:
    """The first moment after ``t_utc`` whose local wall-clock time (the unit's time zone)
    is ``hh_mm`` ("12:00")."""
    hour, minute = (int(part) for part in hh_mm.split(":"))
    now = datetime.fromtimestamp(t_utc).astimezone()
    candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate.timestamp() <= t_utc:
        candidate = (now + timedelta(days=1)).replace(
            hour=hour, minute=minute, second=0, microsecond=0
        )
    return candidate.timestamp()


class OpenGate:
    """The gate switched off (``--no-gate``, a bench/debug mode): every window is judged
    "good" with quality 1, on the real gate's window grid. No empty-bed or motion detection:
    heart rates are then reported for whatever the detector finds."""

    def __init__(self, fs: float) -> None:
        self.fs = fs
        self._window = int(round(WINDOW_S * fs))
        self._hop = int(round(HOP_S * fs))
        self.reset()

    def reset(self) -> None:
        """Forget the stream."""
        self._origin: int | None = None
        self._next = 0
        self._next_window = 0

    def process(self, samples: np.ndarray, start_index: int | None = None) -> list[Judgement]:
        """Judgements of the windows this chunk completes."""
        if start_index is not None and (self._origin is None or start_index != self._next):
            self._origin = self._next = self._next_window = int(start_index)
        elif self._origin is None:
            self._origin = self._next = self._next_window = 0
        self._next += len(samples)
        out = []
        while self._next_window + self._window <= self._next:
            stop = self._next_window + self._window
            out.append(Judgement(self._next_window, stop, "good", 1.0, (0.0, 0.0, 0.0, 1.0)))
            self._next_window += self._hop
        return out


def settling_samples(x: np.ndarray, fs: float) -> int:
    """How many samples at the start of a stretch ``x`` (more than :data:`SETTLE_S` of it)
    are a sensor settling: all of the first :data:`SETTLE_S` when its first
    :data:`SETTLE_HEAD_S` lie more than :data:`SETTLE_RATIO` times the range of its second
    half away from that half's median (a start-up step), else 0. Relative to the signal
    itself: no level, gain or offset; power-line hum, steady, taken out first (it could be
    larger than the step). A first second with a sample that is not finite is left to the
    chunk check (0: nothing is run over), and a flat second half (nothing to scale a step
    by) is no settling (0)."""
    n = int(round(SETTLE_S * fs))
    x = np.asarray(x, dtype=np.float64)
    if x.size <= n:
        return 0
    if not np.isfinite(x[:n]).all():  # left to the chunk check, which names the sample
        return 0
    x = x[:n] - mains_hum(x[:n], fs, fit_from=n // 2)
    head, rest = x[: max(1, int(round(SETTLE_HEAD_S * fs)))], x[n // 2 :]
    spread = float(np.ptp(rest))
    if spread <= 1e-9 * float(np.max(np.abs(x))):  # a stuck or idle input (the fit's
        return 0  # rounding aside): no scale to judge a step by
    away = float(np.max(np.abs(head - np.median(rest))))
    return n if away > SETTLE_RATIO * spread else 0


def _line_at_zero(y: np.ndarray, at: np.ndarray) -> float:
    """The value at 0 of a robust straight line through the points (``at``, ``y``): the
    median of their pairwise slopes, then the median of their intercepts (Theil-Sen)."""
    a, b = np.triu_indices(y.size, 1)
    slope = np.median((y[b] - y[a]) / (at[b] - at[a]))
    return float(np.median(y - slope * at))


def _bridge_end(edge: np.ndarray) -> float:
    """Where a bridge meets the samples ``edge`` (the nearest first): the nearest sample,
    unless it stands off the robust line through the :data:`BRIDGE_END_SAMPLES` nearest by
    more than :data:`BRIDGE_END_OFF` times the largest step between the others (a glitch: a
    torn read beside a lost frame); then the value at its place of the line through the
    others, so the glitch is left alone off the bridge and the despiker takes it out. With
    fewer samples, the nearest."""
    if edge.size < BRIDGE_END_SAMPLES:
        return float(edge[0])
    edge = edge[:BRIDGE_END_SAMPLES]
    at = np.arange(edge.size, dtype=np.float64)
    step = float(np.max(np.abs(np.diff(edge[1:]))))
    if abs(edge[0] - _line_at_zero(edge, at)) > BRIDGE_END_OFF * step:
        return _line_at_zero(edge[1:], at[1:])
    return float(edge[0])


def _bridge_line(before: np.ndarray, after: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` samples of a short gap between the samples ``before`` it (the nearest
    first) and ``after`` it: a straight line between :func:`_bridge_end` of each side."""
    first, last = _bridge_end(before), _bridge_end(after)
    return first + (last - first) / (n + 1) * np.arange(1, n + 1)


def _bridged(chunks: list[Chunk]) -> np.ndarray:
    """The samples of consecutive ``chunks`` (float64), a short gap between two of them run
    over as the DSP runs over it (:func:`_bridge_line`; each side's samples up to the next
    gap, back-to-back chunks joined as for the DSP, :func:`_joined`): what the settling
    look reads."""
    runs = _joined(chunks)
    start, out = runs[0].start_index, np.asarray(runs[0].samples, dtype=np.float64)
    for c in runs[1:]:
        x = np.asarray(c.samples, dtype=np.float64)
        gap = c.start_index - start - out.size  # 0 between chunks left apart (a bad sample)
        out = np.concatenate([out, _bridge_line(out[::-1], x, gap), x])
    return out


def _joined(chunks: list[Chunk]) -> list[Chunk]:
    """``chunks`` with each run of back-to-back ones joined into one, so that a stretch's
    first chunk holds its first :data:`SETTLE_S` (what the filters are primed from) however
    the source cut it. Only finite samples are joined: a bad sample fails its own chunk
    alone (the chunk check), as it came."""
    out: list[Chunk] = []
    for c in chunks:
        prev = out[-1] if out else None
        if (
            prev is not None
            and c.start_index == prev.stop_index
            and _usable(prev.samples)
            and _usable(c.samples)
        ):
            samples = np.concatenate([prev.samples, c.samples])
            out[-1] = Chunk(prev.start_index, samples, prev.t_utc, prev.gap_before)
        else:
            out.append(c)
    return out


def _usable(samples: np.ndarray) -> bool:
    """True when the chunk check would take ``samples``: 1-D real numbers, all finite and
    within the DSP core's range."""
    try:
        as_samples(samples, finite=True)
    except (TypeError, ValueError):  # DspValueError too
        return False
    return True


def _level_before(chunk: Chunk, stop: int, level: float) -> Chunk:
    """``chunk`` with its samples before stream index ``stop`` at ``level`` (float64)."""
    if chunk.start_index >= stop:
        return chunk
    x = np.array(chunk.samples, dtype=np.float64)
    x[: stop - chunk.start_index] = level
    return Chunk(chunk.start_index, x, chunk.t_utc, chunk.gap_before)


def _checked(x: np.ndarray) -> np.ndarray:
    """A chunk's one check in the pipeline: ``x`` as a 1-D, C-contiguous, aligned float64
    array whose samples are finite and within +-1e15, else the ``DspValueError`` (E108)
    that the DSP objects raise for it (naming ``x`` and the first bad sample). The DSP
    objects downstream are then fed through their entries for checked chunks (the C core
    keeps its own guard)."""
    samples = samples_for_c(x, "x")
    error = samples_error(samples, "x")
    if error is not None:
        raise error
    return samples


class _Stretch:
    """The DSP objects of one gap-free stretch of samples, starting at stream index ``origin``."""

    def __init__(self, fs: float, origin: int) -> None:
        self.origin = origin
        self.despiker = dsp_c.Despiker(fs)  # before every filter: a glitch rings in them all
        self.emitted = origin  # the stream index of its next sample past the despiker
        self.tail = np.zeros(0)  # its last samples in (BRIDGE_END_SAMPLES): a bridge's start
        self.band = beat_filter(fs, mains=True)  # the power-line hum out of the band too
        self.primed = False  # the band is primed on the first samples past the despiker
        self.picker = BeatPicker(fs, origin)
        self.respiration = dsp_c.RespirationExtractor(fs)
        self.motion = dsp_c.MotionMeter(fs, MOTION_WINDOW_S)
        self.motion_windows = 0


class Pipeline:
    """Runs one session: reads the source to its end or a stop, writes the store.

    Args:
        source: an open :class:`edge.sources.base.Source`.
        store: an open :class:`edge.store.Store`; the pipeline opens and closes a session.
        gate: a :class:`edge.quality.QualityGate` (or :class:`OpenGate` for ``--no-gate``).
        settings: epoch length, commit policy, event thresholds.
        software_version: recorded with the session.
        on_status: called about once a second of wall time (and at the end) with a
            :class:`Status`, for a live status line.
        on_new_session: called with the id of a session closed at ``new_session_at``
            (the run goes on in a new one), e.g. to log that night's summary.
        clock: the monotonic clock (s) that times the run, replaceable in tests.
        wall_clock: the wall clock (Unix s) a session opens and closes by, replaceable in
            tests (pass the source's, so that both see the same steps).
        heartbeat: an :class:`edge.heartbeat.Heartbeat`, told at each turn of the loop
            that the run goes on (``bedside run``: how the agent knows it records).
    """

    def __init__(
        self,
        source: Source,
        store: Store,
        gate,
        settings: Settings = Settings(),
        *,
        software_version: str = "unknown",
        on_status: Callable[[Status], None] | None = None,
        on_new_session: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.source, self.store, self.gate, self.settings = source, store, gate, settings
        self._heartbeat = heartbeat
        self.fs = float(source.fs)
        self._version = software_version
        self._on_status = on_status
        self._on_new_session = on_new_session
        self._clock = clock
        self._wall = wall_clock
        # (stream index, UTC): the first samples', then one per step of the source's labels
        self._anchors: list[tuple[int, float]] = []
        self._opened = (0.0, 0.0)  # (UTC, self._clock) when the session opened
        self._samples_at = 0.0  # self._clock when the last samples came
        self._latest_utc = 0.0  # the latest label written to the session (an end, for epochs)
        self._labels_known = False  # the source states its first label (t0_utc)
        self.vitals = EpochVitals(self.fs, settings.epoch_s, self._utc)
        self._bed = BedPresence(settings.bed_entry_s, settings.bed_exit_s, HOP_S)
        self._ranges = RangeWatch(
            settings.hr_range_bpm, settings.rr_range_bpm, settings.range_hold_s
        )
        self._gap_runs = GapRuns(self.fs)
        self._stretch: _Stretch | None = None
        self._next_index: int | None = None
        self._bridge_max = int(BRIDGE_MAX_S * self.fs)
        self._settle_len = int(round(SETTLE_S * self.fs))
        self._settling: list[Chunk] = []  # the start of a stretch, waiting (_take)
        self._pending = 0  # epochs and events added since the last commit
        self._failing = 0  # commits failed in a row
        self._epochs_waiting = False  # an epoch was added since the last commit
        self._last_warning = 0.0  # when the last commit warning was said (self._clock)
        self._rollover_utc: float | None = None  # when the next session starts
        self.status = Status()
        self.result: RunResult | None = None

    # --- time ----------------------------------------------------------------------------

    def _utc(self, index: int) -> float:
        """UTC label of a stream index, from the last anchor at or before it."""
        anchor = self._anchors[0]
        for a in self._anchors:
            if a[0] <= index:
                anchor = a
        return anchor[1] + (index - anchor[0]) / self.fs

    def _now_utc(self) -> float:
        """The label of this moment: the next sample's, plus the time since the last samples
        came (before any, the session's opening plus the time since). No wall clock is
        read, so the pipeline's own events keep to the source's labels."""
        if self._anchors and self._taken_index is not None:
            return self._utc(self._taken_index) + (self._clock() - self._samples_at)
        t_utc, at = self._opened
        return t_utc + (self._clock() - at)

    def _follow_labels(self, chunk: Chunk) -> None:
        """Anchor the labels on the source's: at the first samples, and where a chunk's label
        runs ahead of its sample count (the source's wall clock stepped forward), from that
        chunk on. A label behind the count is not followed: labels never run back (a live
        source holds them itself after a step back)."""
        if self._anchors and chunk.t_utc - self._utc(chunk.start_index) <= 0.5 / self.fs:
            return
        self._anchors = self._anchors[-(_MAX_ANCHORS - 1) :] + [(chunk.start_index, chunk.t_utc)]

    # --- the run -------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool | str] = lambda: False) -> RunResult:
        """Process until the source ends, ``duration_s`` is reached or ``should_stop()``
        returns something true (a text is then the reason recorded, e.g. "stopped by SIGTERM").

        Returns the :class:`RunResult`; the session is closed cleanly (a failed commit is
        retried at the next batch; the last one, at the close, raises). A source that fails
        for good (``BedsideError``) is recorded as a ``sensor_error`` event, the night so
        far is saved and the session closed cleanly, and the error is raised again.
        """
        start = self._samples_at = self._clock()
        opened = self._wall()
        t0_utc = getattr(self.source, "t0_utc", None)  # a source's first label, if known
        if t0_utc is not None:
            opened = min(opened, t0_utc)  # so that the session holds its first epoch
        self._labels_known = t0_utc is not None
        self._opened, self._latest_utc = (opened, start), opened
        self.result = result = RunResult(self._open_session(opened), "end of source")
        limit = None
        if self.settings.duration_s is not None:
            limit = int(round(self.settings.duration_s * self.fs))
        lengths = (self.settings.duration_s, getattr(self.source, "length_s", None))
        known = [x for x in lengths if x is not None]
        self.status.total_s = min(known) if known else None
        last_commit = last_status = start
        stalled = False
        error: BedsideError | None = None
        clean = False
        try:
            while True:
                if self._heartbeat is not None:  # rate-limited by the heartbeat itself
                    self._heartbeat.beat()
                stop = should_stop()
                if stop:
                    result.reason = stop if isinstance(stop, str) else "stopped"
                    break
                try:
                    chunk = self.source.read(READ_TIMEOUT_S)
                except BedsideError as exc:  # the source failed for good
                    error = exc
                    result.reason = "source error"
                    self._add_event(Event(self._now_utc(), "sensor_error", f"{exc.code}: {exc}"))
                    break
                self._record_source_events()
                now = self._clock()
                if chunk is None:
                    break
                if len(chunk.samples) == 0:
                    if not stalled and now - self._samples_at >= self.settings.stall_s:
                        stalled = True
                        self._add_event(
                            Event(
                                self._now_utc(),
                                "sensor_gap",
                                f"no samples for {self.settings.stall_s:g} s",
                            )
                        )
                else:
                    stalled, self._samples_at = False, now
                    if limit is not None and chunk.stop_index > limit:
                        keep = max(0, limit - chunk.start_index)
                        chunk = Chunk(chunk.start_index, chunk.samples[:keep], chunk.t_utc)
                    if len(chunk.samples):
                        self._take(chunk)
                if limit is not None and self._taken_index is not None:
                    if self._taken_index >= limit:
                        result.reason = "duration reached"
                        break
                if (
                    self._pending >= self.settings.commit_epochs
                    or now - last_commit >= self.settings.commit_s
                    # An epoch is committed as it closes: only epochs that close within
                    # EPOCH_COMMIT_BATCH_S of wall time (a replay at max speed) share a batch.
                    or (self._epochs_waiting and now - last_commit >= EPOCH_COMMIT_BATCH_S)
                ):
                    self._commit()
                    last_commit = now
                if self._on_status is not None and now - last_status >= 1.0:
                    last_status = now
                    self._report_status(now - start)
            self._release_settling()  # too short to tell: as it came
            clean = True
        except BaseException as exc:  # a bug or a second Ctrl-C: say so in the shutdown event
            result.reason = f"failed: {type(exc).__name__}"
            raise
        finally:
            # Also on a bug: what was processed is saved; the session is marked unclean so
            # the next start records a restart.
            self.source.close()
            self._finish(start, clean)
        if error is not None:
            raise error
        return result

    def _commit(self) -> None:
        """Commit the batch; a failure (a full disk) keeps the batch for the next try. The
        warning is said once, then at most every :data:`COMMIT_WARN_EVERY_S` while the
        commits go on failing (a full disk fails every batch, all night), and once more when
        they work again."""
        try:
            self.store.commit()
        except BedsideError as exc:
            text = f"{exc.code}: {exc}"
            errors = self.result.store_errors
            self.result.store_failures += 1
            if len(errors) < MAX_STORE_ERRORS and (not errors or errors[-1] != text):
                errors.append(text)
            self._failing += 1
            now = self._clock()
            if self._failing == 1 or now - self._last_warning >= COMMIT_WARN_EVERY_S:
                again = f" ({self._failing} failed tries so far)" if self._failing > 1 else ""
                log.warning("commit failed, the batch is kept for the next try%s: %s", again, text)
                self._last_warning = now
            return
        if self._failing:
            log.warning("commits work again after %d failed tries", self._failing)
            self._failing = 0
        self._pending = 0
        self._epochs_waiting = False
        self.status.committed = self.status.epochs

    def _finish(self, start: float, clean: bool) -> None:
        """Write every epoch the gate judged, then close the session (commits first)."""
        result = self.result
        try:
            if self._stretch is not None:
                # After a failure the DSP may be what failed: the samples the despiker
                # holds (up to a second) are left out; what was processed is written.
                self._flush_stretch(analyse=clean)
                for epoch in self.vitals.finish(self._stretch.emitted):
                    self._add_epoch(epoch)
            self._record_source_events()
            self._write_gap_run()
        except Exception:
            if clean:
                raise
            # Already failing: close the session (unclean) with what was committed.
        # Stream time: a replay or a simulation at max speed ends long after (or before)
        # the wall clock; the session's end must not precede its start, nor any record
        # (a live source's events run a little ahead of its samples).
        started = self._anchors and self._next_index is not None  # a first chunk went in
        end = self._utc(self._next_index) if started else self._now_utc()
        end = max(end, self._latest_utc)
        self._add_event(Event(end, "shutdown", result.reason))
        # A source with labels of its own (a recording's time, a simulated night) ends at its
        # last label; otherwise no earlier than now.
        self.store.close_session(
            clean=clean, t_utc=end if self._labels_known else max(end, self._wall())
        )
        self.status.committed = self.status.epochs
        result.wall_s = self._clock() - start
        result.stream_s = result.samples / self.fs
        if self._on_status is not None:
            self._report_status(result.wall_s)

    # --- per chunk -----------------------------------------------------------------------

    @property
    def _taken_index(self) -> int | None:
        """The stream index just past the last sample taken in (processed or waiting)."""
        return self._settling[-1].stop_index if self._settling else self._next_index

    def _take(self, chunk: Chunk) -> None:
        """Take a chunk in: the first :data:`SETTLE_S` of each stretch wait, so that its
        filters are primed from the same samples however the source chunks them, and at the
        stream's start until they can be looked at for a sensor settling
        (:meth:`_release_settling`); the rest go on."""
        self._follow_labels(chunk)  # at once: events while the start waits keep to them
        if self._settling:
            gap = chunk.start_index - self._settling[-1].stop_index
            if not 0 <= gap <= self._bridge_max:
                self._release_settling()  # a stretch too short to tell
        if self._settling or self._starts_stretch(chunk):
            self._settling.append(chunk)
            if self._taken_index - self._settling[0].start_index > self._settle_len:
                self._release_settling(look=self._next_index is None)
        else:
            self._process(chunk)

    def _starts_stretch(self, chunk: Chunk) -> bool:
        """True when ``chunk`` starts a stretch: the stream's first, or after a gap too long
        to bridge."""
        if self._next_index is None:
            return True
        return chunk.start_index - self._next_index > self._bridge_max

    def _release_settling(self, look: bool = False) -> None:
        """Process the start of a stretch that waited, its back-to-back chunks as one (a
        short gap in it is bridged as anywhere); with ``look`` (the stream's start), its
        first :data:`SETTLE_S` are run over at the level after them when they are a sensor
        settling."""
        held, self._settling = self._settling, []
        if not held:
            return
        start = held[0].start_index
        stop = start + self._settle_len
        if look:  # the waiting chunks reach past `stop`
            x = _bridged(held)
            # The level the sensor settled at: the median of the samples up to `stop`'s,
            # three, so that a glitch there does not set it. A level that is no number is
            # left to the chunk check, which names the sample.
            level = float(np.median(x[max(0, stop - start - 2) : stop - start + 1]))
            look = math.isfinite(level) and settling_samples(x, self.fs) > 0
        if look:
            log.info("sensor settling: the first %.1f s of the stream run over", SETTLE_S)
            self.vitals.bridge(start, stop)  # no beat from the flat line
            self.result.settled_samples += stop - start
            held = [_level_before(c, stop, level) for c in held]
        for c in _joined(held):
            self._process(c)

    def _process(self, chunk: Chunk) -> None:
        """A chunk (its labels followed by :meth:`_take`) through the DSP, gate and vitals."""
        x = np.asarray(chunk.samples, dtype=np.float64)
        first = self._next_index is None
        gap = 0 if first else chunk.start_index - self._next_index
        bridge = 0 < gap <= self._bridge_max
        if first or (gap and not bridge):
            self._new_stretch(chunk)
        x = _checked(x)  # the one check: the DSP calls below do not repeat it
        start = chunk.start_index
        if gap > 0:
            self._gap_runs.missing(gap, bridged=bridge)
        if bridge:
            start -= gap
            x = np.concatenate([self._bridge(start, chunk.start_index, x), x])
            self.result.bridged_samples += gap
        self._ingest(start, x)
        self.result.samples += len(chunk.samples)
        self.status.stream_s = self.result.samples / self.fs
        for epoch in self.vitals.ready(self._stretch.emitted):
            self._add_epoch(epoch)

    def _bridge(self, start: int, stop: int, after: np.ndarray) -> np.ndarray:
        """The samples for ``[start, stop)``, lost in a short gap (up to
        :data:`BRIDGE_MAX_S`) before the samples ``after``: a straight line from the level
        before the gap to the level after it (:func:`_bridge_end`), so the DSP runs on and
        the filters and the quality gate need not start again (a lossy link would otherwise
        leave no 10 s for the gate to judge). The vitals count the line as signal but take
        no beat from it and measure no interval across it."""
        self.vitals.bridge(start, stop)
        return _bridge_line(self._stretch.tail[::-1], after, stop - start)

    def _ingest(self, start: int, x: np.ndarray) -> None:
        """Samples ``x`` (checked) from stream index ``start`` through the despiker, which
        holds back up to a second of the stretch (whole one-second blocks go on), and the
        rest of the DSP."""
        self._next_index = start + len(x)
        s = self._stretch
        s.tail = np.concatenate([s.tail, x[-BRIDGE_END_SAMPLES:]])[-BRIDGE_END_SAMPLES:]
        self._analyse(s.despiker._process_checked(x))

    def _analyse(self, x: np.ndarray) -> None:
        """Samples ``x`` (checked, glitches out), the current stretch's next ones, through
        the DSP, the gate and bed presence, into the vitals."""
        s = self._stretch
        if not len(x):
            return
        if not s.primed:  # no start-up ring from the ADC offset, the hum or a glitch
            s.band.reset(steady_input=priming_level(x, self.fs))
            s.primed = True
        start = s.emitted
        stop = start + len(x)
        self.vitals.add_samples(start, stop)
        band = s.band._process_checked(x)
        self.vitals.add_signal(start, band, x, checked=True)
        for picked in s.picker.process(band):
            if picked.since is not None:  # the picker turned the band over: its beats replace
                self.vitals.restart_beats(picked.since)
            self.vitals.add_beats(picked.beats)
        _, breaths = s.respiration._process_checked(x)
        self.vitals.add_breaths(breaths + s.origin)
        energy, _ = s.motion._process_checked(x)
        if energy.size:
            k = s.motion_windows + np.arange(energy.size)
            self.vitals.add_motion(s.origin + k * s.motion.window_len, energy)
            s.motion_windows += energy.size
        if type(self.gate).process is QualityGate.process:  # the real gate: share the band
            judgements = self.gate._process_checked(x, start, band)
        else:
            judgements = self.gate.process(x, start_index=start)
        for j in judgements:
            self.vitals.add_judgement(j.start_index, j.stop_index, j.state, j.quality)
            event = self._bed.update(j.state, self._utc(j.start_index))
            if event is not None:
                self._add_event(event)
        self.status.occupied = self._bed.occupied
        s.emitted = stop  # only now: after a failure above, these were not processed

    def _new_stretch(self, chunk: Chunk) -> None:
        if self._stretch is not None:
            self._flush_stretch()
            self._bed.gap()
        self._stretch = _Stretch(self.fs, chunk.start_index)

    def _flush_stretch(self, analyse: bool = True) -> None:
        """The end of a stretch: the samples the despiker holds through the DSP (skipped
        when not ``analyse``), then the beats the detector holds."""
        s = self._stretch
        held = s.despiker.flush()
        if analyse:
            self._analyse(held)
        self.vitals.add_beats(s.picker.flush())
        if s.despiker.replaced:
            log.info("%d single-sample glitches replaced", s.despiker.replaced)
            self.result.glitch_samples += s.despiker.replaced

    # --- output --------------------------------------------------------------------------

    def _open_session(self, t_utc: float) -> int:
        session = self.store.open_session(
            source=self.source.name,
            fs=self.fs,
            epoch_s=self.settings.epoch_s,
            software_version=self._version,
            t_utc=t_utc,
        )
        return session

    def _roll_over(self, t_utc: float) -> None:
        """At the daily ``new_session_at`` (in stream time): close this session and open
        the next, so that a unit running for weeks stores one session a night. The DSP
        goes on undisturbed; the first epoch or event of the new day opens it."""
        at = self.settings.new_session_at
        if at is None:
            return
        if self._rollover_utc is None:  # the first data of the run, in its stream time
            self._rollover_utc = next_local_time(t_utc, at)
        if t_utc < self._rollover_utc:
            return
        when, closed = self._rollover_utc, self.result.session_id
        begun = self._gap_runs.start_utc
        if begun is not None and begun < when:  # the night's last gaps belong to the night
            self._write_gap_run()
        self.store.close_session(clean=True, t_utc=when)
        self._pending = 0
        self.status.committed = self.status.epochs
        self.result.session_id = self._open_session(when)
        self.result.sessions.append(self.result.session_id)
        # The first change after this record: after days without data (a sensor away),
        # one session holds them, not one per day crossed.
        self._rollover_utc = next_local_time(max(when, t_utc), at)
        if self._on_new_session is not None:
            self._on_new_session(closed)

    def _add_epoch(self, epoch: Epoch) -> None:
        self._roll_over(epoch.t_utc)
        self.store.add_epoch(epoch)
        self._latest_utc = max(self._latest_utc, epoch.t_utc + epoch.duration_s)
        self.result.epochs += 1
        self._pending += 1
        self._epochs_waiting = True
        st = self.status
        st.epochs += 1
        st.state, st.hr_bpm, st.rr_bpm, st.quality = (
            epoch.state,
            epoch.hr_bpm,
            epoch.rr_bpm,
            epoch.quality,
        )
        for event in self._ranges.update(epoch):
            self._add_event(event)

    def _add_event(self, event: Event) -> None:
        if event.kind != "shutdown":
            self._roll_over(event.t_utc)
        self._keep_event(event)

    def _keep_event(self, event: Event) -> None:
        """Buffer an event in the open session (no session change is looked for)."""
        self.store.add_event(event)
        self._latest_utc = max(self._latest_utc, event.t_utc)
        self.result.events += 1
        self._pending += 1
        self.status.events += 1

    def _record_source_events(self) -> None:
        for e in self.source.drain_events():
            event = Event(e.t_utc, e.kind, e.detail)
            if e.shift_s > 0 and self._rollover_utc is not None:
                # The labels jumped ahead with the clock: the day's session change moves to
                # the first one after the new time, so a step never opens a session.
                self._rollover_utc = next_local_time(e.t_utc, self.settings.new_session_at)
            if e.kind == "sensor_gap":  # merged into runs: written when the run ends
                done = self._gap_runs.add(event)
                if done is not None:
                    self._add_event(done)
            else:
                self._add_event(event)

    def _write_gap_run(self) -> None:
        """The sensor gaps of the run so far, as one event (at a stop or a new session)."""
        done = self._gap_runs.flush()
        if done is not None:
            self._keep_event(done)

    def _report_status(self, wall_s: float) -> None:
        self.status.wall_s = wall_s
        self._on_status(self.status)
