"""The sensor firmware under real MicroPython, its bytes decoded by the unit's decoder.

Each test runs a script in MicroPython (node + WebAssembly, see conftest.py) that drives
:class:`sensorfw.sensor.Sensor` on a fake board with a known waveform, feeds it commands
encoded by the unit (:func:`edge.sources.frames.encode_command`) and prints what it wrote to
its UART; the test decodes that with :class:`edge.sources.frames.FrameDecoder`. The sampling
path runs with the MicroPython heap locked, so any allocation in it fails the test.
"""

from __future__ import annotations

import numpy as np

from edge.firmware import FIRMWARE_VERSION
from edge.firmware import protocol as p
from edge.sources.frames import AckFrame, FrameDecoder, InfoFrame, Sequencer
from edge.sources.frames import encode_command as cmd

# A BCG-like wave plus the values that stress the framing: zero bytes, 0xFF bytes, extremes.
_WAVE = np.round(32768 + 20000 * np.sin(2 * np.pi * np.arange(997) / 97)).astype(int)
WAVE = [0, 0x00FF, 0xFF00, 0xFFFF, 0x0100, 1, *_WAVE.tolist()]

PRELUDE = f"""
import binascii, micropython
from sensorfw.fake import FakeBoard
from sensorfw.sensor import Sensor
board = FakeBoard({WAVE!r}, uid=b"\\x01\\x02\\x00\\xff")
sensor = Sensor(board)

def send(hexstr):
    board.uart.feed(binascii.unhexlify(hexstr))
    sensor.poll()

def out(label):
    print("tx", label, binascii.hexlify(board.uart.take()).decode())

def sample(n, every):
    # the sampling path (IRQ + framing) with the heap locked: an allocation raises MemoryError
    k = 0
    micropython.heap_lock()
    try:
        while k < n:
            board.timer.tick(every)
            sensor.poll()
            k += every
    finally:
        micropython.heap_unlock()
"""


def run(run_mpy, body: str) -> dict[str, list]:
    """Run PRELUDE + body; decode every ``tx LABEL HEX`` line into frames, by label."""
    stdout = run_mpy(PRELUDE + body)
    decoder = FrameDecoder()
    out: dict[str, list] = {}
    for line in stdout.splitlines():
        if line.startswith("tx "):
            _, label, hexdata = (line.split(" ") + [""])[:3]
            out[label] = decoder.feed(bytes.fromhex(hexdata))
        elif line.startswith("val "):
            _, label, value = line.split(" ")
            out[label] = [int(value)]
    assert decoder.counters.crc_errors == decoder.counters.malformed == 0
    assert decoder.counters.garbage_bytes == 0
    return out


def h(data: bytes) -> str:
    return data.hex()


def expected_wave(start: int, n: int) -> np.ndarray:
    return np.array([WAVE[i % len(WAVE)] for i in range(start, start + n)])


def test_identify_reports_version_uid_rate(run_mpy):
    out = run(run_mpy, f'send("{h(cmd(p.C_IDENTIFY, 7))}")\nout("info")\n')
    assert out["info"] == [
        InfoFrame(7, p.PROTOCOL_VERSION, 250, 25, False, "010200ff", FIRMWARE_VERSION)
    ]


def test_frames_carry_the_waveform_exactly(run_mpy):
    body = f"""
send("{h(cmd(p.C_RATE, 1, rate=500))}")
send("{h(cmd(p.C_START, 2))}")
out("acks")
sample(1000, 10)
out("data")
send("{h(cmd(p.C_STOP, 3))}")
board.timer.tick(500)
sensor.poll()
out("stopped")
"""
    out = run(run_mpy, body)
    assert out["acks"] == [AckFrame(1, p.C_RATE, True), AckFrame(2, p.C_START, True)]
    frames = out["data"]
    assert [f.seq for f in frames] == list(range(20))  # 1000 samples / 50 per frame at 500 Hz
    assert all(len(f.samples) == p.samples_per_frame(500) == 50 for f in frames)
    got = np.concatenate([f.samples for f in frames])
    np.testing.assert_array_equal(got, expected_wave(0, 1000))
    assert got.dtype == np.int32
    assert out["stopped"] == [AckFrame(3, p.C_STOP, True)]  # and no sample frame after stop


def test_overrun_drops_whole_frames_and_shows_as_an_exact_gap(run_mpy):
    # 2050 samples with no poll: the ring (1024) overflows; the sensor skips whole frames and
    # their sequence numbers, so the unit knows exactly which samples are missing.
    body = f"""
send("{h(cmd(p.C_START, 1))}")
out("ack")
sample(2050, 2050)
print("val overruns", sensor.overruns)
sample(100, 5)
out("data")
"""
    out = run(run_mpy, body)
    frames = out["data"]
    assert out["overruns"][0] > 0
    seqr = Sequencer(expected=0)  # a stream starts at frame 0
    index = 0
    for f in frames:
        gap = seqr.accept(f)
        index += gap
        assert f.seq * 25 == index
        np.testing.assert_array_equal(f.samples, expected_wave(index, 25))
        index += 25
    assert frames[0].seq == out["overruns"][0]  # the oldest frames went first
    assert index == 2150


def test_sequence_wraps_at_65536(run_mpy):
    body = f"""
send("{h(cmd(p.C_START, 1))}")
sensor._seq = 65534
board.uart.take()
sample(100, 25)
out("data")
"""
    frames = run(run_mpy, body)["data"]
    assert [f.seq for f in frames] == [65534, 65535, 0, 1]
    seqr = Sequencer()
    seqr.accept(frames[0])
    assert [seqr.accept(f) for f in frames[1:]] == [0, 0, 0]


def test_commands_refused_with_reasons(run_mpy):
    corrupt = bytearray(cmd(p.C_IDENTIFY, 9))
    corrupt[3] ^= 0x10  # a flipped bit: the sensor must not act on it
    body = f"""
send("{h(cmd(p.C_RATE, 1, rate=49))}")
send("{h(cmd(p.C_RATE, 2, rate=1001))}")
send("{h(cmd(0x7A, 3))}")
send("{h(cmd(p.C_START, 4))}")
send("{h(cmd(p.C_RATE, 5, rate=100))}")
send("{h(bytes(corrupt))}")
send("{h(b"garbage that is not a frame" + cmd(p.C_STOP, 6))}")
send("{h(cmd(p.C_RATE, 7, rate=1000))}")
send("{h(cmd(p.C_IDENTIFY, 8))}")
out("replies")
print("val bad", sensor.bad_commands)
"""
    out = run(run_mpy, body)
    assert out["replies"] == [
        AckFrame(1, p.C_RATE, False, p.R_BAD_ARG),
        AckFrame(2, p.C_RATE, False, p.R_BAD_ARG),
        AckFrame(3, 0x7A, False, p.R_UNKNOWN),
        AckFrame(4, p.C_START, True),
        AckFrame(5, p.C_RATE, False, p.R_BUSY),
        AckFrame(6, p.C_STOP, True),
        AckFrame(7, p.C_RATE, True),
        InfoFrame(8, p.PROTOCOL_VERSION, 1000, 100, False, "010200ff", FIRMWARE_VERSION),
    ]
    assert out["bad"] == [2]  # the corrupted identify and the garbage


def test_frames_decode_to_the_same_bytes_as_cpython(run_mpy):
    # One encoder: the firmware's code under MicroPython and under CPython gives the same bytes.
    from edge.firmware.fake import FakeBoard
    from edge.firmware.sensor import Sensor

    board = FakeBoard(WAVE, uid=b"\x01\x02\x00\xff")
    sensor = Sensor(board)
    board.uart.feed(cmd(p.C_START, 1))
    sensor.poll()
    for _ in range(30):
        board.timer.tick(10)
        sensor.poll()
    stdout = run_mpy(PRELUDE + f'send("{h(cmd(p.C_START, 1))}")\nsample(300, 10)\nout("x")\n')
    wire = board.uart.take()
    assert stdout.split()[-1] == wire.hex()
    assert len(wire) == 7 + 12 * (2 * 25 + 8)  # the start ack, then 12 frames and not a byte more


FAKE_MACHINE = """
class Pin:
    def __init__(self, id):
        self.id = id

class ADC:
    def __init__(self, pin):
        assert isinstance(pin, Pin)
        self.pin = pin
    def read_u16(self):
        return 0x1234

class UART:
    polls = 0
    def __init__(self, id, baudrate, tx, rx, txbuf, rxbuf):
        self.config = (id, baudrate, tx.id, rx.id)
        self.rx = bytearray(COMMANDS)
        self.tx = bytearray()
    def any(self):
        UART.polls += 1
        if UART.polls > 400:
            raise KeyboardInterrupt  # end main()'s endless loop
        return len(self.rx)
    def readinto(self, buf):
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n or None
    def write(self, buf):
        self.tx.extend(buf)
        return len(buf)

class Timer:
    PERIODIC = 1
    def __init__(self, id):
        self.id = id
        self.callback = None
    def init(self, freq, callback, mode=PERIODIC):
        self.freq, self.callback = freq, callback
    def deinit(self):
        self.callback = None

def unique_id():
    return b"\\xe6\\x61\\x41\\x04"

def idle():
    pass
"""


def test_board_and_main_run_on_a_machine_module(run_mpy):
    # board.py and main.py only talk to `machine`: a stand-in with the same API shows that
    # they build the sensor from it and that main() runs the poll loop.
    commands = cmd(p.C_IDENTIFY, 1) + cmd(p.C_START, 2)
    script = f"""
import binascii
with open("/lib/machine.py", "w") as f:
    f.write({FAKE_MACHINE!r}.replace("COMMANDS", {repr(commands)!r}))
import machine
from sensorfw import board, sensor
made = []
class Spy(sensor.Sensor):
    def __init__(self, b, *a):
        super().__init__(b, *a)
        made.append(self)
sensor.Sensor = Spy
from sensorfw.main import main
try:
    main()
except KeyboardInterrupt:
    pass
s = made[0]
print("val uart", s.board.uart.config[0], s.board.uart.config[1], s.board.uart.config[2])
print("val freq", s.board.timer.freq)
s.board.timer.callback(None)
print("tx out", binascii.hexlify(s.board.uart.tx).decode())
"""
    stdout = run_mpy(script)
    lines = dict(line.split(" ", 2)[1:] for line in stdout.splitlines() if " " in line)
    assert lines["uart"] == "0 115200 0" and lines["freq"] == "250"
    got = FrameDecoder().feed(bytes.fromhex(lines["out"]))
    assert got[0] == InfoFrame(1, p.PROTOCOL_VERSION, 250, 25, False, "e6614104", FIRMWARE_VERSION)
    assert got[1] == AckFrame(2, p.C_START, True)
