"""Watch a sensor's raw signal: ``python -m edge.sources.monitor PORT``.

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

import numpy as np

from ..errors import BedsideError
from .serial import SerialSource

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge.sources.monitor",
        description="Watch the raw signal of the sensor on a serial port.",
        epilog="example: python -m edge.sources.monitor /dev/ttyUSB0 --fs 250 --seconds 10",
    )
    parser.add_argument("port", help="a device (/dev/ttyUSB0) or a pyserial URL")
    parser.add_argument("--fs", type=int, default=250, help="sampling rate, 50..1000 Hz")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--raw", action="store_true", help="print every sample as CSV")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    args = parser.parse_args(argv)
    try:
        source = SerialSource(args.port, fs=args.fs)
    except BedsideError as exc:
        print(f"error {exc.code}: {exc}", file=sys.stderr)
        return 1
    info = source.info
    if args.json and not args.raw:
        print(json.dumps({"sensor": asdict(info)}), flush=True)
    else:
        print(
            f"# sensor {info.unique_id}, firmware {info.firmware}, {info.rate} Hz, "
            f"{info.samples_per_frame} samples per frame",
            file=sys.stderr if args.raw else sys.stdout,
            flush=True,
        )
    out = sys.stdout
    if args.raw:
        out.write("time_s,adc\n")
    t_end = None if args.seconds is None else time.monotonic() + args.seconds
    window: list[np.ndarray] = []
    t_line = time.monotonic() + 1.0
    try:
        while t_end is None or time.monotonic() < t_end:
            chunk = source.read(timeout_s=0.2)
            for event in source.drain_events():
                if args.json and not args.raw:
                    print(json.dumps({"event": asdict(event)}), flush=True)
                else:
                    print(f"# {event.kind}: {event.detail}", file=sys.stderr, flush=True)
            if chunk is None:
                break
            if args.raw and len(chunk.samples):
                t = np.arange(chunk.start_index, chunk.stop_index) / source.fs
                out.writelines(f"{ti:.4f},{v}\n" for ti, v in zip(t, chunk.samples, strict=True))
            window.append(chunk.samples)
            if not args.raw and time.monotonic() >= t_line:
                t_line += 1.0
                x = np.concatenate(window)
                print(_json_status(source, x) if args.json else _status(source, x), flush=True)
                window = []
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        source.close()
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
