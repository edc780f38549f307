"""Frames of the maintenance link: layout, CRC-32, COBS, and a streaming decoder.

One frame on the wire is ``COBS(body) + b"\\x00"``; the zero byte never occurs inside COBS
output, so a receiver that lost bytes re-synchronises at the next zero (the COBS stream is
:mod:`edge.wire`, the same for the sensor's frames). A plain ``body``
(before login: ``hello``, ``identify``, the challenge) is::

    offset  size  field
    0       1     kind     REQUEST, REPLY, ERROR, BUSY or LOG (:class:`Kind`)
    1       1     channel  COMMANDS (0) or LOGS (1): the log stream shares the link
    2       4     seq      request number (big-endian); a reply carries its request's seq
    6       2     hlen     length of the header
    8       hlen  header   UTF-8 JSON object (command name and arguments, or the reply)
    8+hlen  ...   data     raw bytes (bulk payload: chunks of a bundle, log rows)
    -4      4     crc      CRC-32 (zlib) of everything before it, big-endian

After login every frame is *sealed* (:mod:`edge.link.session`): the kind byte has
:data:`SEALED` set, and hlen, header and data travel encrypted::

    0       1     kind | 0x80
    1       1     channel
    2       4     seq
    6       8     counter  the sender's frame counter (big-endian), strictly increasing
    14      ...   box      AEAD ciphertext of hlen + header + data, then its 16-byte tag
    -4      4     crc      CRC-32 of everything before it

Bytes 0-13 (the *head*) stay readable: they route the frame, and they are the AEAD's
associated data, so they cannot be changed either. A frame whose CRC, layout or header does
not check out is dropped whole: the requester's timeout and retry recover it, so a damaged
frame is never half-used.
"""

from __future__ import annotations

import enum
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

from ..wire import CobsError, CobsStream, cobs_decode, cobs_frame, max_encoded
from .codes import BAD_FRAME
from .protocol import HEADER_RESERVE, LinkError

__all__ = [
    "FRAME_OVERHEAD",
    "MIN_FRAME",
    "SEALED",
    "TAG_SIZE",
    "Channel",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "Kind",
    "Sealed",
    "decode_body",
    "decode_payload",
    "encode_frame",
    "encode_payload",
    "encode_sealed",
    "hexdump",
    "max_data",
    "sealed_head",
    "trace_frame",
]

_HEAD = struct.Struct(">BBI")  # kind, channel, seq
_HLEN = struct.Struct(">H")
_PREFIX = struct.Struct(">BBIH")  # a plain body's head and hlen
_SEALED_HEAD = struct.Struct(">BBIQ")  # kind | SEALED, channel, seq, counter
_CRC = struct.Struct(">I")
#: The kind byte's flag for a sealed frame.
SEALED = 0x80
#: Bytes of the AEAD tag at the end of a sealed frame's box.
TAG_SIZE = 16
# The smallest plain body: head, hlen and CRC.
_PLAIN_OVERHEAD = _PREFIX.size + _CRC.size
#: Bytes of a body that are not header or data, for a sealed frame (the larger of the two
#: layouts): sizes are checked against it, so a frame that fits plain fits sealed too.
FRAME_OVERHEAD = _SEALED_HEAD.size + _HLEN.size + TAG_SIZE + _CRC.size
# Every unit accepts frames of this size before negotiation (the hello exchange fits in it).
MIN_FRAME = 1024


class Kind(enum.IntEnum):
    """What a frame is."""

    REQUEST = 1
    REPLY = 2
    ERROR = 3  # the reply to a request whose handler raised: header {code, message}
    BUSY = 4  # "still working on seq": keeps the requester from timing out and retrying
    LOG = 5  # one log record of the unit, on the LOGS channel, seq counts records


class Channel(enum.IntEnum):
    """The streams multiplexed on one link."""

    COMMANDS = 0
    LOGS = 1


class FrameError(LinkError):
    """A frame that cannot be decoded (bad COBS, CRC, layout or header): it is dropped."""

    def __init__(self, message: str) -> None:
        super().__init__(BAD_FRAME, message)


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    kind: Kind
    seq: int
    header: dict = field(default_factory=dict)
    data: bytes = b""
    channel: Channel = Channel.COMMANDS


@dataclass(frozen=True)
class Sealed:
    """A sealed frame as it arrived: its readable head, and the box only a session opens."""

    kind: Kind
    channel: Channel
    seq: int
    counter: int
    head: bytes  #: bytes 0-13 of the body, the AEAD's associated data
    box: bytes  #: ciphertext and tag


def encode_payload(frame: Frame) -> bytes:
    """``hlen + header + data`` of ``frame``: what a plain body carries after its head, and
    what a sealed one encrypts."""
    header = json.dumps(frame.header, separators=(",", ":")).encode()
    if len(header) > 0xFFFF:
        raise ValueError(f"frame header is {len(header)} bytes, at most 65535")
    return _HLEN.pack(len(header)) + header + frame.data


def decode_payload(kind: Kind, channel: Channel, seq: int, payload: bytes) -> Frame:
    """The frame whose ``hlen + header + data`` is ``payload``; raises :class:`FrameError`."""
    if len(payload) < _HLEN.size:
        raise FrameError("frame payload is shorter than its header length")
    (hlen,) = _HLEN.unpack_from(payload)
    if _HLEN.size + hlen > len(payload):
        raise FrameError(f"frame header length {hlen} runs past the frame")
    try:
        header = json.loads(payload[_HLEN.size : _HLEN.size + hlen])
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting: a hostile peer
        raise FrameError("frame header is not JSON") from None
    if not isinstance(header, dict):
        raise FrameError("frame header is not a JSON object")
    return Frame(kind, seq, header, bytes(payload[_HLEN.size + hlen :]), channel)


def _wire(body: bytes) -> bytes:
    """CRC-32 appended, COBS-encoded, delimited: a body as it goes on the wire."""
    return cobs_frame(body + _CRC.pack(zlib.crc32(body)))


def encode_frame(frame: Frame) -> bytes:
    """The bytes to write for plain ``frame``: COBS-encoded body and the 0x00 delimiter."""
    head = _HEAD.pack(int(frame.kind), int(frame.channel), frame.seq & 0xFFFFFFFF)
    return _wire(head + encode_payload(frame))


def sealed_head(frame: Frame, counter: int) -> bytes:
    """The readable first 14 bytes of ``frame`` sealed as the sender's ``counter``-th frame."""
    return _SEALED_HEAD.pack(
        int(frame.kind) | SEALED, int(frame.channel), frame.seq & 0xFFFFFFFF, counter
    )


def encode_sealed(head: bytes, box: bytes) -> bytes:
    """The bytes to write for a sealed frame: its head and box, CRC, COBS, delimiter."""
    return _wire(head + box)


def body_size(frame: Frame) -> int:
    """The size of ``frame``'s body, sealed (what the negotiated max_frame bounds)."""
    return FRAME_OVERHEAD + len(json.dumps(frame.header, separators=(",", ":"))) + len(frame.data)


def max_data(max_frame: int) -> int:
    """The most data one request or reply may carry in frames of ``max_frame`` bytes (room
    kept for the frame's own bytes and its JSON header)."""
    return max_frame - FRAME_OVERHEAD - HEADER_RESERVE


def _kind_channel(kind: int, channel: int) -> tuple[Kind, Channel]:
    try:
        return Kind(kind), Channel(channel)
    except ValueError:
        raise FrameError(f"unknown frame kind {kind} or channel {channel}") from None


def decode_body(body: bytes) -> Frame | Sealed:
    """Check and parse one body (COBS already removed); raises :class:`FrameError`.

    A sealed body comes back as :class:`Sealed`: only the session can open it."""
    if len(body) < _PLAIN_OVERHEAD:
        raise FrameError(f"frame of {len(body)} bytes is shorter than {_PLAIN_OVERHEAD}")
    (crc,) = _CRC.unpack_from(body, len(body) - _CRC.size)
    if zlib.crc32(body[: -_CRC.size]) != crc:
        raise FrameError("frame CRC mismatch")
    if body[0] & SEALED:
        if len(body) < _SEALED_HEAD.size + TAG_SIZE + _CRC.size:
            raise FrameError(f"sealed frame of {len(body)} bytes is too short")
        kind, channel, seq, counter = _SEALED_HEAD.unpack_from(body)
        kind, channel = _kind_channel(kind & ~SEALED, channel)
        head = bytes(body[: _SEALED_HEAD.size])
        return Sealed(
            kind, channel, seq, counter, head, bytes(body[_SEALED_HEAD.size : -_CRC.size])
        )
    kind, channel, seq = _HEAD.unpack_from(body)
    kind, channel = _kind_channel(kind, channel)
    return decode_payload(kind, channel, seq, body[_HEAD.size : -_CRC.size])


class FrameDecoder(CobsStream):
    """Splits a byte stream into frames; bytes may arrive in any chunking.

    ``feed`` yields a :class:`Frame`, a :class:`Sealed` or a :class:`FrameError` per
    delimited frame (errors are yielded, not raised, so the caller counts them and goes on).
    A run of bytes longer than an encoded ``max_frame`` without a delimiter is discarded up
    to the next delimiter: the buffer (:attr:`buffered`) never grows beyond that bound
    (:attr:`max_encoded`), whatever arrives. The stream is :class:`edge.wire.CobsStream`.
    """

    def __init__(self, max_frame: int = MIN_FRAME) -> None:
        super().__init__(max_encoded(max_frame))
        self.max_frame = max_frame
        #: The wire bytes of the frame (or error) yielded last, for ``--trace``.
        self.last_wire = b""

    @property
    def max_frame(self) -> int:
        return self._max_frame

    @max_frame.setter
    def max_frame(self, value: int) -> None:
        self._max_frame = value
        self.max_encoded = max_encoded(value)

    def feed(self, chunk: bytes) -> Iterator[Frame | Sealed | FrameError]:
        """Take ``chunk``; yield every frame (or error) it completes."""
        for encoded in self.split(chunk):
            if encoded is None or len(encoded) > self.max_encoded:
                self.last_wire = b"\x00"  # its bytes were dropped
                yield FrameError(f"frame longer than {self._max_frame} bytes")
                continue
            self.last_wire = encoded + b"\x00"
            if not encoded:  # an empty frame: a delimiter sent to resynchronise
                continue
            try:
                body = cobs_decode(encoded)
            except CobsError:
                yield FrameError("frame is not valid COBS")
                continue
            try:
                yield decode_body(body)
            except FrameError as exc:
                yield exc


def hexdump(data: bytes, limit: int = 256) -> str:
    """Classic 16-bytes-a-line hexdump of ``data`` (the first ``limit`` bytes)."""
    lines = []
    for offset in range(0, min(len(data), limit), 16):
        row = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in row)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"  {offset:08x}  {hexes:<47}  |{text}|")
    if len(data) > limit:
        lines.append(f"  ... {len(data) - limit} more bytes")
    return "\n".join(lines)


def trace_frame(
    out: TextIO, direction: str, frame: Frame, wire: bytes, *, sealed: bool = False
) -> None:
    """Print one frame for ``--trace``: a summary line, then a hexdump of its wire bytes
    (ciphertext when ``sealed``: the summary line is what it held)."""
    what = frame.header.get("cmd") or frame.header.get("code") or ""
    mark = " sealed" if sealed else ""
    out.write(
        f"{direction} {frame.kind.name}{mark} ch={frame.channel.name.lower()} seq={frame.seq} "
        f"header={body_size(frame) - FRAME_OVERHEAD - len(frame.data)}B "
        f"data={len(frame.data)}B wire={len(wire)}B "
        f"{what}\n{hexdump(wire)}\n"
    )
    out.flush()
