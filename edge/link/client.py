"""The host side of the link: :class:`Client` opens a port, negotiates, authenticates, calls.

Requests are stop-and-wait: one request in flight, answered by a reply with the same seq.
A reply that does not come within ``timeout_s`` of silence is asked for again with the same
seq (up to ``retries`` times); the unit answers a repeated seq from its reply cache, so a
retried command never runs twice. A cut connection is reopened and renegotiated within the
same retry budget, and the host re-authenticates before resending.

Login also agrees on session keys (:mod:`edge.link.session`); from the unit's answer on,
every frame both ways is sealed, a resent request is sealed again (a new counter, the same
seq), and a frame that does not open, or comes unsealed, is dropped and counted
(``stats["refused"]``, E312 once the retries run out with nothing but such frames). Frames in
and out, sealed or plain, and what is refused go through :class:`edge.link.endpoint.Endpoint`,
the same code the unit's agent runs.
"""

from __future__ import annotations

import base64
import collections
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

import serial

from ..errors import BedsideError, fail
from .auth import PublicKey, challenge_message, unit_message
from .codes import (
    BAD_REPLY,
    BAD_SEAL,
    CLOSED,
    NOT_SEALED,
    NOT_THE_UNIT,
    TIMED_OUT,
    TOO_LARGE,
    VERSION_MISMATCH,
)
from .commands import Command
from .endpoint import Endpoint
from .frame import MIN_FRAME, Channel, Frame, Kind, Sealed, body_size, max_data
from .protocol import DEFAULT_MAX_FRAME, PROTOCOL_VERSION, SUPPORTED_VERSIONS, LinkError
from .session import KeyExchange, SessionCipher
from .transport import open_port

__all__ = ["Client", "Signer", "UnitKeys"]

# The port's read timeout: how long one read waits for more bytes. Short, because a read
# returns only when it times out or fills its buffer (pyserial), and that wait is latency.
_READ_WAIT_S = 0.005


class Signer(Protocol):
    """A host key as the link needs it (host_tools.keys.HostKey is one)."""

    @property
    def public_raw(self) -> bytes: ...
    def sign(self, message: bytes) -> bytes: ...


class UnitKeys(Protocol):
    """The keys units proved themselves with (host_tools.keys.KnownUnits is one)."""

    def check(self, device_id: str, unit_key: bytes) -> None:
        """Raise when ``unit_key`` is not the key ``device_id`` is known by."""

    def pin(self, device_id: str, unit_key: bytes) -> None:
        """Remember ``unit_key`` for ``device_id`` (after a login it proved)."""


class Client:
    """A connection to one unit's agent. Not thread-safe: one caller at a time.

    Open it with :meth:`open`; use it as a context manager to close it.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        retries: int = 3,
        trace: TextIO | None = None,
        baudrate: int = 921600,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.baudrate = baudrate
        self._want_frame = max_frame
        self.max_frame = MIN_FRAME
        self.protocol: int | None = None
        self.session: str | None = None
        self.device_id: str | None = None
        self._port = None
        self._link = Endpoint(max_frame=max_frame, trace=trace)
        self._seq = secrets.randbits(31)  # a fresh range: no stale reply can match
        self._key: Signer | None = None
        self._unit_keys: UnitKeys | None = None
        #: The key the unit proved itself with at the last login (32 raw bytes).
        self.unit_key: bytes | None = None
        # The session's seals once logged in; during a login, the one it is about to start.
        self._cipher: SessionCipher | None = None
        self._pending: SessionCipher | None = None
        #: Log records of the unit (dicts), when subscribed; or set ``on_log``.
        self.logs: collections.deque[dict] = collections.deque(maxlen=10000)
        self.on_log: Callable[[dict], None] | None = None
        #: Damaged frames dropped, frames refused (their seal failed, or unsealed after
        #: login) and requests resent, for tests and ``status --json``.
        self.stats = self._link.stats
        self.stats.update(resent=0, reconnects=0)
        self._last_byte = 0.0

    @classmethod
    def open(
        cls,
        url: str,
        *,
        timeout_s: float = 2.0,
        retries: int = 3,
        trace: TextIO | None = None,
        baudrate: int = 921600,
    ) -> Client:
        """Open ``url`` (a device path or pyserial URL) and negotiate version and frame size.

        ``baudrate`` is the line's rate: a cable's port is opened at it, and for any URL it
        tells how long a bulk frame takes to cross (the wait for its reply starts after)."""
        client = cls(url, timeout_s=timeout_s, retries=retries, trace=trace, baudrate=baudrate)
        client._port = open_port(url, baudrate=baudrate, timeout=_READ_WAIT_S)
        try:
            client._hello()
        except BaseException:
            client.close()
            raise
        return client

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def trace(self) -> TextIO | None:
        """Where ``--trace`` prints every frame (None: nowhere)."""
        return self._link.trace

    @property
    def max_data(self) -> int:
        """The largest ``data`` one :meth:`call` may carry, after negotiation."""
        return max_data(self.max_frame)

    @property
    def authenticated(self) -> bool:
        return self._key is not None

    @property
    def sealed(self) -> bool:
        """True once login has started the session's seals (every frame is sealed)."""
        return self._cipher is not None

    # --- the commands every unit answers ---------------------------------------------

    def identify(self) -> dict:
        """The unit's identity (needs no authentication): device_id, hardware,
        software_version, protocol, max_frame, whether this link is authenticated."""
        info, _ = self.call(Command.IDENTIFY)
        return info

    def authenticate(self, key: Signer, *, unit_keys: UnitKeys | None = None) -> None:
        """Prove possession of ``key`` (Ed25519 challenge-response) and start the sealed
        session; E321 when the unit does not know the key, E311 when its answer is not
        sealed with the session's key, E313 when the unit's own signature does not check.

        ``unit_keys`` checks the key the unit proved itself with before anything is signed
        for it, and pins it once the login passed; again at each reconnect."""
        self._unit_keys = unit_keys
        self._answer_challenge(Command.AUTH_RESPONSE, key, {})
        self._key = key

    def authorize(self, key: Signer, name: str, *, unit_keys: UnitKeys | None = None) -> dict:
        """Install ``key`` on the unit as an authorized host (pairing).

        Allowed while the unit's pairing window is open (physical access, see
        docs/hardware-engineer.md), for a key the unit has already, or on a link already
        authenticated by another key. ``unit_keys`` as for :meth:`authenticate`."""
        self._unit_keys = unit_keys
        reply = self._answer_challenge(Command.KEYS_AUTHORIZE, key, {"name": name})
        self._key = key
        return reply

    def subscribe_logs(self, level: str = "INFO") -> None:
        """Have the unit stream its log records (level and above) on this link."""
        self.call(Command.LOGS_SUBSCRIBE, {"level": level})

    def pump(self, seconds: float) -> None:
        """Read the link for ``seconds`` (log records go to ``logs``/``on_log``)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                frames = self._read_frames()
            except _CutError as cut:
                self.close()
                fail(CLOSED, f"the link was cut ({cut})", "open it again", error=LinkError)
            for frame in frames:
                self._dispatch_log(frame)

    def call(
        self,
        command: str,
        args: dict | None = None,
        data: bytes = b"",
        *,
        timeout_s: float | None = None,
    ) -> tuple[dict, bytes]:
        """Run ``command`` on the unit; returns its reply header and data.

        Raises the unit's own BedsideError (same code and message) when the handler failed,
        LinkError E301 when no reply came after the retries, E302 when the port closed."""
        frame = Frame(Kind.REQUEST, self._next_seq(), {"cmd": command, "args": args or {}}, data)
        if body_size(frame) > self.max_frame:
            fail(
                TOO_LARGE,
                f"{command}: request of {body_size(frame)} bytes exceeds the link's "
                f"{self.max_frame}-byte frames",
                f"send at most {self.max_data} bytes of data per call",
                error=LinkError,
            )
        reply = self._exchange(frame, self.timeout_s if timeout_s is None else timeout_s)
        return reply.header, reply.data

    def close(self) -> None:
        """Close the port (safe to call twice)."""
        if self._port is not None:
            try:
                self._port.close()
            finally:
                self._port = None

    # --- internals ---------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        return self._seq

    def _hello(self) -> None:
        self._link.restart()
        self.max_frame = MIN_FRAME
        self._cipher = self._pending = None  # hello starts a new, unsealed session
        args = {"protocol": list(SUPPORTED_VERSIONS), "max_frame": self._want_frame}
        frame = Frame(Kind.REQUEST, self._next_seq(), {"cmd": Command.HELLO, "args": args})
        reply = self._exchange(frame, self.timeout_s, reconnect=False).header
        version, max_frame = reply.get("protocol"), reply.get("max_frame")
        if version not in SUPPORTED_VERSIONS or not isinstance(max_frame, int):
            fail(
                VERSION_MISMATCH,
                f"the unit speaks link protocol {version}, this host {PROTOCOL_VERSION}",
                "update bedside-host (or the unit) so both speak the same version",
                error=LinkError,
            )
        self.protocol = version
        self.max_frame = max(MIN_FRAME, min(max_frame, self._want_frame))
        self.session = reply.get("session")
        self.device_id = reply.get("device_id")

    def _answer_challenge(self, command: str, key: Signer, args: dict) -> dict:
        exchange = KeyExchange()
        ours = base64.b64encode(exchange.public).decode()
        challenge, _ = self.call(Command.AUTH_CHALLENGE, {"ephemeral": ours})
        try:
            nonce = bytes.fromhex(challenge["nonce"])
            device_id = str(challenge["device_id"])
            theirs = base64.b64decode(challenge["ephemeral"], validate=True)
            unit_key = PublicKey(base64.b64decode(challenge["unit_key"], validate=True))
            unit_signature = base64.b64decode(challenge["unit_signature"], validate=True)
        except KeyError:
            fail(
                NOT_SEALED,
                "the unit's challenge carries no session key or unit key (it runs link "
                "protocol 1, or something in line removed them)",
                "update the unit; check that nothing sits between this laptop and the unit",
                error=LinkError,
            )
        except (TypeError, ValueError):
            fail(BAD_REPLY, "the unit sent a malformed challenge", "retry", error=LinkError)
        # The unit's signature first: nothing of ours is signed for a peer that is not it.
        signed = unit_message(nonce, device_id, exchange.public, theirs)
        if len(unit_key.raw) != 32 or not unit_key.verify(unit_signature, signed):
            fail(
                NOT_THE_UNIT,
                f"{device_id}'s challenge is not signed by the key it shows: its session key "
                "was swapped on the way",
                "something sits between this laptop and the unit: check the cable path",
                error=LinkError,
            )
        if self._unit_keys is not None:
            self._unit_keys.check(device_id, unit_key.raw)
        message = challenge_message(nonce, device_id, key.public_raw, exchange.public, theirs)
        session = exchange.cipher(theirs, message, role="host", code=NOT_SEALED)
        args = {
            **args,
            "public_key": base64.b64encode(key.public_raw).decode(),
            "signature": base64.b64encode(key.sign(message)).decode(),
        }
        # The unit seals its answer with the new keys: the frame that opens with them
        # switches this side over (see _open).
        self._pending = session
        try:
            reply, _ = self.call(command, args)
        finally:
            self._pending = None
        if self._cipher is not session:
            fail(
                NOT_SEALED,
                f"the unit accepted the login ({command}) without sealing its answer",
                "something may sit between this laptop and the unit: check the cable path; "
                "update the unit",
                error=LinkError,
            )
        self.unit_key = unit_key.raw
        if self._unit_keys is not None:
            self._unit_keys.pin(device_id, unit_key.raw)
        return reply

    def _reconnect(self) -> None:
        """Reopen the port and renegotiate (and re-authenticate) after a cut."""
        self.close()
        self.stats["reconnects"] += 1
        self._port = open_port(self.url, baudrate=self.baudrate, timeout=_READ_WAIT_S)
        self._hello()
        if self._key is not None:
            key, self._key = self._key, None
            self.authenticate(key, unit_keys=self._unit_keys)

    def _write(self, frame: Frame) -> int:
        # Sealed afresh on every try: a resent request is a new counter, the same seq.
        wire = self._link.wire(frame, self._cipher)
        try:
            self._port.write(wire)
        except (serial.SerialException, OSError) as exc:
            raise _CutError(str(exc)) from None
        return len(wire)

    def _read_frames(self) -> list[Frame]:
        if self._port is None:
            fail(CLOSED, "the link is closed", "open it again", error=LinkError)
        try:
            chunk = self._port.read(65536)
        except (serial.SerialException, OSError) as exc:
            raise _CutError(str(exc)) from None
        frames = []
        for item, wire in self._link.receive(chunk):
            frame = self._open(item)
            if frame is None:
                continue
            self._link.traced(frame, wire, sealed=isinstance(item, Sealed))
            frames.append(frame)
        if chunk:
            self._last_byte = time.monotonic()
        return frames

    def _open(self, item: Frame | Sealed) -> Frame | None:
        """The frame ``item`` holds, or None when it is refused (counted, logged once)."""
        if isinstance(item, Frame):
            if self._cipher is None:
                return item  # before login: the handshake is plain
            self._link.refuse(f"an unsealed {item.kind.name} frame after login")
            return None
        opened = self._link.open(
            item, self._cipher, self._pending, unsealed="a sealed frame before login"
        )
        if opened is None:
            return None
        frame, session = opened
        if session is self._pending:
            self._cipher, self._pending = session, None  # the login's sealed answer
        return frame

    def _dispatch_log(self, frame: Frame) -> bool:
        if frame.channel != Channel.LOGS:
            return False
        if self.on_log is not None:
            self.on_log(frame.header)
        else:
            self.logs.append(frame.header)
        return True

    def _exchange(self, frame: Frame, timeout_s: float, *, reconnect: bool = True) -> Frame:
        """Send ``frame`` and wait for its reply, resending on silence or a cut link."""
        last_problem = "no reply"
        refused = self.stats["refused"]
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["resent"] += 1
            if self._port is None:
                if not reconnect:
                    break
                try:
                    self._reconnect()
                except LinkError as exc:  # the unit restarting, or the cable out: try again
                    last_problem = f"cannot reconnect ({exc.code})"
                    self.close()
                    time.sleep(min(0.2 * (attempt + 1), 1.0))
                    continue
            try:
                sent = self._write(frame)
                reply = self._await_reply(frame, sent, timeout_s)
            except _CutError as cut:
                last_problem = f"link cut ({cut})"
                self.close()
                if not reconnect:
                    break
                time.sleep(min(0.2 * (attempt + 1), 1.0))
                continue
            if reply is not None:
                if reply.kind == Kind.ERROR:
                    raise _remote_error(reply.header)
                return reply
            last_problem = f"no reply within {timeout_s:g} s"
        command, tries = frame.header.get("cmd", "?"), self.retries + 1
        code = CLOSED if self._port is None else TIMED_OUT
        if self.stats["refused"] > refused and code == TIMED_OUT:
            fail(
                BAD_SEAL,
                f"{command}: {self.stats['refused'] - refused} frames from the unit failed "
                f"their seal (altered, replayed or unsealed), {tries} tries on {self.url}",
                "something between this laptop and the unit is changing the link: check the "
                "cable path, then connect again",
                error=LinkError,
            )
        fail(
            code,
            f"{command}: {last_problem}, {tries} {'try' if tries == 1 else 'tries'} on {self.url}",
            "check the cable or URL and that the unit's agent runs; retry",
            error=LinkError,
        )

    def _await_reply(self, request: Frame, sent: int, timeout_s: float) -> Frame | None:
        # Silence is measured from the end of our own transmission (its time on the wire at
        # the nominal rate, 8N1, with a 25 % margin) or from the last byte received,
        # whichever is later. The port's baudrate must be the line's for this to hold.
        self._last_byte = 0.0
        deadline = time.monotonic() + timeout_s + 1.25 * sent * 10 / self.baudrate
        while True:
            for frame in self._read_frames():
                if self._dispatch_log(frame) or frame.seq != request.seq:
                    continue  # a log record, or a late answer to an earlier try
                if frame.kind == Kind.BUSY:
                    continue  # the unit is still working: its bytes moved the deadline
                if frame.kind in (Kind.REPLY, Kind.ERROR):
                    return frame
            now = time.monotonic()
            if now > max(deadline, self._last_byte + timeout_s):
                return None


class _CutError(Exception):
    """The port failed under us (disconnected socket, unplugged cable)."""


def _remote_error(header: dict[str, Any]) -> BedsideError:
    """The BedsideError a unit's handler raised, rebuilt on the host: same code, message."""
    code, message = header.get("code"), header.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        return LinkError(BAD_REPLY, "the unit sent a malformed error reply — retry")
    return BedsideError(code, message)
