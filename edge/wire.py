"""COBS byte streams: the framing under both wires of the unit, written once.

The sensor's UART (frames of :mod:`edge.firmware.protocol`, decoded by
:mod:`edge.sources.frames`) and the maintenance link (:mod:`edge.link.frame`) send a frame the
same way: ``COBS(body) + b"\\x00"``. COBS removes every zero byte from what it encodes, so
0x00 only ever ends a frame: a receiver that starts mid-stream, or loses bytes, picks up again
at the next zero. What a body holds (its CRC, its layout) is each wire's own; this module
knows only the bytes around it:

- :class:`CobsStream` splits a byte stream, arriving in any chunking, into the encoded blocks
  between delimiters. It holds at most ``max_encoded`` bytes of an unfinished block: a longer
  run without a delimiter is dropped as it grows, up to the next delimiter, and comes out as
  ``None`` in its place, so memory stays bounded whatever arrives, and the stream picks up
  again at the next delimiter;
- :func:`cobs_decode` undoes COBS, with one error for a block that is not COBS
  (:class:`CobsError`); :func:`cobs_frame` is the sender's side;
- :func:`max_encoded` is the largest encoded block a body of a given size makes.

The firmware encodes its frames itself (:func:`edge.firmware.protocol.frame`: MicroPython,
standing alone); the unit checks them against this independent implementation.
"""

from __future__ import annotations

from cobs import cobs

__all__ = ["CobsError", "CobsStream", "cobs_decode", "cobs_frame", "max_encoded"]


class CobsError(ValueError):
    """Bytes that are not a valid COBS block."""


def cobs_decode(block: bytes) -> bytes:
    """The body that the COBS ``block`` (without its delimiter) encodes; raises
    :class:`CobsError` when it is not COBS (a zero byte in it, or a length code that runs
    past its end)."""
    try:
        return cobs.decode(block)
    except cobs.DecodeError:
        raise CobsError("not a valid COBS block") from None


def cobs_frame(body: bytes) -> bytes:
    """The wire bytes of ``body``: COBS-encoded and ended by the 0x00 delimiter."""
    return cobs.encode(body) + b"\x00"


def max_encoded(max_body: int) -> int:
    """The largest COBS block a body of ``max_body`` bytes encodes to (COBS adds one byte
    per 254 and one at the start; one more is kept to spare)."""
    return max_body + max_body // 254 + 2


class CobsStream:
    """Splits a byte stream at its 0x00 delimiters, holding at most ``max_encoded`` bytes.

    :meth:`split` returns, in order, each block that ``chunk`` completes, without its
    delimiter: ``b""`` for an empty one (a delimiter sent to resynchronise), and a block as it
    came whatever its length (the caller checks it against its own bound, as it checks the
    rest of it). Only what the stream holds is bounded: an unfinished block that grows past
    ``max_encoded`` is dropped as it grows, up to the next delimiter, and comes out as
    ``None`` in its place. :attr:`dropped_bytes` and :attr:`overruns` count those as they
    happen.
    """

    def __init__(self, max_encoded: int) -> None:
        self.max_encoded = max_encoded
        self._held = bytearray()
        self._dropping = False  # inside an over-long block: dropping up to the next 0x00
        #: Bytes of over-long blocks dropped (not their delimiters), since the start.
        self.dropped_bytes = 0
        #: Blocks dropped for growing past ``max_encoded``, since the start.
        self.overruns = 0

    @property
    def buffered(self) -> int:
        """Bytes held of the unfinished block (never more than ``max_encoded``)."""
        return len(self._held)

    def reset(self) -> None:
        """Forget an unfinished block (after a reconnect)."""
        self._held.clear()
        self._dropping = False

    def split(self, chunk: bytes) -> list[bytes | None]:
        """Take ``chunk``; return the blocks it completes (see the class)."""
        blocks = bytes(chunk).split(b"\x00")
        tail = blocks.pop()  # no delimiter after it (yet)
        if blocks and (self._held or self._dropping):
            blocks[0] = self._complete(blocks[0])
        if tail:
            self._hold(tail)
        return blocks

    def _complete(self, piece: bytes) -> bytes | None:
        """The held block that ``piece`` ends (None: it was over-long, and dropped)."""
        if self._dropping:
            self.dropped_bytes += len(piece)
            self._dropping = False
            return None
        block = bytes(self._held) + piece
        self._held.clear()
        return block

    def _hold(self, piece: bytes) -> None:
        if self._dropping:
            self.dropped_bytes += len(piece)
        elif len(self._held) + len(piece) > self.max_encoded:
            self.dropped_bytes += len(self._held) + len(piece)
            self.overruns += 1
            self._held.clear()
            self._dropping = True
        else:
            self._held += piece
