"""Does the quality gate earn its place? The figures of MODEL_CARD.md, from the unit's runtime.

    python -m models.evaluate [--nights 10] [--json build/quality_eval.json]

1. **Classification** on held-out seeds (1000 and up, never trained on): macro F1 of the int8
   model and of its float twin, both through :class:`edge.model.QualityModel`.
2. **Heart rate** on the accuracy harness's random nights (``edge.eval.harness``, held-out
   seeds, 30 min each with bed exits, movement, poor signal): the J-peak detector's heart
   rate per 10 s window (``dsp_c.detect_beats`` + ``rate_per_window``) against the truth, on
   all in-bed windows vs on the windows the gate passes as good, with the coverage of each;
   the rule-based gate of :mod:`edge.eval.rule_gate` is shown beside it as a peer.
3. **Rejection**: of the windows with an empty bed, and of those with movement, how many the
   gate passes as good (a heart rate would be reported for them).
4. **Real recordings** (tests/data): the gate's verdicts, and on the Sadek recording the
   detector's error against the pulse oximeter on all windows vs on the gated ones, and
   against hand labels (``tests/data/real_labels.json``, see tests/data/README.md).
5. **The card**: the held-out macro F1 of step 1, measured again here through the unit's
   runtime, against what ``MODEL_CARD.md`` and ``train_metrics.json`` (TensorFlow's
   interpreter, at training) state; any difference beyond :data:`CARD_TOLERANCE` is listed
   and the exit status is 1 (after ``make model``: update the card, then run this again).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

import dsp_c
from dsp_c.metrics import rate_per_window
from edge.eval.harness import DATA_DIR, night_record, real_records
from edge.eval.rule_gate import rule_gate_windows
from edge.model import QualityModel
from edge.quality import STATES, QualityGate
from edge.sim import Night
from models import CARD_PATH, FLOAT_MODEL_PATH, METRICS_PATH, MODEL_PATH
from models.data import HELD_OUT_FIRST_SEED, dataset

__all__ = [
    "card_f1",
    "check_card",
    "classification",
    "gate_windows",
    "heart_rate_gain",
    "main",
    "real_recordings",
]

WINDOW_S = 10.0
REAL_LABELS = DATA_DIR / "real_labels.json"
#: How far a stated macro F1 may be from the one measured again: the card rounds to 4
#: places, and the unit's runtime may differ from TensorFlow's by an output quantum on a few
#: windows (one window changes the macro F1 by about 1e-4).
CARD_TOLERANCE = 5e-4


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Unweighted mean of the per-class F1 scores over :data:`STATES`."""
    scores = []
    for c in range(len(STATES)):
        tp = np.sum((predicted == c) & (truth == c))
        wrong = np.sum((predicted == c) != (truth == c))
        scores.append(2 * tp / (2 * tp + wrong) if tp + wrong else 1.0)
    return float(np.mean(scores))


def classification(nights: int = 80, cache: Path | None = Path("build")) -> dict:
    """Macro F1 (all windows, and pure ones) of the int8 and float models on held-out nights."""
    held = dataset(range(HELD_OUT_FIRST_SEED, HELD_OUT_FIRST_SEED + nights), False, cache)
    out = {
        "seeds": [HELD_OUT_FIRST_SEED, HELD_OUT_FIRST_SEED + nights - 1],
        "windows": len(held),
        "per_class": np.bincount(held.labels, minlength=4).tolist(),
    }
    for name, path in (("int8", MODEL_PATH), ("float", FLOAT_MODEL_PATH)):
        model = QualityModel(path)
        predicted = np.array([np.argmax(model.predict(f)) for f in held.features])
        out[name] = {
            "macro_f1": macro_f1(held.labels, predicted),
            "macro_f1_pure": macro_f1(held.labels[held.pure], predicted[held.pure]),
        }
    return out


_CARD_ROWS = {  # where MODEL_CARD.md states each figure: (row's first cell, column)
    ("int8", "macro_f1"): ("held-out macro F1, int8", 1),
    ("float", "macro_f1"): ("held-out macro F1, float", 1),
    ("int8", "macro_f1_pure"): ("int8 (`bcg_quality.tflite`)", 2),
    ("float", "macro_f1_pure"): ("float32 (same pruned weights)", 2),
}


def card_f1(card: str) -> dict[tuple[str, str], float]:
    """The held-out macro F1 figures the model card states, by (model, figure).

    Raises:
        ValueError: the card has no such row, or no number in it.
    """
    out = {}
    for key, (first, column) in _CARD_ROWS.items():
        match = re.search(rf"^\| {re.escape(first)} ((?:\|[^|\n]*)+)\|$", card, re.MULTILINE)
        if match is None:
            raise ValueError(f"the model card has no row '{first}'")
        cells = [c.strip().strip("`") for c in match.group(1).split("|")[1:]]
        try:
            out[key] = float(cells[column - 1])
        except (IndexError, ValueError):
            raise ValueError(f"the model card's row '{first}' has no figure") from None
    return out


def check_card(measured: dict, card: str, metrics: dict) -> list[str]:
    """Where the card or ``train_metrics.json`` differ from the held-out macro F1
    ``measured`` by :func:`classification` on the same nights (beyond CARD_TOLERANCE)."""
    try:
        stated = card_f1(card)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    for (model, figure), on_card in stated.items():
        value = measured[model][figure]
        claims = {"MODEL_CARD.md": on_card, "train_metrics.json": metrics[model][figure]}
        for source, claim in claims.items():
            if abs(value - claim) > CARD_TOLERANCE:
                problems.append(
                    f"{source} states {model} {figure} {claim:.4f}, measured {value:.4f}"
                )
    return problems


def gate_windows(x: np.ndarray, fs: float) -> np.ndarray:
    """The gate's state for each consecutive 10 s window ``[k w, (k + 1) w)`` of a recording
    (the judgements that start on that grid; the gate judges every 5 s)."""
    w = int(round(WINDOW_S * fs))
    states = np.full(x.size // w, "", dtype=object)
    for j in QualityGate(fs).process(x):
        if j.start_index % w == 0 and j.start_index // w < states.size:
            states[j.start_index // w] = j.state
    return states


def _mae(err: np.ndarray) -> float:
    return float(np.mean(np.abs(err))) if err.size else float("nan")


def heart_rate_gain(nights: int = 10) -> dict:
    """HR error and coverage on all in-bed windows, on the gated ones, and the rule peer."""
    rows = {k: [] for k in ("err", "in_bed", "truth", "gate", "rule", "all_empty")}
    for k in range(nights):
        night = Night(seed=HELD_OUT_FIRST_SEED + k, duration_s=1800.0)
        rec = night_record(night, f"sim:{night.seed}", "night")
        fs, n = rec.fs, rec.x.size
        w = int(round(WINDOW_S * fs))
        n_win = n // w  # whole windows only
        est = rate_per_window(dsp_c.detect_beats(rec.x, fs), fs, n, WINDOW_S)
        rows["err"].append((est - rec.ref_hr[: est.size])[:n_win])
        rows["in_bed"].append(rec.scored[:n_win])
        rows["truth"].append(rec.conditions["state"][:n_win])
        rows["gate"].append(gate_windows(rec.x, fs)[:n_win])
        rows["rule"].append(np.isfinite(rule_gate_windows(rec.x, fs, WINDOW_S).bpm[:n_win]))
        states = night.state_at(0, n_win * w).reshape(n_win, w)
        rows["all_empty"].append((states == 0).all(axis=1))
    err, in_bed, truth, gate, rule, empty = (np.concatenate(rows[k]) for k in rows)
    has_rate = np.isfinite(err)
    good = gate == "good"

    def subset(mask: np.ndarray) -> dict:
        use = mask & in_bed & has_rate
        return {
            "hr_mae_bpm": _mae(err[use]),
            "coverage": float(use.sum() / in_bed.sum()),
            "windows": int(use.sum()),
            "over_10_bpm": float(np.mean(np.abs(err[use]) > 10)) if use.any() else float("nan"),
        }

    moving = in_bed & (truth == "motion")
    return {
        "nights": nights,
        "in_bed_windows": int(in_bed.sum()),
        "all_in_bed": subset(np.ones_like(in_bed)),
        "gate_good": subset(good),
        "rule_gate": subset(rule),
        "gate_and_rule": subset(good & rule),
        "good_truth": subset(truth == "good"),
        "empty_windows": int(empty.sum()),
        "empty_passed_as_good": int((good & empty).sum()),
        "empty_with_detector_rate": int((has_rate & empty).sum()),
        "empty_judged_empty": float(np.mean(gate[empty] == "empty")) if empty.any() else None,
        "motion_windows": int(moving.sum()),
        "motion_passed_as_good": int((good & moving).sum()),
        "motion_judged_motion": float(np.mean(gate[moving] == "motion")) if moving.any() else None,
    }


#: The Aydin recordings are in volts, not ADC counts: this gain and the unit's ADC bias make a
#: J-wave of 100-500 counts, as the unit's front end gives (the features' levels are in counts).
AYDIN_COUNTS_PER_VOLT = 1e4
ADC_BIAS = 32768.0


def real_recordings() -> dict:
    """Verdicts on tests/data; Sadek: detector HR vs oximeter, all vs gated; hand labels."""
    labels = json.loads(REAL_LABELS.read_text()) if REAL_LABELS.exists() else {}
    out = {}
    for rec in real_records(DATA_DIR):
        x = rec.x.astype(np.float64)
        if rec.name.startswith("aydin"):
            out[rec.name + " (volts, as recorded)"] = {
                "states": {s: int(np.sum(gate_windows(x, rec.fs) == s)) for s in STATES}
            }
            x = ADC_BIAS + AYDIN_COUNTS_PER_VOLT * x
        entry: dict = {"fs": rec.fs, "windows": int(x.size // round(WINDOW_S * rec.fs))}
        verdicts = gate_windows(x, rec.fs)
        entry["states"] = {s: int(np.sum(verdicts == s)) for s in STATES}
        if rec.ref_hr is not None:
            est = rate_per_window(dsp_c.detect_beats(x, rec.fs), rec.fs, x.size, WINDOW_S)
            n = min(est.size, rec.ref_hr.size, verdicts.size)
            referenced = np.isfinite(rec.ref_hr[:n])  # the oximeter's delay: not at the end
            found = np.isfinite(est[:n]) & referenced
            err = (est[:n] - rec.ref_hr[:n])[found]
            gated = (est[:n] - rec.ref_hr[:n])[found & (verdicts[:n] == "good")]
            m = int(referenced.sum())
            entry["hr_mae_all_bpm"], entry["coverage_all"] = _mae(err), err.size / m
            entry["hr_mae_gated_bpm"], entry["coverage_gated"] = _mae(gated), gated.size / m
        hand = labels.get(rec.name)
        if hand is not None:
            hand = np.array(hand["labels"][: verdicts.size], dtype=object)
            known = hand != "?"
            entry["hand_labelled"] = int(known.sum())
            entry["agreement_with_hand_labels"] = float(np.mean(verdicts[known] == hand[known]))
            entry["hand_good_passed"] = int(np.sum((hand == "good") & (verdicts == "good")))
            entry["hand_good"] = int(np.sum(hand == "good"))
            entry["hand_bad_passed"] = int(np.sum(known & (hand != "good") & (verdicts == "good")))
            entry["confusion"] = confusion(hand[known], verdicts[: hand.size][known])
        out[rec.name] = entry
    pooled = [e["confusion"] for e in out.values() if "confusion" in e]
    out["all labelled windows"] = {
        "confusion": {
            truth: {state: sum(c[truth][state] for c in pooled) for state in STATES}
            for truth in STATES
        }
    }
    return out


def sensor_model_confusion(nights: int = 10) -> dict[str, dict[str, int]]:
    """The gate's confusion on the held-out-like recordings (``edge.sim.recordings``: a
    ringing 500 Hz bed, 12-bit counts, several waves per beat; held-out seeds, never
    trained on): a 10 s window is ``motion`` when the person moves in any of it, else the
    state that fills it (windows of two other states are left out)."""
    from edge.eval.harness import SEED_SETS
    from edge.sim.recordings import heldout_like_night

    truth, predicted = [], []
    for k in range(nights):
        night = heldout_like_night(SEED_SETS["held-out"] + k)
        verdicts = gate_windows(night.samples().astype(np.float64), night.fs)
        w = int(round(WINDOW_S * night.fs))
        for i, verdict in enumerate(verdicts):
            inside = night.state_at(i * w, (i + 1) * w)
            if (
                verdict == ""
                or (inside != inside[0]).any()
                and STATES.index("motion") not in inside
            ):
                continue
            moving = STATES.index("motion") in inside
            truth.append("motion" if moving else STATES[int(inside[0])])
            predicted.append(verdict)
    return confusion(np.array(truth, dtype=object), np.array(predicted, dtype=object))


def confusion(truth: np.ndarray, predicted: np.ndarray) -> dict[str, dict[str, int]]:
    """Counts of each (true state, predicted state) pair: ``{truth: {predicted: n}}``."""
    return {t: {p: int(np.sum((truth == t) & (predicted == p))) for p in STATES} for t in STATES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__)
    parser.add_argument("--nights", type=int, default=10, help="harness nights (30 min each)")
    parser.add_argument("--held-out", type=int, default=80, help="held-out training-style nights")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    figures = {
        "classification": classification(args.held_out),
        "heart_rate": heart_rate_gain(args.nights),
        "real": real_recordings(),
        "heldout_like_confusion": sensor_model_confusion(),
    }
    metrics = json.loads(METRICS_PATH.read_text())
    if figures["classification"]["seeds"] == metrics["data"]["held_out_seeds"]:
        problems = check_card(figures["classification"], CARD_PATH.read_text(), metrics)
        figures["card"] = {"agrees": not problems, "problems": problems}
    else:  # other nights than the training run's: nothing to compare with
        problems = []
        figures["card"] = {"agrees": None, "problems": ["not compared: other held-out nights"]}
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    for problem in problems:
        print(f"model card: {problem} — update MODEL_CARD.md (or train again)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
