"""Demo of the DSP core (`make run`): a synthetic recording through the streaming path.

    python -m dsp_c.demo [--seconds 180] [--fs 250] [--heart-bpm 62] [--seed 7]

Feeds a synthetic under-mattress BCG (with a movement burst) in 1 s chunks, as the unit
reads its sensor, through the band-pass, the J-peak detector, respiration and motion, and
prints one line per 10 s window next to the ground truth, then beat-level accuracy.
A window with movement gets no heart rate: no value is invented.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import JPeakDetector, MotionMeter, RespirationExtractor
from .beats import beat_filter
from .metrics import match_beats, rate_per_window
from .synthetic import bcg_signal

WINDOW_S = 10  # seconds per output line


def _fmt(value: float, width: int) -> str:
    """A rate with one decimal, or '-' where there is no estimate."""
    return f"{value:{width}.1f}" if np.isfinite(value) else "-".rjust(width)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m dsp_c.demo",
        description=__doc__.splitlines()[0],
        epilog="example: python -m dsp_c.demo --seconds 120 --heart-bpm 75 --seed 3",
    )
    parser.add_argument("--seconds", type=float, default=180.0, help="length (default 180)")
    parser.add_argument("--fs", type=float, default=250.0, help="samples/s (default 250)")
    parser.add_argument("--heart-bpm", type=float, default=62.0, help="mean heart rate")
    parser.add_argument("--breaths", type=float, default=14.0, help="breaths per minute")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    if args.seconds < 30:
        parser.error("--seconds: at least 30")

    fs = args.fs
    motion_s = (0.55 * args.seconds, 0.55 * args.seconds + 12.0)
    rec = bcg_signal(
        fs=fs,
        seconds=args.seconds,
        heart_bpm=args.heart_bpm,
        breaths_per_min=args.breaths,
        motion=(motion_s,),
        seed=args.seed,
    )
    band = beat_filter(fs)
    band.reset(steady_input=float(rec.x[0]))
    detector = JPeakDetector(fs)
    breathing = RespirationExtractor(fs)
    movement = MotionMeter(fs, window_s=1.0)

    beats, breaths, moving = [], [], []
    chunk = int(fs)
    for start in range(0, rec.x.size, chunk):  # 1 s chunks, as from the sensor
        piece = rec.x[start : start + chunk]
        beats.append(detector.process(band.process(piece)))
        breaths.append(breathing.process(piece)[1])
        moving.append(movement.process(piece)[1])
    beats.append(detector.flush())
    beats_found = np.concatenate(beats)
    breaths_found = np.concatenate(breaths)
    moving_s = np.concatenate(moving)

    print(
        f"synthetic BCG: {args.seconds:g} s at {fs:g} Hz, heart {args.heart_bpm:g} bpm, "
        f"breathing {args.breaths:g}/min, movement {motion_s[0]:.0f}-{motion_s[1]:.0f} s, "
        f"seed {args.seed}"
    )
    print(f"{'time':>9}  {'HR bpm':>7} {'truth':>6}  {'breaths/min':>11} {'truth':>6}  motion")
    n = rec.x.size
    hr = rate_per_window(beats_found, fs, n, WINDOW_S, lookback_s=2.0)
    hr_true = rate_per_window(rec.beats, fs, n, WINDOW_S, lookback_s=2.0)
    br = rate_per_window(breaths_found, fs, n, WINDOW_S, lookback_s=30.0)
    br_true = rate_per_window(rec.breaths, fs, n, WINDOW_S, lookback_s=30.0)
    errors = []
    for k in range(hr.size):
        first_s, last_s = k * WINDOW_S, (k + 1) * WINDOW_S
        moved = bool(moving_s[first_s:last_s].any())
        if moved:
            hr[k] = np.nan  # no heart rate from a window with movement
        elif np.isfinite(hr[k]):
            errors.append(abs(hr[k] - hr_true[k]))
        line = (
            f"{first_s:4d}-{last_s:<4d}  {_fmt(hr[k], 7)} {_fmt(hr_true[k], 6)}  "
            f"{_fmt(br[k], 11)} {_fmt(br_true[k], 6)}  {'MOVING' if moved else ''}"
        )
        print(line.rstrip())

    def outside_movement(idx: np.ndarray) -> np.ndarray:
        keep = np.ones(idx.size, bool)
        for a, b in rec.motion:
            keep &= (idx < a - 2 * fs) | (idx >= b + 2 * fs)
        return idx[keep]

    truth, found = outside_movement(rec.beats), outside_movement(beats_found)
    hits = match_beats(found, truth, int(0.05 * fs)).hits
    print(
        f"\nbeats outside movement: {truth.size} true, {found.size} detected, {hits} matched "
        f"within 50 ms: sensitivity {hits / truth.size:.1%}, PPV {hits / max(found.size, 1):.1%}"
    )
    print(f"heart rate MAE over {len(errors)} still 10 s windows: {np.mean(errors):.2f} bpm")
    print(f"breathing rate now: {breathing.rate_bpm:.1f}/min (truth {args.breaths:g}/min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
