"""Log pull benchmark (`make bench`): a week of per-second vitals off a unit, and after it.

    (a) a full pull of a week of 1 s epochs (604,800 rows in 7 sessions, through the real
        store, agent and link) from a virtual unit over a local socket: time and rows/s
    (b) the pulls after it: nothing new, and one new hour; their time as a fraction of (a)
    (c) over an emulated 921600 baud line (a rate-limited TCP proxy, 92,160 bytes/s each
        way, as 8N1 framing leaves): a pull of ``--serial-hours`` of vitals, against the
        peer measured on the same line in the same run, a plain copy of that unit's
        vitals.db file; the pull's payload as a fraction of the line rate; and the week of
        (a) over that line at the measured pace

Run: ``.venv/bin/python tests/bench/bench_logs.py [--days 7] [--serial-hours 6]``.
The week's store is made once and kept in build/bench_logs/ (about 1 minute).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

# The repo root (host_tools, before an install picks it up) and the host tests' helpers.
sys.path[:0] = [
    str(Path(__file__).resolve().parents[2]),
    str(Path(__file__).resolve().parents[1] / "host"),
]
from conftest import UnitProcess  # noqa: E402
from faultproxy import FaultProxy, Faults  # noqa: E402
from logs_fixtures import ROOT, T0, connect, record  # noqa: E402

from edge.link import Client  # noqa: E402
from host_tools.keys import HostKey  # noqa: E402
from host_tools.logs import pull  # noqa: E402

LINE_RATE = 921600 / 10  # bytes/s: 10 bits per byte on the wire (start, 8 data, stop)
CACHE = ROOT / "build" / "bench_logs"


def unit_state(folder: Path, days: int) -> Path:
    """A unit state folder holding ``days`` days of 1 s epochs (copied from the cache)."""
    cached = CACHE / f"vitals-{days}d"
    if not (cached / "vitals.db").exists():
        print(f"making {days} days of 1 s vitals in {cached} (once)...", flush=True)
        shutil.rmtree(cached, ignore_errors=True)
        cached.mkdir(parents=True)
        record(cached, days * 86400, sessions=days, seed=7)
    state = folder / "unit"
    shutil.copytree(cached, state)
    return state


def start_paired(state: Path, keys: Path) -> tuple[UnitProcess, HostKey]:
    """The virtual unit on ``state`` (a subprocess) with a new host key paired."""
    unit = UnitProcess(state).start()
    key = HostKey.generate(keys, name="bench")
    with Client.open(unit.url) as client:
        client.authorize(key, "bench")
    return unit, key


def timed_pull(url: str, key, archive: Path):
    with connect(url, key, timeout_s=5.0) as client:
        start = time.perf_counter()
        result = pull(client, archive)
        return time.perf_counter() - start, result


def raw_copy_time(path: Path, rate: float) -> float:
    """Seconds to send ``path``'s bytes through a line-rate proxy: the plain-copy peer."""
    data = path.read_bytes()
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    target = f"socket://127.0.0.1:{server.getsockname()[1]}"
    with FaultProxy(target, Faults(rate=rate, chunk=4096)) as proxy:
        host, _, port = proxy.url.removeprefix("socket://").rpartition(":")
        start = time.perf_counter()
        with socket.create_connection((host, int(port))) as s:
            got = 0
            while got < len(data):
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                got += len(chunk)
        elapsed = time.perf_counter() - start
    server.close()
    assert got == len(data), "the copy was cut short"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--serial-hours", type=float, default=6.0)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        state = unit_state(tmp, opts.days)
        n_week = opts.days * 86400
        unit, key = start_paired(state, tmp / "keys")
        try:
            t_full, full = timed_pull(unit.url, key, tmp / "archive")
            assert full.epochs == n_week, full.summary()
            t_none, none = timed_pull(unit.url, key, tmp / "archive")
            assert none.nothing_new
            record(state, 3600, seed=8, t0=T0 + 10 * 86400)
            t_hour, hour = timed_pull(unit.url, key, tmp / "archive")
            assert hour.epochs == 3600
        finally:
            unit.stop()
        store_mb = (state / "vitals.db").stat().st_size / 2**20
        print(
            f"logs pull, {opts.days} days of 1 s vitals ({n_week} epochs, store {store_mb:.0f} MiB)"
        )
        print(
            f"  (a) full pull over a socket  {t_full:7.2f} s  {n_week / t_full:9.0f} epochs/s  "
            f"{full.link_bytes / 2**20:.1f} MiB in {full.pages} pages "
            f"({full.link_bytes / n_week:.1f} B/epoch)"
        )
        print(f"  (b) again, nothing new       {t_none:7.3f} s  = {t_none / t_full:.4f} x full")
        print(f"      one new hour (3600)      {t_hour:7.3f} s  = {t_hour / t_full:.4f} x full")

        # (c) the same code on an emulated serial line, against a plain file copy.
        n_serial = int(opts.serial_hours * 3600)
        serial_state = tmp / "serial" / "unit"
        serial_state.mkdir(parents=True)
        record(serial_state, n_serial, seed=9)
        unit, key = start_paired(serial_state, tmp / "serial" / "keys")
        try:
            with FaultProxy(unit.url, Faults(rate=LINE_RATE, chunk=4096)) as proxy:
                t_serial, serial = timed_pull(proxy.url, key, tmp / "serial" / "archive")
        finally:
            unit.stop()
        assert serial.epochs == n_serial
        db = serial_state / "vitals.db"
        t_copy = raw_copy_time(db, LINE_RATE)
        payload = serial.link_bytes / t_serial / LINE_RATE
        week_s = full.link_bytes / (serial.link_bytes / t_serial)
        print(
            f"  (c) 921600 baud line, {opts.serial_hours:g} h ({n_serial} epochs): pull "
            f"{t_serial:.1f} s, plain copy of vitals.db ({db.stat().st_size / 2**20:.1f} MiB) "
            f"{t_copy:.1f} s: pull = {t_serial / t_copy:.2f} x copy"
        )
        print(
            f"      page payload at {payload:.0%} of the line rate; "
            f"a week over the line: {week_s / 60:.1f} min"
        )


if __name__ == "__main__":
    main()
