"""Constants and the error class of the link protocol, shared by the unit and the host."""

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
PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
#: The largest frame body either side offers (64 KiB of data plus header room); the link
#: uses the smaller of the two offers.
DEFAULT_MAX_FRAME = 65536 + 1024 + 12
#: Room kept for a request's JSON header when computing ``max_data``.
HEADER_RESERVE = 1024


class LinkError(BedsideError):
    """The link failed: no reply after the retries (E301), port closed or cut (E302),
    could not open (E300), incompatible unit (E303), request too large (E304)."""
