"""A fake board: ADC, UART and timer in memory, for tests and virtual sensors.

Runs under MicroPython and CPython. The ADC plays a given list of values in a loop, the UART
keeps what the sensor wrote and what the host sends it, and the timer only fires when the
caller calls :meth:`FakeTimer.tick`, so a test decides exactly how many samples are taken.
"""


class FakeADC:
    """``read_u16()`` returns ``values[0], values[1], ...`` and starts again at the end."""

    def __init__(self, values):
        self.values = values
        self.index = 0

    def read_u16(self):
        i = self.index
        self.index = i + 1 if i + 1 < len(self.values) else 0
        return self.values[i]


class FakeUART:
    """Bytes from the host wait in ``rx`` (:meth:`feed`); bytes the sensor wrote go to ``tx``.

    ``write`` copies into a preallocated buffer (``capacity`` bytes; :meth:`take` empties
    it), so a test can check that the sensor's framing path allocates nothing.
    """

    def __init__(self, capacity=65536):
        self._tx = bytearray(capacity)
        self._tx_len = 0
        self._rx = bytearray()

    def feed(self, data):
        """Bytes the host sends to the sensor."""
        self._rx.extend(data)

    def any(self):
        return len(self._rx)

    def readinto(self, buf):
        n = min(len(buf), len(self._rx))
        for i in range(n):
            buf[i] = self._rx[i]
        self._rx = self._rx[n:]
        return n

    def write(self, buf):
        n = len(buf)
        start = self._tx_len
        if start + n > len(self._tx):
            raise OSError("FakeUART: tx buffer full; call take() more often")
        tx = self._tx
        for i in range(n):
            tx[start + i] = buf[i]
        self._tx_len = start + n
        return n

    def take(self):
        """The bytes written since the last call."""
        out = bytes(self._tx[: self._tx_len])
        self._tx_len = 0
        return out


class FakeTimer:
    """A periodic timer that fires only when told: :meth:`tick` calls the callback ``n`` times."""

    def __init__(self):
        self.freq = 0
        self.callback = None

    def init(self, freq=0, callback=None, **_kwargs):
        self.freq = freq
        self.callback = callback

    def deinit(self):
        self.callback = None

    def tick(self, n=1):
        """Fire ``n`` times (nothing if the timer is stopped); returns how many fired."""
        cb = self.callback
        if cb is None:
            return 0
        for _ in range(n):
            cb(self)
        return n


class FakeBoard:
    """The board interface of :class:`~.sensor.Sensor` with fakes behind it."""

    def __init__(self, values, uid=b"\x5e\x50\x00\x01\xfa\x4e"):
        self.adc = FakeADC(values)
        self.uart = FakeUART()
        self.timer = FakeTimer()
        self._uid = uid

    def unique_id(self):
        return self._uid

    def idle(self):
        pass
