"""A virtual sensor: the real firmware on a fake board, served on a TCP port in real time.

``python -m edge.firmware.virtual --port 5555`` then ``bedside run --source
serial:socket://127.0.0.1:5555`` runs the unit against the firmware's own code with no
hardware: same frames, same commands, same timing, and a simulated night
(:class:`edge.sim.Night`) as the signal. Tests use :class:`VirtualSensor` to cut the link,
stall it or corrupt what it sends. CPython only (threads, sockets, numpy): it is not copied to
a board.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Callable, Sequence

from .fake import FakeBoard
from .protocol import RATE_DEFAULT
from .sensor import Sensor

__all__ = ["NightADC", "VirtualSensor"]


class NightADC:
    """An ADC that reads a simulated night, rendered at the rate the sensor's timer runs.

    The night (8 h, then it starts again) is rendered ten seconds at a time, as it is read.
    """

    def __init__(self, seed: int, timer) -> None:
        self._seed = seed
        self._timer = timer
        self._use(RATE_DEFAULT)  # now, not in the first timer tick

    def _use(self, fs: int) -> None:
        from edge.sim import Night

        self._night, self._fs, self._index = Night(self._seed, fs=fs), fs, 0
        self._block: list[int] = []
        self._block_start = 0

    def read_u16(self) -> int:
        fs = self._timer.freq or RATE_DEFAULT
        if fs != self._fs:  # a new rate: the same night, rendered at it
            self._use(fs)
        i = self._index % self._night.n_samples
        if not 0 <= i - self._block_start < len(self._block):
            stop = min(i + 10 * fs, self._night.n_samples)
            self._block, self._block_start = self._night.samples(i, stop).tolist(), i
        self._index += 1
        return self._block[i - self._block_start]


class VirtualSensor:
    """The firmware (:class:`~.sensor.Sensor` on a :class:`~.fake.FakeBoard`) behind a socket.

    One connection at a time, like a cable. The ADC plays ``values`` in a loop, or the
    simulated night ``seed`` when ``values`` is None; the timer ticks at the rate the unit set,
    by the wall clock. Faults for tests: :meth:`drop` closes
    the current connection (a pulled cable; the MCU keeps sampling), ``stalled = True``
    holds back everything the sensor writes, ``tx_filter`` may rewrite each outgoing batch
    (corrupt, drop or add bytes), ``accepting = False`` refuses new connections.
    """

    def __init__(
        self,
        values: Sequence[int] | None = None,
        *,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.board = FakeBoard(list(values) if values is not None else [0])
        if values is None:
            self.board.adc = NightADC(seed, self.board.timer)
        self.sensor = Sensor(self.board)
        self.stalled = False
        self.accepting = True
        self.tx_filter: Callable[[bytes], bytes] | None = None
        self.connections = 0  # accepted
        self.refused = 0  # closed at once while not accepting
        self._server = socket.create_server((host, port))
        self._server.settimeout(0.05)
        self.port = self._server.getsockname()[1]
        self._client: socket.socket | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="virtual-sensor", daemon=True)

    @property
    def url(self) -> str:
        """The pyserial URL to open: ``socket://127.0.0.1:PORT``."""
        return f"socket://127.0.0.1:{self.port}"

    def __enter__(self) -> VirtualSensor:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.drop()
        self._server.close()

    def drop(self) -> None:
        """Close the current connection, as if the cable were pulled."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _serve(self) -> None:
        ticks_done = 0
        t_start = time.monotonic()
        freq = 0
        while not self._stop.is_set():
            if self._client is None:
                self._accept()
            timer = self.board.timer
            if timer.callback is None or timer.freq != freq:  # stopped or a new rate
                freq, ticks_done, t_start = timer.freq, 0, time.monotonic()
            else:  # the MCU samples whether or not a cable is connected
                due = int((time.monotonic() - t_start) * freq)
                ticks_done += timer.tick(due - ticks_done)
            self._exchange()
            time.sleep(0.005)

    def _accept(self) -> None:
        try:
            client, _ = self._server.accept()
        except (TimeoutError, OSError):
            return
        if not self.accepting:
            client.close()
            self.refused += 1
            return
        client.setblocking(False)
        with self._lock:
            self._client = client
        self.connections += 1

    def _exchange(self) -> None:
        with self._lock:
            client = self._client
        if client is None:
            self.sensor.poll()
            self.board.uart.take()  # nobody listening: the bytes are lost
            return
        try:
            data = client.recv(4096)
            if not data:
                raise ConnectionError("closed by the unit")
            self.board.uart.feed(data)
        except BlockingIOError:
            pass
        except OSError:
            self.drop()
            return
        self.sensor.poll()
        if self.stalled:
            self.board.uart.take()
            return
        out = self.board.uart.take()
        if self.tx_filter is not None:
            out = self.tx_filter(out)
        try:
            client.sendall(out)
        except OSError:
            self.drop()


def main(argv: list[str] | None = None) -> None:
    """``python -m edge.firmware.virtual``: serve a virtual sensor until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m edge.firmware.virtual",
        description="Serve the sensor firmware on a fake board over TCP. Example: "
        "python -m edge.firmware.virtual --port 5555, then "
        "bedside run --source serial:socket://127.0.0.1:5555",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5555)
    parser.add_argument("--seed", type=int, default=0, help="the simulated night (edge.sim)")
    args = parser.parse_args(argv)
    with VirtualSensor(seed=args.seed, host=args.host, port=args.port) as sensor:
        print(f"virtual sensor on {sensor.url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
