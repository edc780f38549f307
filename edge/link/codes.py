"""The link's error codes and what each means: the one table, for the unit and the host.

E300-E319 are the link's own (ports, frames, requests, sealing), E320-E339 keys and
authentication. The agent, its handler modules, the client and the host tools take their codes
from here; an error raised on the unit reaches the host with the same code and message.
docs/errors.md explains each one to users, with what to do (tests/host/test_link.py checks
that it lists every code of :data:`MEANINGS`).
"""

from __future__ import annotations

__all__ = [
    "BAD_ARGS",
    "BAD_FRAME",
    "BAD_KEY_FILE",
    "BAD_KEY_LINE",
    "BAD_REPLY",
    "BAD_SEAL",
    "CLOSED",
    "HANDLER_FAILED",
    "KEY_EXISTS",
    "KEY_REFUSED",
    "MEANINGS",
    "NOT_AUTHENTICATED",
    "NOT_SEALED",
    "NOT_THE_UNIT",
    "NO_CHALLENGE",
    "NO_KEY",
    "NO_SESSION_KEY",
    "OPEN_FAILED",
    "PAIRING_CLOSED",
    "TIMED_OUT",
    "TOO_LARGE",
    "UNIT_KEY_CHANGED",
    "UNKNOWN_COMMAND",
    "VERSION_MISMATCH",
]

# --- the link (E300-E319) -------------------------------------------------------------------
OPEN_FAILED = "E300"
TIMED_OUT = "E301"
CLOSED = "E302"
VERSION_MISMATCH = "E303"
TOO_LARGE = "E304"
BAD_FRAME = "E305"
UNKNOWN_COMMAND = "E306"
HANDLER_FAILED = "E307"
BAD_REPLY = "E308"
BAD_ARGS = "E309"
NO_SESSION_KEY = "E310"
NOT_SEALED = "E311"
BAD_SEAL = "E312"
NOT_THE_UNIT = "E313"
# --- keys and authentication (E320-E339) ----------------------------------------------------
NOT_AUTHENTICATED = "E320"
KEY_REFUSED = "E321"
NO_CHALLENGE = "E322"
PAIRING_CLOSED = "E323"
NO_KEY = "E324"
BAD_KEY_FILE = "E325"
BAD_KEY_LINE = "E326"
KEY_EXISTS = "E327"
UNIT_KEY_CHANGED = "E328"

#: Every code of the link, and where it comes from and what it means, in a line.
MEANINGS: dict[str, str] = {
    OPEN_FAILED: "the port cannot be opened (on the unit: listen:// cannot be bound)",
    TIMED_OUT: "no reply: every try of a request met silence",
    CLOSED: "the link was cut or closed and could not be reopened within the retries",
    VERSION_MISMATCH: "host and unit speak different link protocol versions",
    TOO_LARGE: "a request or reply is larger than the link's negotiated frames",
    BAD_FRAME: "a frame that does not decode (COBS, CRC-32, layout, header): dropped",
    UNKNOWN_COMMAND: "the unit has no such command",
    HANDLER_FAILED: "the command failed on the unit with an unexpected error",
    BAD_REPLY: "the unit sent a malformed reply",
    BAD_ARGS: "the unit refused a malformed request",
    NO_SESSION_KEY: "the unit refused a login without a usable session key",
    NOT_SEALED: "the unit's challenge or login answer came without the session's seal",
    BAD_SEAL: "frames that fail their seal (altered, replayed, unsealed) were refused",
    NOT_THE_UNIT: "the unit's challenge is not signed by the unit key it shows",
    NOT_AUTHENTICATED: "this host is not authenticated on this link",
    KEY_REFUSED: "the unit refused the host key or its signature",
    NO_CHALLENGE: "no challenge is pending, or it expired",
    PAIRING_CLOSED: "pairing refused: the unit's pairing window is closed",
    NO_KEY: "no host key (or release key) in the keys folder",
    BAD_KEY_FILE: "a key file is unreadable, not an Ed25519 key, or readable by others",
    BAD_KEY_LINE: "a public key line is malformed",
    KEY_EXISTS: "keys init: the key already exists",
    UNIT_KEY_CHANGED: "the unit proved itself with another key than the one pinned for it",
}
