"""CPU cost of sealing the link's frames (protocol 2), against plain frames, in one run.

    .venv/bin/python tests/bench/bench_seal.py [--frames 200]

For a full bulk frame (64 KiB of data, the size flashing and log pulls send) and a small
command frame, measured side by side on the same frames:

(a) plain: ``encode_frame`` and the decoder (COBS + CRC-32 + JSON), as protocol 1 did;
(b) sealed: ``SessionCipher.seal``, the decoder and ``SessionCipher.open`` (ChaCha20-Poly1305
    on top of (a)).

Prints microseconds per frame, (b)/(a), and (b) as a fraction of the frame's time on a
921600-baud line: how much of the line the seal could cost if the CPU did nothing else.
The throughput on the emulated line is bench_link.py / bench_flash.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge.link.frame import Frame, FrameDecoder, Kind, encode_frame  # noqa: E402
from edge.link.session import KeyExchange  # noqa: E402

LINE_BYTES_S = 921600 / 10


def plain_round(frame: Frame, n: int) -> float:
    decoder = FrameDecoder(1 << 20)
    start = time.perf_counter()
    for _ in range(n):
        (got,) = decoder.feed(encode_frame(frame))
    elapsed = time.perf_counter() - start
    assert got == frame
    return elapsed / n


def sealed_round(frame: Frame, n: int) -> float:
    host, unit = KeyExchange(), KeyExchange()
    sender = host.cipher(unit.public, b"bench", role="host", code="E311")
    receiver = unit.cipher(host.public, b"bench", role="unit", code="E310")
    decoder = FrameDecoder(1 << 20)
    start = time.perf_counter()
    for _ in range(n):
        (sealed,) = decoder.feed(sender.seal(frame))
        got = receiver.open(sealed)
    elapsed = time.perf_counter() - start
    assert got == frame
    return elapsed / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="frames per measurement")
    args = parser.parse_args()
    cases = {
        "bulk 64 KiB": Frame(
            Kind.REQUEST, 1, {"cmd": "flash.chunk", "args": {"offset": 0}}, bytes(range(256)) * 256
        ),
        "command": Frame(Kind.REQUEST, 2, {"cmd": "slots.status", "args": {}}),
    }
    print(f"seal bench: {args.frames} frames each, best of 3")
    for name, frame in cases.items():
        plain = min(plain_round(frame, args.frames) for _ in range(3))
        sealed = min(sealed_round(frame, args.frames) for _ in range(3))
        wire_s = len(encode_frame(frame)) / LINE_BYTES_S
        print(
            f"  {name:<12} (a) plain {plain * 1e6:8.1f} us  (b) sealed {sealed * 1e6:8.1f} us  "
            f"(b)/(a) {sealed / plain:5.2f}  (b) = {sealed / wire_s:6.2%} of its time on the line"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
