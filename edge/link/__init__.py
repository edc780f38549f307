"""The maintenance link: one wire protocol for the unit's agent and the host tools.

    from edge.link import Client, Command
    with Client.open("socket://127.0.0.1:7000") as unit:
        print(unit.identify())
        unit.authenticate(host_key)
        reply, data = unit.call(Command.LOGS_FILES)

Layers, bottom up: :mod:`~edge.link.transport` (pyserial ports and URLs, the one way a port
opens), :mod:`~edge.link.frame` (CRC-32 frames, plain and sealed, channels, on the COBS
stream of :mod:`edge.wire`), :mod:`~edge.link.session` (X25519 session keys bound to the
login, ChaCha20-Poly1305 on every frame after it), :mod:`~edge.link.auth` (Ed25519
challenge-response) and :mod:`~edge.link.endpoint` (one end of the link: frames in and out,
sealed or plain, and what is refused). Both sides build on the endpoint: the host's
:mod:`~edge.link.client` (request/response, retries, negotiation) and the unit's
:class:`edge.maint.agent.Agent`. The vocabulary both speak is one table each:
:mod:`~edge.link.commands` (the command names), :mod:`~edge.link.codes` (the error codes
E300-E339, docs/errors.md) and :mod:`~edge.link.protocol` (version, frame sizes, LinkError).

The names below are imported when first used, so that a part of the unit that only opens a
port (the sensor's serial source) does not load the cryptography of the client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .auth import PublicKey
    from .client import Client, Signer
    from .commands import Command
    from .frame import Channel, Frame, FrameDecoder, FrameError, Kind
    from .protocol import DEFAULT_MAX_FRAME, PROTOCOL_VERSION, LinkError
    from .transport import open_port

__all__ = [
    "DEFAULT_MAX_FRAME",
    "PROTOCOL_VERSION",
    "Channel",
    "Client",
    "Command",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "Kind",
    "LinkError",
    "PublicKey",
    "Signer",
    "open_port",
]

# Where each public name lives.
_HOMES = {
    "DEFAULT_MAX_FRAME": "protocol",
    "PROTOCOL_VERSION": "protocol",
    "LinkError": "protocol",
    "Channel": "frame",
    "Frame": "frame",
    "FrameDecoder": "frame",
    "FrameError": "frame",
    "Kind": "frame",
    "Client": "client",
    "Signer": "client",
    "Command": "commands",
    "PublicKey": "auth",
    "open_port": "transport",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
