"""``python -m edge.eval``: what the unit stores (the product evaluation), then dsp_c against
its peers; print the tables and the targets, write JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .harness import SEED_SETS, evaluate, methods, records, report, timed, write_json


def main(argv: list[str] | None = None) -> int:
    """Run the evaluations; exit status 0, or 1 when a target is missed with --strict."""
    parser = argparse.ArgumentParser(
        prog="python -m edge.eval",
        description="What the unit stores (state, HR, HRV, RR, events per 10 s epoch of a "
        "replay through the whole pipeline) on simulated nights, real recordings, transformed "
        "recordings and machine signals; then beat and heart-rate accuracy of dsp_c and peer "
        "methods on the same data.",
        epilog="example: python -m edge.eval --seeds held-out --nights 10 --json accuracy.json",
    )
    parser.add_argument(
        "--seeds",
        choices=sorted(SEED_SETS),
        default="held-out",
        help="seed set: dev (for tuning) or held-out (for reporting)",
    )
    parser.add_argument("--nights", type=int, default=10, help="simulated nights per data set")
    parser.add_argument("--methods", nargs="*", help="peer table: only these methods")
    parser.add_argument("--no-real", action="store_true", help="skip the real recordings")
    parser.add_argument("--no-product", action="store_true", help="skip the product evaluation")
    parser.add_argument("--no-peers", action="store_true", help="skip the peer table")
    parser.add_argument(
        "--no-transforms", action="store_true", help="product: skip the transformed recordings"
    )
    parser.add_argument(
        "--no-machines", action="store_true", help="product: skip the machine signals"
    )
    parser.add_argument(
        "--no-claims", action="store_true", help="product: skip the wrong sampling-rate claims"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    args = parser.parse_args(argv)
    if args.nights < 1:
        parser.error("--nights: at least 1")

    try:  # every check before the minutes of work
        meths = [] if args.no_peers else methods(args.methods)
    except ValueError as exc:
        print(f"error E108: {exc}", file=sys.stderr)
        return 1
    if args.json and not args.json.resolve().parent.is_dir():
        print(
            f"error E108: --json: no folder {args.json.parent} — create it or choose another path",
            file=sys.stderr,
        )
        return 1
    out: dict = {}
    missed: list[str] = []
    checked = 0
    if not args.no_product:
        from .product import evaluate_product, targets
        from .product import report as product_report

        product = evaluate_product(
            args.seeds,
            args.nights,
            real=not args.no_real,
            transforms=not args.no_transforms,
            machines=not args.no_machines,
            claims=not args.no_claims,
            progress=lambda text: print(f"[product] {text}", file=sys.stderr, flush=True),
        )
        print(product_report(product))
        found = targets(product)
        product["targets"] = [vars(t) for t in found]
        checked += len(found)
        missed += [t.name for t in found if not t.met]
        print(f"\nproduct evaluation: {product['runtime_s']:.0f} s", flush=True)
        out["product"] = product
    if meths:
        if out:
            print("\n" + "=" * 100 + "\n")
        recs, t_data = timed(lambda: records(args.seeds, args.nights, real=not args.no_real))
        results, t_eval = timed(lambda: evaluate(recs, meths))
        text, data = report(results, recs)
        print("Peer table: dsp_c.detect_beats and peer methods on the same data\n")
        print(text)
        print(
            f"\n{len(recs)} records ({args.seeds} seeds), {len(meths)} methods; "
            f"data {t_data:.0f} s, scoring {t_eval:.0f} s"
        )
        checked += len(data["targets"])
        missed += [f"peers: {k}" for k, v in data["targets"].items() if not v["met"]]
        out["peers"] = data
    if args.json:
        meta = {"seeds": args.seeds, "nights": args.nights, "methods": [m.name for m in meths]}
        write_json(out, args.json, meta)
        print(f"wrote {args.json}")
    if args.strict and not checked:
        print(
            "error E108: --strict: no target was checked (they need the product evaluation, or "
            "dsp_c and the nominal set) — run without --no-product or --methods",
            file=sys.stderr,
        )
        return 1
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
