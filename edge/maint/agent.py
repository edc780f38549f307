"""The unit's maintenance agent: serves the link's commands to an authenticated host.

    bedside agent --port /dev/ttyGS0 --state /var/lib/bedside      # the USB gadget serial
    bedside agent --port listen://127.0.0.1:0 --state /tmp/unit    # a virtual unit

Until a host passes the challenge (its key in ``DIR/keys/authorized_hosts``), the agent
answers only ``hello``, ``identify``, the challenge itself and pairing; everything else gets
E320 and nothing more (not even whether the command exists).

The login also agrees on session keys (:mod:`edge.link.session`). From the answer to a
successful login on, every frame both ways is sealed; a frame that fails its seal, replays
an old counter, or comes unsealed is refused: dropped, counted in :attr:`Agent.stats`, and
logged once per link (E312). Two unsealed requests are still heard after login: ``hello``
(a host that restarted starts a new session: a serial line gives no other sign of it), and
a repeat of the login request itself, answered again from the reply cache, sealed. Frames in
and out, sealed or plain, and the refusals go through :class:`edge.link.endpoint.Endpoint`,
the same code the host's client runs.

Pairing (installing a first host key) needs physical access: it is accepted only while the
pairing window is open, that is while ``DIR/pairing`` exists and is younger than
:data:`PAIRING_WINDOW_S`. The unit's pairing button (or a person at its console) creates that
file; a successful pairing deletes it. See docs/hardware-engineer.md.

Commands come from modules: the agent imports each of :data:`HANDLER_MODULES` that exists
and calls its ``register(agent)``, which adds handlers with :meth:`Agent.command`. Their
names are :class:`edge.link.commands.Command`; the error codes :mod:`edge.link.codes`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import importlib
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ..errors import BedsideError, fail
from ..files import atomic_write
from ..link.auth import (
    CHALLENGE_TTL_S,
    PublicKey,
    add_authorized,
    challenge_message,
    load_unit_key,
    raw_public,
    read_authorized,
    unit_message,
)
from ..link.codes import (
    BAD_ARGS,
    HANDLER_FAILED,
    KEY_REFUSED,
    NO_CHALLENGE,
    NO_SESSION_KEY,
    NOT_AUTHENTICATED,
    PAIRING_CLOSED,
    TOO_LARGE,
    UNKNOWN_COMMAND,
    VERSION_MISMATCH,
)
from ..link.commands import PUBLIC, Command
from ..link.endpoint import Endpoint
from ..link.frame import MIN_FRAME, Channel, Frame, Kind, Sealed, body_size
from ..link.protocol import DEFAULT_MAX_FRAME, PROTOCOL_VERSION, SUPPORTED_VERSIONS
from ..link.session import KeyExchange, SessionCipher
from ..link.transport import open_port
from ..version import software_version

__all__ = ["Agent", "Handler", "HANDLER_MODULES", "PAIRING_WINDOW_S", "add_parser", "run_command"]

log = logging.getLogger(__name__)

Handler = Callable[[dict, bytes], tuple[dict, bytes]]

#: Modules that add commands (``register(agent)``); those not installed are skipped.
HANDLER_MODULES = ("edge.maint.flash", "edge.maint.logs")
#: How long a pairing window stays open after DIR/pairing is created.
PAIRING_WINDOW_S = 600.0
#: A running handler tells the host it is alive this often (a BUSY frame).
BUSY_INTERVAL_S = 0.2
#: Replies kept for repeated requests (a host that missed a reply asks again, same seq).
REPLY_CACHE = 8

STATE_DIR = "E384"


class _Session:
    """What the agent knows about the host at the other end of the port right now."""

    def __init__(self) -> None:
        self.id = secrets.token_hex(8)
        self.max_frame = MIN_FRAME
        self.host: PublicKey | None = None
        self.nonce: bytes | None = None
        self.nonce_expires = 0.0
        self.log_level: int | None = None
        # The pending challenge's key exchange: this side's key and the host's public key.
        self.exchange: KeyExchange | None = None
        self.host_ephemeral = b""
        #: The seals of this session once logged in (None: plain, before login).
        self.cipher: SessionCipher | None = None
        # What a login handler that succeeded starts once its answer is decided.
        self.login: tuple[PublicKey, SessionCipher] | None = None
        # The last login's seq and the seals before it: a repeat of that request sent the
        # old way (its answer was lost) is answered again from the cache.
        self.login_seq: int | None = None
        self.before_login: SessionCipher | None = None


class Agent:
    """The maintenance agent on ``port_url`` with the unit's state in ``state_dir``."""

    def __init__(
        self,
        port_url: str,
        *,
        state_dir: Path,
        hardware: str | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        trace: TextIO | None = None,
        modules: tuple[str, ...] = HANDLER_MODULES,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.keys_dir = self.state_dir / "keys"
        self.max_frame = max_frame
        self.identity = self._load_identity(hardware)
        try:  # the unit's own key: it signs each challenge, so a host knows it is this unit
            self._unit_key = load_unit_key(self.keys_dir)
        except (OSError, ValueError) as exc:
            fail(STATE_DIR, f"the unit's key is unusable: {exc}", "restore DIR/keys/unit_key")
        self.unit_key = raw_public(self._unit_key)
        self._handlers: dict[str, tuple[Handler, bool]] = {}
        self._replies: collections.OrderedDict[int, tuple[Frame, bytes | None]] = (
            collections.OrderedDict()
        )
        self._link = Endpoint(max_frame=max(max_frame, MIN_FRAME), trace=trace)
        #: Frames refused since start (failed seal, replayed, unsealed after login), and
        #: damaged frames dropped.
        self.stats = self._link.stats
        self._session = _Session()
        self._generation = 0
        self._stop = threading.Event()
        self._write_lock = threading.RLock()  # replies, BUSY frames and log records
        self._log_seq = 0
        self._log_handler = _LinkLogHandler(self)
        self._add_builtin_commands()
        for name in modules:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise
                continue
            module.register(self)
        self.port = open_port(port_url, timeout=0.005)
        self.url = getattr(self.port, "url", port_url)

    # --- the API for handler modules ---------------------------------------------------

    def command(self, name: str, *, auth: bool | None = None) -> Callable[[Handler], Handler]:
        """Decorator: ``handler(args, data) -> (reply, data)`` answers command ``name``.

        ``auth=False`` serves it before authentication; by default only the commands of
        :data:`edge.link.commands.PUBLIC` are (identification, login and pairing). A handler
        raises BedsideError for a clean error that reaches the host."""
        needs_auth = name not in PUBLIC if auth is None else auth

        def add(handler: Handler) -> Handler:
            if name in self._handlers:
                raise ValueError(f"command {name!r} registered twice")
            self._handlers[name] = (handler, needs_auth)
            return handler

        return add

    @property
    def authenticated_host(self) -> PublicKey | None:
        """The key the current host proved (None before authentication)."""
        return self._session.host

    def serve_forever(self) -> None:
        """Serve requests until :meth:`stop` (from another thread or a signal handler)."""
        edge_log = logging.getLogger("edge")
        edge_log.addHandler(self._log_handler)
        if edge_log.getEffectiveLevel() > logging.INFO:  # INFO records feed the log stream
            edge_log.setLevel(logging.INFO)
        log.info(
            "agent %s (unit key %s) serving on %s",
            self.identity["device_id"],
            PublicKey(self.unit_key).fingerprint,
            self.url,
        )
        try:
            while not self._stop.is_set():
                chunk = self.port.read(65536)
                generation = getattr(self.port, "generation", 0)
                if generation != self._generation:  # a new peer: it starts from nothing
                    self._generation = generation
                    self._session = _Session()
                    self._link.restart()
                for item, wire in self._link.receive(chunk):
                    self._receive(item, wire)
        finally:
            logging.getLogger("edge").removeHandler(self._log_handler)
            self.port.close()

    def stop(self) -> None:
        """Make :meth:`serve_forever` return (within a few milliseconds)."""
        self._stop.set()

    # --- serving -------------------------------------------------------------------------

    def _receive(self, item: Frame | Sealed, wire: bytes = b"") -> None:
        """Serve one frame from the link if the session lets it in (see the module doc)."""
        session = self._session
        current = True
        if isinstance(item, Sealed):
            frame, current = self._open(session, item)
            if frame is None:
                return
        else:
            frame = item
        if frame.kind != Kind.REQUEST or frame.channel != Channel.COMMANDS:
            return
        self._link.traced(frame, wire, sealed=isinstance(item, Sealed))
        if isinstance(item, Frame) and session.cipher is not None:
            if frame.header.get("cmd") == Command.HELLO:
                pass  # a host that restarted: hello starts a new session
            elif frame.seq == session.login_seq and session.before_login is None:
                current = False
            else:
                self._link.refuse("an unsealed request after login")
                return
        if not current:  # the login's request sent again: its answer, nothing runs
            if frame.seq in self._replies:
                self._send(self._replies[frame.seq][0])
            else:
                self._link.refuse("a repeat of a login whose answer is forgotten")
            return
        self._serve(frame)

    def _open(self, session: _Session, sealed: Sealed) -> tuple[Frame | None, bool]:
        """The frame in ``sealed`` and whether the session's current seals opened it (the
        seals before the login open only a repeat of the login's request)."""
        before = session.before_login if sealed.seq == session.login_seq else None
        opened = self._link.open(
            sealed, session.cipher, before, unsealed="a sealed frame on a link not logged in"
        )
        if opened is None:
            return None, False
        frame, seal = opened
        return frame, seal is session.cipher

    def _serve(self, request: Frame) -> None:
        cached = self._replies.get(request.seq)
        host = self._session.host
        if cached is not None:
            reply, owner = cached
            if owner is None or (host is not None and owner == host.raw):
                self._send(reply)  # a retry: the reply again (sealed anew), not the handler
                return
        name = request.header.get("cmd")
        args = request.header.get("args", {})
        entry = self._handlers.get(name) if isinstance(name, str) else None
        needs_auth = entry is None or entry[1]
        try:
            if needs_auth and self._session.host is None:
                fail(
                    NOT_AUTHENTICATED,
                    "this host is not authenticated",
                    "pair it with bedside-host keys authorize (see the hardware guide)",
                )
            if entry is None:
                fail(UNKNOWN_COMMAND, f"the unit has no command {name!r}", "update the unit")
            if not isinstance(args, dict):
                fail(BAD_ARGS, f"{name}: arguments are not an object", "update bedside-host")
            with _Busy(self, request.seq):
                header, data = entry[0](args, request.data)
            reply = Frame(Kind.REPLY, request.seq, header, data)
            if body_size(reply) > self._session.max_frame:
                fail(TOO_LARGE, f"{name}: the reply exceeds the link's frame size", "ask less")
        except BedsideError as exc:
            reply = Frame(Kind.ERROR, request.seq, {"code": exc.code, "message": str(exc)})
        except Exception as exc:
            log.exception("command %s failed", name)
            reply = Frame(
                Kind.ERROR,
                request.seq,
                {
                    "code": HANDLER_FAILED,
                    "message": f"{name}: the unit failed ({type(exc).__name__}) — "
                    "see the agent's log on the unit (its stderr, the journal) and report it",
                },
            )
        session = self._session  # hello replaces it
        if session.login is not None and reply.kind == Kind.REPLY:
            # A login passed: its answer is the first frame under the new seals (the host
            # holds them already), and the host counts as authenticated from here on.
            session.host, cipher = session.login
            session.before_login, session.login_seq = session.cipher, request.seq
            session.cipher = cipher
        session.login = None
        self._send(reply)
        # Every reply is kept, the handshake's too: a duplicate challenge must not draw a new
        # nonce behind the host's back. Only the host that asked (the same key, perhaps
        # reconnected) gets an authenticated reply again.
        if reply.kind == Kind.ERROR and reply.header.get("code") == NOT_AUTHENTICATED:
            return  # nothing ran: once authenticated, the same request must run
        owner = self._session.host.raw if needs_auth and self._session.host else None
        self._replies[request.seq] = (reply, owner)
        while len(self._replies) > REPLY_CACHE:
            self._replies.popitem(last=False)

    def _send(self, frame: Frame) -> None:
        # Sealed under the lock: counters must reach the wire in the order they were taken.
        with self._write_lock:
            self._send_wire(self._link.wire(frame, self._session.cipher))

    def _send_wire(self, wire: bytes) -> None:
        try:
            with self._write_lock:
                self.port.write(wire)
        except OSError as exc:  # serial.SerialException is an OSError
            log.warning("link write failed: %s", exc)  # outside the lock: it may stream

    def send_log(self, record: dict, level: int) -> None:
        """Stream one log record to the host, when it is authenticated and subscribed."""
        session = self._session
        if session.cipher is None or session.log_level is None or level < session.log_level:
            return  # never in the clear: only a logged-in, sealed session subscribes
        self._log_seq += 1
        self._send(Frame(Kind.LOG, self._log_seq, record, channel=Channel.LOGS))

    # --- identity, negotiation and trust -------------------------------------------------

    def _load_identity(self, hardware: str | None) -> dict:
        """DIR/device.json, created on first start (the device id never changes)."""
        path = self.state_dir / "device.json"
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            if path.exists():
                identity = json.loads(path.read_text(encoding="utf-8"))
            else:
                identity = {
                    "device_id": "bcg-" + secrets.token_hex(6),
                    "hardware": hardware or os.environ.get("BEDSIDE_HARDWARE", "bedside-pi-v1"),
                }
                # fsynced, renamed, folder fsynced: a power cut must not leave an empty
                # device.json that stops the agent at every start (found by make crashcheck).
                atomic_write(path, (json.dumps(identity) + "\n").encode())
        except (OSError, ValueError) as exc:
            fail(STATE_DIR, f"state directory unusable: {exc}", "check --state and permissions")
        if not isinstance(identity, dict) or "device_id" not in identity:
            fail(STATE_DIR, "device.json has no device_id", "restore it or delete it")
        identity.setdefault("software_version", software_version())
        return identity

    def _pairing_open(self) -> bool:
        try:
            age = time.time() - (self.state_dir / "pairing").stat().st_mtime
        except OSError:
            return False
        return 0 <= age <= PAIRING_WINDOW_S

    def _check_challenge(self, args: dict) -> tuple[PublicKey, SessionCipher]:
        """The key that signed the pending challenge and the session it opens; the nonce
        and the key exchange are used up either way."""
        session = self._session
        nonce, expires, exchange = session.nonce, session.nonce_expires, session.exchange
        session.nonce, session.exchange = None, None
        if nonce is None or exchange is None or time.monotonic() > expires:
            fail(NO_CHALLENGE, "no challenge pending, or it expired", "authenticate again")
        try:
            key = PublicKey(base64.b64decode(args["public_key"], validate=True))
            signature = base64.b64decode(args["signature"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            fail(BAD_ARGS, "malformed authentication request", "update bedside-host")
        theirs = session.host_ephemeral
        message = challenge_message(
            nonce, self.identity["device_id"], key.raw, theirs, exchange.public
        )
        if len(key.raw) != 32 or not key.verify(signature, message):
            fail(KEY_REFUSED, "the signature does not match the challenge", "authenticate again")
        return key, exchange.cipher(theirs, message, role="unit", code=NO_SESSION_KEY)

    def _add_builtin_commands(self) -> None:
        @self.command(Command.HELLO)
        def hello(args: dict, data: bytes) -> tuple[dict, bytes]:
            offered = args.get("protocol")
            common = [v for v in SUPPORTED_VERSIONS if isinstance(offered, list) and v in offered]
            if not common:
                fail(
                    VERSION_MISMATCH,
                    f"the host speaks link protocol {offered}, this unit {PROTOCOL_VERSION} "
                    "(sealed sessions; protocol 1 is refused)",
                    "update bedside-host (or the unit) so both speak the same version",
                )
            wanted = args.get("max_frame")
            wanted = wanted if isinstance(wanted, int) else MIN_FRAME
            self._session = _Session()  # a new host session: authenticate again
            self._link.new_session()
            self._session.max_frame = max(MIN_FRAME, min(wanted, self.max_frame))
            return {
                "protocol": max(common),
                "max_frame": self._session.max_frame,
                "session": self._session.id,
                "device_id": self.identity["device_id"],
            }, b""

        @self.command(Command.IDENTIFY)
        def identify(args: dict, data: bytes) -> tuple[dict, bytes]:
            return {
                **self.identity,
                "unit_key": PublicKey(self.unit_key).fingerprint,
                "protocol": PROTOCOL_VERSION,
                "max_frame": self._session.max_frame,
                "authenticated": self._session.host is not None,
                "pairing_open": self._pairing_open(),
            }, b""

        @self.command(Command.AUTH_CHALLENGE)
        def challenge(args: dict, data: bytes) -> tuple[dict, bytes]:
            try:
                theirs = base64.b64decode(args["ephemeral"], validate=True)
            except (KeyError, TypeError, ValueError, binascii.Error):
                theirs = b""
            if len(theirs) != 32:
                fail(
                    NO_SESSION_KEY,
                    "the host's login carries no session key (link protocol 1, or damaged)",
                    "update bedside-host: this unit needs link protocol 2",
                )
            session = self._session
            session.nonce = secrets.token_bytes(32)
            session.nonce_expires = time.monotonic() + CHALLENGE_TTL_S
            session.exchange, session.host_ephemeral = KeyExchange(), theirs
            device_id, ours = self.identity["device_id"], session.exchange.public
            signature = self._unit_key.sign(unit_message(session.nonce, device_id, theirs, ours))
            return {
                "nonce": session.nonce.hex(),
                "device_id": device_id,
                "ephemeral": base64.b64encode(ours).decode(),
                "unit_key": base64.b64encode(self.unit_key).decode(),
                "unit_signature": base64.b64encode(signature).decode(),
            }, b""

        @self.command(Command.AUTH_RESPONSE)
        def response(args: dict, data: bytes) -> tuple[dict, bytes]:
            key, cipher = self._check_challenge(args)
            known = read_authorized(self.keys_dir / "authorized_hosts")
            match = next((k for k in known if k.raw == key.raw), None)
            if match is None:
                log.warning("refused host key %s", key.fingerprint)
                fail(
                    KEY_REFUSED,
                    f"host key {key.fingerprint} is not authorized on this unit",
                    "pair this host with bedside-host keys authorize",
                )
            self._session.login = (match, cipher)  # _serve starts it with the answer
            log.info("host %s (%s) authenticated", match.name or "?", match.fingerprint)
            return {"fingerprint": match.fingerprint}, b""

        @self.command(Command.KEYS_AUTHORIZE)
        def authorize(args: dict, data: bytes) -> tuple[dict, bytes]:
            # The challenge proves the host holds the key it installs.
            key, cipher = self._check_challenge(args)
            known = read_authorized(self.keys_dir / "authorized_hosts")
            already = any(k.raw == key.raw for k in known)
            if self._session.host is None and not already and not self._pairing_open():
                fail(
                    PAIRING_CLOSED,
                    "the unit's pairing window is closed",
                    "press the unit's pairing button (or touch DIR/pairing on it) and retry "
                    "within 10 minutes",
                )
            name = str(args.get("name", ""))[:64].replace("\n", " ").strip()
            key = PublicKey(key.raw, "-".join(name.split()) or "host")
            added = add_authorized(self.keys_dir / "authorized_hosts", key)
            if added and self._session.host is None:
                (self.state_dir / "pairing").unlink(missing_ok=True)  # one key per window
            self._session.login = (key, cipher)
            log.info("host %s (%s) authorized", key.name, key.fingerprint)
            return {"fingerprint": key.fingerprint, "added": added}, b""

        @self.command(Command.LOGS_SUBSCRIBE)
        def subscribe(args: dict, data: bytes) -> tuple[dict, bytes]:
            level = logging.getLevelName(str(args.get("level", "INFO")).upper())
            if not isinstance(level, int):
                fail(BAD_ARGS, f"unknown log level {args.get('level')!r}", "use INFO, DEBUG...")
            self._session.log_level = level
            return {"level": logging.getLevelName(level)}, b""

        @self.command(Command.PING)
        def ping(args: dict, data: bytes) -> tuple[dict, bytes]:
            # Echoes the data only when asked: a bulk upload test gets a small reply.
            return {"args": args, "received": len(data)}, data if args.get("echo") else b""


class _Busy:
    """While a handler runs, a timer thread sends BUSY frames so the host keeps waiting."""

    def __init__(self, agent: Agent, seq: int) -> None:
        self._agent, self._seq = agent, seq
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(BUSY_INTERVAL_S):
            self._agent._send(Frame(Kind.BUSY, self._seq))


class _LinkLogHandler(logging.Handler):
    """Forwards the unit's log records to a subscribed host (never its own, no loops)."""

    def __init__(self, agent: Agent) -> None:
        super().__init__()
        self._agent = agent
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "on", False):
            return
        self._busy.on = True
        try:
            self._agent.send_log(
                {
                    "t": round(record.created, 3),
                    "level": record.levelname,
                    "logger": record.name,
                    "msg": record.getMessage()[:4000],  # a record always fits a frame
                },
                record.levelno,
            )
        except Exception:  # a log record must never break the command that logged it
            self.handleError(record)
        finally:
            self._busy.on = False


# --- bedside agent ---------------------------------------------------------------------


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``agent`` to ``bedside``'s subcommands."""
    parser = commands.add_parser(
        "agent",
        help="the maintenance agent: serve bedside-host over a serial port or URL",
        description="Serve the maintenance link (pairing, status, flashing, logs) on a port "
        "until SIGTERM. Hosts must authenticate; see docs/hardware-engineer.md.",
        epilog="examples:\n"
        "  bedside agent --port /dev/ttyGS0 --state /var/lib/bedside\n"
        "  bedside agent --port listen://127.0.0.1:7000 --state /tmp/unit",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", required=True, help="device path, pyserial URL or listen://")
    parser.add_argument("--state", default="/var/lib/bedside", help="state folder")
    parser.add_argument("--trace", action="store_true", help="hexdump every frame to stderr")
    return parser


def run_command(args: argparse.Namespace) -> int:
    """``bedside agent``: serve until SIGTERM/SIGINT; 0 after a clean stop."""
    agent = Agent(args.port, state_dir=Path(args.state), trace=sys.stderr if args.trace else None)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: agent.stop())
    print(f"bedside agent: {agent.identity['device_id']} on {agent.url}", flush=True)
    agent.serve_forever()
    return 0
