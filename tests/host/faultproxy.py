"""A TCP proxy that damages the link on purpose: drops, corrupts, delays, cuts, rate-limits.

    proxy = FaultProxy("socket://127.0.0.1:7000", Faults(drop=0.02, corrupt=0.02), seed=1)
    client = Client.open(proxy.url)          # everything now passes through the faults
    proxy.faults = Faults()                  # change them on the fly (e.g. after pairing)
    proxy.cut()                              # cut every open connection now

Bytes are forwarded in chunks of ``Faults.chunk`` bytes; each chunk, independently and per
direction, may be dropped or have one byte flipped, and is delayed. ``rate`` emulates a
serial line: bytes leave each direction at most at that rate (921600 baud = 92160 B/s with
start and stop bits). Faults are drawn from a seeded generator: a failing run repeats.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Faults:
    """What the proxy does to the bytes; all off by default."""

    drop: float = 0.0  #: probability that a chunk disappears
    corrupt: float = 0.0  #: probability that a chunk gets one byte flipped
    delay_s: float = 0.0  #: each chunk waits uniformly 0..delay_s (order is kept)
    cut_after: int | None = None  #: close a connection after this many bytes (both ways)
    cuts: int = 1  #: how many connections cut_after applies to (the first ones)
    rate: float | None = None  #: bytes per second per direction (None: as fast as TCP)
    chunk: int = 256  #: bytes per unit of damage
    directions: tuple[str, ...] = ("up", "down")  #: up = host to unit, down = unit to host


@dataclass
class Stats:
    """What the proxy did (for assertions that faults really happened)."""

    forwarded: int = 0
    dropped: int = 0
    corrupted: int = 0
    cut: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


class FaultProxy:
    """Listens on 127.0.0.1 (:attr:`url`) and forwards each connection to ``target``."""

    def __init__(self, target: str, faults: Faults | None = None, *, seed: int = 0) -> None:
        host, _, port = target.removeprefix("socket://").rpartition(":")
        self.target = (host, int(port))
        self.faults = faults or Faults()
        self.stats = Stats()
        self._random = random.Random(seed)
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self._server.getsockname()[1]}"

    def cut(self) -> None:
        """Close every open connection now (a pulled cable)."""
        with self._lock:
            sockets, self._open = self._open, []
        for s in sockets:
            _close(s)
        if sockets:
            self.stats.add(cut=1)

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._server.close()
        self._thread.join(timeout=2)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                host_side, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            try:
                unit_side = socket.create_connection(self.target, timeout=2)
            except OSError:
                _close(host_side)  # the unit is down: the host sees a cut
                continue
            for s in (host_side, unit_side):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(None)
            self.stats.add(connections=1)
            number = self.stats.connections
            budget = _Budget(self.faults.cut_after if number <= self.faults.cuts else None)
            with self._lock:
                self._open += [host_side, unit_side]
            pairs = ((host_side, unit_side, "up"), (unit_side, host_side, "down"))
            for src, dst, direction in pairs:
                seed = self._random.getrandbits(32)
                threading.Thread(
                    target=self._pump,
                    args=(src, dst, direction, random.Random(seed), budget),
                    daemon=True,
                ).start()

    def _pump(self, src, dst, direction: str, rng: random.Random, budget: _Budget) -> None:
        next_free = time.monotonic()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                faults = self.faults
                for start in range(0, len(data), faults.chunk):
                    piece = data[start : start + faults.chunk]
                    if not budget.take(len(piece)):
                        self.stats.add(cut=1)
                        raise OSError("cut")
                    if direction in faults.directions:
                        if faults.delay_s:
                            time.sleep(rng.uniform(0, faults.delay_s))
                        if rng.random() < faults.drop:
                            self.stats.add(dropped=len(piece))
                            continue
                        if rng.random() < faults.corrupt:
                            damaged = bytearray(piece)
                            damaged[rng.randrange(len(piece))] ^= 1 << rng.randrange(8)
                            piece = bytes(damaged)
                            self.stats.add(corrupted=1)
                    if faults.rate:
                        # Leave at the line's pace: wait until the line is free, then hold it
                        # for as long as the piece takes on the wire.
                        now = time.monotonic()
                        next_free = max(next_free, now) + len(piece) / faults.rate
                        if next_free - now > 0.002:
                            time.sleep(next_free - now)
                    dst.sendall(piece)
                    self.stats.add(forwarded=len(piece))
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


class _Budget:
    """Bytes a connection may still carry before it is cut (shared by both directions)."""

    def __init__(self, limit: int | None) -> None:
        self._left = limit
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        if self._left is None:
            return True
        with self._lock:
            self._left -= n
            return self._left >= 0


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
