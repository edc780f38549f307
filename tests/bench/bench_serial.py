"""Sensor link benchmark (`make bench`): the unit's frame decoder and the live serial source.

    (a) edge.sources.frames.FrameDecoder + Sequencer on one hour of 250 Hz frames from the
        firmware's encoder, against the bare minimum on the same bytes (split on 0x00,
        cobs.decode, binascii.crc_hqx, numpy.frombuffer): the ratio is the decoder's overhead
    (b) SerialSource reading a virtual sensor (the firmware on a fake board, over TCP, in
        another process) in real time: CPU seconds per second of signal, at 250 and 1000 Hz

(a) is the best of three repeats of each. Goals: (a) an 8 h night decoded in well under
5 s (the ratio shows what the counters, typed frames and gap tracking cost over the bare
minimum); (b) far below the unit's 5 % live budget.
"""

from __future__ import annotations

import binascii
import struct
import subprocess
import sys
import time

import numpy as np
from cobs import cobs

from edge.firmware import protocol as p
from edge.sources.frames import FrameDecoder, Sequencer
from edge.sources.serial import SerialSource

FS = 250


def wire_hour() -> bytes:
    rng = np.random.default_rng(1)
    spf = p.samples_per_frame(FS)
    samples = rng.integers(30000, 35000, FS * 3600, dtype=np.uint16)
    out = []
    for k in range(len(samples) // spf):
        chunk = samples[k * spf : (k + 1) * spf]
        out.append(p.frame(struct.pack("<BHB", p.T_SAMPLES, k & 0xFFFF, spf) + chunk.tobytes()))
    return b"".join(out)


def ours(wire: bytes) -> int:
    dec, seq, n = FrameDecoder(), Sequencer(0), 0
    for i in range(0, len(wire), 4096):  # as it comes off the port
        for frame in dec.feed(wire[i : i + 4096]):
            seq.accept(frame)
            n += len(frame.samples)
    return n


def bare(wire: bytes) -> int:
    n = 0
    for part in wire.split(b"\x00")[:-1]:
        body = cobs.decode(part)
        assert binascii.crc_hqx(body[:-2], 0xFFFF) == body[-2] | body[-1] << 8
        n += len(np.frombuffer(body, "<u2", (len(body) - 6) // 2, 4))
    return n


def best(fn, arg, repeats=3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t0)
    return min(times)


def live_cpu(fs: int, seconds: float = 5.0) -> tuple[float, int]:
    """CPU share of this process reading the sensor, and the samples it got."""
    # The virtual sensor runs in its own process so that only the source is measured.
    with subprocess.Popen(
        [sys.executable, "-m", "edge.firmware.virtual", "--port", "0", "--seed", "1"],
        stdout=subprocess.PIPE,
        text=True,
    ) as sensor:
        try:
            url = sensor.stdout.readline().split()[3]
            with SerialSource(url, fs=fs) as src:
                c0, t0 = time.process_time(), time.monotonic()
                n = 0
                while time.monotonic() - t0 < seconds:
                    n += len(src.read(timeout_s=0.5).samples)
                return (time.process_time() - c0) / (time.monotonic() - t0), n
        finally:
            sensor.terminate()


def main() -> None:
    wire = wire_hour()
    assert ours(wire) == bare(wire) == FS * 3600
    t_ours, t_bare = best(ours, wire), best(bare, wire)
    print(
        f"(a) decode 1 h at {FS} Hz ({len(wire) / 1e6:.1f} MB): ours {t_ours:.3f} s, "
        f"bare minimum {t_bare:.3f} s, ratio {t_ours / t_bare:.2f}x; "
        f"an 8 h night {8 * t_ours:.2f} s"
    )
    for fs in (250, 1000):
        share, n = live_cpu(fs)
        print(f"(b) live serial source at {fs} Hz: {100 * share:.2f} % of one core ({n} samples)")


if __name__ == "__main__":
    main()
