"""Byte transports: any pyserial port or URL, plus a listening socket; the one way ports open.

The host always opens a port with pyserial (a device path, ``socket://``, ``loop://``...), so
the simulator and the tests take the same code path as a cable. The unit side opens the same
kinds of port, and one more: ``listen://HOST:PORT`` accepts TCP connections one at a time
(the virtual unit), and looks to the agent like a serial port whose cable gets replugged.
The sensor's serial source (:mod:`edge.sources.serial`) opens its port with
:func:`open_port` too, and turns a :class:`PortError` into its own error (E240).
"""

from __future__ import annotations

import socket
from typing import Protocol

import serial

from .codes import OPEN_FAILED
from .protocol import LinkError

__all__ = ["BytePort", "ListeningPort", "PortError", "open_port"]


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
    """A TCP server that serves one peer at a time as a byte port.

    ``read`` waits (up to ``timeout``) for a peer and then for its bytes; when the peer goes
    away, ``read`` returns ``b""`` and the next call waits for a new peer. ``generation``
    counts peers, so the agent can forget the previous peer's session (and authentication).
    """

    def __init__(self, host: str, port: int, *, timeout: float = 0.1) -> None:
        self.timeout = timeout
        self.generation = 0
        self._server = socket.create_server((host, port))
        self._server.settimeout(timeout)
        self._peer: socket.socket | None = None

    @property
    def url(self) -> str:
        """The URL a host connects to (``socket://HOST:PORT``)."""
        host, port = self._server.getsockname()[:2]
        return f"socket://{host}:{port}"

    def read(self, size: int = 1) -> bytes:
        if self._peer is None:
            try:
                peer, _ = self._server.accept()
            except (TimeoutError, BlockingIOError):
                return b""
            peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._peer = peer
            self.generation += 1
        self._peer.settimeout(self.timeout)
        try:
            data = self._peer.recv(max(size, 65536))
        except TimeoutError:
            return b""
        except OSError:
            data = b""
        if not data:
            self._drop_peer()
        return data

    def write(self, data: bytes) -> int:
        if self._peer is None:
            return 0  # nobody listening: like a serial line with no cable
        try:
            self._peer.settimeout(None)
            self._peer.sendall(data)
        except OSError:
            self._drop_peer()
            return 0
        return len(data)

    def _drop_peer(self) -> None:
        if self._peer is not None:
            self._peer.close()
            self._peer = None

    def close(self) -> None:
        self._drop_peer()
        self._server.close()


def open_port(
    url: str,
    *,
    baudrate: int = 921600,
    timeout: float = 0.05,
    write_timeout: float | None = None,
    exclusive: bool | None = None,
    listen: bool = True,
):
    """Open ``url``: a device path, a pyserial URL, or ``listen://HOST:PORT`` (unit side;
    ``listen=False`` leaves that scheme to pyserial, which refuses it).

    ``timeout`` is how long one read waits; ``write_timeout`` and ``exclusive`` go to pyserial
    when given (``exclusive``: no other program may hold the device). Raises
    :class:`PortError` (E300) when the port cannot be opened."""
    if listen and url.startswith("listen://"):
        host, _, port = url.removeprefix("listen://").rpartition(":")
        try:
            return ListeningPort(host or "127.0.0.1", int(port), timeout=timeout)
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
