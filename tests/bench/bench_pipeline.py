"""The bedside pipeline's speed, CPU, memory and store size per night (``make bench``).

Targets (issue 6): an 8 h night at 250 Hz processed end to end at max speed in under 5 s;
live mode below 5 % of one core; resident memory below 80 MB; store size per night stated.
The live pipeline's work is also counted in instructions a sample (valgrind's callgrind, which
a busy machine does not change): docs/install.md estimates the share of a Cortex-A72 core
(Raspberry Pi 4) from it.
The unit's own memory must not grow with the night (issue 16): it is measured apart from the
simulator's (which holds the whole night's truth) with a source of fixed memory, 1 h and 8 h.

Processing is measured on samples rendered beforehand (a replay of the night from memory),
so the simulator's rendering, timed on its own in the same run, is not counted in it; the
whole ``bedside run --source sim`` command is timed too. Run from the project root:

    .venv/bin/python tests/bench/bench_pipeline.py [--seed 42] [--live-s 20] [--count-s 600]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge.pipeline import OpenGate, Pipeline, Settings  # noqa: E402
from edge.quality import QualityGate  # noqa: E402
from edge.readers import Recording  # noqa: E402
from edge.sim import Night, State  # noqa: E402
from edge.sources.replay import ReplaySource  # noqa: E402
from edge.store import Store  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from callgrind import instructions  # noqa: E402

NIGHT_S = 8 * 3600.0
FS = 250.0
#: The estimate for a Raspberry Pi 4: a Cortex-A72 at 1.5 GHz retiring one instruction a
#: cycle (a low figure for interpreted Python on a 3-wide core), and the same count of
#: instructions for the same work on aarch64 as on x86-64 (within tens of percent).
A72_HZ = 1.5e9
A72_IPC = 1.0


def render(seed: int) -> tuple[Night, np.ndarray, float]:
    """The night, its samples, and the seconds its rendering took (10 s chunks)."""
    night = Night(seed=seed, fs=FS, duration_s=NIGHT_S)
    begin = time.perf_counter()
    samples = np.concatenate(list(night.chunks(10.0)))
    return night, samples, time.perf_counter() - begin


def accuracy(night: Night, db: Path) -> dict[str, float]:
    """Stored epochs against the simulator's ground truth (the replay starts at t = 0)."""
    store = Store(db, readonly=True)
    epochs = [e for _, e in store.epochs()]
    store.close()
    t0 = epochs[0].t_utc
    hr_err, rr_err, pure_good, rated_good, hr_in_empty = [], [], 0, 0, 0
    for e in epochs:
        i0 = int(round((e.t_utc - t0) * FS))
        i1 = min(i0 + int(round(e.duration_s * FS)), night.n_samples)
        t = np.arange(i0, i1, 10) / FS
        labels = np.unique(night.state_at(i0, i1))
        hr, rr = night.heart_rate_at(t), night.breathing_rate_at(t)
        if e.hr_bpm is not None and np.isfinite(hr).any():
            hr_err.append(abs(e.hr_bpm - np.nanmean(hr)))
        if e.rr_bpm is not None and np.isfinite(rr).any():
            rr_err.append(abs(e.rr_bpm - np.nanmean(rr)))
        if labels.tolist() == [State.GOOD]:
            pure_good += 1
            rated_good += e.hr_bpm is not None
        hr_in_empty += labels.tolist() == [State.EMPTY] and e.hr_bpm is not None
    return {
        "hr_mae_bpm": float(np.mean(hr_err)),
        "hr_epochs": len(hr_err),
        "rr_mae_per_min": float(np.mean(rr_err)),
        "good_epochs_with_hr": rated_good / pure_good,
        "empty_epochs_with_hr": hr_in_empty,
    }


def process(samples: np.ndarray, gate, db: Path, *, speed=None, chunk_s=None, duration_s=None):
    """One pipeline run over ``samples``; (wall s, CPU s, result, store bytes)."""
    rec = Recording(samples, FS, "bcg", ("bcg",))
    source = ReplaySource(rec, speed=speed, chunk_s=chunk_s, duration_s=duration_s)
    store = Store(db)
    wall, cpu = time.perf_counter(), time.process_time()
    result = Pipeline(source, store, gate, Settings()).run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    store.close()
    size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    return wall, cpu, result, size


def whole_command(seed: int, tmp: Path) -> tuple[float, float]:
    """``bedside run --source sim`` for 8 h at max speed: (wall s, peak RSS MB)."""
    cmd = [sys.executable, "-m", "edge", "run", f"--source=sim:{seed}", "--speed=max"]
    cmd += ["--duration=8h", f"--db={tmp / 'cmd.db'}", "--quiet"]
    return _peak_rss(cmd)


#: The unit's own memory: the pipeline, the real gate and the store fed by a source of fixed
#: memory (ten minutes of a simulated night, replayed again and again with the stream index
#: running on), so that nothing but the unit can grow with the length of the night.
_LOOPED_NIGHT = """
import sys, tempfile
from pathlib import Path
from edge.pipeline import Pipeline, Settings
from edge.quality import QualityGate
from edge.sim import Night
from edge.sources.base import Chunk
from edge.store import Store

class Looped:
    name, fs = "looped sim", 250.0
    def __init__(self, hours):
        self.loop = Night(seed=42, fs=250.0, duration_s=600.0).samples()
        self.n, self.next = int(hours * 3600 * 250), 0
    def read(self, timeout_s=None):
        if self.next >= self.n:
            return None
        k = self.next % self.loop.size
        x = self.loop[k : k + 2500]
        chunk = Chunk(self.next, x, 1.7e9 + self.next / 250.0)
        self.next += x.size
        return chunk
    def drain_events(self):
        return []
    def close(self):
        pass

with tempfile.TemporaryDirectory() as tmp:
    with Store(str(Path(tmp) / "v.db")) as store:
        Pipeline(Looped(float(sys.argv[1])), store, QualityGate(250.0), Settings()).run()
"""


def live_work(mode: str, seed: int, seconds: float) -> None:
    """One process of the instruction count: the signal and the quality gate made, then
    (``live``) the pipeline over ``seconds`` of it in 1 s chunks, as the serial link delivers
    them, or (``none``) nothing more: the difference is the live pipeline's own work."""
    samples = Night(seed=seed, fs=FS, duration_s=seconds).samples()
    gate = QualityGate(FS)
    if mode == "live":
        with tempfile.TemporaryDirectory() as tmp:
            process(samples, gate, Path(tmp) / "count.db", chunk_s=1.0)


def live_instructions(seed: int, seconds: float) -> float:
    """Instructions a sample of the live pipeline (DSP, quality gate, vitals, store)."""
    args = ["--seed", str(seed), "--count-s", str(seconds), "--work"]
    counts = {mode: instructions(__file__, [*args, mode]) for mode in ("none", "live")}
    return (counts["live"] - counts["none"]) / (seconds * FS)


def unit_memory(hours: float) -> float:
    """Peak RSS (MB) of the pipeline, gate and store over ``hours`` of a looped source."""
    return _peak_rss([sys.executable, "-c", _LOOPED_NIGHT, str(hours)])[1]


def _peak_rss(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd`` from the project root: (wall s, peak RSS MB).

    The peak is the child's own VmHWM, polled from /proc: getrusage would also count the
    pages of this process that the child shared before its exec.
    """
    begin = time.perf_counter()
    env = {"BEDSIDE_CONFIG": "", "PATH": "", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    peak_kb = 0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError, ValueError):  # exiting
            pass
        time.sleep(0.05)
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed with status {proc.returncode}")
    return time.perf_counter() - begin, peak_kb / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--live-s", type=float, default=20.0, help="live-mode run, s")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument(
        "--count-s", type=float, default=600.0, help="signal for the instruction count, s"
    )
    parser.add_argument(
        "--instructions-only", action="store_true", help="only the instruction count"
    )
    parser.add_argument("--work", choices=("none", "live"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.work:
        live_work(args.work, args.seed, args.count_s)
        return 0
    per_sample = live_instructions(args.seed, args.count_s)
    a72_percent = 100 * per_sample * FS / (A72_HZ * A72_IPC)
    count_line = (
        f"  live pipeline, 1 s chunks (callgrind) {per_sample:6.0f} instructions a sample "
        f"(x86-64, {args.count_s:g} s of signal): at {FS:g} Hz, an estimated "
        f"{a72_percent:.2f} % of a {A72_HZ / 1e9:g} GHz Cortex-A72 core at {A72_IPC:g} "
        "instruction a cycle"
    )
    if args.instructions_only:
        print(count_line)
        return 0

    night, samples, render_s = render(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gate = QualityGate(FS)
        wall, cpu, result, store_bytes = process(samples, gate, tmp / "night.db")
        acc = accuracy(night, tmp / "night.db")
        wall_open, _, _, _ = process(samples, OpenGate(FS), tmp / "open.db")
        # Live: real time, 1 s chunks, as the serial link delivers.
        live_wall, live_cpu, live, _ = process(
            samples, QualityGate(FS), tmp / "live.db", speed=1.0, duration_s=args.live_s
        )
        # The same 1 s chunks at max speed: CPU per second of signal, over a whole hour.
        hour_wall, hour_cpu, _, _ = process(
            samples, QualityGate(FS), tmp / "hour.db", chunk_s=1.0, duration_s=3600.0
        )
        cmd_wall, rss_mb = whole_command(args.seed, tmp)
        unit_1h, unit_8h = unit_memory(1.0), unit_memory(8.0)

    share_live = 100 * live_cpu / live_wall
    share_chunks = 100 * hour_cpu / 3600.0
    figures = {
        "night_h": NIGHT_S / 3600,
        "epochs": result.epochs,
        "render_s": render_s,
        "process_s": wall,
        "process_cpu_s": cpu,
        "process_no_gate_s": wall_open,
        "realtime_factor": NIGHT_S / wall,
        "live_cpu_percent": share_live,
        "live_cpu_percent_1s_chunks_1h": share_chunks,
        "live_instructions_per_sample": per_sample,
        "a72_percent_estimate": a72_percent,
        "command_s": cmd_wall,
        "peak_rss_mb": rss_mb,
        "unit_peak_rss_mb_1h": unit_1h,
        "unit_peak_rss_mb_8h": unit_8h,
        "store_bytes_per_night": store_bytes,
        **acc,
    }
    print(f"bedside pipeline, an {NIGHT_S / 3600:g} h night at {FS:g} Hz (sim seed {args.seed})")
    print(f"  sim rendering alone (10 s chunks)     {render_s:6.2f} s")
    print(f"  processing, gate on (10 s chunks)     {wall:6.2f} s   (goal < 5 s)")
    print(f"    of which DSP + vitals + store       {wall_open:6.2f} s   (the same with --no-gate)")
    print(f"    ratio: 8 h of signal / processing   {NIGHT_S / wall:8.0f}x real time")
    print(f"    ratio: processing / sim rendering   {wall / render_s:8.2f}")
    print(f"  bedside run --source sim (whole cmd)  {cmd_wall:6.2f} s   (render + process + start)")
    print(f"  live, real time, 1 s chunks, {args.live_s:g} s     {share_live:6.2f} % of one core")
    print(f"  1 s chunks for 1 h at max speed       {share_chunks:6.2f} % of one core (projected)")
    print(count_line)
    print(f"  peak RSS of the whole command         {rss_mb:6.1f} MB  (goal < 80 MB)")
    print(
        f"  the unit's own (looped source): 1 h {unit_1h:5.1f} MB, 8 h {unit_8h:5.1f} MB: "
        f"{(unit_8h - unit_1h) / 7:+.2f} MB an hour (goal: none; the rest of the whole "
        "command's is the simulator's truth for the night)"
    )
    print(f"  store per night ({result.epochs} epochs of 30 s)  {store_bytes / 1024:6.0f} KiB")
    print(
        f"  against the ground truth: HR MAE {acc['hr_mae_bpm']:.2f} bpm over "
        f"{acc['hr_epochs']} epochs, RR MAE {acc['rr_mae_per_min']:.2f}/min, an HR in "
        f"{100 * acc['good_epochs_with_hr']:.0f} % of wholly good epochs and in "
        f"{acc['empty_epochs_with_hr']} wholly empty ones"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
