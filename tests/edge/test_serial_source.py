"""``serial:PORT`` against the firmware's own code on a virtual sensor (a TCP socket).

The virtual sensor's ADC plays 0, 1, 2, ... so every sample's value is its ADC index: a
delivered sample whose value minus its stream index changes means samples were lost or
doubled, and values that do not strictly increase mean something was delivered twice.
Faults are injected on the link: frames dropped or corrupted, garbage, a pulled cable, a
stall, a sensor that refuses connections for a while.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge.errors import BedsideError
from edge.firmware import FIRMWARE_VERSION
from edge.firmware.virtual import VirtualSensor
from edge.sources.base import Source
from edge.sources.serial import SerialSource

RAMP = list(range(60000))  # the ADC index as the value; 4 minutes at 250 Hz
FAST = {"answer_timeout_s": 0.2, "stall_s": 0.6, "backoff_s": (0.1, 0.4)}


@pytest.fixture
def sensor():
    with VirtualSensor(RAMP) as virtual:
        yield virtual


def collect(
    source: SerialSource, seconds: float, during=None, arrivals=None, min_samples: int = 1
) -> list:
    """Read chunks for ``seconds`` (longer, up to 10 s, until ``min_samples`` came, for a
    loaded machine); call ``during(t)`` with the elapsed time between reads; append the wall
    time each chunk came at to ``arrivals``."""
    chunks = []
    got = 0
    t0 = time.monotonic()
    while (t := time.monotonic() - t0) < seconds or (got < min_samples and t < 10):
        if during is not None:
            during(t)
        chunk = source.read(timeout_s=0.05)
        assert chunk is not None
        if len(chunk.samples):
            chunks.append(chunk)
            got += len(chunk.samples)
            if arrivals is not None:
                arrivals.append(time.time())
    return chunks


def check_stream(chunks: list) -> np.ndarray:
    """Chunks are in order and never overlap; returns all values (ADC indices) delivered."""
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start_index == a.stop_index + b.gap_before
        assert b.t_utc >= a.t_utc
    values = np.concatenate([c.samples for c in chunks])
    assert np.all(np.diff(values) > 0), "a sample was delivered twice or out of order"
    return values


def offsets(chunks: list) -> set[int]:
    """value - stream index of each contiguous stretch (one value while nothing is lost)."""
    out = set()
    for c in chunks:
        d = c.samples - np.arange(c.start_index, c.stop_index)
        assert np.all(d == d[0]), "samples inside a chunk are not consecutive"
        out.add(int(d[0]))
    return out


def test_streams_identified_contiguous_samples(sensor):
    with SerialSource(sensor.url, fs=500, **FAST) as source:
        assert isinstance(source, Source)
        assert source.name == f"serial:{sensor.url}" and source.fs == 500.0
        assert source.info.firmware == FIRMWARE_VERSION
        assert source.info.unique_id == "5e500001fa4e"
        assert source.info.rate == 500 and source.info.samples_per_frame == 50
        t_start = time.time()
        chunks = collect(source, 1.0, min_samples=300)
        assert sensor.sensor.streaming
    values = check_stream(chunks)
    assert len(offsets(chunks)) == 1 and chunks[0].start_index == 0
    assert all(c.gap_before == 0 and c.samples.dtype == np.int32 for c in chunks)
    assert 300 <= len(values) <= 600  # about a second at 500 Hz
    assert abs(chunks[0].t_utc - t_start) < 0.5
    assert source.drain_events() == []
    assert not sensor.sensor.streaming  # close() stopped the sensor
    assert source.read(0.01) is None
    source.close()  # twice is fine


def test_lost_and_corrupted_frames_become_gaps_and_counters(sensor):
    sent = {"n": 0}

    def damage(out: bytes) -> bytes:
        frames = out.split(b"\x00")
        kept = []
        for frame in frames[:-1]:
            sent["n"] += 1
            if sent["n"] == 8:
                continue  # lost whole
            if sent["n"] == 12:
                frame = frame[:20] + bytes([frame[20] ^ 0x40]) + frame[21:]  # a flipped bit
            if sent["n"] == 15:
                frame = b"line noise" + frame  # garbage glued to a frame: the frame is lost
            if sent["n"] == 18:
                kept.append(b"\xff\xfe line noise")  # garbage between frames costs nothing
            kept.append(frame)
        return b"\x00".join([*kept, frames[-1]])

    with SerialSource(sensor.url, fs=250, **FAST) as source:
        sensor.tx_filter = damage
        chunks = collect(source, 2.2)
        events = source.drain_events()
        counters = source.counters
    check_stream(chunks)
    gaps = [c.gap_before for c in chunks if c.gap_before]
    assert gaps == [25, 25, 25]  # frame 8, the corrupted one, the one glued to noise
    assert len(offsets(chunks)) == 1  # the gaps are exactly the samples lost
    assert [e.kind for e in events] == ["sensor_gap"] * 3
    assert counters.gaps == 3 and counters.samples_lost == 75
    assert counters.crc_errors + counters.malformed == 3
    assert counters.garbage_bytes > 0 and counters.duplicates == 0


def test_pulled_cable_reconnects_with_a_measured_gap(sensor):
    def pull(t):
        if 0.6 < t and sensor.connections == 1:
            sensor.drop()

    with SerialSource(sensor.url, fs=250, **FAST) as source:
        chunks = collect(source, 2.5, during=pull)
        events = source.drain_events()
        assert source.counters.disconnects == 1 and source.counters.reconnects == 1
    values = check_stream(chunks)
    kinds = [e.kind for e in events]
    assert kinds == ["sensor_disconnect", "sensor_reconnect", "sensor_gap"]
    after = [c for c in chunks if c.gap_before]
    assert len(after) == 1
    # the wall-clock gap matches what the sensor sampled meanwhile, within 0.2 s (the first
    # frame's arrival latency, which anchors the new stream)
    d = sorted(offsets(chunks))
    assert len(d) == 2 and abs(d[1] - d[0]) < 50
    assert len(values) > 250


def test_stall_restarts_the_stream(sensor):
    def stall(t):
        sensor.stalled = 0.5 < t < 1.5

    arrivals = []
    with SerialSource(sensor.url, fs=250, **FAST) as source:
        chunks = collect(source, 3.0, during=stall, arrivals=arrivals)
        events = source.drain_events()
    check_stream(chunks)
    kinds = [e.kind for e in events]
    assert kinds[0] == "sensor_disconnect" and "no data" in events[0].detail
    assert kinds[-2:] == ["sensor_reconnect", "sensor_gap"]
    assert sensor.connections >= 2
    k = [i for i, c in enumerate(chunks) if c.gap_before]
    assert len(k) == 1 and chunks[k[0]].gap_before > 250  # at least the 1 s stall at 250 Hz
    # The gap is the time nothing came (the unit's STOP reached the sensor during the
    # stall, so its ADC index is no clock here): the time between the chunks either side,
    # less the duration of the samples that ended it.
    k = k[0]
    silent_s = arrivals[k] - arrivals[k - 1] - len(chunks[k].samples) / 250
    assert abs(chunks[k].gap_before / 250 - silent_s) < 0.25


def test_reconnect_backs_off(sensor):
    attempts = []

    def outage(t):
        if 0.3 < t < 2.3:
            sensor.accepting = False
            sensor.drop()
        else:
            sensor.accepting = True

    with SerialSource(sensor.url, fs=250, **FAST) as source:
        t0 = time.monotonic()
        chunks = collect(source, 3.2, during=outage)
        attempts.append(sensor.connections + sensor.refused)
        assert source.counters.reconnects == 1
        took = time.monotonic() - t0
        print(f"3.2 s of stream over a 2 s outage: {took:.2f} s")
        assert took < 20, took  # generous: scheduling on a shared machine is not checked
    check_stream(chunks)
    # backoff 0.1, 0.2, 0.4, 0.4, ... over a 2 s outage: about 7 tries, not one per read
    assert 3 <= attempts[0] <= 10


def test_first_connection_errors():
    with pytest.raises(BedsideError) as exc:
        SerialSource("socket://127.0.0.1:9", answer_timeout_s=0.1)
    assert exc.value.code == "E240" and " — " in str(exc.value)
    with pytest.raises(BedsideError) as exc:
        SerialSource("loop://", answer_timeout_s=0.1)  # our own commands echoed: no answer
    assert exc.value.code == "E241"
    for fs in (49, 1001, 250.5):
        with pytest.raises(BedsideError) as exc:
            SerialSource("loop://", fs=fs)
        assert exc.value.code == "E243"
    with pytest.raises(BedsideError) as exc:
        SerialSource("")
    assert exc.value.code == "E240"


def test_virtual_sensor_plays_a_simulated_night_exactly():
    from edge.sim import Night

    with VirtualSensor(seed=5) as virtual, SerialSource(virtual.url, fs=200, **FAST) as source:
        chunks = collect(source, 0.8, min_samples=100)
    x = np.concatenate([c.samples for c in chunks])
    assert chunks[0].start_index == 0 and all(c.gap_before == 0 for c in chunks)
    np.testing.assert_array_equal(x, Night(5, fs=200).samples(0, len(x)))


def test_zero_timeout_polls_and_close_while_disconnected(sensor):
    source = SerialSource(sensor.url, fs=250, **FAST)
    got = 0
    t_end = time.monotonic() + 0.6
    while time.monotonic() < t_end:
        got += len(source.read(timeout_s=0).samples)
        time.sleep(0.02)
    assert got >= 100  # read(0) takes what has arrived
    assert source.counters.bytes_in > 0 and source.counters.frames >= 4
    sensor.accepting = False
    sensor.drop()
    source.read(timeout_s=0.3)
    assert [e.kind for e in source.drain_events()] == ["sensor_disconnect"]
    source.close()
    assert source.read(timeout_s=0) is None


def rewriting(change):
    """A tx_filter that passes each frame body through ``change`` (and a new CRC)."""
    from cobs import cobs

    from edge.firmware import protocol as p

    def filt(out: bytes) -> bytes:
        parts = out.split(b"\x00")
        new = [p.frame(change(bytearray(cobs.decode(f)[:-2])))[:-1] if f else f for f in parts]
        return b"\x00".join(new)

    return filt


def _info_protocol_2(body):
    if body[0] == ord("i"):
        body[2] = 2
    return body


def _nack(command):
    def change(body):
        if body[0] == ord("a") and body[2] == command:
            return bytearray([ord("n"), body[1], command, 2])
        return body

    return change


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        (_info_protocol_2, "E242", "speaks protocol 2"),
        (_nack(ord("R")), "E243", "refused 500 Hz (bad argument)"),
        (_nack(ord("G")), "E241", "answered command G with bad argument"),
    ],
)
def test_handshake_refusals(sensor, change, code, words):
    sensor.tx_filter = rewriting(change)
    with pytest.raises(BedsideError) as exc:
        SerialSource(sensor.url, fs=500, **FAST)
    assert exc.value.code == code and words in str(exc.value)


def test_a_tty_device_path_like_a_cable(sensor):
    # A pseudo-terminal bridged to the virtual sensor: the source opens a device path, as
    # with a USB cable (termios, an exclusive lock), and sees the device vanish.
    import os
    import pty
    import select
    import socket
    import threading

    master, slave = pty.openpty()
    path = os.ttyname(slave)
    link = socket.create_connection(("127.0.0.1", sensor.port))
    stop = threading.Event()

    def bridge():
        while not stop.is_set():
            ready, _, _ = select.select([master, link], [], [], 0.05)
            if master in ready:
                link.sendall(os.read(master, 4096))
            if link in ready:
                os.write(master, link.recv(4096))

    thread = threading.Thread(target=bridge, daemon=True)
    thread.start()
    try:
        source = SerialSource(path, fs=250, **FAST)
        with pytest.raises(BedsideError) as exc:
            SerialSource(path, fs=250, **FAST)  # the port is taken
        assert exc.value.code == "E240" and "lock" in str(exc.value)
        chunks = collect(source, 0.6, min_samples=50)
        assert len(offsets(chunks)) == 1
        stop.set()
        thread.join()
        os.close(master)  # the device goes away
        os.close(slave)
        source.read(timeout_s=0.3)
        assert [e.kind for e in source.drain_events()][:1] == ["sensor_disconnect"]
        source.close()
    finally:
        stop.set()
        link.close()
