"""Session keys from the login, and the AEAD that seals every frame after it (protocol 2).

Key agreement, bound to the Ed25519 login (:mod:`edge.link.auth`)::

    host -> unit   auth.challenge {ephemeral: host's X25519 public key}
    unit -> host   {nonce, device_id, ephemeral: the unit's X25519 public key}
    host -> unit   auth.response  {public_key, signature of the transcript}

The transcript (:func:`edge.link.auth.challenge_message`) holds the nonce, the device id,
the host's key and *both* ephemeral keys, so a device in line that swaps either ephemeral key
for its own breaks the signature and the unit refuses the login. Both sides then take
HKDF-SHA256 of the X25519 secret, salted with the transcript's SHA-256, for one
ChaCha20-Poly1305 key per direction (ChaCha20 because the unit's CPU has no AES
instructions). The ephemeral keys live for one login: a recorded session cannot be opened
later even with the host's long-term key.

Sealing (:class:`SessionCipher`): each frame gets the sender's next counter; the nonce is
the direction and the counter, the associated data the frame's head (kind, channel, seq,
counter: :func:`edge.link.frame.sealed_head`). A receiver takes only counters above the
last one it opened, so a recorded frame replayed, or an old one moved later, is refused.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import fail
from .codes import BAD_SEAL
from .frame import (
    Frame,
    FrameError,
    Sealed,
    decode_payload,
    encode_payload,
    encode_sealed,
    sealed_head,
)
from .protocol import LinkError

__all__ = ["KEY_SIZE", "KeyExchange", "SealError", "SessionCipher", "session_keys"]

KEY_SIZE = 32
_INFO = b"bedside-link-v2 session keys"
_NONCE = struct.Struct(">IQ")  # direction, counter
#: Nonce directions: each side seals with its own, and opens with the other's.
_DIRECTION = {"host": 1, "unit": 2}
_LAST_COUNTER = 2**64 - 1


class SealError(LinkError):
    """A sealed frame that does not open: altered, replayed, out of order, or another
    session's. The receiver drops it (and counts it)."""

    def __init__(self, message: str) -> None:
        super().__init__(BAD_SEAL, message)


def session_keys(shared: bytes, transcript: bytes) -> tuple[bytes, bytes]:
    """The (host-to-unit, unit-to-host) keys from the X25519 ``shared`` secret."""
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=2 * KEY_SIZE,
        salt=hashlib.sha256(transcript).digest(),
        info=_INFO,
    ).derive(shared)
    return okm[:KEY_SIZE], okm[KEY_SIZE:]


class KeyExchange:
    """One side's ephemeral X25519 key for one login."""

    def __init__(self, private: X25519PrivateKey | None = None) -> None:
        self._private = private or X25519PrivateKey.generate()
        #: The 32 raw bytes sent to the peer.
        self.public = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def cipher(self, peer: bytes, transcript: bytes, *, role: str, code: str) -> SessionCipher:
        """The session of ``role`` ("host" or "unit") with the peer's ephemeral key ``peer``.

        A key that is not 32 bytes, or a low-order point (its shared secret is all zeros),
        fails with ``code``: an honest peer never sends one."""
        try:
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(peer))
        except ValueError:
            fail(
                code,
                "the peer's session key is not a usable X25519 key",
                "update bedside-host and the unit; check nothing sits between them",
                error=LinkError,
            )
        host_to_unit, unit_to_host = session_keys(shared, transcript)
        if role == "host":
            return SessionCipher(host_to_unit, unit_to_host, role="host")
        return SessionCipher(unit_to_host, host_to_unit, role="unit")


class SessionCipher:
    """Seals what one side sends and opens what it receives, for one session.

    Not thread-safe: a sender with several threads seals and writes under one lock, so
    counters reach the wire in the order they were taken (the agent's write lock); frames
    are opened on the one thread that reads the link.
    """

    def __init__(self, send_key: bytes, receive_key: bytes, *, role: str) -> None:
        self._send = ChaCha20Poly1305(send_key)
        self._receive = ChaCha20Poly1305(receive_key)
        self._send_direction = _DIRECTION[role]
        self._receive_direction = _DIRECTION["unit" if role == "host" else "host"]
        self._next_counter = 0
        #: The last counter opened (-1: none yet); anything at or below it is refused.
        self.last_opened = -1

    def seal(self, frame: Frame) -> bytes:
        """The wire bytes of ``frame`` sealed with the next counter."""
        counter = self._next_counter
        if counter > _LAST_COUNTER:
            raise SealError("the session's frame counter is used up: log in again")
        self._next_counter += 1
        head = sealed_head(frame, counter)
        nonce = _NONCE.pack(self._send_direction, counter)
        return encode_sealed(head, self._send.encrypt(nonce, encode_payload(frame), head))

    def open(self, sealed: Sealed) -> Frame:
        """The frame inside ``sealed``; raises :class:`SealError` when it does not open."""
        if sealed.counter <= self.last_opened:
            raise SealError(
                f"sealed frame {sealed.counter} replayed or out of order "
                f"(frame {self.last_opened} was opened already)"
            )
        nonce = _NONCE.pack(self._receive_direction, sealed.counter)
        try:
            payload = self._receive.decrypt(nonce, sealed.box, sealed.head)
        except InvalidTag:
            raise SealError(
                "sealed frame fails its check (altered, or another session's)"
            ) from None
        try:
            frame = decode_payload(sealed.kind, sealed.channel, sealed.seq, payload)
        except FrameError as exc:  # sealed by the peer, yet malformed: still refused
            raise SealError(f"sealed frame holds a malformed frame ({exc})") from None
        self.last_opened = sealed.counter
        return frame
