"""Bulk throughput of the maintenance link on an emulated 921600-baud serial line.

    .venv/bin/python tests/bench/bench_link.py [--mib 1] [--baud 921600]

A virtual unit (``bedside-host sim``, its own process) is reached through the fault proxy
with no faults but a rate limit of baud/10 bytes/s per direction (8N1: 10 bits a byte).
Measured in the same run, on the same proxy:

(a) the link: authenticated ``call("ping", data=max_data)`` back to back, payload bytes/s;
(b) the peer: raw bytes through the same proxy with no protocol at all (the line's ceiling).

Prints both as fractions of the nominal line rate, and (a)/(b). Flashing (issue 7's goal:
>= 85 % of the link rate) sends its chunks this way, so (a) is its ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "host"))

from faultproxy import FaultProxy, Faults  # noqa: E402

from edge.link import Client  # noqa: E402
from host_tools.keys import HostKey  # noqa: E402


def start_unit(state: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "host_tools", "sim", "--state", str(state)]
        + ["--no-sensor", "--pairing", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return proc, json.loads(proc.stdout.readline())["url"]


def bench_link(url: str, key: HostKey, total: int, baud: int) -> tuple[float, int, dict]:
    with Client.open(url, timeout_s=2.0, baudrate=baud) as client:
        client.authenticate(key)
        chunk = bytes(range(256)) * (client.max_data // 256)
        client.call("ping", {}, chunk[:1024])  # warm up
        sent, start = 0, time.perf_counter()
        while sent < total:
            piece = chunk[: min(len(chunk), total - sent)]
            reply, _ = client.call("ping", {"offset": sent}, piece)
            assert reply["received"] == len(piece)
            sent += len(piece)
        return time.perf_counter() - start, client.max_data, dict(client.stats)


def bench_raw(proxy: FaultProxy, total: int) -> float:
    """The same bytes through the same rate-limited proxy to a sink that acks the end."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    raw = FaultProxy(f"socket://127.0.0.1:{port}", proxy.faults)
    with socket.create_connection(("127.0.0.1", int(raw.url.rsplit(":", 1)[1]))) as c:
        peer, _ = server.accept()
        start = time.perf_counter()
        c.sendall(b"\x01" * total)
        got = 0
        while got < total:
            got += len(peer.recv(1 << 20))
        peer.sendall(b"k")
        assert c.recv(1) == b"k"
        elapsed = time.perf_counter() - start
        peer.close()
    raw.close()
    server.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=1.0, help="payload per measurement")
    parser.add_argument("--baud", type=int, default=921600)
    args = parser.parse_args()
    rate = args.baud / 10
    total = int(args.mib * 2**20)
    with tempfile.TemporaryDirectory() as tmp:
        key = HostKey.generate(Path(tmp) / "keys", name="bench")
        proc, url = start_unit(Path(tmp) / "unit")
        try:
            with Client.open(url) as client:
                client.authorize(key, "bench")
            proxy = FaultProxy(url, Faults(rate=rate, chunk=1024))
            link_s, max_data, stats = bench_link(proxy.url, key, total, args.baud)
            proxy.close()
            raw_s = bench_raw(proxy, total)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    link = total / link_s / rate
    raw = total / raw_s / rate
    print(f"link bench: {args.mib:g} MiB at {args.baud} baud ({rate:.0f} B/s line rate)")
    print(f"  (a) bulk calls, {max_data} B each: {total / link_s:9.0f} B/s = {link:6.1%} of line")
    print(f"  (b) raw bytes, same proxy:        {total / raw_s:9.0f} B/s = {raw:6.1%} of line")
    print(f"  (a)/(b) = {link / raw:.3f}", end="   ")
    print(f"resent {stats['resent']}, bad frames {stats['bad_frames']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
