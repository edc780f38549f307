"""The sensor's logic: a timer IRQ fills a ring buffer, the main loop frames and sends it.

Hardware comes in as a ``board`` with ``adc.read_u16()``, ``uart.write(buf)`` /
``uart.readinto(buf)``, ``timer.init(freq=, callback=)`` / ``timer.deinit()``, ``unique_id()`` and
``idle()`` (:mod:`.board` on a real MCU, :mod:`.fake` in tests), so the same code runs on
a board, under MicroPython in node and under CPython.

Nothing in the sampling path allocates: the IRQ handler stores one ``read_u16()`` in a
preallocated ring and bumps a 16-bit counter; :meth:`Sensor.poll` copies whole frames out of
the ring into preallocated buffers. If the main loop falls more than a ring behind, the
oldest frames are dropped and their sequence numbers skipped, so the unit sees an exact gap
instead of samples glued across it.
"""

from array import array

from . import FIRMWARE_VERSION
from .protocol import (
    C_IDENTIFY,
    C_RATE,
    C_START,
    C_STOP,
    MAX_BODY,
    MAX_WIRE,
    PROTOCOL_VERSION,
    R_BAD_ARG,
    R_BUSY,
    R_UNKNOWN,
    RATE_DEFAULT,
    RATE_MAX,
    RATE_MIN,
    SAMPLES_HEADER,
    T_ACK,
    T_INFO,
    T_NACK,
    T_SAMPLES,
    cobs_decode,
    const,
    crc16,
    samples_per_frame,
    seal,
)

RING = const(1024)  # samples (2 KiB): 1 s at 1000 Hz, 4 s at 250 Hz of main-loop slack
RING_MASK = const(1023)
COUNTER_MASK = const(0xFFFF)  # IRQ counter wraps here so it stays a small int


class Sensor:
    """One sensor: sampling, framing and the command interpreter.

    Call :meth:`poll` from the main loop at least once per ring (:data:`RING` samples, 4 s
    at 250 Hz); :meth:`run` does so forever.
    """

    def __init__(self, board, rate=RATE_DEFAULT):
        self.board = board
        self._adc = board.adc
        self._uart = board.uart
        self.rate = rate
        self.spf = samples_per_frame(rate)
        self.streaming = False
        self.overruns = 0  # frames dropped because the main loop fell behind
        self.bad_commands = 0  # command frames with a bad CRC or COBS block
        self._ring = array("H", bytes(2 * RING))
        self._head = 0  # samples taken by the IRQ, mod 65536
        self._tail = 0  # next sample to frame, mod 65536
        self._seq = 0
        self._body = bytearray(MAX_BODY + 2)
        self._wire = bytearray(MAX_WIRE)
        self._wire_mv = memoryview(self._wire)
        self._frame_view = self._wire_mv[: 2 * self.spf + 8]
        self._rx = bytearray(MAX_WIRE)  # the command frame being received
        self._rx_len = 0
        self._rx_chunk = bytearray(32)
        self._cmd = bytearray(MAX_WIRE)
        # A bound method made once: making it inside the IRQ would allocate.
        self._tick_cb = self._tick

    def _tick(self, _timer):
        """Timer IRQ: take one sample. Allocation-free (hard IRQ safe)."""
        h = self._head
        self._ring[h & RING_MASK] = self._adc.read_u16()
        self._head = (h + 1) & COUNTER_MASK

    def poll(self):
        """Answer pending commands, then send every complete frame; returns frames sent."""
        self._read_commands()
        if not self.streaming:
            return 0
        return self._send_frames()

    def run(self):
        """The main loop of the firmware; never returns."""
        idle = self.board.idle
        while True:
            self.poll()
            idle()  # sleep until the next interrupt (a timer tick or a UART byte)

    # -- sampling path ---------------------------------------------------------------------

    def _send_frames(self):
        spf = self.spf
        sent = 0
        while True:
            tail = self._tail
            avail = (self._head - tail) & COUNTER_MASK
            if avail > RING:  # the IRQ has overwritten the oldest samples: drop that frame
                self._skip_frame()
                continue
            if avail < spf:
                return sent
            body = self._body
            ring = self._ring
            seq = self._seq
            body[0] = T_SAMPLES
            body[1] = seq & 0xFF
            body[2] = seq >> 8
            body[3] = spf
            j = SAMPLES_HEADER
            for i in range(tail, tail + spf):
                v = ring[i & RING_MASK]
                body[j] = v & 0xFF
                body[j + 1] = v >> 8
                j += 2
            if (self._head - tail) & COUNTER_MASK > RING:  # overwritten while copying
                self._skip_frame()
                continue
            seal(body, j, self._wire)
            self._uart.write(self._frame_view)
            self._tail = (tail + spf) & COUNTER_MASK
            self._seq = (seq + 1) & 0xFFFF
            sent += 1

    def _skip_frame(self):
        self._tail = (self._tail + self.spf) & COUNTER_MASK
        self._seq = (self._seq + 1) & 0xFFFF
        self.overruns += 1

    # -- commands --------------------------------------------------------------------------

    def _read_commands(self):
        uart = self._uart
        chunk = self._rx_chunk
        while uart.any():
            n = uart.readinto(chunk)
            if not n:
                return
            for k in range(n):
                b = chunk[k]
                if b == 0:
                    self._end_of_frame()
                elif self._rx_len < MAX_WIRE:
                    self._rx[self._rx_len] = b
                    self._rx_len += 1
                else:  # longer than any command: drop it up to the next delimiter
                    self._rx_len = MAX_WIRE + 1

    def _end_of_frame(self):
        n = self._rx_len
        self._rx_len = 0
        if n == 0:
            return  # an empty frame: the unit flushing our receiver
        if n > MAX_WIRE:
            self.bad_commands += 1
            return
        cmd = self._cmd
        m = cobs_decode(self._rx, n, cmd)
        if m < 4 or crc16(cmd, 0, m - 2) != cmd[m - 2] | (cmd[m - 1] << 8):
            self.bad_commands += 1  # no trustworthy tag to answer with
            return
        self._handle(cmd[0], cmd[1], cmd, m - 2)

    def _handle(self, op, tag, cmd, n):
        if op == C_IDENTIFY and n == 2:
            self._send_info(tag)
        elif op == C_START and n == 2:
            self.start()
            self._reply(T_ACK, tag, op, 0)
        elif op == C_STOP and n == 2:
            self.stop()
            self._reply(T_ACK, tag, op, 0)
        elif op == C_RATE and n == 4:
            rate = cmd[2] | (cmd[3] << 8)
            if self.streaming:
                self._reply(T_NACK, tag, op, R_BUSY)
            elif not RATE_MIN <= rate <= RATE_MAX:
                self._reply(T_NACK, tag, op, R_BAD_ARG)
            else:
                self.set_rate(rate)
                self._reply(T_ACK, tag, op, 0)
        elif op in (C_IDENTIFY, C_START, C_STOP, C_RATE):
            self._reply(T_NACK, tag, op, R_BAD_ARG)
        else:
            self._reply(T_NACK, tag, op, R_UNKNOWN)

    def start(self):
        """Start a new stream: sequence 0, an empty ring, the timer at :attr:`rate`."""
        self.board.timer.deinit()
        self._head = 0
        self._tail = 0
        self._seq = 0
        self.streaming = True
        self.board.timer.init(freq=self.rate, callback=self._tick_cb)

    def stop(self):
        """Stop sampling; frames not yet sent are dropped."""
        self.board.timer.deinit()
        self.streaming = False

    def set_rate(self, rate):
        """Sample at ``rate`` Hz from the next start (50..1000)."""
        self.rate = rate
        self.spf = samples_per_frame(rate)
        self._frame_view = self._wire_mv[: 2 * self.spf + 8]

    def _reply(self, kind, tag, op, reason):
        body = self._body
        body[0] = kind
        body[1] = tag
        body[2] = op
        body[3] = reason
        n = seal(body, 4 if kind == T_NACK else 3, self._wire)
        self._uart.write(self._wire_mv[:n])

    def _send_info(self, tag):
        uid = self.board.unique_id()
        version = FIRMWARE_VERSION.encode()
        head = bytes(
            [T_INFO, tag, PROTOCOL_VERSION, self.rate & 0xFF, self.rate >> 8, self.spf]
            + [1 if self.streaming else 0, len(uid)]
        )
        body = head + uid + version
        n = len(body)
        self._body[:n] = body
        n = seal(self._body, n, self._wire)
        self._uart.write(self._wire_mv[:n])
