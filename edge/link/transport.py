"""Byte transports: any pyserial port or URL, plus a listening socket; the one way ports open.

The host always opens a port with pyserial (a device path, ``socket://``, ``loop://``...), so
the simulator and the tests take the same code path as a cable. The unit side opens the same
kinds of port, and one more: ``listen://HOST:PORT`` (the virtual unit), a TCP server whose
peers are byte ports of their own (:class:`ListeningPort`, :class:`PeerPort`), each one like
a serial line that ends when the peer goes away.
The sensor's serial source (:mod:`edge.sources.serial`) opens its port with
:func:`open_port` too, and turns a :class:`PortError` into its own error (E240).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

import serial

from .codes import OPEN_FAILED
from .protocol import LinkError

__all__ = ["BytePort", "ListeningPort", "PeerPort", "PortError", "open_port"]


class PortError(LinkError):
    """A port that cannot be opened (E300); ``reason`` is the exception that stopped it."""

    def __init__(self, message: str, reason: BaseException) -> None:
        super().__init__(OPEN_FAILED, message)
        self.reason = reason


class BytePort(Protocol):
    """What the link needs of a port (a subset of ``serial.Serial``)."""

    timeout: float | None

    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    def close(self) -> None: ...


class ListeningPort:
    """A TCP server that serves up to ``max_peers`` peers at once, each a :class:`PeerPort`.

    :meth:`accept` waits (up to ``timeout``) for the next peer. While ``max_peers`` are
    connected it accepts nobody: further peers wait in the kernel's listen queue (as long
    again), and are accepted in turn as peers leave; past that queue, connecting fails.
    ``write_timeout`` is each peer's: a write the peer has not taken whole within it fails,
    and the peer is dropped (:meth:`PeerPort.write`), so a peer that does not read blocks its
    writer no longer than that.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 0.1,
        write_timeout: float | None = None,
        max_peers: int = 1,
    ) -> None:
        if max_peers < 1:
            raise ValueError(f"max_peers must be at least 1, got {max_peers}")
        self.timeout = timeout
        self.write_timeout = write_timeout
        self.max_peers = max_peers
        self._slots = threading.BoundedSemaphore(max_peers)
        self._server = socket.create_server((host, port), backlog=max_peers)
        self._server.settimeout(timeout)

    @property
    def url(self) -> str:
        """The URL a host connects to (``socket://HOST:PORT``)."""
        host, port = self._server.getsockname()[:2]
        return f"socket://{host}:{port}"

    def accept(self) -> PeerPort | None:
        """The next peer, or None when none came within ``timeout`` (or all slots are taken)."""
        if not self._slots.acquire(timeout=self.timeout):
            return None
        try:
            sock, address = self._server.accept()
        except OSError:  # TimeoutError: nobody came; or the server was closed
            self._slots.release()
            return None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return PeerPort(
            sock,
            address,
            timeout=self.timeout,
            write_timeout=self.write_timeout,
            on_close=self._slots.release,
        )

    def close(self) -> None:
        """Stop listening (peers already accepted stay open until closed)."""
        self._server.close()


class PeerPort:
    """One TCP peer of a :class:`ListeningPort`, as a byte port.

    ``read`` waits up to ``timeout`` for bytes (``b""`` when none came); once the peer has
    gone it returns ``b""`` at once and :attr:`is_open` is False. ``write`` gives up when the
    peer has not taken all of it within ``write_timeout`` (None: no limit): the peer is
    dropped and ``write`` raises TimeoutError. Writes may come from several threads under the
    caller's lock; reads and :meth:`close` from the one thread that owns the peer.
    """

    def __init__(
        self,
        sock: socket.socket,
        address: tuple,
        *,
        timeout: float,
        write_timeout: float | None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.write_timeout = write_timeout
        self.is_open = True
        # One fixed timeout for every call on the socket (threads never race on settimeout):
        # a write waits in steps of it until its own deadline.
        sock.settimeout(timeout)
        self._sock = sock
        self._on_close = on_close
        self._closed = False

    def read(self, size: int = 65536) -> bytes:
        """What the peer sent, up to ``timeout`` waited (``b""``: nothing, or it has gone)."""
        if not self.is_open:
            return b""
        try:
            data = self._sock.recv(max(size, 65536))
        except TimeoutError:
            return b""
        except OSError:
            data = b""
        if not data:  # the peer closed, or was dropped by a write
            self.close()
        return data

    def write(self, data: bytes) -> int:
        """Send all of ``data``; raises OSError (the peer is then dropped) when it cannot."""
        if not self.is_open:
            raise ConnectionError("the peer has gone")
        deadline = None if self.write_timeout is None else time.monotonic() + self.write_timeout
        view = memoryview(data)
        try:
            while view:
                try:
                    view = view[self._sock.send(view) :]
                except TimeoutError:  # no room yet: the peer is not reading
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"the peer did not take a frame within {self.write_timeout:g} s "
                            "(it is not reading): dropped"
                        ) from None
        except OSError:
            self.drop()
            raise
        return len(data)

    def drop(self) -> None:
        """End the connection (the peer sees it closed; this side's reader sees it gone),
        from any thread; the socket itself is closed by :meth:`close`."""
        self.is_open = False
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Drop the peer and free its socket and its slot (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        self.drop()
        self._sock.close()
        if self._on_close is not None:
            self._on_close()


def open_port(
    url: str,
    *,
    baudrate: int = 921600,
    timeout: float = 0.05,
    write_timeout: float | None = None,
    exclusive: bool | None = None,
    listen: bool = True,
    max_peers: int = 1,
):
    """Open ``url``: a device path, a pyserial URL, or ``listen://HOST:PORT`` (unit side, a
    :class:`ListeningPort` serving up to ``max_peers`` at once; ``listen=False`` leaves that
    scheme to pyserial, which refuses it).

    ``timeout`` is how long one read waits; ``write_timeout`` how long one write may take
    before it fails (None: no limit); ``exclusive`` goes to pyserial when given (no other
    program may hold the device). Raises :class:`PortError` (E300) when the port cannot be
    opened."""
    if listen and url.startswith("listen://"):
        host, _, port = url.removeprefix("listen://").rpartition(":")
        try:
            return ListeningPort(
                host or "127.0.0.1",
                int(port),
                timeout=timeout,
                write_timeout=write_timeout,
                max_peers=max_peers,
            )
        except (ValueError, OSError) as exc:
            raise PortError(
                f"cannot listen on {url}: {exc} — pick a free port, e.g. listen://127.0.0.1:0",
                exc,
            ) from exc
    options = {"write_timeout": write_timeout, "exclusive": exclusive}
    try:
        return serial.serial_for_url(
            url,
            baudrate=baudrate,
            timeout=timeout,
            **{name: value for name, value in options.items() if value is not None},
        )
    except (serial.SerialException, ValueError, OSError) as exc:
        raise PortError(
            f"cannot open port {url}: {exc} — check the cable and the path (bedside-host "
            "devices lists ports) or the URL",
            exc,
        ) from exc
