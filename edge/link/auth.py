"""Trust on the link: Ed25519 public keys in text form and the challenge both sides sign.

A public key is written as one line, ``ed25519 <base64 of the 32 raw bytes> [name]``, in
``DIR/keys/authorized_hosts`` (one host per line, ``#`` comments) and ``release.pub``.

Challenge-response: the unit draws a fresh 32-byte nonce per attempt; the host signs
:func:`challenge_message` (a domain tag, the nonce, the device id, the host's public key and
both sides' ephemeral X25519 keys for the session, :mod:`edge.link.session`) and the unit
verifies it against ``authorized_hosts``. The unit forgets the nonce after one
attempt, whatever its outcome, and after :data:`CHALLENGE_TTL_S`, so a recorded signature is
worth nothing: it signs a nonce the unit will never ask for again.

The unit proves itself too: it has a key of its own (``DIR/keys/unit_key``, made at its
first start, :func:`load_unit_key`) and signs :func:`unit_message` (the nonce, its device id
and both ephemeral keys) in its challenge. The laptop checks that signature, and checks the
key against the one it knows the unit by (pinned at the first login: host_tools.keys), so a
device in line can neither swap the unit's session key nor play the unit with its own key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import BedsideError, fail
from ..files import atomic_write
from .codes import BAD_KEY_LINE

__all__ = [
    "CHALLENGE_TTL_S",
    "PublicKey",
    "add_authorized",
    "challenge_message",
    "load_unit_key",
    "raw_public",
    "read_authorized",
    "unit_message",
    "write_private_key",
]

CHALLENGE_TTL_S = 60.0
_TAG = b"bedside-link-auth-v2\x00"
_UNIT_TAG = b"bedside-link-unit-v2\x00"
UNIT_KEY_FILE = "unit_key"


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


def challenge_message(
    nonce: bytes,
    device_id: str,
    public_key: bytes,
    host_ephemeral: bytes,
    unit_ephemeral: bytes,
) -> bytes:
    """What the host signs to answer the unit's challenge ``nonce``: the login's transcript.

    The session keys are derived from it too, so both sides' view of every field must agree
    for the login to pass and the session to open."""
    device = device_id.encode()
    size = len(device).to_bytes(2, "big")
    return b"".join((_TAG, nonce, size, device, public_key, host_ephemeral, unit_ephemeral))


def unit_message(
    nonce: bytes, device_id: str, host_ephemeral: bytes, unit_ephemeral: bytes
) -> bytes:
    """What the unit signs with its own key in its challenge (a tag of its own: a host's
    signature can never pass for a unit's, nor the reverse)."""
    device = device_id.encode()
    size = len(device).to_bytes(2, "big")
    return b"".join((_UNIT_TAG, nonce, size, device, host_ephemeral, unit_ephemeral))


def raw_public(private: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of ``private``'s public key."""
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def write_private_key(path: Path, private: Ed25519PrivateKey) -> None:
    """Save ``private`` (PEM, PKCS#8) to ``path``: mode 0600 from the first byte (never
    readable by others, not even for a moment), in place atomically, and durable (a unit
    that lost its key to a power cut would make a new one, and laptops would refuse it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    atomic_write(path, pem, mode=0o600)


def load_unit_key(keys_dir: Path) -> Ed25519PrivateKey:
    """The unit's own key, ``keys_dir/unit_key``; made on first use. Raises OSError or
    ValueError when the file cannot be read or is not an Ed25519 key (the caller's E384:
    a unit must not quietly become another one)."""
    path = Path(keys_dir) / UNIT_KEY_FILE
    if not path.exists():
        write_private_key(path, Ed25519PrivateKey.generate())
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{UNIT_KEY_FILE} is not an Ed25519 private key")
    return private


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
    atomic_write(path, (old + key.line() + "\n").encode("utf-8"))
    return True
