"""A lossy sensor link (``make bench``): what a night keeps against the share of frames lost.

A simulated night goes through the whole pipeline (real gate, store) once clean and once for
each loss rate, frames lost at random as a noisy cable loses them
(:class:`edge.sources.lossy.LossySource`: the serial source's chunks, gaps and events). For
each rate: the share of the clean run's epochs with a heart rate that still have one, how
many of those are within 1 bpm of the clean run, the sensor_gap events written, and the
processing time as a ratio of the clean run's in the same sitting. Target (issue 16): at 3 %
lost, >= 90 % of the HRs kept, within 1 bpm.

    .venv/bin/python tests/bench/bench_lossy_link.py [--hours 2] [--seed 42]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge.pipeline import Pipeline, Settings  # noqa: E402
from edge.quality import QualityGate  # noqa: E402
from edge.sources.lossy import LossySource  # noqa: E402
from edge.sources.sim import SimSource  # noqa: E402
from edge.store import Store  # noqa: E402

RATES = (0.001, 0.01, 0.03, 0.10)
EPOCH_S = 30.0


def night(seed: int, hours: float, loss: float, workdir: Path):
    """(HR per epoch index, sensor_gap events, processing seconds) of one run."""
    source = SimSource(seed=seed, speed=None, duration_s=hours * 3600.0)
    if loss:
        source = LossySource(source, loss, seed=seed + 1)
    db = workdir / f"loss{loss}.db"
    with Store(str(db)) as store:
        start = time.perf_counter()
        Pipeline(source, store, QualityGate(source.fs), Settings(epoch_s=EPOCH_S)).run()
        wall = time.perf_counter() - start
        rows = [e for _, e in store.epochs()]
        gaps = sum(e.kind == "sensor_gap" for _, e in store.events())
    t0 = rows[0].t_utc
    hr = {round((e.t_utc - t0) / EPOCH_S): e.hr_bpm for e in rows}
    return hr, gaps, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        clean, _, clean_wall = night(args.seed, args.hours, 0.0, workdir)
        with_rate = [k for k, v in clean.items() if v is not None]
        print(
            f"lossy sensor link: sim:{args.seed}, {args.hours:g} h, {EPOCH_S:g} s epochs; "
            f"clean run: {len(with_rate)} epochs with an HR, {clean_wall:.1f} s"
        )
        print("frames lost   HR kept   within 1 bpm   max diff   gap events   time / clean")
        for loss in RATES:
            hr, gaps, wall = night(args.seed, args.hours, loss, workdir)
            both = [k for k in with_rate if hr.get(k) is not None]
            diff = np.array([abs(hr[k] - clean[k]) for k in both])
            within = f"{np.mean(diff <= 1.0):12.1%}" if diff.size else f"{'-':>12}"
            worst = f"{diff.max():8.2f}" if diff.size else f"{'-':>8}"
            print(
                f"{loss:10.1%}   {len(both) / len(with_rate):7.1%}   {within}   {worst} bpm"
                f"   {gaps:10d}   {wall / clean_wall:11.2f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
