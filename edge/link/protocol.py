"""Constants and the error class of the link protocol, shared by the unit and the host
(its command names: :mod:`edge.link.commands`; its error codes: :mod:`edge.link.codes`)."""

from __future__ import annotations

from ..errors import BedsideError

__all__ = [
    "DEFAULT_MAX_FRAME",
    "HEADER_RESERVE",
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "LinkError",
]

#: The version this code speaks; ``hello`` settles on the highest one both sides support.
#: Version 2 seals every frame after login (edge.link.session). Version 1 had no session
#: keys, so a v1 peer is refused (E303): its sessions could be read and steered by a device
#: in line. Supporting it would make the downgrade the attack.
PROTOCOL_VERSION = 2
SUPPORTED_VERSIONS = (2,)
#: The largest frame body either side offers (64 KiB of data plus header room and the
#: frame's own overhead, sealed: edge.link.frame.FRAME_OVERHEAD); the link uses the smaller
#: of the two offers.
DEFAULT_MAX_FRAME = 65536 + 1024 + 36
#: Room kept for a request's JSON header when computing ``max_data``.
HEADER_RESERVE = 1024


class LinkError(BedsideError):
    """The link failed: no reply after the retries (E301), port closed or cut (E302),
    could not open (E300), incompatible unit (E303), request too large (E304), login without
    session keys (E310, E311), frames that fail their seal (E312). Every code of the link is
    in :mod:`edge.link.codes`."""
