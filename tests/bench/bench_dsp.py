"""DSP core benchmark: dsp_c against scipy, measured side by side in one run (`make bench`).

    (a) dsp_c.detect_beats (band-pass + J-peaks in one call) on 8 hours of 250 Hz BCG
    (b) scipy.signal.sosfilt + find_peaks on the same array
    (c) streaming in 1 s chunks through the Python API vs scipy.signal.sosfilt with zi
    (d) per-call overhead of the binding (a 1-sample chunk through SosFilter / JPeakDetector)
    (e) the simulator: edge.sim.Night(seed=1) rendered whole (runs of 64 blocks) against the
        same night block by block (render_block, the renderer's old shape), and against (a)

Each figure is the best of several repeats, peers interleaved, so the ratios hold on a
noisy machine even where the absolute times do not; (a)/(b) is also counted in instructions
under valgrind, which a busy machine does not change. Goals: (a)/(b) >= 2x, (c) >= 20x,
(d) < 2 microseconds, (e) an 8 h night well under 2 s (the bedside pipeline must run a
simulated night end to end in 5 s).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np
import scipy.signal as ss

import dsp_c
from dsp_c.synthetic import bcg_signal
from edge.sim import Night
from edge.sim.render import render_block

sys.path.insert(0, os.path.dirname(__file__))
from callgrind import instructions  # noqa: E402

FS = 250.0


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of `repeats` calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def scipy_beats(x: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """The peer: causal band-pass, then peaks at least 0.3 s (200 bpm) apart."""
    zi = ss.sosfilt_zi(sos) * x[0]
    y, _ = ss.sosfilt(sos, x, zi=zi)
    peaks, _ = ss.find_peaks(y, distance=int(0.3 * FS), height=0.0)
    return peaks


def bench_signal(hours: float) -> np.ndarray:
    """A one-minute synthetic recording tiled to `hours` (synthesis of 8 h would dominate)."""
    minute = bcg_signal(fs=FS, seconds=60.0, seed=1).x
    return np.tile(minute, int(np.ceil(hours * 60)))[: int(hours * 3600 * FS)]


def work(mode: str, hours: float) -> None:
    """One run of (a) or (b), or nothing: the unit of the instruction counts."""
    x = bench_signal(hours)
    sos = dsp_c.butter_bandpass(2, *dsp_c.beats.DEFAULT_BAND_HZ, FS)
    if mode == "dsp_c":
        dsp_c.detect_beats(x, FS)
    elif mode == "scipy":
        scipy_beats(x, sos)


def instruction_counts(hours: float) -> None:
    """(a) and (b) in instructions, under valgrind's callgrind: repeatable on a busy machine.

    Each mode runs in its own process; the count of a run that does no work (start-up,
    imports, the signal) is subtracted.
    """
    counts = {
        mode: instructions(__file__, ["--work", mode, "--hours", str(hours)])
        for mode in ("none", "dsp_c", "scipy")
    }
    n = int(hours * 3600 * FS)
    ours, peer = counts["dsp_c"] - counts["none"], counts["scipy"] - counts["none"]
    print(f"\n(a)/(b) in instructions (valgrind callgrind, {hours * 60:g} min of signal):")
    print(f"    dsp_c.detect_beats             {ours / n:8.1f} instructions/sample")
    print(f"    scipy sosfilt + find_peaks     {peer / n:8.1f} instructions/sample")
    print(f"    ratio (b)/(a)                  {peer / ours:8.2f}x   (goal >= 2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0, help="length of (a)/(b) signal")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", choices=("none", "dsp_c", "scipy"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-instructions", action="store_true", help="skip the valgrind instruction counts"
    )
    args = parser.parse_args()
    if args.work:
        work(args.work, args.hours)
        return

    print(f"synthesising {args.hours:g} h of {FS:g} Hz BCG ...", flush=True)
    x = bench_signal(args.hours)
    sos = dsp_c.butter_bandpass(2, *dsp_c.beats.DEFAULT_BAND_HZ, FS)
    n = x.size

    ours = best_time(lambda: dsp_c.detect_beats(x, FS), args.repeats)
    peer = best_time(lambda: scipy_beats(x, sos), args.repeats)
    print(f"\n(a) dsp_c.detect_beats           {n / ours / 1e6:8.1f} M samples/s")
    print(f"(b) scipy sosfilt + find_peaks   {n / peer / 1e6:8.1f} M samples/s")
    print(f"    ratio (a)/(b)                {peer / ours:8.2f}x   (goal >= 2x)")

    chunk = int(FS)
    stream = x[: int(600 * FS)]  # ten minutes in 1 s chunks
    chunks = [np.ascontiguousarray(c) for c in np.split(stream, stream.size // chunk)]

    def ours_filter() -> None:
        band = dsp_c.SosFilter(sos)
        for c in chunks:
            band.process(c)

    def ours_pipeline() -> None:
        band = dsp_c.SosFilter(sos)
        det = dsp_c.JPeakDetector(FS)
        for c in chunks:
            det.process(band.process(c))

    def scipy_stream() -> None:
        zi = np.zeros((sos.shape[0], 2))
        for c in chunks:
            _, zi = ss.sosfilt(sos, c, zi=zi)

    t_filter = best_time(ours_filter, args.repeats)
    t_pipeline = best_time(ours_pipeline, args.repeats)
    t_scipy = best_time(scipy_stream, args.repeats)
    per = 1e6 / len(chunks)
    print(f"\n(c) 1 s chunks ({chunk} samples), {len(chunks)} chunks:")
    print(f"    dsp_c SosFilter.process        {t_filter * per:8.2f} us/chunk")
    print(f"    dsp_c filter + JPeakDetector   {t_pipeline * per:8.2f} us/chunk")
    print(f"    scipy sosfilt(zi=...)          {t_scipy * per:8.2f} us/chunk")
    print(f"    ratio scipy / dsp_c filter     {t_scipy / t_filter:8.1f}x   (goal >= 20x)")
    print(f"    ratio scipy / dsp_c pipeline   {t_scipy / t_pipeline:8.1f}x")

    calls = 20000
    empty = np.zeros(1)  # one sample: the C call is made, its work is negligible
    band = dsp_c.SosFilter(sos)
    det = dsp_c.JPeakDetector(FS)

    def call_filter() -> None:
        for _ in range(calls):
            band.process(empty)

    def call_detector() -> None:
        for _ in range(calls):
            det.process(empty)

    def call_nothing() -> None:  # the Python loop itself, subtracted
        f = len
        for _ in range(calls):
            f(empty)

    loop = best_time(call_nothing, args.repeats)
    t_call_filter = (best_time(call_filter, args.repeats) - loop) / calls
    t_call_detector = (best_time(call_detector, args.repeats) - loop) / calls
    print("\n(d) binding overhead per call (1-sample chunk, Python loop subtracted):")
    print(f"    SosFilter.process              {t_call_filter * 1e6:8.2f} us   (goal < 2 us)")
    print(f"    JPeakDetector.process          {t_call_detector * 1e6:8.2f} us")
    bench_sim(args.hours, max(1, args.repeats // 2))
    if not args.no_instructions:
        instruction_counts(hours=0.25)


def bench_sim(hours: float, repeats: int) -> None:
    """(e): render a simulated night; the peers are the per-block path and detect_beats."""

    def whole() -> np.ndarray:
        return Night(seed=1, duration_s=hours * 3600).samples()

    x = whole()
    plan = Night(seed=1, duration_s=hours * 3600)._plan
    tenth = plan.n_blocks // 10  # a tenth of the night block by block, scaled up
    t_whole = best_time(whole, repeats)
    t_blocks = best_time(lambda: [render_block(plan, b) for b in range(tenth)], repeats)
    t_blocks *= plan.n_blocks / tenth
    t_detect = best_time(lambda: dsp_c.detect_beats(x, FS), repeats)
    print(f"\n(e) edge.sim.Night(seed=1), {hours:g} h at {FS:g} Hz ({x.size / 1e6:.1f} M samples):")
    print(f"    Night(...).samples()           {t_whole:8.2f} s   (goal well under 2 s for 8 h)")
    print(f"    block by block (render_block)  {t_blocks:8.2f} s")
    print(f"    ratio block by block / whole   {t_blocks / t_whole:8.2f}x")
    print(f"    ratio render / detect_beats    {t_whole / t_detect:8.2f}x")


if __name__ == "__main__":
    main()
