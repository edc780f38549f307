"""The maintenance link: one wire protocol for the unit's agent and the host tools.

    from edge.link import Client
    with Client.open("socket://127.0.0.1:7000") as unit:
        print(unit.identify())
        unit.authenticate(host_key)
        reply, data = unit.call("logs.read", {"since": 0})

Layers: :mod:`~edge.link.transport` (pyserial ports and URLs), :mod:`~edge.link.frame`
(COBS + CRC-32 frames, plain and sealed, channels), :mod:`~edge.link.client`
(request/response, retries, negotiation), :mod:`~edge.link.auth` (Ed25519
challenge-response) and :mod:`~edge.link.session` (X25519 session keys bound to the login,
ChaCha20-Poly1305 on every frame after it). The unit side is :class:`edge.agent.Agent`.
Error codes E300-E339 (docs/errors.md).
"""

from __future__ import annotations

from .auth import PublicKey
from .client import Client, Signer
from .frame import Channel, Frame, FrameDecoder, FrameError, Kind
from .protocol import DEFAULT_MAX_FRAME, PROTOCOL_VERSION, LinkError
from .transport import open_port

__all__ = [
    "DEFAULT_MAX_FRAME",
    "PROTOCOL_VERSION",
    "Channel",
    "Client",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "Kind",
    "LinkError",
    "PublicKey",
    "Signer",
    "open_port",
]
