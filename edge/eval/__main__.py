"""``python -m edge.eval``: score dsp_c and its peers; print the tables, write JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .harness import SEED_SETS, evaluate, methods, records, report, timed, write_json


def main(argv: list[str] | None = None) -> int:
    """Run the harness; exit status 0, or 1 when a nominal target is missed with --strict."""
    parser = argparse.ArgumentParser(
        prog="python -m edge.eval",
        description="Beat and heart-rate accuracy of dsp_c and peer methods on simulated "
        "nights and real recordings.",
        epilog="example: python -m edge.eval --seeds held-out --nights 10 --json accuracy.json",
    )
    parser.add_argument(
        "--seeds",
        choices=sorted(SEED_SETS),
        default="held-out",
        help="seed set: dev (for tuning) or held-out (for reporting)",
    )
    parser.add_argument("--nights", type=int, default=10, help="simulated nights per data set")
    parser.add_argument("--methods", nargs="*", help="only these methods (default: all)")
    parser.add_argument("--no-real", action="store_true", help="skip the real recordings")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if a nominal target is missed"
    )
    args = parser.parse_args(argv)
    if args.nights < 1:
        parser.error("--nights: at least 1")

    recs, t_data = timed(lambda: records(args.seeds, args.nights, real=not args.no_real))
    meths = methods(args.methods)
    results, t_eval = timed(lambda: evaluate(recs, meths))
    text, data = report(results, recs)
    print(text)
    print(
        f"\n{len(recs)} records ({args.seeds} seeds), {len(meths)} methods; "
        f"data {t_data:.0f} s, scoring {t_eval:.0f} s"
    )
    if args.json:
        meta = {"seeds": args.seeds, "nights": args.nights, "methods": [m.name for m in meths]}
        write_json(data, args.json, meta)
        print(f"wrote {args.json}")
    missed = [k for k, v in data["targets"].items() if not v["met"]]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
