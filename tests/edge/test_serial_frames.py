"""The unit's frame decoder against the firmware's encoder: round trips, faults and fuzz."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import BedsideError
from edge.firmware import protocol as p
from edge.firmware.fake import FakeBoard
from edge.firmware.sensor import Sensor
from edge.link.frame import FrameDecoder as LinkFrameDecoder
from edge.sources.frames import (
    AckFrame,
    FrameDecoder,
    FrameError,
    InfoFrame,
    SampleFrame,
    Sequencer,
    decode_frame,
    encode_command,
)
from edge.wire import CobsStream


def sample_wire(seq: int, samples: list[int]) -> bytes:
    """A sample frame as the firmware builds it (its own encoder, run under CPython)."""
    body = struct.pack(f"<BHB{len(samples)}H", p.T_SAMPLES, seq, len(samples), *samples)
    return p.frame(body)


def frames_equal(a, b) -> bool:
    if isinstance(a, SampleFrame) and isinstance(b, SampleFrame):
        return a.seq == b.seq and np.array_equal(a.samples, b.samples)
    return a == b


def assert_frames(got, want) -> None:
    assert len(got) == len(want), (got, want)
    assert all(frames_equal(g, w) for g, w in zip(got, want, strict=True))


samples_st = st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=p.MAX_SAMPLES)
frames_st = st.lists(st.tuples(st.integers(0, 0xFFFF), samples_st), min_size=1, max_size=8)


def test_crc_and_cobs_match_the_independent_implementations():
    import binascii

    from cobs import cobs

    data = bytes(range(256)) * 2
    assert p.crc16(data, 0, len(data)) == binascii.crc_hqx(data, 0xFFFF)
    assert p.crc16(b"123456789", 0, 9) == 0x29B1  # the CRC-16/CCITT-FALSE check value
    wire = sample_wire(7, [0, 0xFF00, 0x00FF, 0xFFFF])
    assert wire[-1] == 0 and 0 not in wire[:-1]
    assert cobs.decode(wire[:-1])[0] == p.T_SAMPLES


def test_frame_length_is_fixed_by_sample_count():
    # COBS adds exactly one byte to a body below 254: the wire length depends on n only
    for n in (1, 25, 100):
        for fill in (0, 0xFFFF, 0x1200):
            assert len(sample_wire(1, [fill] * n)) == 2 * n + 8


@given(frames_st)
def test_round_trip(frames):
    wire = b"".join(sample_wire(seq, s) for seq, s in frames)
    got = FrameDecoder().feed(wire)
    assert_frames(got, [SampleFrame(seq, np.array(s, np.int32)) for seq, s in frames])


@given(frames_st, st.lists(st.integers(0, 2000), max_size=10))
def test_chunked_feed_equals_one_shot(frames, cuts):
    wire = b"".join(sample_wire(seq, s) for seq, s in frames)
    bounds = sorted({min(c, len(wire)) for c in cuts} | {0, len(wire)})
    dec = FrameDecoder()
    got = [f for a, b in zip(bounds, bounds[1:], strict=False) for f in dec.feed(wire[a:b])]
    assert_frames(got, FrameDecoder().feed(wire))


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_fuzz_decode_frame_raises_only_frame_error(data):
    try:
        decode_frame(data)
    except FrameError as exc:
        assert exc.code in ("E244", "E245")
        assert " — " in str(exc)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=400), max_size=8))
def test_fuzz_decoder_never_raises_and_stays_bounded(chunks):
    dec = FrameDecoder()
    for chunk in chunks:
        dec.feed(chunk)
        assert dec.buffered < p.MAX_WIRE
    c = dec.counters
    assert c.bytes_in == sum(map(len, chunks))


@settings(derandomize=True)
@given(frames_st, st.lists(st.binary(max_size=40), min_size=1, max_size=8))
def test_garbage_ending_in_a_delimiter_costs_no_frame(frames, garbage):
    wires = [sample_wire(seq, s) for seq, s in frames]
    stream = b""
    for i, w in enumerate(wires):
        stream += garbage[i % len(garbage)] + b"\x00" + w
    dec = FrameDecoder()
    assert_frames(dec.feed(stream), [SampleFrame(q, np.array(s, np.int32)) for q, s in frames])


@settings(derandomize=True)
@given(frames_st, st.binary(min_size=1, max_size=40))
def test_garbage_glued_to_a_frame_loses_only_that_frame(frames, garbage):
    wires = [sample_wire(seq, s) for seq, s in frames]
    stream = garbage + b"".join(wires)  # noise on the line just before the first frame
    got = FrameDecoder().feed(stream)
    want = [SampleFrame(q, np.array(s, np.int32)) for q, s in frames]
    assert len(got) in (len(want) - 1, len(want))  # the first survives if garbage ends in 0x00
    assert_frames(got[len(got) - len(want) + 1 :], want[1:])


def test_truncated_frames_are_dropped_and_counted():
    f1, f2, f3 = (sample_wire(i, [i * 1000 + k for k in range(25)]) for i in range(3))
    dec = FrameDecoder()
    for cut in range(1, len(f2) - 1):
        got = dec.feed(f1 + f2[:cut] + f2[-1:] + f3)  # bytes lost inside f2, its end kept
        assert [f.seq for f in got] == [0, 2]
    assert dec.counters.frames == 2 * (len(f2) - 2)
    assert dec.counters.crc_errors + dec.counters.malformed == len(f2) - 2
    assert dec.feed(f1[:10]) == []  # a frame without its end waits for more bytes
    assert [f.seq for f in dec.feed(f1[10:])] == [0]


def test_every_single_bit_error_is_caught():
    f1, f2, f3 = (sample_wire(i, [0x0100 * i + k for k in range(25)]) for i in range(3))
    dec = FrameDecoder()
    for bit in range(8 * (len(f2) - 1)):  # every bit but the delimiter's
        bad = bytearray(f2)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert [f.seq for f in dec.feed(f1 + bytes(bad) + f3)] == [0, 2], bit
    assert dec.counters.crc_errors > 0 and dec.counters.malformed > 0


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=60), max_size=10), st.integers(1, 40))
def test_the_cobs_stream_splits_alike_in_any_chunking(chunks, bound):
    # edge.wire.CobsStream, under both wires: the blocks do not depend on where the reads
    # cut the stream, and it never holds more than its bound.
    stream = b"".join(chunks)
    whole, cut = CobsStream(bound), CobsStream(bound)
    expected = whole.split(stream)
    got = []
    for chunk in chunks:
        got += cut.split(chunk)
        assert cut.buffered <= bound
    over = [b is None or len(b) > bound for b in expected]
    assert [b is None or len(b) > bound for b in got] == over
    assert [b for b in got if b is not None and len(b) <= bound] == [
        b for b in expected if b is not None and len(b) <= bound
    ]
    assert issubclass(FrameDecoder, CobsStream) and issubclass(LinkFrameDecoder, CobsStream)


def test_overlong_run_without_delimiter_is_dropped():
    dec = FrameDecoder()
    assert dec.feed(b"\x55" * 1000) == []
    assert dec.counters.garbage_bytes >= 1000 - p.MAX_WIRE
    assert dec.feed(b"\x55" * 10 + b"\x00" + sample_wire(5, [1, 2, 3]))[0].seq == 5
    assert dec.counters.garbage_bytes == 1010


def test_answers_decode():
    info = bytes([p.T_INFO, 9, 1, 0xFA, 0, 25, 0, 3, 0xDE, 0xAD, 0x00]) + b"1.0.0"
    assert decode_frame(p.frame(info)[:-1]) == InfoFrame(9, 1, 250, 25, False, "dead00", "1.0.0")
    assert decode_frame(p.frame(bytes([p.T_ACK, 4, p.C_START]))[:-1]) == AckFrame(
        4, p.C_START, True
    )
    nack = p.frame(bytes([p.T_NACK, 4, p.C_RATE, p.R_BUSY]))[:-1]
    assert decode_frame(nack) == AckFrame(4, p.C_RATE, False, p.R_BUSY)


@pytest.mark.parametrize(
    "body",
    [
        bytes([p.T_SAMPLES, 0, 0, 3, 1, 0, 2, 0]),  # says 3 samples, holds 2
        bytes([p.T_SAMPLES, 0, 0, 0]),  # no samples
        bytes([p.T_INFO, 1, 1, 0xFA]),  # cut short
        bytes([p.T_ACK, 1]),
        bytes([0x7A, 1, 2, 3]),  # unknown type
        b"",
    ],
)
def test_malformed_bodies_with_valid_crc_are_e244(body):
    with pytest.raises(FrameError) as exc:
        decode_frame(p.frame(body)[:-1])
    assert exc.value.code == "E244"
    assert isinstance(exc.value, BedsideError)


def test_commands_reach_the_firmware():
    board = FakeBoard([1, 2, 3])
    sensor = Sensor(board)
    board.uart.feed(encode_command(p.C_RATE, 200, rate=1000) + encode_command(p.C_IDENTIFY, 201))
    sensor.poll()
    got = FrameDecoder().feed(board.uart.take())
    assert got[0] == AckFrame(200, p.C_RATE, True)
    assert (got[1].tag, got[1].rate, got[1].samples_per_frame) == (201, 1000, 100)


def test_sequencer_gaps_wrap_and_duplicates():
    def f(seq, n=25):
        return SampleFrame(seq, np.zeros(n, np.int32))

    s = Sequencer(expected=0)
    assert s.accept(f(0)) == 0
    assert s.accept(f(3)) == 50  # frames 1 and 2 lost
    assert s.accept(f(3)) is None  # delivered already
    assert s.accept(f(2)) is None  # older
    s = Sequencer(expected=65534)
    assert [s.accept(f(q)) for q in (65534, 65535, 0, 2)] == [0, 0, 0, 25]
    s.reset(None)
    assert s.accept(f(40000)) == 0
