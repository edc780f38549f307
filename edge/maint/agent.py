"""The unit's maintenance agent: serves the link's commands to an authenticated host.

    bedside agent --port /dev/ttyGS0 --state /var/lib/bedside      # the USB gadget serial
    bedside agent --port listen://127.0.0.1:0 --state /tmp/unit    # a virtual unit

Until a host passes the challenge (its key in ``DIR/keys/authorized_hosts``), the agent
answers only ``hello``, ``identify``, the challenge itself and pairing; everything else gets
E320 and nothing more (not even whether the command exists).

The login also agrees on session keys (:mod:`edge.link.session`). From the answer to a
successful login on, every frame both ways is sealed; a frame that fails its seal, replays
an old counter, or comes unsealed is refused: dropped, counted in :attr:`Agent.stats`, and
logged once per connection (E312). Two unsealed requests are still heard after login:
``hello`` (a host that restarted starts a new session: a serial line gives no other sign of
it), and a repeat of the login request itself, answered again from the reply cache, sealed.
The reply cache belongs to the session (a ``hello`` or a new connection starts an empty one),
so a request recorded on one connection is never answered from it on another. Frames in and
out, sealed or plain, and the refusals go through :class:`edge.link.endpoint.Endpoint`, the
same code the host's client runs.

Connections. A serial line has one peer, served for the agent's whole life. A listening port
(``listen://``) serves up to :data:`MAX_PEERS` peers at once, each on a thread of its own with
its own session, so a peer that idles or stops reading holds up no other host; further peers
wait in the kernel's listen queue until one leaves. A peer of a listening port that has not
logged in within :data:`LOGIN_TIMEOUT_S` is closed. A write that the peer does not take within
:data:`SEND_TIMEOUT_S` fails: a socket peer is dropped, a serial line loses that frame and
stays (there is no one else to serve, and a host that reads again recovers by its retries).
Handlers run one at a time, whichever peer asked; the others get BUSY frames meanwhile.

Pairing (installing a first host key) needs physical access: it is accepted only while the
pairing window is open (:class:`PairingWindow`, ``DIR/pairing``): for :data:`PAIRING_WINDOW_S`
after the unit's pairing button (or a person at its console) created that file, measured on
the clock of this boot, which setting the wall clock does not move. A successful pairing
deletes the file. See docs/hardware-engineer.md.

Commands come from modules: the agent imports each of :data:`HANDLER_MODULES` that exists
and calls its ``register(agent)``, which adds handlers with :meth:`Agent.command`. Their
names are :class:`edge.link.commands.Command`; the error codes :mod:`edge.link.codes`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import contextlib
import importlib
import json
import logging
import math
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
from ..heartbeat import runtime_status
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
from ..link.transport import BytePort, ListeningPort, open_port
from ..store import STORE_NAME
from ..version import software_version

__all__ = [
    "Agent",
    "Handler",
    "HANDLER_MODULES",
    "LOGIN_TIMEOUT_S",
    "MAX_PEERS",
    "PAIRING_FILE",
    "PAIRING_WINDOW_S",
    "PairingWindow",
    "SEND_TIMEOUT_S",
    "add_parser",
    "boot_clock",
    "read_boot_id",
    "run_command",
]

log = logging.getLogger(__name__)

Handler = Callable[[dict, bytes], tuple[dict, bytes]]

#: Modules that add commands (``register(agent)``); those not installed are skipped.
HANDLER_MODULES = ("edge.maint.flash", "edge.maint.logs")
#: How long a pairing window stays open after the press (on the boot clock).
PAIRING_WINDOW_S = 600.0
#: The pairing window's file in the state folder.
PAIRING_FILE = "pairing"
#: How often the agent looks at DIR/pairing, so that a window opened with ``touch`` is
#: stamped with the boot clock within this long of the press (see :class:`PairingWindow`).
PAIRING_POLL_S = 1.0
#: A peer of a listening port that has been without a login this long (since it connected,
#: or since a ``hello`` ended its login) is closed. More than a slow login takes: the
#: client's own budget is 3 requests of 4 tries with 2 s of silence each (24 s).
LOGIN_TIMEOUT_S = 30.0
#: A frame the peer does not take within this long is given up (and a socket peer dropped).
#: A whole 64 KiB frame crosses a 115200-baud line in under 6 s.
SEND_TIMEOUT_S = 10.0
#: Peers a listening port serves at once; as many more wait in the kernel's listen queue.
MAX_PEERS = 4
#: A running handler tells the host it is alive this often (a BUSY frame).
BUSY_INTERVAL_S = 0.2
#: Replies kept for repeated requests (a host that missed a reply asks again, same seq).
REPLY_CACHE = 8
# How long one read of the port waits: short, as a serial read returns only when it times
# out or fills its buffer, and that wait is latency.
_READ_WAIT_S = 0.005
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

STATE_DIR = "E384"


def boot_clock() -> float:
    """Seconds since boot, suspend included (CLOCK_BOOTTIME: the clock of ``/proc/uptime``);
    setting the wall clock does not move it. The monotonic clock where there is none."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.monotonic()


def read_boot_id() -> str:
    """This boot's id (Linux); ``-`` on a system without one, where a pairing stamp is then
    judged by the boot clock alone."""
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip() or "-"
    except (OSError, ValueError):
        return "-"


class PairingWindow:
    """The pairing window, ``DIR/pairing``: open for ``window_s`` after the pairing button.

    It is judged by the boot clock (:func:`boot_clock`), never by the wall clock alone: the
    file holds this boot's id and the boot clock at the press, ``BOOT_ID SECONDS`` (what
    :meth:`press` writes; a shell writes the same from ``/proc/sys/kernel/random/boot_id`` and
    the first field of ``/proc/uptime``). A file without that stamp (``touch``), or stamped
    in another boot, is judged once by its mtime: open if that is at most ``window_s`` old
    and not in the future, and then stamped with the boot clock, as if pressed that long
    ago; the agent looks every :data:`PAIRING_POLL_S`, so a touched file gets its stamp
    within a second of the press. A window found closed has its file deleted. So a change
    of the wall clock can close a window, never open one again, and a stamped window ignores
    it. Thread-safe.

    Args:
        path: the file (``DIR/pairing``).
        window_s: how long a window stays open.
        clock, wall, boot_id: the boot clock, the wall clock and this boot's id (tests pass
            their own).
    """

    def __init__(
        self,
        path: Path,
        *,
        window_s: float = PAIRING_WINDOW_S,
        clock: Callable[[], float] = boot_clock,
        wall: Callable[[], float] = time.time,
        boot_id: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.window_s = window_s
        self.clock = clock
        self.wall = wall
        self.boot_id = boot_id or read_boot_id()
        self._lock = threading.Lock()

    def press(self) -> None:
        """Open the window now (what the pairing button does); raises OSError when the
        file cannot be written."""
        with self._lock:
            self._stamp(self.clock())

    def is_open(self) -> bool:
        """True while the window is open. Stamps a file that has no stamp of this boot yet,
        and deletes one found closed."""
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime
                pressed = self._pressed(self.path.read_bytes()[:256])
            except OSError:  # no window (or a file that cannot be read: none either)
                return False
            now = self.clock()
            if pressed is None:  # touched, or stamped in another boot: its mtime, once
                age = self.wall() - mtime
                if 0 <= age <= self.window_s:
                    pressed = now - age
                    with contextlib.suppress(OSError):  # unstamped: judged so again
                        self._stamp(pressed)
            if pressed is not None and 0 <= now - pressed <= self.window_s:
                return True
            # Closed for good: a later clock change must not find the file and reopen it.
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
            return False

    def close(self) -> None:
        """End the window (a key was paired: one per press)."""
        with self._lock, contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)

    def _pressed(self, stamp: bytes) -> float | None:
        """The boot clock at the press, from a stamp of this boot; None for anything else."""
        try:
            boot_id, seconds = stamp.decode("ascii").split()
            pressed = float(seconds)
        except (UnicodeDecodeError, ValueError):
            return None
        return pressed if boot_id == self.boot_id and math.isfinite(pressed) else None

    def _stamp(self, pressed: float) -> None:
        atomic_write(self.path, f"{self.boot_id} {pressed:.3f}\n".encode("ascii"))


class _Session:
    """What the agent knows about the host at the other end of a connection right now."""

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
        #: The last replies by request seq, with the key of the host they belong to (None:
        #: public). This session's alone: a login recorded elsewhere never gets its answer.
        self.replies: collections.OrderedDict[int, tuple[Frame, bytes | None]] = (
            collections.OrderedDict()
        )


class _Connection:
    """One peer of the agent: its port, its frame path and session, and how it writes.

    A serial line is one connection for the agent's whole life (a host that restarts says
    ``hello``); a peer of a listening port is one from its accept to its close."""

    def __init__(
        self,
        port: BytePort | None,
        link: Endpoint,
        *,
        write: Callable[[bytes], object],
        login_timeout_s: float | None = None,
    ) -> None:
        self.port = port
        self.link = link
        self.write = write
        self.session = _Session()
        #: Held while a frame is sealed and written: counters reach the wire in order.
        self.write_lock = threading.RLock()
        self.log_seq = 0
        self._login_timeout_s = login_timeout_s
        self._anonymous_since: float | None = time.monotonic()

    @property
    def is_open(self) -> bool:
        """False once the peer has gone (a serial line never goes)."""
        return getattr(self.port, "is_open", True)

    def login_overdue(self) -> bool:
        """True when the peer has been without a login for longer than it may be."""
        if self._login_timeout_s is None or self.session.host is not None:
            self._anonymous_since = None
            return False
        now = time.monotonic()
        if self._anonymous_since is None:  # logged in before, and a hello ended it
            self._anonymous_since = now
        return now - self._anonymous_since > self._login_timeout_s


class Agent:
    """The maintenance agent on ``port_url`` with the unit's state in ``state_dir``.

    ``login_timeout_s``, ``send_timeout_s`` and ``max_peers`` bound what one peer can hold
    (see the module doc); the defaults are :data:`LOGIN_TIMEOUT_S`, :data:`SEND_TIMEOUT_S`
    and :data:`MAX_PEERS`.
    """

    def __init__(
        self,
        port_url: str,
        *,
        state_dir: Path,
        hardware: str | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        trace: TextIO | None = None,
        modules: tuple[str, ...] = HANDLER_MODULES,
        login_timeout_s: float = LOGIN_TIMEOUT_S,
        send_timeout_s: float = SEND_TIMEOUT_S,
        max_peers: int = MAX_PEERS,
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
        #: The pairing window (DIR/pairing).
        self.pairing = PairingWindow(self.state_dir / PAIRING_FILE)
        self._handlers: dict[str, tuple[Handler, bool]] = {}
        self._trace = trace
        self._login_timeout_s = login_timeout_s
        #: Frames refused since start (failed seal, replayed, unsealed after login), damaged
        #: frames dropped, and peers dropped (not logged in in time, or not reading).
        self.stats = {"bad_frames": 0, "refused": 0, "dropped": 0}
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the set of connections
        self._connections: set[_Connection] = set()
        self._local = threading.local()  # the connection a thread serves
        self._run_lock = threading.Lock()  # one handler at a time, whoever asked
        self._pairing_due = 0.0
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
        self.port = open_port(
            port_url, timeout=_READ_WAIT_S, write_timeout=send_timeout_s, max_peers=max_peers
        )
        self.url = getattr(self.port, "url", port_url)
        # The port's own connection: a serial line's one peer. A listening port's peers
        # each get their own; there it serves only callers of _receive on other threads.
        # Its writes go through _send_wire, looked up at each call (tests capture them).
        serial = not isinstance(self.port, ListeningPort)
        self._main = self._connection_for(
            self.port if serial else None, lambda wire: self._send_wire(wire)
        )

    # --- the API for handler modules ---------------------------------------------------

    def command(self, name: str, *, auth: bool | None = None) -> Callable[[Handler], Handler]:
        """Decorator: ``handler(args, data) -> (reply, data)`` answers command ``name``.

        ``auth=False`` serves it before authentication; by default only the commands of
        :data:`edge.link.commands.PUBLIC` are (identification, login and pairing). A handler
        raises BedsideError for a clean error that reaches the host. Handlers run one at a
        time, whichever connection asked."""
        needs_auth = name not in PUBLIC if auth is None else auth

        def add(handler: Handler) -> Handler:
            if name in self._handlers:
                raise ValueError(f"command {name!r} registered twice")
            self._handlers[name] = (handler, needs_auth)
            return handler

        return add

    @property
    def authenticated_host(self) -> PublicKey | None:
        """The key the host being served proved (None before authentication); in a
        handler, the host that sent the request."""
        return self._session.host

    def serve_forever(self) -> None:
        """Serve hosts until :meth:`stop` (from another thread or a signal handler)."""
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
            if isinstance(self.port, ListeningPort):
                self._accept_peers(self.port)
            else:
                self._serve_connection(self._main)
        finally:
            logging.getLogger("edge").removeHandler(self._log_handler)
            self.port.close()

    def stop(self) -> None:
        """Make :meth:`serve_forever` return (within a few milliseconds)."""
        self._stop.set()

    # --- connections ---------------------------------------------------------------------

    @property
    def _connection(self) -> _Connection:
        """The connection this thread serves (the port's own one on any other thread)."""
        return getattr(self._local, "connection", self._main)

    @property
    def _session(self) -> _Session:
        return self._connection.session

    def _connection_for(
        self, port: BytePort | None, write: Callable[[bytes], object], **options: Any
    ) -> _Connection:
        link = Endpoint(
            max_frame=max(self.max_frame, MIN_FRAME), trace=self._trace, stats=self.stats
        )
        return _Connection(port, link, write=write, **options)

    def _accept_peers(self, server: ListeningPort) -> None:
        """Accept peers until :meth:`stop`, each served on a thread of its own."""
        threads: list[threading.Thread] = []
        try:
            while not self._stop.is_set():
                self._watch_pairing()
                peer = server.accept()
                if peer is None:
                    continue
                connection = self._connection_for(
                    peer, peer.write, login_timeout_s=self._login_timeout_s
                )
                thread = threading.Thread(
                    target=self._serve_connection,
                    args=(connection,),
                    name=f"agent-peer-{peer.address[1]}",
                    daemon=True,
                )
                thread.start()
                threads = [t for t in threads if t.is_alive()] + [thread]
        finally:
            with self._lock:
                for connection in self._connections:
                    connection.port.drop()  # wakes its thread, even in a write
            for thread in threads:
                thread.join(timeout=1.0)

    def _serve_connection(self, connection: _Connection) -> None:
        """Serve ``connection`` until :meth:`stop`, or until its peer leaves or is dropped."""
        self._local.connection = connection
        with self._lock:
            self._connections.add(connection)
        try:
            while not self._stop.is_set() and connection.is_open:
                self._watch_pairing()
                chunk = connection.port.read(65536)
                for item, wire in connection.link.receive(chunk):
                    if not connection.is_open:
                        break  # dropped while it was served: the rest is not answered
                    self._receive(item, wire)
                if connection.login_overdue():
                    self.stats["dropped"] += 1
                    log.info("closed a connection not logged in within %g s", self._login_timeout_s)
                    break
        finally:
            with self._lock:
                self._connections.discard(connection)
            if connection is not self._main:
                connection.port.close()

    def _watch_pairing(self) -> None:
        """Look at the pairing window now and then: a touched file gets its stamp at once."""
        now = time.monotonic()
        if now >= self._pairing_due:
            self._pairing_due = now + PAIRING_POLL_S
            self.pairing.is_open()

    # --- serving -------------------------------------------------------------------------

    def _receive(self, item: Frame | Sealed, wire: bytes = b"") -> None:
        """Serve one frame from this thread's connection if its session lets it in (see the
        module doc)."""
        connection = self._connection
        session = connection.session
        current = True
        if isinstance(item, Sealed):
            frame, current = self._open(connection, item)
            if frame is None:
                return
        else:
            frame = item
        if frame.kind != Kind.REQUEST or frame.channel != Channel.COMMANDS:
            return
        connection.link.traced(frame, wire, sealed=isinstance(item, Sealed))
        if isinstance(item, Frame) and session.cipher is not None:
            if frame.header.get("cmd") == Command.HELLO:
                pass  # a host that restarted: hello starts a new session
            elif frame.seq == session.login_seq and session.before_login is None:
                current = False
            else:
                connection.link.refuse("an unsealed request after login")
                return
        if not current:  # the login's request sent again: its answer, nothing runs
            if frame.seq in session.replies:
                self._send(session.replies[frame.seq][0])
            else:
                connection.link.refuse("a repeat of a login whose answer is forgotten")
            return
        self._serve(frame)

    def _open(self, connection: _Connection, sealed: Sealed) -> tuple[Frame | None, bool]:
        """The frame in ``sealed`` and whether the session's current seals opened it (the
        seals before the login open only a repeat of the login's request)."""
        session = connection.session
        before = session.before_login if sealed.seq == session.login_seq else None
        opened = connection.link.open(
            sealed, session.cipher, before, unsealed="a sealed frame on a link not logged in"
        )
        if opened is None:
            return None, False
        frame, seal = opened
        return frame, seal is session.cipher

    def _serve(self, request: Frame) -> None:
        connection = self._connection
        cached = connection.session.replies.get(request.seq)
        host = connection.session.host
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
            if needs_auth and host is None:
                fail(
                    NOT_AUTHENTICATED,
                    "this host is not authenticated",
                    "pair it with bedside-host keys authorize (see the hardware guide)",
                )
            if entry is None:
                fail(UNKNOWN_COMMAND, f"the unit has no command {name!r}", "update the unit")
            if not isinstance(args, dict):
                fail(BAD_ARGS, f"{name}: arguments are not an object", "update bedside-host")
            # BUSY frames from the start: the wait for another peer's handler counts too.
            with _Busy(self, connection, request.seq), self._run_lock:
                header, data = entry[0](args, request.data)
            reply = Frame(Kind.REPLY, request.seq, header, data)
            if body_size(reply) > connection.session.max_frame:
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
        session = connection.session  # hello replaces it
        if session.login is not None and reply.kind == Kind.REPLY:
            # A login passed: its answer is the first frame under the new seals (the host
            # holds them already), and the host counts as authenticated from here on.
            session.host, cipher = session.login
            session.before_login, session.login_seq = session.cipher, request.seq
            session.cipher = cipher
        session.login = None
        self._send(reply)
        # Every reply is kept, the handshake's too: a duplicate challenge must not draw a new
        # nonce behind the host's back. Only the host that asked (the same key) gets an
        # authenticated reply again.
        if reply.kind == Kind.ERROR and reply.header.get("code") == NOT_AUTHENTICATED:
            return  # nothing ran: once authenticated, the same request must run
        owner = session.host.raw if needs_auth and session.host else None
        session.replies[request.seq] = (reply, owner)
        while len(session.replies) > REPLY_CACHE:
            session.replies.popitem(last=False)

    def _send(self, frame: Frame, connection: _Connection | None = None) -> None:
        """Write ``frame`` to ``connection`` (this thread's), sealed once logged in."""
        connection = connection or self._connection
        if not connection.is_open:
            return  # the peer has gone (its first failed write said so): nobody to tell
        try:
            # Sealed under the lock: counters must reach the wire in the order they were taken.
            with connection.write_lock:
                connection.write(connection.link.wire(frame, connection.session.cipher))
        except OSError as exc:  # serial.SerialException is an OSError
            if isinstance(exc, TimeoutError):  # a socket peer that does not read: dropped
                self.stats["dropped"] += 1
            # Outside the lock: the record may stream to hosts (never two locks at once).
            log.warning("link write failed: %s", exc)

    def _send_wire(self, wire: bytes) -> None:
        """Write to the port's own connection: the serial line (a listening port has no
        peer of its own: the bytes go nowhere, as on a line with no cable)."""
        if self._main.port is not None:
            self._main.port.write(wire)

    def send_log(self, record: dict, level: int) -> None:
        """Stream one log record to every host that is logged in and subscribed."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            session = connection.session
            if session.cipher is None or session.log_level is None or level < session.log_level:
                continue  # never in the clear: only a logged-in, sealed session subscribes
            with connection.write_lock:
                connection.log_seq += 1
                frame = Frame(Kind.LOG, connection.log_seq, record, channel=Channel.LOGS)
            self._send(frame, connection)

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
            connection = self._connection
            connection.session = _Session()  # a new host session: authenticate again
            connection.link.new_session()
            self._session.max_frame = max(MIN_FRAME, min(wanted, self.max_frame))
            return {
                "protocol": max(common),
                "max_frame": self._session.max_frame,
                "session": self._session.id,
                "device_id": self.identity["device_id"],
            }, b""

        @self.command(Command.IDENTIFY)
        def identify(args: dict, data: bytes) -> tuple[dict, bytes]:
            # Whether `bedside run` records (its heartbeat beside the store): operational
            # state like pairing_open, no health data; a stopped runtime is its E392 line.
            runtime = runtime_status(self.state_dir / STORE_NAME)
            return {
                **self.identity,
                "unit_key": PublicKey(self.unit_key).fingerprint,
                "protocol": PROTOCOL_VERSION,
                "max_frame": self._session.max_frame,
                "authenticated": self._session.host is not None,
                "pairing_open": self.pairing.is_open(),
                "runtime": runtime["text"],
                "runtime_state": runtime["state"],
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
            if self._session.host is None and not already and not self.pairing.is_open():
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
                self.pairing.close()  # one key per window
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

    def __init__(self, agent: Agent, connection: _Connection, seq: int) -> None:
        self._agent, self._connection, self._seq = agent, connection, seq
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(BUSY_INTERVAL_S):
            self._agent._send(Frame(Kind.BUSY, self._seq), self._connection)


class _LinkLogHandler(logging.Handler):
    """Forwards the unit's log records to subscribed hosts (never its own, no loops)."""

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
    parser.add_argument(
        "-p", "--port", required=True, help="device path, pyserial URL or listen://"
    )
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
