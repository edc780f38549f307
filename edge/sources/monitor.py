"""Watch a sensor's raw signal: ``bedside-host monitor -p PORT`` on a laptop, or
``python -m edge.sources.monitor -p PORT`` on the unit (both run :func:`watch`).

For the hardware engineer on the bench: identifies the sensor, then prints once a second the
rate actually received, the ADC range and the link counters; with ``--raw`` it writes every
sample instead (CSV with a ``time_s`` column, so the file replays with
``bedside run --source replay:FILE``); with ``--json`` one JSON object a line. Errors print
``error E24x: ...`` and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import TextIO

import numpy as np

from ..errors import BedsideError
from .serial import SerialSource

__all__ = ["main", "watch"]


def watch(
    port: str,
    *,
    fs: int = 250,
    seconds: float | None = None,
    raw: bool = False,
    as_json: bool = False,
    out: TextIO | None = None,
    notes: TextIO | None = None,
) -> None:
    """Identify the sensor on ``port``, then print its signal until ``seconds`` (or Ctrl-C).

    One status line a second (samples received, ADC range, link counters), or with ``raw``
    every sample as CSV (``time_s,adc``: it replays with ``bedside run --source
    replay:FILE``), or with ``as_json`` one JSON object a line. The sensor's identity and
    link events go to ``notes`` (stderr) in text and raw mode, to ``out`` in JSON mode.
    ``bedside-host monitor`` and ``python -m edge.sources.monitor`` both run this.

    Raises:
        BedsideError: E240-E243 when the port cannot be opened or the sensor not started.
    """
    out = out or sys.stdout
    notes = notes or sys.stderr
    as_json = as_json and not raw  # raw output is CSV, whatever else was asked
    source = SerialSource(port, fs=fs)
    info = source.info
    if as_json:
        print(json.dumps({"sensor": asdict(info)}), file=out, flush=True)
    else:
        print(
            f"# sensor {info.unique_id}, firmware {info.firmware}, {info.rate} Hz, "
            f"{info.samples_per_frame} samples per frame",
            file=notes if raw else out,
            flush=True,
        )
    if raw:
        out.write("time_s,adc\n")
    t_end = None if seconds is None else time.monotonic() + seconds
    window: list[np.ndarray] = []
    t_line = time.monotonic() + 1.0
    try:
        while t_end is None or time.monotonic() < t_end:
            chunk = source.read(timeout_s=0.2)
            for event in source.drain_events():
                if as_json:
                    print(json.dumps({"event": asdict(event)}), file=out, flush=True)
                else:
                    print(f"# {event.kind}: {event.detail}", file=notes, flush=True)
            if chunk is None:
                break
            if raw and len(chunk.samples):
                t = np.arange(chunk.start_index, chunk.stop_index) / source.fs
                out.writelines(f"{ti:.4f},{v}\n" for ti, v in zip(t, chunk.samples, strict=True))
            window.append(chunk.samples)
            if not raw and time.monotonic() >= t_line:
                t_line += 1.0
                x = np.concatenate(window)
                line = _json_status(source, x) if as_json else _status(source, x)
                print(line, file=out, flush=True)
                window = []
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        source.close()
        out.flush()


def main(argv: list[str] | None = None) -> int:
    """``python -m edge.sources.monitor``: the monitor on the unit itself (no host tools)."""
    parser = argparse.ArgumentParser(
        prog="python -m edge.sources.monitor",
        description="Watch the raw signal of the sensor on a serial port "
        "(on a laptop: bedside-host monitor).",
        epilog="example: python -m edge.sources.monitor -p /dev/ttyUSB0 --fs 250 --seconds 10",
    )
    parser.add_argument("port", nargs="?", help="the port (as -p)")
    parser.add_argument(
        "-p", "--port", dest="port_option", help="a device (/dev/ttyUSB0) or a pyserial URL"
    )
    parser.add_argument("--fs", type=int, default=250, help="sampling rate, 50..1000 Hz")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--raw", action="store_true", help="print every sample as CSV")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    args = parser.parse_args(argv)
    port = args.port_option or args.port
    if port is None:
        parser.error("give the sensor's port: -p PORT")
    try:
        watch(port, fs=args.fs, seconds=args.seconds, raw=args.raw, as_json=args.json)
    except BedsideError as exc:
        print(f"error {exc.code}: {exc}", file=sys.stderr)
        return 1
    return 0


def _json_status(source: SerialSource, x: np.ndarray) -> str:
    level = {"min": int(x.min()), "mean": float(x.mean()), "max": int(x.max())} if len(x) else {}
    return json.dumps({"samples": len(x), **level, "link": asdict(source.counters)})


def _status(source: SerialSource, x: np.ndarray) -> str:
    c = source.counters
    level = f"min {x.min():5d}  mean {x.mean():7.1f}  max {x.max():5d}" if len(x) else "no data"
    return (
        f"{len(x):4d} samples/s  {level}  crc {c.crc_errors}  bad {c.malformed}  "
        f"gaps {c.gaps}  reconnects {c.reconnects}"
    )


if __name__ == "__main__":
    sys.exit(main())
