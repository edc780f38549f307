"""The unit's side of the sensor link: decode what the firmware sends, encode commands.

The format itself (COBS-delimited frames with a CRC-16, their bodies and constants) is defined
once, in :mod:`edge.firmware.protocol`, which the firmware runs too; this module adds what
only the unit needs: a streaming :class:`FrameDecoder` that resynchronises past garbage and
counts what it threw away, typed frames, and :class:`Sequencer`, which turns sequence numbers
into gaps. The COBS stream underneath (splitting at the delimiter, the bound on a frame
without one, COBS itself) is the one both wires share, :mod:`edge.wire`; it and
:func:`binascii.crc_hqx` (the same CRC) are independent of the firmware's own encoder, so both
directions are checked against another implementation.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

import numpy as np

from edge.errors import BedsideError
from edge.firmware import protocol as p
from edge.wire import CobsError, CobsStream, cobs_decode

__all__ = [
    "AckFrame",
    "FrameDecoder",
    "FrameError",
    "InfoFrame",
    "LinkCounters",
    "SampleFrame",
    "Sequencer",
    "decode_frame",
    "encode_command",
]

SEQ_MODULUS = 1 << 16


class FrameError(BedsideError):
    """A frame that cannot be used: E244 malformed (COBS, length, type), E245 CRC mismatch."""


@dataclass(frozen=True)
class SampleFrame:
    """``count`` consecutive ADC samples (int32 counts); ``seq`` counts frames, mod 65536."""

    seq: int
    samples: np.ndarray


@dataclass(frozen=True)
class InfoFrame:
    """The sensor's answer to identify."""

    tag: int
    protocol: int
    rate: int
    samples_per_frame: int
    streaming: bool
    unique_id: str  # hex
    firmware: str


@dataclass(frozen=True)
class AckFrame:
    """The answer to a command: ``ok`` or refused with ``reason`` (``protocol.R_*``)."""

    tag: int
    command: int
    ok: bool
    reason: int = 0


Frame = SampleFrame | InfoFrame | AckFrame


@dataclass
class LinkCounters:
    """What the decoder and the source have seen on the link since they were made."""

    bytes_in: int = 0
    frames: int = 0  # valid frames of any kind
    crc_errors: int = 0
    malformed: int = 0  # bad COBS, impossible length or unknown type
    garbage_bytes: int = 0  # bytes thrown away: bad frames and over-long runs without a delimiter
    gaps: int = 0
    samples_lost: int = 0
    duplicates: int = 0  # frames with an old sequence number, dropped
    disconnects: int = 0
    reconnects: int = 0


def _malformed(what: str) -> FrameError:
    return FrameError(
        "E244",
        f"malformed sensor frame: {what} — bytes were lost or corrupted on "
        "the link; the source skips it and resynchronises at the next frame",
    )


def decode_frame(encoded: bytes) -> Frame:
    """One frame from its COBS bytes (without the 0x00 delimiter).

    Raises :class:`FrameError` (and nothing else) for anything that is not a valid frame:
    E244 when it is malformed, E245 when the CRC does not match.
    """
    if len(encoded) > p.MAX_WIRE - 1:
        raise _malformed(f"{len(encoded)} bytes, more than a frame can hold")
    try:
        body = cobs_decode(encoded)
    except CobsError:
        raise _malformed("not a valid COBS block") from None
    if len(body) < 3:
        raise _malformed(f"{len(body)} bytes, too short")
    crc = body[-2] | body[-1] << 8
    body = body[:-2]
    if binascii.crc_hqx(body, 0xFFFF) != crc:
        raise FrameError(
            "E245",
            "sensor frame failed its CRC check — bytes were corrupted on the "
            "link (check the cable, its shielding and the baud rate); it is skipped",
        )
    kind = body[0]
    if kind == p.T_SAMPLES:
        if len(body) < p.SAMPLES_HEADER + 2:
            raise _malformed("sample frame without samples")
        seq, count = struct.unpack_from("<HB", body, 1)
        if count == 0 or len(body) != p.SAMPLES_HEADER + 2 * count:
            raise _malformed(f"sample frame says {count} samples in {len(body)} bytes")
        samples = np.frombuffer(body, "<u2", count, p.SAMPLES_HEADER).astype(np.int32)
        return SampleFrame(seq, samples)
    if kind == p.T_INFO:
        if len(body) < 8 or len(body) < 8 + body[7]:
            raise _malformed("info frame too short")
        tag, protocol, rate, spf, streaming, uid_len = struct.unpack_from("<BBHBBB", body, 1)
        uid = body[8 : 8 + uid_len].hex()
        version = body[8 + uid_len :].decode("ascii", "replace")
        return InfoFrame(tag, protocol, rate, spf, bool(streaming), uid, version)
    if kind == p.T_ACK and len(body) == 3:
        return AckFrame(body[1], body[2], True)
    if kind == p.T_NACK and len(body) == 4:
        return AckFrame(body[1], body[2], False, body[3])
    raise _malformed(f"unknown type 0x{kind:02x} or wrong length {len(body)}")


def encode_command(command: int, tag: int, rate: int | None = None) -> bytes:
    """The wire bytes of a command (``protocol.C_*``), preceded by a delimiter.

    The leading 0x00 ends whatever partial frame the sensor may hold (line noise, a command
    cut by a reconnect), so this command is never glued to garbage.
    """
    body = bytes([command, tag & 0xFF])
    if rate is not None:
        body += struct.pack("<H", rate)
    return b"\x00" + p.frame(body)


class FrameDecoder(CobsStream):
    """Splits a byte stream into frames; never raises on bad input, counts it instead.

    ``feed(data)`` returns the valid frames completed by ``data``, in order. A frame that fails
    to decode is counted (``crc_errors`` / ``malformed``) and its bytes as ``garbage_bytes``;
    a run of bytes longer than any frame without a delimiter is dropped as it grows, so
    memory stays bounded whatever arrives (:attr:`buffered` stays below ``MAX_WIRE``). The
    stream is :class:`edge.wire.CobsStream`; :meth:`reset` forgets a partial frame (after a
    reconnect).
    """

    def __init__(self, counters: LinkCounters | None = None) -> None:
        super().__init__(p.MAX_WIRE - 1)
        self.counters = counters if counters is not None else LinkCounters()

    def feed(self, data: bytes) -> list[Frame]:
        c = self.counters
        c.bytes_in += len(data)
        dropped, overruns = self.dropped_bytes, self.overruns
        frames: list[Frame] = []
        for encoded in self.split(data):
            if not encoded:
                continue  # an empty frame is a flush, not an error; None: counted below
            try:
                frames.append(decode_frame(encoded))
            except FrameError as error:
                c.garbage_bytes += len(encoded) + 1
                if error.code == "E245":
                    c.crc_errors += 1
                else:
                    c.malformed += 1
                continue
            c.frames += 1
        c.garbage_bytes += self.dropped_bytes - dropped
        c.malformed += self.overruns - overruns
        return frames


class Sequencer:
    """Frame sequence numbers (mod 65536) to lost samples; drops repeated frames.

    :meth:`accept` returns the number of samples lost just before a frame (0 normally), or
    ``None`` for a frame older than the last one accepted, which must not be delivered again.
    A jump of half the sequence space or more counts as old, not as a gap: the sensor sends
    ten frames a second, so 32768 frames (55 minutes) cannot be lost while frames still arrive
    (a stall restarts the stream first).
    """

    def __init__(self, expected: int | None = None) -> None:
        self.expected = expected

    def reset(self, expected: int | None = 0) -> None:
        """A new stream: after a start the sensor numbers frames from 0, so a first frame
        numbered 3 means 3 frames lost; ``None`` takes the next frame as it comes."""
        self.expected = expected

    def accept(self, frame: SampleFrame) -> int | None:
        if self.expected is None:
            missed = 0
        else:
            missed = (frame.seq - self.expected) % SEQ_MODULUS
            if missed >= SEQ_MODULUS // 2:
                return None
        self.expected = (frame.seq + 1) % SEQ_MODULUS
        return missed * len(frame.samples)
