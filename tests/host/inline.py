"""A device spliced in line between laptop and unit: the fault proxy, but it sees frames.

    proxy = InlineProxy(unit_url)
    proxy.tamper = lambda direction, wire: [wire]      # forward as is (the default)
    proxy.send("down", forged_wire)                    # inject toward the host
    proxy.captured["up"]                               # every byte the host sent

Each whole frame (up to its 0x00 delimiter) goes through ``tamper(direction, wire)``, which
returns the frames to forward in its place: none (dropped), an altered one, or more. It runs
on the proxy's thread for that direction. ``captured`` keeps what crossed, before tampering:
what a passive observer on the cable reads. Connections, cuts and the rest are the fault
proxy's (tests/host/faultproxy.py).
"""

from __future__ import annotations

import socket
import threading
import zlib
from collections.abc import Callable

from cobs import cobs
from faultproxy import FaultProxy, _close

Tamper = Callable[[str, bytes], list[bytes]]


class InlineProxy(FaultProxy):
    """Forwards frame by frame through :attr:`tamper`; records both directions."""

    def __init__(self, target: str, *, seed: int = 0) -> None:
        self.tamper: Tamper | None = None
        self.captured = {"up": bytearray(), "down": bytearray()}
        self._to: dict[str, socket.socket] = {}
        self._send_locks = {"up": threading.Lock(), "down": threading.Lock()}
        super().__init__(target, seed=seed)

    def send(self, direction: str, wire: bytes) -> None:
        """Inject ``wire`` toward the unit ("up") or the host ("down") now."""
        with self._send_locks[direction]:
            self._to[direction].sendall(wire)

    def _pump(self, src, dst, direction: str, rng, budget) -> None:
        self._to[direction] = dst
        pending = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.stats.add(forwarded=len(data))
                *frames, pending = (pending + data).split(b"\x00")
                for body in frames:
                    wire = body + b"\x00"
                    self.captured[direction] += wire
                    for out in self.tamper(direction, wire) if self.tamper else [wire]:
                        self.send(direction, out)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def rewrite(wire: bytes, change: Callable[[bytearray], None]) -> bytes:
    """``wire`` with its body changed by ``change`` and its CRC-32 made right again, so only
    a check the attacker cannot recompute (the seal) can catch the change."""
    body = bytearray(cobs.decode(wire[:-1])[:-4])
    change(body)
    return cobs.encode(bytes(body) + zlib.crc32(body).to_bytes(4, "big")) + b"\x00"
