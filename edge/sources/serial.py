"""``serial:PORT``: ADC samples from the sensor MCU over a serial link (pyserial).

The port is a device path (``/dev/ttyUSB0``) or any pyserial URL (``socket://host:port`` for
a virtual sensor, ``loop://``). On opening, the source stops the sensor, identifies it
(firmware version, unique id), sets the rate and starts a stream; then it decodes frames
(:mod:`edge.sources.frames`), skips garbage and corrupted frames (counted in
:attr:`SerialSource.counters`), turns lost frames into ``gap_before`` and a ``sensor_gap``
event, and never delivers a frame twice.

When the link breaks (the cable is pulled, the device vanishes) or stalls (no frame for
``stall_s``: a sensor that rebooted sits stopped), the source emits ``sensor_disconnect``,
retries with exponential backoff (0.5 s doubling to 10 s, forever) and, once the sensor
answers again, emits ``sensor_reconnect`` and goes on: the time it was away becomes a gap
measured by the monotonic clock. Only the first connection raises (E240-E243), so a wrong
port or an unflashed sensor is reported at once instead of retried all night.

Time: the sensor samples from its start command on, so sample ``i`` of a stream was taken
``i / fs`` after the start's answer came (the monotonic clock), and its label is that moment
on the wall clock, through a :class:`~edge.sources.base.WallClock`. A step of the wall
clock (either way, any size) is a ``clock_step`` event; it changes the labels of the
samples delivered after it and nothing else: the stream, its gaps and the link's timeouts
run on the monotonic clock. After a step back the labels run on from the last one.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import serial

from ..errors import BedsideError, fail
from ..firmware import protocol as p
from ..firmware.board import BAUDRATE
from ..link.transport import PortError, open_port
from .base import Chunk, ClockStep, SourceEvent, WallClock
from .frames import AckFrame, Frame, FrameDecoder, InfoFrame, LinkCounters, SampleFrame, Sequencer
from .frames import encode_command as _command

__all__ = ["BAUDRATE", "SerialSource"]

log = logging.getLogger(__name__)

# One look at the port: whatever arrives within 20 ms, up to 4 KiB (pyserial's read(n)
# returns early only when n bytes came, and socket:// reports 1 byte waiting at most).
_READ_S = 0.02
_READ_SIZE = 4096
_REASONS = {p.R_UNKNOWN: "unknown command", p.R_BAD_ARG: "bad argument", p.R_BUSY: "busy"}


class SerialSource:
    """Samples from the sensor firmware on ``port``, at ``fs`` Hz (an integer, 50..1000).

    Args:
        port: a device path or a pyserial URL.
        fs: the sampling rate to ask the sensor for (default 250 Hz).
        baudrate: the line speed (ignored by ``socket://`` and ``loop://``).
        answer_timeout_s: how long to wait for the sensor's answer to one command (3 tries).
        stall_s: no valid frame for this long while streaming counts as a lost link.
        backoff_s: (first, longest) wait between reconnection attempts.
        wall_clock: the wall clock the samples are labelled from (``time.time``; a test
            passes one it steps).

    Raises:
        BedsideError: E240 the port cannot be opened, E241 the sensor does not answer,
            E242 its firmware speaks another protocol version, E243 a rate it refuses.
    """

    def __init__(
        self,
        port: str,
        *,
        fs: float | None = None,
        baudrate: int = BAUDRATE,
        answer_timeout_s: float = 0.5,
        stall_s: float = 2.0,
        backoff_s: tuple[float, float] = (0.5, 10.0),
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        rate = p.RATE_DEFAULT if fs is None else fs
        if not (isinstance(rate, int | float) and rate == int(rate)):
            fail("E243", f"serial: rate {rate!r} Hz is not a whole number", "pass e.g. fs=250")
        if not p.RATE_MIN <= rate <= p.RATE_MAX:
            fail(
                "E243",
                f"serial: rate {rate:g} Hz is outside {p.RATE_MIN}..{p.RATE_MAX} Hz",
                "pass a rate the sensor supports (default 250)",
            )
        if not port:
            fail("E240", "serial: no port given", "pass a device (/dev/ttyUSB0) or a pyserial URL")
        self.name = f"serial:{port}"
        self.fs = float(rate)
        self.port = port
        self.info: InfoFrame | None = None  # the sensor's identity, from the last handshake
        self.counters = LinkCounters()
        self.clock = WallClock(wall_clock)  # labels; the timing is the monotonic clock's
        self.t0_utc: float | None = None  # the label of sample 0, once the sensor started
        self._baudrate = baudrate
        self._answer_timeout_s = answer_timeout_s
        self._stall_s = stall_s
        self._backoff = backoff_s
        self._decoder = FrameDecoder(self.counters)
        self._sequencer = Sequencer()
        self._events: list[SourceEvent] = []
        self._ready: deque[Chunk] = deque()  # chunks decoded, not yet returned
        self._backlog: list[Frame] = []  # frames that arrived with the start acknowledgement
        self._tag = 0
        self._next = 0  # stream index of the next sample to deliver
        # (monotonic time, stream index) of this stream's start: when its first sample was due
        self._stream: tuple[float, int] | None = None
        self._away = 0  # samples missed while the link was down, owed to the first frame
        self._last_frame = 0.0  # monotonic time of the last valid sample frame
        self._port: serial.SerialBase | None = None
        self._closed = False
        self._retry_at = 0.0
        self._delay = backoff_s[0]
        self._attempts = 0
        self._down_since = 0.0
        self._logged_bad = 0
        self._connect()

    # -- the Source protocol ---------------------------------------------------------------

    def read(self, timeout_s: float | None = None) -> Chunk | None:
        """The next chunk; an empty one when ``timeout_s`` passes with nothing new; None
        after :meth:`close`.

        A lost link is retried here, never raised. Each look at the port waits up to 20 ms
        for bytes, so ``timeout_s=0`` takes what arrives in that time; a reconnection
        attempt may overrun the timeout by up to ``3 * answer_timeout_s`` (a port that
        opens, a sensor that stays silent).
        """
        deadline = None if timeout_s is None else time.monotonic() + max(0.0, timeout_s)
        while not self._closed:
            if self._ready:
                return self._ready.popleft()
            # Only here, with nothing queued: a chunk returned with a clock_step event is
            # labelled after the step, so the pipeline sees the two together.
            self._check_clock()
            if self._backlog:
                frames, self._backlog = self._backlog, []
                self._ingest(frames)
                continue
            if self._port is None:
                left = 0.1 if deadline is None else deadline - time.monotonic()
                self._reconnect(min(0.1, max(0.0, left)))
            else:
                self._receive()
            if not self._ready and deadline is not None and time.monotonic() >= deadline:
                break
        if self._closed:
            return None
        return Chunk(self._next, np.empty(0, np.int32), self._t_of(self._next))

    def drain_events(self) -> list[SourceEvent]:
        """Events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        """Stop the sensor (best effort) and release the port; safe to call twice."""
        self._closed = True
        if self._port is not None:
            try:
                self._port.write(_command(p.C_STOP, self._next_tag()))
                self._port.flush()
            except (serial.SerialException, OSError):
                pass
            self._drop_port()

    def __enter__(self) -> SerialSource:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- connecting ------------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            # exclusive: a second reader (a monitor left running) would steal half the bytes
            self._port = open_port(
                self.port,
                baudrate=self._baudrate,
                timeout=_READ_S,
                write_timeout=1.0,
                exclusive=True,
                listen=False,  # a sensor is a port to open, never a server to run
            )
        except PortError as exc:
            fail(
                "E240",
                f"{self.name}: cannot open the port ({_reason(exc.reason)})",
                "check the cable and the device name (ls /dev/serial/by-id lists them), that "
                "no other program has the port open, and that the user is in the dialout group",
            )
        try:
            self._handshake()
        except (serial.SerialException, OSError) as exc:
            self._drop_port()
            fail(
                "E241",
                f"{self.name}: the link broke while starting ({_reason(exc)})",
                "check the cable and try again",
            )
        except BedsideError:
            self._drop_port()
            raise

    def _handshake(self) -> None:
        """Stop, identify, set the rate, start; sample frames before the start are stale."""
        port = self._port
        port.reset_input_buffer()
        self._decoder.reset()
        self._ask(p.C_STOP)
        info = self._ask(p.C_IDENTIFY)
        if info.protocol != p.PROTOCOL_VERSION:
            fail(
                "E242",
                f"{self.name}: the sensor's firmware {info.firmware} speaks protocol "
                f"{info.protocol}, this unit {p.PROTOCOL_VERSION}",
                "flash the firmware that came with this unit (docs/hardware-engineer.md)",
            )
        if self.info is not None and info.unique_id != self.info.unique_id:
            self._event("sensor_error", "another sensor answered after the reconnect")
        if info.rate != int(self.fs):
            answer = self._ask(p.C_RATE, rate=int(self.fs))
            if not answer.ok:
                fail(
                    "E243",
                    f"{self.name}: the sensor refused {self.fs:g} Hz "
                    f"({_REASONS.get(answer.reason, answer.reason)})",
                    f"use a rate in {p.RATE_MIN}..{p.RATE_MAX} Hz or update its firmware",
                )
            info = self._ask(p.C_IDENTIFY)  # what the sensor now says it does
        self._ask(p.C_START)
        self.info = replace(info, streaming=True)
        self._sequencer.reset(0)
        self._last_frame = time.monotonic()
        self._open_stream(self._last_frame)

    def _ask(self, command: int, rate: int | None = None) -> InfoFrame | AckFrame:
        """Send a command and wait for its answer (3 tries); keep frames that follow it."""
        for _ in range(3):
            tag = self._next_tag()
            self._port.write(_command(command, tag, rate))
            deadline = time.monotonic() + self._answer_timeout_s
            while time.monotonic() < deadline:
                data = self._port.read(_READ_SIZE)
                frames = self._decoder.feed(data) if data else []
                for i, frame in enumerate(frames):
                    if isinstance(frame, InfoFrame | AckFrame) and frame.tag == tag:
                        self._check_answer(command, frame)
                        self._backlog = frames[i + 1 :] if command == p.C_START else []
                        return frame
        fail(
            "E241",
            f"{self.name}: the sensor did not answer (no valid frame in "
            f"{3 * self._answer_timeout_s:g} s)",
            "check that the sensor is powered, flashed with the bedside firmware and on this "
            f"port at {self._baudrate} baud",
        )

    def _check_answer(self, command: int, answer: InfoFrame | AckFrame) -> None:
        """Refuse an answer this firmware should never give (a nack to set rate is the
        caller's to judge)."""
        refused = isinstance(answer, AckFrame) and not answer.ok
        if refused and command == p.C_RATE:
            return
        if refused or isinstance(answer, InfoFrame) != (command == p.C_IDENTIFY):
            why = _REASONS.get(answer.reason, answer.reason) if refused else "a wrong answer"
            fail(
                "E241",
                f"{self.name}: the sensor answered command {chr(command)} with {why}",
                "flash the firmware that came with this unit (docs/hardware-engineer.md)",
            )

    def _next_tag(self) -> int:
        self._tag = (self._tag + 1) & 0xFF
        return self._tag

    def _reconnect(self, wait: float) -> None:
        """One step of the retry loop: sleep until the next attempt (at most ``wait``) or try."""
        now = time.monotonic()
        if now < self._retry_at:
            time.sleep(min(wait, self._retry_at - now))
            return
        self._attempts += 1
        try:
            self._connect()
        except BedsideError as exc:
            log.info("%s: reconnect attempt %d failed: %s", self.name, self._attempts, exc)
            self._retry_at = time.monotonic() + self._delay
            self._delay = min(2 * self._delay, self._backoff[1])
            return
        self.counters.reconnects += 1
        away = time.monotonic() - self._down_since
        detail = f"after {away:.1f} s ({self._attempts} attempts), firmware {self.info.firmware}"
        log.warning("%s: reconnected %s", self.name, detail)
        self._event("sensor_reconnect", detail)

    def _lost(self, reason: str) -> None:
        self._drop_port()
        self.counters.disconnects += 1
        self._down_since = time.monotonic()
        self._retry_at = self._down_since  # first attempt at once, then back off
        self._delay = self._backoff[0]
        self._attempts = 0
        log.warning("%s: link lost: %s", self.name, reason)
        self._event("sensor_disconnect", reason)

    def _drop_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    # -- streaming -------------------------------------------------------------------------

    def _receive(self) -> None:
        try:
            data = self._port.read(_READ_SIZE)
        except (serial.SerialException, OSError) as exc:
            self._lost(f"link broke ({_reason(exc)})")
            return
        if data:
            self._ingest(self._decoder.feed(data))
            self._log_bad_frames()
        if time.monotonic() - self._last_frame > self._stall_s:
            self._lost(f"no data for {self._stall_s:g} s")

    def _ingest(self, frames: list[Frame]) -> None:
        """Sample frames to chunks in :attr:`_ready`; contiguous frames are merged."""
        parts: list[np.ndarray] = []
        start = self._next
        gap_first = 0
        for frame in frames:
            if not isinstance(frame, SampleFrame):
                continue  # a late answer to a command; nothing to deliver
            self._last_frame = time.monotonic()
            lost = self._sequencer.accept(frame)
            if lost is None:
                self.counters.duplicates += 1
                continue
            lost, self._away = lost + self._away, 0
            if lost:
                self._record_gap(lost, frame)
                if parts:
                    self._ready.append(self._chunk(start, parts, gap_first))
                    parts = []
                self._next += lost
                start, gap_first = self._next, lost
            parts.append(frame.samples)
            self._next += len(frame.samples)
        if parts:
            self._ready.append(self._chunk(start, parts, gap_first))

    def _open_stream(self, started: float) -> None:
        """The sensor started sampling at ``started`` (monotonic s). After a reconnect the
        samples it would have sent meanwhile are a gap, on the stream's sample grid; never
        negative, so a sensor clock that ran fast never moves the stream back."""
        if self._stream is None:
            self._stream = (started, self._next)
            self.t0_utc = self.clock.label(started)
            return
        due = self._monotonic_of(self._next)  # when the next sample was due
        self._away = max(0, round((started - due) * self.fs))
        self._stream = (due + self._away / self.fs, self._next + self._away)

    def _record_gap(self, lost: int, frame: SampleFrame) -> None:
        self.counters.gaps += 1
        self.counters.samples_lost += lost
        detail = f"{lost} samples ({lost / self.fs:.2f} s) lost before frame {frame.seq}"
        log.warning("%s: %s", self.name, detail)
        self._event("sensor_gap", detail)

    def _chunk(self, start: int, parts: list[np.ndarray], gap: int) -> Chunk:
        samples = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return Chunk(start, samples, self._t_of(start), gap_before=gap)

    def _monotonic_of(self, index: int) -> float:
        """When sample ``index`` of the current stream was due (monotonic s)."""
        m0, i0 = self._stream
        return m0 + (index - i0) / self.fs

    def _t_of(self, index: int) -> float:
        """The UTC label of sample ``index``."""
        return self.clock.label(self._monotonic_of(index))

    def _check_clock(self) -> None:
        """A step of the wall clock becomes a ``clock_step`` event; :class:`WallClock`
        maps it onto the labels of the samples delivered from now on."""
        step = self.clock.check()
        if step is None:
            return
        detail = _clock_step_detail(step)
        log.warning("%s: %s", self.name, detail)
        self._event("clock_step", detail, shift_s=step.shift_s)

    def _event(self, kind: str, detail: str, shift_s: float = 0.0) -> None:
        self._events.append(SourceEvent(self.clock.now(), kind, detail, shift_s))

    def _log_bad_frames(self) -> None:
        c = self.counters
        bad = c.crc_errors + c.malformed
        if bad != self._logged_bad:
            log.info(
                "%s: %d corrupted frames so far (%d CRC, %d malformed, %d bytes skipped)",
                self.name,
                bad,
                c.crc_errors,
                c.malformed,
                c.garbage_bytes,
            )
            self._logged_bad = bad


def _clock_step_detail(step: ClockStep) -> str:
    """A ``clock_step`` event's detail: the step's size and direction (also in signed
    seconds, for a program), and what the labels did."""
    way = "forward" if step.step_s > 0 else "back"
    text = f"wall clock stepped {way} by {_span(abs(step.step_s))} ({step.step_s:+.3f} s); "
    if step.ahead_s > 0:
        ahead = _span(step.ahead_s)
        return text + f"labels run on from the last one, {ahead} ahead of the clock"
    return text + "later samples are labelled on the new time"


def _span(seconds: float) -> str:
    """A length of time for a reader: 56.9 years, 2.0 days, 3.5 h, 1.2 s."""
    if seconds >= 365.25 * 86400:
        return f"{seconds / (365.25 * 86400):.1f} years"
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def _reason(exc: BaseException) -> str:
    """An exception's text on one line, without the directory of a path."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
