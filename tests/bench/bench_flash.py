"""Flash throughput benchmark (`make bench`): flashing as a fraction of the link's rate.

The link is emulated by the fault proxy's rate limit (tests/host/faultproxy.py: each
direction at most BAUD/10 bytes/s, 8N1), in front of a virtual unit in its own process (the
real agent, ``bedside-host sim``). Measured side by side in one run, on the same proxy:

    (a) the peer: the bundle's bytes pushed raw through the rate-limited proxy into a socket
        that only counts them (what the line itself can carry)
    (b) ``flash_bundle``: begin, fsynced chunks, each acknowledged (stop-and-wait), the whole
        file's SHA-256 and the unit's verify + unpack at finish (the trial boot is left out:
        it is the unit's health check, not the link)

Prints (a) and (b) in bytes/s, (b)/(a), and (b) against the nominal line rate. Goal:
(b) >= 85 % of the line rate at 921600 baud. Median of three runs each.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "host")]  # host_tools and the test helpers

from bundle_kit import build, install_release_key, release_key  # noqa: E402
from faultproxy import FaultProxy, Faults  # noqa: E402

from edge.link import Client  # noqa: E402
from host_tools.flash import flash_bundle  # noqa: E402
from host_tools.keys import HostKey  # noqa: E402

BAUDS = (921600, 115200)
RUNS = 3


def raw_rate(nbytes: int, rate: float) -> float:
    """Bytes/s of ``nbytes`` pushed through a rate-limited proxy into a counting sink."""
    sink = socket.create_server(("127.0.0.1", 0))
    got = threading.Event()

    def count() -> None:
        conn, _ = sink.accept()
        seen = 0
        while seen < nbytes:
            data = conn.recv(65536)
            if not data:
                break
            seen += len(data)
        got.set()
        conn.close()

    threading.Thread(target=count, daemon=True).start()
    with FaultProxy(f"socket://127.0.0.1:{sink.getsockname()[1]}", Faults(rate=rate)) as proxy:
        host, _, port = proxy.url.removeprefix("socket://").rpartition(":")
        with socket.create_connection((host, int(port))) as s:
            t0 = time.monotonic()
            s.sendall(b"\x55" * nbytes)
            got.wait(600)
            elapsed = time.monotonic() - t0
    sink.close()
    return nbytes / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        host_key = HostKey.generate(tmp / "keys", name="bench")
        rkey = release_key(tmp / "keys")
        state = tmp / "unit"
        sim = subprocess.Popen(
            [sys.executable, "-m", "host_tools", "sim", "--state", str(state), "--no-sensor"]
            + ["--pairing", "--json"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            url = json.loads(sim.stdout.readline())["url"]
            with Client.open(url) as client:
                client.authorize(host_key, "bench")
            install_release_key(state, rkey)
            # One bundle per run (versions 0.2.0, 0.2.1...): the unit would skip the upload
            # of a bundle it already holds as its trial.
            bundles = [build(tmp / f"b{k}.bundle", rkey, f"0.2.{k}") for k in range(2 * RUNS)]
            size = bundles[0].stat().st_size
            print(f"flash throughput: bundles of {size / 1e3:.0f} kB, median of {RUNS} runs")
            for baud in BAUDS:
                line = baud / 10  # 8N1: ten bits on the wire per byte
                raw, flash, upload = [], [], []
                for _ in range(RUNS):
                    bundle = bundles.pop()
                    size = bundle.stat().st_size
                    raw.append(raw_rate(size, line))
                    with FaultProxy(url, Faults(rate=line)) as proxy:

                        def open_unit(proxy_url=proxy.url, baud=baud):
                            c = Client.open(proxy_url, timeout_s=5.0, baudrate=baud)
                            c.authenticate(host_key)
                            return c

                        result = flash_bundle(open_unit, bundle, boot=False, show_progress=False)
                    assert result["sent"] == size, result
                    flash.append(size / result["seconds"])
                    upload.append(size / result["upload_seconds"])
                a, b, c = (statistics.median(x) for x in (raw, flash, upload))
                goal = "  goal (b)/line >= 0.85" if baud == 921600 else ""
                print(
                    f"  {baud:>7} baud, line {line / 1e3:.1f} kB/s: (a) raw {a / 1e3:.1f} kB/s, "
                    f"(b) flash {b / 1e3:.1f} kB/s, (c) its upload phase {c / 1e3:.1f} kB/s\n"
                    f"           (b)/(a) {b / a:.3f}  (b)/line {b / line:.3f}  "
                    f"(c)/(a) {c / a:.3f}  (c)/line {c / line:.3f}{goal}"
                )
        finally:
            sim.terminate()
            sim.wait(timeout=15)


if __name__ == "__main__":
    main()
