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

    try:  # every check before the minute of work
        meths = methods(args.methods)
    except ValueError as exc:
        print(f"error E108: {exc}", file=sys.stderr)
        return 1
    if args.json and not args.json.resolve().parent.is_dir():
        print(
            f"error E108: --json: no folder {args.json.parent} — create it or choose another path",
            file=sys.stderr,
        )
        return 1
    recs, t_data = timed(lambda: records(args.seeds, args.nights, real=not args.no_real))
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
    if args.strict and not data["targets"]:
        print(
            "error E108: --strict: no target was checked (it needs dsp_c and the nominal "
            "set) — run without --methods or include dsp_c",
            file=sys.stderr,
        )
        return 1
    missed = [k for k, v in data["targets"].items() if not v["met"]]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
