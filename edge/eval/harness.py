"""The accuracy harness: our detector and its peers on simulated nights and real recordings.

    python -m edge.eval [--seeds held-out|dev] [--nights N] [--json PATH] [--methods ...]

Data sets (each a list of :class:`EvalRecord`):

- ``nominal``: 10 min in bed with a good signal, one posture, heart rate 50 to 100 bpm,
  the night's own SNR (18 to 32 dB supine, weaker postures less), from the simulator;
- ``night``: 30 min random nights (bed exits, movement, posture changes, poor signal,
  apnea), scored on the in-bed windows and split by condition;
- ``low_snr``, ``slow`` (40-44 bpm), ``fast`` (131-150 bpm): the hard conditions;
- ``real``: the recordings in tests/data (Aydin: ECG R-peaks; Sadek: pulse oximeter).

Two disjoint seed sets: ``dev`` (seeds 0-999) for tuning, ``held-out`` (1000 and up) for
the figures we report. Nothing is tuned per record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import dsp_c
from dsp_c.metrics import rate_per_window
from edge.readers import read_recording
from edge.sim import Night, Scenario, State

from .scoring import WINDOW_S, EvalRecord, Score, score_record

__all__ = [
    "DATA_DIR",
    "SADEK_OXIMETER_DELAY_S",
    "SEED_SETS",
    "TARGETS",
    "Method",
    "evaluate",
    "oximeter_rates",
    "records",
    "report",
    "synthetic_nights",
]

DATA_DIR = Path(__file__).resolve().parents[2] / "tests" / "data"
SEED_SETS = {"dev": 0, "held-out": 1000}  #: first seed of each set
FS = 250.0
#: Nominal-condition targets of the issue, checked on ``nominal`` for ``dsp_c``.
TARGETS = {
    "sensitivity": (">=", 99.5),
    "ppv": (">=", 99.5),
    "ibi_mae_ms": ("<=", 8.0),
    "hr_mae_bpm": ("<=", 1.0),
    "coverage": (">=", 95.0),
}
#: The Sadek recording's pulse oximeter column follows the mat's samples of the same beats
#: by about this long (s); the data set does not say why. Measured without the unit: the
#: heart rates of four peer detectors (find_peaks, the paper's MODWT, HeartPy, NeuroKit2)
#: match the oximeter best 26-30 s later, in each half of the recording alike, and 1.4 to
#: 3.8 times worse as recorded (tests/edge/test_peers.py measures it again).
SADEK_OXIMETER_DELAY_S = 28.0


def oximeter_rates(
    oximeter: np.ndarray,
    fs: float,
    bounds: Iterable[tuple[int, int]],
    delay_s: float = SADEK_OXIMETER_DELAY_S,
) -> np.ndarray:
    """The reference heart rate of each span ``[a, b)`` of samples: the pulse oximeter's
    mean over the same span ``delay_s`` later (the time it takes to report a beat); NaN
    where that span is empty or runs outside the recording."""
    oximeter = np.asarray(oximeter, dtype=np.float64)
    shift = int(round(delay_s * fs))
    out = [
        float(np.mean(oximeter[a + shift : b + shift]))
        if 0 <= a + shift < b + shift <= oximeter.size
        else np.nan
        for a, b in bounds
    ]
    return np.array(out, dtype=np.float64)


@dataclass(frozen=True)
class Method:
    """A way to get beats (or only a heart rate per window) from a raw recording."""

    name: str
    beats: Callable[[np.ndarray, float], np.ndarray] | None = None
    hr_per_window: Callable[[np.ndarray, float, float], np.ndarray] | None = None


def methods(names: Iterable[str] | None = None) -> list[Method]:
    """``dsp_c`` and the peers of :mod:`edge.eval.peers` (all, or those named)."""
    from .peers import PEERS, WINDOW_HR_PEERS

    found = [Method("dsp_c", beats=dsp_c.detect_beats)]
    found += [Method(name, beats=fn) for name, fn in PEERS.items()]
    found += [Method(name, hr_per_window=fn) for name, fn in WINDOW_HR_PEERS.items()]
    if names is None:
        return found
    wanted = list(names)
    unknown = set(wanted) - {m.name for m in found}
    if unknown:
        raise ValueError(f"methods: unknown {sorted(unknown)}; known: {[m.name for m in found]}")
    return [m for m in found if m.name in wanted]


# --- data sets -------------------------------------------------------------------------------


def _hr_bucket(bpm: float) -> str:
    if not np.isfinite(bpm):
        return "-"
    return "<45" if bpm < 45 else "45-100" if bpm < 100 else "100-130" if bpm < 130 else ">130"


def _snr_bucket(snr_db: float) -> str:
    if not np.isfinite(snr_db):
        return "none (moving)"
    return "<20 dB" if snr_db < 20 else "20-30 dB" if snr_db < 30 else ">=30 dB"


def night_record(night: Night, name: str, group: str) -> EvalRecord:
    """A simulated night as a record: scored in bed, with a condition label per window."""
    x = night.samples().astype(np.float64)
    fs = night.fs
    w = int(round(WINDOW_S * fs))
    n_win = -(-x.size // w)
    labels = np.full(n_win * w, State.GOOD, dtype=np.int8)
    labels[: x.size] = night.state_at(0, x.size)
    labels = labels.reshape(n_win, w)
    in_bed = ~(labels == State.EMPTY).any(axis=1)
    state = np.where(
        (labels == State.MOTION).any(axis=1),
        "motion",
        np.where((labels == State.POOR).any(axis=1), "poor", "good"),
    ).astype(object)
    centres = np.minimum(np.arange(n_win) * w + w // 2, x.size - 1).astype(np.int64)
    segs = [night.segment_at(int(c)) for c in centres]
    ref_hr = rate_per_window(night.beats, fs, x.size, WINDOW_S)
    return EvalRecord(
        name=name,
        group=group,
        x=x,
        fs=fs,
        ref_beats=night.beats,
        ref_hr=ref_hr,
        scored=in_bed,
        conditions={
            "state": state,
            "hr": np.array([_hr_bucket(v) for v in ref_hr], dtype=object),
            "snr": np.array([_snr_bucket(s.snr_db) for s in segs], dtype=object),
            "posture": np.array([s.posture or "-" for s in segs], dtype=object),
        },
    )


def synthetic_nights(seed_set: str = "held-out", nights: int = 10) -> list[tuple[str, Night]]:
    """The simulated data sets (see the module docstring) as ``(group, Night)``, ``nights``
    of each; the product evaluation (:mod:`edge.eval.product`) replays the same nights."""
    first = SEED_SETS[seed_set]
    out = []
    for k in range(nights):
        seed = first + k
        rng = np.random.default_rng(seed)
        posture = ("supine", "left", "right")[k % 3]
        still = Scenario.constant(600.0, State.GOOD, posture)
        cases = [
            ("nominal", dict(scenario=still, heart_bpm=float(rng.uniform(50, 100)))),
            ("night", dict(duration_s=1800.0)),
            ("low_snr", dict(scenario=still, heart_bpm=float(rng.uniform(50, 100)), snr_db=16.0)),
            ("slow", dict(scenario=still, heart_bpm=float(rng.uniform(40, 44)))),
            ("fast", dict(scenario=still, heart_bpm=float(rng.uniform(131, 150)))),
        ]
        out += [(group, Night(seed=seed, fs=FS, **kwargs)) for group, kwargs in cases]
    return out


def synthetic_records(seed_set: str = "held-out", nights: int = 10) -> list[EvalRecord]:
    """The simulated data sets (see the module docstring), ``nights`` of each."""
    return [
        night_record(night, f"sim:{night.seed} {group}", group)
        for group, night in synthetic_nights(seed_set, nights)
    ]


def real_records(data_dir: Path = DATA_DIR) -> list[EvalRecord]:
    """The real recordings: Aydin (both BCG channels vs ECG R-peaks), Sadek (vs oximeter)."""
    out = []
    for channel in ("imp_env", "bcg"):
        rec = read_recording(data_dir / "aydin_left1.npz", channel=channel)
        out.append(
            EvalRecord(
                name=f"aydin {channel}",
                group="real",
                x=rec.signal,
                fs=rec.fs,
                ref_beats=rec.reference["r_peaks"],
                delay_s=(0.0, 0.4),  # the J-wave follows the R-peak by 0.1-0.3 s
                tol_s=0.06,
            )
        )
    rec = read_recording(data_dir / "sadek_sample.npz", channel="raw")
    w = int(round(WINDOW_S * rec.fs))
    windows = [(k * w, (k + 1) * w) for k in range(rec.signal.size // w)]
    out.append(
        EvalRecord(
            name="sadek",
            group="real",
            x=rec.signal,
            fs=rec.fs,
            ref_hr=oximeter_rates(rec.reference["pulse_ox_bpm"], rec.fs, windows),
        )
    )
    return out


def records(seed_set: str = "held-out", nights: int = 10, real: bool = True) -> list[EvalRecord]:
    """Every data set: simulated (``nights`` per group) and, with ``real``, the recordings."""
    return synthetic_records(seed_set, nights) + (real_records() if real else [])


# --- running ---------------------------------------------------------------------------------


def _score(method: Method, record: EvalRecord) -> Score:
    if method.beats is not None:
        return score_record(record, method.beats(record.x, record.fs))
    # A heart rate per window and no beats: only the HR and coverage columns apply.
    estimate = method.hr_per_window(record.x, record.fs, WINDOW_S)
    score = score_record(record, np.empty(0, dtype=np.int64), hr_estimate=estimate)
    score.ref_beats[:] = 0
    return score


def evaluate(
    recs: list[EvalRecord], meths: list[Method]
) -> dict[str, dict[str, Score | dict[str, Score]]]:
    """Score every method on every record: ``{method: {group: Score, "records": {...}}}``."""
    out: dict[str, dict] = {}
    for method in meths:
        per_record = {r.name: _score(method, r) for r in recs}
        groups: dict[str, Score] = {}
        for group in dict.fromkeys(r.group for r in recs):
            groups[group] = Score.concatenate(
                [per_record[r.name] for r in recs if r.group == group]
            )
        out[method.name] = {"groups": groups, "records": per_record}
    return out


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


_COLUMNS = ("sensitivity", 2), ("ppv", 2), ("ibi_mae_ms", 1), ("hr_mae_bpm", 2), ("coverage", 1)


def _header(first: str, width: int = 9) -> str:
    titles = ("sens %", "PPV %", "IBI ms", "HR bpm", "cover %")
    cells = " ".join(f"{t:>{w}}" for t, w in zip(titles, (7, 7, 7, 7, 8), strict=True))
    return f"{first:{width}} {'method':18} {cells}"


def _row(first: str, method: str, s: dict[str, float], width: int = 9) -> str:
    widths = (7, 7, 7, 7, 8)
    cells = " ".join(f"{_fmt(s[k], d):>{w}}" for (k, d), w in zip(_COLUMNS, widths, strict=True))
    return f"{first[:width]:{width}} {method[:18]:18} {cells}"


def report(results: dict, recs: list[EvalRecord]) -> tuple[str, dict]:
    """The tables (text) and the same figures as a JSON-ready dict."""
    data: dict = {"groups": {}, "records": {}, "conditions": {}, "targets": {}}
    lines = ["Accuracy by data set (HR: mean absolute error per 10 s window)", _header("group")]
    groups = list(dict.fromkeys(r.group for r in recs))
    for group in groups:
        for method, res in results.items():
            s = res["groups"][group].summary()
            data["groups"].setdefault(group, {})[method] = s
            lines.append(_row(group, method, s))
        lines.append("")
    lines += ["Real recordings, one by one", _header("record", 13)]
    for r in recs:
        if r.group != "real":
            continue
        for method, res in results.items():
            s = res["records"][r.name].summary()
            data["records"].setdefault(r.name, {})[method] = s
            lines.append(_row(r.name, method, s, 13))
    if "night" in groups and "dsp_c" in results:
        night = results["dsp_c"]["groups"]["night"]
        lines += ["", "dsp_c on the random nights (in bed), by condition", _header("condition", 17)]
        for key in ("state", "posture", "hr", "snr"):
            for value in sorted(set(night.conditions.get(key, []))):
                s = night.summary(night.conditions[key] == value)
                if s["windows"] == 0:
                    continue
                data["conditions"].setdefault(key, {})[value] = s
                lines.append(_row(f"{key}={value}", "dsp_c", s, 17))
    if "nominal" in groups and "dsp_c" in results:
        s = results["dsp_c"]["groups"]["nominal"].summary()
        lines += ["", "Targets (dsp_c, nominal synthetic conditions)"]
        for key, (op, goal) in TARGETS.items():
            value = s[key]
            ok = bool(np.isfinite(value) and (value >= goal if op == ">=" else value <= goal))
            data["targets"][key] = {"value": value, "goal": f"{op} {goal}", "met": ok}
            verdict = "met" if ok else "MISSED"
            lines.append(f"  {key:12} {_fmt(value, 2):>8} (goal {op} {goal:g})  {verdict}")
    return "\n".join(lines), data


def _jsonable(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj


def write_json(data: dict, path: Path, meta: dict) -> None:
    """The figures as JSON (NaN as null), with what produced them."""
    path.write_text(json.dumps(_jsonable({"meta": meta, **data}), indent=1) + "\n")


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """(result, seconds)."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start
