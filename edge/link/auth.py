"""Trust on the link: Ed25519 public keys in text form and the challenge both sides sign.

A public key is written as one line, ``ed25519 <base64 of the 32 raw bytes> [name]``, in
``DIR/keys/authorized_hosts`` (one host per line, ``#`` comments) and ``release.pub``.

Challenge-response: the unit draws a fresh 32-byte nonce per attempt; the host signs
:func:`challenge_message` (a domain tag, the nonce, the device id and the host's public key)
and the unit verifies it against ``authorized_hosts``. The unit forgets the nonce after one
attempt, whatever its outcome, and after :data:`CHALLENGE_TTL_S`, so a recorded signature is
worth nothing: it signs a nonce the unit will never ask for again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import BedsideError, fail

__all__ = [
    "CHALLENGE_TTL_S",
    "PublicKey",
    "add_authorized",
    "challenge_message",
    "read_authorized",
]

CHALLENGE_TTL_S = 60.0
BAD_KEY_LINE = "E326"
_TAG = b"bedside-link-auth-v1\x00"


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key with the name it was given."""

    raw: bytes
    name: str = ""

    @classmethod
    def parse(cls, line: str) -> PublicKey:
        """Parse ``ed25519 BASE64 [name]``; raises BedsideError E326 when malformed."""
        parts = line.strip().split(maxsplit=2)
        if len(parts) < 2 or parts[0] != "ed25519":
            fail(BAD_KEY_LINE, "not a public key line (ed25519 BASE64 NAME)", "check the file")
        try:
            raw = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            fail(BAD_KEY_LINE, "public key is not 32 bytes of base64", "copy the key again")
        return cls(raw, parts[2] if len(parts) > 2 else "")

    def line(self) -> str:
        """The one-line text form."""
        text = f"ed25519 {base64.b64encode(self.raw).decode()}"
        return f"{text} {self.name}" if self.name else text

    @property
    def fingerprint(self) -> str:
        """A short, stable name for the key (safe to print: it is public)."""
        return "SHA256:" + base64.b64encode(hashlib.sha256(self.raw).digest()).decode()[:16]

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` is this key's signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def challenge_message(nonce: bytes, device_id: str, public_key: bytes) -> bytes:
    """What the host signs to answer the unit's challenge ``nonce``."""
    return _TAG + nonce + device_id.encode() + b"\x00" + public_key


def read_authorized(path: Path) -> list[PublicKey]:
    """The keys in an ``authorized_hosts`` file (none when it does not exist).

    A malformed line is skipped rather than locking every host out; it names its line."""
    if not path.exists():
        return []
    keys = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            keys.append(PublicKey.parse(line))
        except BedsideError:
            logging.getLogger(__name__).warning("%s line %d is malformed", path.name, number)
    return keys


def add_authorized(path: Path, key: PublicKey) -> bool:
    """Append ``key`` to ``authorized_hosts`` (atomic, fsynced); False when already there."""
    existing = read_authorized(path)
    if any(k.raw == key.raw for k in existing):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(old + key.line() + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True
