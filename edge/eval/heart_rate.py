"""Heart rate per epoch of a recording file, as the unit stores it, or why there is none.

    python -m edge.eval.heart_rate PATH [--channel NAME] [--fs HZ] [--epoch S] [--json]

The recording is replayed through the unit itself (:func:`edge.eval.product.replay`: the
same path as ``bedside run --source replay:PATH --speed max``, the default config, the real
quality gate, a throw-away store), and each epoch's stored state, heart rate and reason are
printed. There is one heart-rate definition, the unit's (docs/dsp.md): this tool, ``make
eval`` and the unit cannot disagree.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from edge.config import Config
from edge.errors import BedsideError
from edge.readers import RecordingError, read_recording

from .product import replay

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m edge.eval.heart_rate",
        description="Heart rate per epoch of a recording as the unit stores it, or why none.",
        epilog="example: python -m edge.eval.heart_rate night.csv --fs 250 --channel bcg",
    )
    parser.add_argument("path", help="a recording: .mat .csv .txt .npy .npz .edf .bdf .hea")
    parser.add_argument("--channel", help="the signal channel (default: the file's BCG)")
    parser.add_argument("--fs", type=float, help="sampling rate, when the file has none")
    parser.add_argument(
        "--epoch", type=float, default=10.0, help="epoch length, s (1-300; default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m edge.eval.heart_rate PATH``: the unit's heart rate per epoch of a file."""
    args = _parser().parse_args(argv)
    try:
        # the option checked and named as `bedside run --epoch` checks it
        Config().with_overrides({"run_epoch_s": ("--epoch", args.epoch)})
        rec = read_recording(args.path, channel=args.channel, fs=args.fs)
        with tempfile.TemporaryDirectory() as workdir:
            run, error = replay(rec.signal, rec.fs, Path(workdir), epoch_s=args.epoch)
    except (RecordingError, BedsideError) as exc:
        print(f"error {exc.code}: {exc}", file=sys.stderr)
        return 1
    if error is not None:
        print(f"error {error}", file=sys.stderr)
        return 1
    epochs = [
        {
            "start_s": round(k * args.epoch, 3),
            "state": str(run.state[k]) or None,
            "bpm": None if math.isnan(run.hr[k]) else round(float(run.hr[k]), 2),
            "reason": (str(run.hr_reason[k]) or None) if math.isnan(run.hr[k]) else None,
        }
        for k in range(run.n)
    ]
    with_rate = sum(e["bpm"] is not None for e in epochs)
    coverage = with_rate / len(epochs) if epochs else 0.0
    if args.json:
        summary = {"source": rec.source, "channel": rec.channel, "fs": rec.fs}
        print(json.dumps({**summary, "coverage": coverage, "epochs": epochs}))
        return 0
    print(
        f"{rec.source} [{rec.channel}], {rec.duration_s:.0f} s at {rec.fs:g} Hz: a heart rate "
        f"in {with_rate} of {len(epochs)} epochs of {args.epoch:g} s ({coverage:.0%})"
    )
    for e in epochs:
        rate = "-" if e["bpm"] is None else f"{e['bpm']:6.1f} bpm"
        state = e["state"] or "(none)"  # no judged window: the stream's first seconds
        print(f"{e['start_s']:8.0f} s  {state:<7} {rate:>10}  {e['reason'] or ''}".rstrip())
    return 0


if __name__ == "__main__":
    import signal

    if hasattr(signal, "SIGPIPE"):  # `... | head` ends the listing quietly, as other tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    raise SystemExit(main())
