"""The sensor link's frame format, written once for the firmware and the unit.

This module runs under MicroPython (on the sensor MCU) and under CPython (the unit imports
its constants, and test sensors reuse its encoder), so it uses only the common subset:
no f-strings, no dataclasses, integers that stay small, buffers passed in by the caller.

A frame on the wire is ``COBS(body + crc16) + b"\\x00"``. COBS removes every zero byte from
the encoded part, so ``0x00`` only ever marks the end of a frame: a receiver that starts
mid-stream or loses bytes resynchronises at the next zero, and no sample value can look
like a delimiter. The CRC (CRC-16/CCITT-FALSE, little-endian) covers the whole body. A body
is at most :data:`MAX_BODY` bytes, so the CRC-protected frame stays below 254 bytes and COBS
adds exactly one byte: a frame of ``n`` samples is always ``2 * n + 8`` bytes on the wire.

Bodies (all integers little-endian):

- samples, sensor to unit: ``'S' seq:u16 count:u8 count*sample:u16`` where ``seq`` counts
  frames since the last start (wrapping at 65536) and every frame of a stream holds the same
  number of samples, so a jump of ``k`` in ``seq`` means ``k * count`` samples were lost.
- info, sensor to unit (answer to identify): ``'i' tag:u8 protocol:u8 rate:u16 spf:u8
  streaming:u8 uid_len:u8 uid version`` where ``version`` is ASCII text to the end.
- ack / nack, sensor to unit: ``'a' tag:u8 command:u8`` / ``'n' tag:u8 command:u8 reason:u8``.
- commands, unit to sensor: ``command:u8 tag:u8 args`` with ``'I'`` identify, ``'G'`` start,
  ``'H'`` stop, ``'R'`` set rate (``rate:u16`` in Hz, only while stopped). ``tag`` is echoed
  in the answer so the unit can match answers among sample frames.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


PROTOCOL_VERSION = const(1)
MAX_BODY = const(251)  # body + 2 CRC bytes < 254: COBS then adds exactly one byte
MAX_WIRE = const(254)  # MAX_BODY + CRC + COBS code byte + delimiter

T_SAMPLES = const(0x53)  # 'S'
T_INFO = const(0x69)  # 'i'
T_ACK = const(0x61)  # 'a'
T_NACK = const(0x6E)  # 'n'

C_IDENTIFY = const(0x49)  # 'I'
C_START = const(0x47)  # 'G'
C_STOP = const(0x48)  # 'H'
C_RATE = const(0x52)  # 'R'

# Why a command was refused (the last byte of a nack).
R_UNKNOWN = const(1)  # not a command this firmware knows
R_BAD_ARG = const(2)  # wrong length or a value out of range
R_BUSY = const(3)  # not allowed while streaming (set rate: stop first)

RATE_MIN = const(50)
RATE_MAX = const(1000)
RATE_DEFAULT = const(250)
SAMPLES_HEADER = const(4)  # 'S' seq:u16 count:u8
MAX_SAMPLES = const(100)  # per frame: 2 * 100 + 4 + 2 < 254


def samples_per_frame(rate):
    """Samples in each frame at ``rate`` Hz: ten frames a second, 5 to 100 samples."""
    return max(5, min(MAX_SAMPLES, rate // 10))


def _make_table():
    table = [0] * 256
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table[byte] = crc & 0xFFFF
    return table


_CRC_TABLE = _make_table()


def crc16(buf, start, stop):
    """CRC-16/CCITT-FALSE of ``buf[start:stop]`` (poly 0x1021, init 0xFFFF); allocates nothing."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for i in range(start, stop):
        crc = ((crc << 8) & 0xFF00) ^ table[(crc >> 8) ^ buf[i]]
    return crc


def seal(body, n, wire):
    """Append the CRC to ``body[:n]`` and write the wire frame into ``wire``.

    ``body`` needs room for ``n + 2`` bytes and ``wire`` for ``n + 4``; ``n`` is at most
    :data:`MAX_BODY`. Returns the number of wire bytes (``n + 4``, delimiter included).
    Allocates nothing, so the firmware can call it on every frame.
    """
    crc = crc16(body, 0, n)
    body[n] = crc & 0xFF
    body[n + 1] = crc >> 8
    return cobs_encode(body, n + 2, wire)


def cobs_encode(src, n, dst):
    """COBS-encode ``src[:n]`` into ``dst`` and append the 0x00 delimiter; returns the length."""
    code_at = 0  # where the current block's length byte goes
    out = 1
    code = 1
    for i in range(n):
        b = src[i]
        if b:
            dst[out] = b
            out += 1
            code += 1
        if not b or code == 0xFF:
            dst[code_at] = code
            code_at = out
            out += 1
            code = 1
    dst[code_at] = code
    dst[out] = 0
    return out + 1


def cobs_decode(src, n, dst):
    """Decode the COBS block ``src[:n]`` (no delimiter) into ``dst``; -1 if it is not valid."""
    i = 0
    out = 0
    while i < n:
        code = src[i]
        if code == 0 or i + code > n:
            return -1
        i += 1
        for _ in range(code - 1):
            b = src[i]
            if b == 0:
                return -1
            dst[out] = b
            out += 1
            i += 1
        if code != 0xFF and i < n:
            dst[out] = 0
            out += 1
    return out


def frame(body):
    """The wire bytes of one frame with ``body`` (a convenience for hosts and tests)."""
    n = len(body)
    if n > MAX_BODY:
        raise ValueError("frame body too long")
    buf = bytearray(n + 2)
    buf[:n] = body
    wire = bytearray(n + 4)
    return bytes(wire[: seal(buf, n, wire)])
