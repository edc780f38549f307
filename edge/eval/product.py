"""The product evaluation: what the unit stores, scored against the truth (issue 15, item 1).

    python -m edge.eval [--seeds held-out] [--nights 10] [--json PATH] [--strict]

Every record is written to a recording file and replayed through the unit exactly as

    bedside run --source replay:FILE --speed max --epoch 10 --db DB

would (:func:`edge.cli.open_run` with the default config: the replay source, the real
quality gate, :class:`edge.pipeline.Pipeline`, a real :class:`edge.store.Store`); then the
epochs and events in the store are read back and scored (:mod:`edge.eval.epochs`). Nothing
is tuned or special-cased per record.

Records:

- the simulated sets of :func:`edge.eval.harness.synthetic_nights` (held-out seeds), with
  the simulator's truth: the heart rate from the true normal-to-normal intervals over the
  span the unit reads (:data:`edge.vitals.HR_SPAN_S`), HRV (RMSSD) from the same intervals,
  breathing from the true breaths over :data:`edge.vitals.RR_SPAN_S` (none across an
  apnea), and the state of epochs that hold one state only;
- the real recordings in tests/data: Aydin ``imp_env`` and ``bcg`` (ECG R-peaks: heart rate
  and HRV), Sadek (the pulse oximeter's mean over each epoch, read
  :data:`edge.eval.harness.SADEK_OXIMETER_DELAY_S` later: its delay; scored as recorded
  too), with the hand labels of
  tests/data/real_labels.json; goodbcg1 (no reference) only for the transforms;
- transformed copies of every real recording (:mod:`edge.eval.transforms`), each scored
  against the untransformed run of the same record;
- periodic signals that are not a person (:mod:`edge.eval.machines`).

:func:`targets` turns the figures into the PASS/FAIL lines of issue 15, item 5.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.config import Config
from edge.errors import BedsideError
from edge.readers import read_recording
from edge.records import STATES
from edge.sim import KINDS, Night
from edge.sim.recordings import heldout_like_night
from edge.store import Store
from edge.vitals import HR_SPAN_S, RR_SPAN_S

from .epochs import Reference, StoredRun, compare_runs, score_run, span_rates, span_rmssd
from .harness import (
    DATA_DIR,
    SADEK_OXIMETER_DELAY_S,
    SEED_SETS,
    TARGETS,
    oximeter_rates,
    synthetic_nights,
)
from .machines import MACHINES, machine_runs
from .transforms import EXTRA_TRANSFORMS, transforms_for

__all__ = [
    "EPOCH_S",
    "LABELS_PATH",
    "ProductRecord",
    "Target",
    "evaluate_product",
    "real_records",
    "replay",
    "report",
    "robustness_records",
    "sim_records",
    "targets",
]

#: The epoch length evaluated (s); the hand labels use the same 10 s grid.
EPOCH_S = 10.0
#: Hand labels of the real recordings, one per 10 s window.
LABELS_PATH = DATA_DIR / "real_labels.json"
#: Start time written into every replayed file (Unix s), so epochs map back to samples.
T0_UTC = 1.7e9
#: A wrong sampling-rate claim (a file without a rate of its own, read with the wrong
#: ``--fs``): the record's samples claimed at these multiples of their real rate. The unit
#: must refuse the claim (a rate outside 50-1000 Hz) or store no heart or breathing rate.
CLAIM_FACTORS = (0.2, 5.0)
#: Transformed runs must give the same state in at least this share of epochs (%) ...
SAME_STATE_GOAL = 95.0
#: ... and, where both have an HR, one within this many bpm.
SAME_HR_BPM = 1.0


@dataclass
class ProductRecord:
    """One record to replay: samples as the file holds them, and the truth (None: none)."""

    name: str
    group: str
    x: np.ndarray
    fs: float
    reference: Reference | None = None
    #: The reference as the file holds it, when :attr:`reference` corrects it (the Sadek
    #: oximeter's delay): scored too, so that both figures are shown.
    as_recorded: Reference | None = None


@dataclass(frozen=True)
class Target:
    """One PASS/FAIL line of issue 15, item 5."""

    name: str
    goal: str
    value: str
    met: bool


# --- records ---------------------------------------------------------------------------------


def _epoch_bounds(n: int, fs: float, epoch_s: float = EPOCH_S) -> list[tuple[int, int]]:
    w = int(round(epoch_s * fs))
    return [(a, min(a + w, n)) for a in range(0, n, w)]


def sim_reference(night: Night, epoch_s: float = EPOCH_S) -> Reference:
    """The simulator's truth per epoch (see the module docstring)."""
    fs, n = night.fs, night.n_samples
    ibi_s = night.ibi_ms / 1000.0
    beats, normal = night.beats, night.ibi_normal
    hr = span_rates(beats, fs, n, epoch_s, HR_SPAN_S, intervals_s=ibi_s, valid=normal)
    hrv = span_rmssd(beats, ibi_s, normal, fs, n, epoch_s, HR_SPAN_S)
    t = night.breath_times_s
    breath_s = np.concatenate([[np.nan], np.diff(t)])
    # The simulator's own breathing rate is NaN for an interval across an apnea or an
    # empty bed: such an interval is not a breathing rate.
    valid = np.isfinite(night.breathing_rate_at(t - 1e-6)) if t.size else np.zeros(0, bool)
    rr = span_rates(
        night.breaths,
        fs,
        n,
        epoch_s,
        RR_SPAN_S,
        intervals_s=breath_s,
        valid=valid,
        statistic="median",
    )
    labels = night.state_at(0, n)
    state = np.full(len(hr), "", dtype=object)
    for k, (a, b) in enumerate(_epoch_bounds(n, fs, epoch_s)):
        first = labels[a]
        if np.all(labels[a:b] == first):  # a mixed epoch has no single true state
            state[k] = STATES[int(first)]
    return Reference(hr=hr, state=state, hrv=hrv, rr=rr, complete=True)


#: The simulated stand-in for the real bed recording the project has never seen (issue 15):
#: 500 Hz 12-bit counts, a ringing frame, two or three comparable waves per beat.
HELDOUT_LIKE = "heldout_like"
#: ... its waves the cycles of one bed mode at 5.5 Hz instead (``ringing_waves``).
HELDOUT_RINGING = "heldout_ringing"
#: The simulator's sensor models (edge.sim.sensor_model.KINDS but the default one): 10 min
#: nights of each seed through each sensor, to see that no sensor gets a wrong rate.
SENSOR_KINDS = tuple(k for k in KINDS if k != "default")
SENSOR_NIGHT_S = 600.0


def sim_records(seed_set: str = "held-out", nights: int = 10) -> list[ProductRecord]:
    """The simulated sets of the accuracy harness, ``nights`` held-out-like recordings
    (:func:`edge.sim.recordings.heldout_like_night`, from the same seeds) of each kind
    (separate waves; the cycles of one bed mode) and ``nights`` of each
    :data:`SENSOR_KINDS`, with their truth."""
    first = SEED_SETS[seed_set]
    pairs = synthetic_nights(seed_set, nights)
    pairs += [(HELDOUT_LIKE, heldout_like_night(first + k)) for k in range(nights)]
    pairs += [
        (HELDOUT_RINGING, heldout_like_night(first + k, ringing_waves=True)) for k in range(nights)
    ]
    pairs += [
        (kind, Night(first + k, duration_s=SENSOR_NIGHT_S, sensor_model=kind))
        for kind in SENSOR_KINDS
        for k in range(nights)
    ]
    return [
        ProductRecord(
            f"sim:{night.seed} {group}", group, night.samples(), night.fs, sim_reference(night)
        )
        for group, night in pairs
    ]


def load_labels(path: Path = LABELS_PATH) -> dict[str, list[str]]:
    """The hand labels by record name (one per 10 s window; "?" = unsure)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {k: list(v["labels"]) for k, v in data.items() if not k.startswith("_")}


def _label_array(labels: list[str] | None, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    out = np.full(n, "", dtype=object)
    for k, label in enumerate(labels[:n]):
        out[k] = label if label in STATES else ""  # "?": unsure, not scored
    return out


def real_records(data_dir: Path = DATA_DIR) -> list[ProductRecord]:
    """Aydin ``imp_env`` and ``bcg`` against the ECG, Sadek against the pulse oximeter, each
    with its hand labels; the samples exactly as the files hold them."""
    labels = load_labels(data_dir / LABELS_PATH.name)
    out = []
    for channel in ("imp_env", "bcg"):
        rec = read_recording(data_dir / "aydin_left1.npz", channel=channel)
        n, fs = rec.signal.size, rec.fs
        r = rec.reference["r_peaks"]
        ibi_s = np.concatenate([[np.nan], np.diff(r) / fs])
        every = np.ones(r.size, bool)
        name = f"aydin {channel}"
        ref = Reference(
            hr=span_rates(r, fs, n, EPOCH_S, HR_SPAN_S),
            hrv=span_rmssd(r, ibi_s, every, fs, n, EPOCH_S, HR_SPAN_S),
            state=_label_array(labels.get(name), len(_epoch_bounds(n, fs))),
        )
        out.append(ProductRecord(name, "real", rec.signal, fs, ref))
    rec = read_recording(data_dir / "sadek_sample.npz", channel="raw")
    oximeter = rec.reference["pulse_ox_bpm"]
    bounds = _epoch_bounds(rec.signal.size, rec.fs)
    state = _label_array(labels.get("sadek"), len(bounds))
    ref = Reference(hr=oximeter_rates(oximeter, rec.fs, bounds), state=state)
    as_recorded = Reference(hr=oximeter_rates(oximeter, rec.fs, bounds, delay_s=0.0), state=state)
    out.append(ProductRecord("sadek", "real", rec.signal, rec.fs, ref, as_recorded))
    return out


def robustness_records(data_dir: Path = DATA_DIR) -> list[ProductRecord]:
    """Real recordings without a reference, for the transforms only (goodbcg1)."""
    rec = read_recording(data_dir / "goodbcg1.npz", channel="bcg")
    return [ProductRecord("goodbcg1", "robustness", rec.signal, rec.fs, None)]


# --- running the unit ------------------------------------------------------------------------


def _epoch_index(t_utc: float, epoch_s: float) -> int:
    return int(math.floor((t_utc - T0_UTC) / epoch_s + 1e-6))


def replay(
    x: np.ndarray, fs: float, workdir: Path, *, epoch_s: float = EPOCH_S
) -> tuple[StoredRun, str | None]:
    """Run ``x`` (at ``fs``) through the unit as ``bedside run --source replay:FILE --speed
    max --epoch 10`` with the default config, and read back what the store holds.

    Returns the stored run on the record's epoch grid and None, or an empty run and the
    error when the unit refused the recording or failed on it.
    """
    from edge.cli import open_run  # the same wiring as `bedside run`

    x = np.asarray(x)
    n_epochs = len(_epoch_bounds(x.size, fs, epoch_s))
    path, db = workdir / "record.npz", workdir / "vitals.db"
    for old in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        old.unlink(missing_ok=True)
    # The time column gives the replay a known start, so each epoch maps back to samples.
    np.savez(path, fs=np.float64(fs), raw=x, time_s=T0_UTC + np.arange(x.size) / fs)
    config = Config().with_overrides(
        {
            "run_source": ("--source", f"replay:{path}"),
            "run_db": ("--db", str(db)),
            "run_speed": ("--speed", "max"),
            "run_epoch_s": ("--epoch", epoch_s),
        }
    )
    start = time.perf_counter()
    try:
        parts = open_run(config)
        try:
            session = parts.pipeline().run().session_id
        finally:
            parts.store.close()
    except (BedsideError, ValueError) as exc:
        code = getattr(exc, "code", type(exc).__name__)
        return StoredRun.empty(n_epochs), f"{code}: {exc}"
    run = StoredRun.empty(n_epochs)
    run.wall_s = time.perf_counter() - start
    with Store(db, readonly=True) as store:
        for _, e in store.epochs(session_id=session):
            k = _epoch_index(e.t_utc, epoch_s)
            if 0 <= k < n_epochs:
                run.state[k] = e.state
                run.quality[k] = e.quality
                run.hr_reason[k] = e.hr_reason or ""
                for name, value in (("hr", e.hr_bpm), ("hrv", e.hrv_rmssd_ms), ("rr", e.rr_bpm)):
                    getattr(run, name)[k] = np.nan if value is None else value
        for _, ev in store.events(session_id=session):
            if ev.kind != "shutdown":
                run.events.append((_epoch_index(ev.t_utc, epoch_s), ev.kind, ev.detail))
    return run, None


# --- evaluating ------------------------------------------------------------------------------


def _ranges() -> tuple[tuple[float, float], tuple[float, float]]:
    c = Config()
    return (c.events_hr_low_bpm, c.events_hr_high_bpm), (c.events_rr_low_bpm, c.events_rr_high_bpm)


def _epochs_json(run: StoredRun, ref: Reference | None) -> dict:
    def values(a: np.ndarray | None) -> list | None:
        if a is None:
            return None
        return [None if not np.isfinite(v) else round(float(v), 3) for v in a]

    out = {
        "state": run.state.tolist(),
        "hr": values(run.hr),
        "hrv": values(run.hrv),
        "rr": values(run.rr),
        "hr_reason": run.hr_reason.tolist(),
    }
    if ref is not None:
        out["ref_hr"] = values(ref.hr)
        out["ref_hrv"] = values(ref.hrv)
        out["ref_rr"] = values(ref.rr)
        out["ref_state"] = None if ref.state is None else ref.state.tolist()
    return out


def _pool(pairs: list[tuple[StoredRun, Reference]]) -> tuple[StoredRun, Reference]:
    """Several runs as one, a blank epoch between records, so no 30 s window spans two."""
    runs: list[StoredRun] = []
    refs: list[Reference] = []
    events: list[tuple[int, str, str]] = []
    offset = 0
    for run, ref in pairs:
        runs += [run, StoredRun.empty(1)]
        refs += [
            ref,
            Reference(
                hr=np.full(1, np.nan),
                state=np.full(1, "", dtype=object),
                hrv=np.full(1, np.nan),
                rr=np.full(1, np.nan),
            ),
        ]
        events += [(k + offset, kind, detail) for k, kind, detail in run.events]
        offset += run.n + 1

    def cat(items: list, name: str) -> np.ndarray | None:
        parts = [getattr(i, name) for i in items]
        return None if any(p is None for p in parts) else np.concatenate(parts)

    run = StoredRun(
        *(cat(runs, f) for f in ("state", "hr", "hrv", "rr", "quality", "hr_reason")),
        events=events,
    )
    ref = Reference(
        hr=cat(refs, "hr"),
        state=cat(refs, "state"),
        hrv=cat(refs, "hrv"),
        rr=cat(refs, "rr"),
        complete=all(r.complete for r in refs),
    )
    return run, ref


def evaluate_product(
    seed_set: str = "held-out",
    nights: int = 10,
    *,
    real: bool = True,
    sim: bool = True,
    transforms: bool = True,
    machines: bool = True,
    claims: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Replay every record through the unit and score it; a JSON-ready dict:
    ``records`` (per record: scores, errors, epochs), ``groups`` (each simulated set
    pooled), ``transforms`` (per real record and transform), ``machines``, ``claims``
    (wrong sampling-rate claims, :data:`CLAIM_FACTORS`), ``runtime_s``."""
    say = progress or (lambda text: None)
    hr_range, rr_range = _ranges()
    out: dict = {
        "epoch_s": EPOCH_S,
        "records": {},
        "groups": {},
        "transforms": {},
        "machines": {},
        "claims": {},
    }
    start = time.perf_counter()
    recs = (sim_records(seed_set, nights) if sim else []) + (real_records() if real else [])
    extra = robustness_records() if real and transforms else []
    runs: dict[str, StoredRun] = {}
    with tempfile.TemporaryDirectory(prefix="bedside-eval-") as tmp:
        work = Path(tmp)
        say(f"replaying {len(recs) + len(extra)} records")
        for rec in recs + extra:
            run, error = replay(rec.x, rec.fs, work)
            runs[rec.name] = run
            entry: dict = {
                "group": rec.group,
                "fs": rec.fs,
                "error": error,
                "wall_s": round(run.wall_s, 3),
            }
            if rec.reference is not None:
                entry["score"] = score_run(run, rec.reference, hr_range, rr_range)
            if rec.as_recorded is not None:
                entry["score_as_recorded"] = score_run(run, rec.as_recorded, hr_range, rr_range)
            entry["states"] = _state_counts(run)
            entry["hr_epochs"] = int(np.count_nonzero(np.isfinite(run.hr)))
            entry["epochs"] = _epochs_json(run, rec.reference)
            out["records"][rec.name] = entry
        for group in dict.fromkeys(r.group for r in recs if r.group not in ("real",)):
            members = [r for r in recs if r.group == group]
            run, ref = _pool([(runs[r.name], r.reference) for r in members])
            score = score_run(run, ref, hr_range, rr_range)
            score["epochs"] -= len(members)  # the blank epochs between records
            score["records"] = len(members)
            score["errors"] = sum(out["records"][r.name]["error"] is not None for r in members)
            out["groups"][group] = score
        if transforms:
            real_recs = [r for r in recs if r.group == "real"] + extra
            say(f"transforms of {len(real_recs)} real records")
            for rec in real_recs:
                table = out["transforms"].setdefault(rec.name, {})
                for name, transform in transforms_for(rec.fs).items():
                    y, fs = transform(rec.x, rec.fs)
                    run, error = replay(y, fs, work)
                    table[name] = {"fs": fs, "error": error, **compare_runs(runs[rec.name], run)}
                    if rec.reference is not None:  # is the answer still right, not only alike
                        table[name]["hr_mae_ref"] = score_run(run, rec.reference)["hr_mae"]
        if machines:
            cases = machine_runs()
            say(f"{len(cases)} machine signals")
            for case in cases:
                run, error = replay(case.samples(), case.fs, work)
                kinds: dict[str, int] = {}
                for _, kind, _ in run.events:
                    kinds[kind] = kinds.get(kind, 0) + 1
                out["machines"][case.name] = {
                    "machine": case.machine,
                    "rate_hz": MACHINES[case.machine][1],
                    "fs": case.fs,
                    "gain": case.gain,
                    "offset": case.offset,
                    **_stored(run, error),
                    "hr_values": sorted({round(float(v), 1) for v in run.hr[np.isfinite(run.hr)]}),
                    "events": kinds,
                }
        if claims:
            claimed = _claim_records(recs)
            say(f"{len(claimed) * len(CLAIM_FACTORS)} wrong rate claims")
            for rec in claimed:
                for factor in CLAIM_FACTORS:
                    run, error = replay(rec.x, rec.fs * factor, work)
                    out["claims"][f"{rec.name} at {rec.fs:g} Hz read as {rec.fs * factor:g}"] = {
                        "fs": rec.fs,
                        "claimed_fs": rec.fs * factor,
                        **_stored(run, error),
                    }
    out["runtime_s"] = time.perf_counter() - start
    return out


def _claim_records(recs: list[ProductRecord]) -> list[ProductRecord]:
    """The records read with a wrong rate: every real one with a heart rate in it, and the
    first simulated night of each rate."""
    out = [r for r in recs if r.group == "real" and r.name != "aydin bcg"]
    rates = {}
    for r in recs:
        if r.group != "real":
            rates.setdefault(r.fs, r)
    return out + list(rates.values())


def _state_counts(run: StoredRun) -> dict[str, int]:
    return {s: int(np.count_nonzero(run.state == s)) for s in STATES if np.any(run.state == s)}


def _stored(run: StoredRun, error: str | None) -> dict:
    """What a replay of a signal without a reference stored: its error, epochs, states and
    how many epochs have a heart and a breathing rate."""
    return {
        "error": error,
        "epochs": int(np.count_nonzero(run.state != "")),
        "states": _state_counts(run),
        "hr_epochs": int(np.count_nonzero(np.isfinite(run.hr))),
        "rr_epochs": int(np.count_nonzero(np.isfinite(run.rr))),
    }


def _states_text(states: dict[str, int]) -> str:
    return ", ".join(f"{s} {n}" for s, n in states.items())


# --- targets and the report ------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1, missing: str = "-") -> str:
    if value is None or not np.isfinite(value):
        return missing
    return f"{value:.{digits}f}"


def targets(results: dict) -> list[Target]:
    """The targets of issue 15, item 5, that the figures allow checking."""
    out: list[Target] = []
    recs = results["records"]
    sadek = recs.get("sadek", {}).get("score")
    if sadek is not None:
        ok = sadek["hr_mae"] <= 2.0 and sadek["coverage"] >= 90.0
        value = f"{_fmt(sadek['hr_mae'], 2)} bpm at {_fmt(sadek['coverage'])} %"
        raw = recs["sadek"].get("score_as_recorded")
        if raw is not None:
            value += f" (as recorded, without the delay: {_fmt(raw['hr_mae'], 2)} bpm)"
        name = f"sadek: HR MAE at coverage (oximeter {SADEK_OXIMETER_DELAY_S:g} s late)"
        out.append(Target(name, "<= 2.0 bpm at >= 90 %", value, ok))
    imp = recs.get("aydin imp_env", {}).get("score")
    if imp is not None:
        # A claim about every epoch with an HR measures nothing when there is none.
        epochs = recs["aydin imp_env"]["epochs"]
        err = [
            abs(a - b)
            for a, b in zip(epochs["hr"], epochs["ref_hr"], strict=True)
            if a is not None and b is not None
        ]
        ok = bool(err) and max(err) <= 2.0
        value = f"{sum(e <= 2.0 for e in err)} of {len(err)} epochs with an HR"
        out.append(
            Target("aydin imp_env: every HR within 2 bpm of the ECG", "all, >= 1", value, ok)
        )
    for name, entry in recs.items():
        score = entry.get("score")
        if entry["group"] != "real" or score is None:
            continue
        ok = score["off_20pct"] == 0 and score["false_events"] == 0
        value = f"{score['off_20pct']} off by > 20 %, {score['false_events']} false events"
        out.append(Target(f"{name}: no HR off > 20 %, no false range event", "0 and 0", value, ok))
    goal = f"state >= {SAME_STATE_GOAL:g} %, HR within {SAME_HR_BPM:g} bpm"
    extra: dict[str, list[str]] = {}  # beyond the issue's list: the records that fail
    for name, table in results["transforms"].items():
        bad = [
            t
            for t, c in table.items()
            if c["error"]
            or not c["same_state"] >= SAME_STATE_GOAL
            or (c["hr_both"] and c["hr_within"] < 100.0)
        ]
        listed = [t for t in bad if t not in EXTRA_TRANSFORMS]
        value = "all" if not listed else "fail: " + ", ".join(listed)
        out.append(Target(f"{name}: transforms keep the answer", goal, value, not listed))
        for t in EXTRA_TRANSFORMS:
            if t in table:
                extra.setdefault(t, []).extend([name] if t in bad else [])
    for t, failing in extra.items():  # a line of its own each
        value = "all" if not failing else "fail: " + ", ".join(failing)
        label = f"real records: {t} keeps the answer (not in the issue's list)"
        out.append(Target(label, goal, value, not failing))
    if results["machines"]:
        bad = [k for k, m in results["machines"].items() if m["hr_epochs"] or m["error"]]
        n = len(results["machines"])
        value = f"{n - len(bad)} of {n} without an HR"
        out.append(Target("machines: no HR in any epoch", "all", value, not bad))
    if results.get("claims"):
        bad = [
            k
            for k, c in results["claims"].items()
            if c["error"] is None and (c["hr_epochs"] or c["rr_epochs"])
        ]
        n = len(results["claims"])
        value = f"{n - len(bad)} of {n} refused or without a rate" + (
            f"; rates stored: {', '.join(bad)}" if bad else ""
        )
        goal = "the claim refused, or no HR and no RR stored"
        out.append(Target("wrong --fs claims", goal, value, not bad))
    for group in (HELDOUT_LIKE, HELDOUT_RINGING):
        held = results["groups"].get(group)
        if held is None:
            continue
        ok = (
            held["off_20pct"] == 0
            and held["false_events"] == 0
            and held["hr_mae"] <= 1.5
            and held["coverage"] >= 90.0
        )
        value = (
            f"{held['off_20pct']} off by > 20 %, {held['false_events']} false events, "
            f"HR MAE {_fmt(held['hr_mae'], 2)} bpm at {_fmt(held['coverage'])} %"
        )
        goal = "0, 0, <= 1.5 bpm at >= 90 % of still epochs"
        out.append(Target(f"{group} (simulated): no harmonic lock", goal, value, ok))
    kinds = {k: results["groups"][k] for k in SENSOR_KINDS if k in results["groups"]}
    if kinds:
        bad = [k for k, g in kinds.items() if g["off_20pct"] or g["false_events"]]
        value = (
            "none"
            if not bad
            else ", ".join(
                f"{k} ({kinds[k]['off_20pct']} off, {kinds[k]['false_events']} false)" for k in bad
            )
        )
        out.append(
            Target(
                "sensor models (simulated): no HR off > 20 %, no false event",
                "none",
                value,
                not bad,
            )
        )
    nominal = results["groups"].get("nominal")
    if nominal is not None:
        for key, label in (("hr_mae_bpm", "hr_mae"), ("coverage", "coverage")):
            op, goal = TARGETS[key]
            value = nominal[label]
            ok = bool(np.isfinite(value) and (value >= goal if op == ">=" else value <= goal))
            out.append(
                Target(f"sim nominal (held out): {label}", f"{op} {goal:g}", _fmt(value, 2), ok)
            )
    return out


_COLUMNS = (
    ("epochs", "epochs", 6, 0),
    ("still", "still", 5, 0),
    ("coverage", "cover %", 7, 1),
    ("hr_mae", "HR MAE", 6, 2),
    ("worst_30s", "worst30", 7, 1),
    ("off_20pct", ">20%", 4, 0),
    ("range_events", "rng ev", 6, 0),
    ("false_events", "false", 5, 0),
    ("unverified_events", "unver", 5, 0),
    ("state_agreement", "state %", 7, 1),
    ("rr_mae", "RR MAE", 6, 2),
    ("rr_coverage", "RR cov", 6, 1),
    ("hrv_mae", "HRV ms", 6, 1),
)


def _row(first: str, score: dict, width: int = 22) -> str:
    cells = []
    for key, _, w, digits in _COLUMNS:
        v = score.get(key)
        cells.append(f"{(str(v) if digits == 0 and v is not None else _fmt(v, digits)):>{w}}")
    return f"{first[:width]:{width}} " + " ".join(cells)


def _header(first: str, width: int = 22) -> str:
    return f"{first:{width}} " + " ".join(f"{t:>{w}}" for _, t, w, _ in _COLUMNS)


def report(results: dict) -> str:
    """The product tables and the targets, as text."""
    lines = [
        "What the unit stores: bedside run --source replay:FILE --speed max --epoch 10",
        "(default config, real quality gate; per 10 s epoch, against the reference)",
        "",
        _header("set / record"),
    ]
    for group, score in results["groups"].items():
        label = f"{group} ({score['records']})"
        if score["errors"]:
            label += f" {score['errors']} err"
        lines.append(_row(label, score))
    errors = []
    for name, entry in results["records"].items():
        if entry["group"] == "real" and "score" in entry:
            lines.append(_row(name, entry["score"]))
        if entry["group"] == "real" and "score_as_recorded" in entry:
            lines.append(_row(f"{name} (as recorded)", entry["score_as_recorded"]))
        if entry["error"]:
            errors.append(f"  {name}: {entry['error']}")
    for name, entry in results["records"].items():
        if entry["group"] == "robustness":
            states = _states_text(entry["states"]) or "none"
            lines.append(f"{name:22} (no reference) states: {states}; HR in {entry['hr_epochs']}")
    if errors:
        lines += ["", "Records the unit could not run:", *errors]
    # The pooled rows hide which night went wrong: name them, with what the unit stored.
    flagged = []
    for name, entry in results["records"].items():
        score = entry.get("score")
        if score is None or entry["group"] == "real":
            continue
        wrong = [
            f"epoch {e['epoch']} {e['detail']} (truth {_fmt(e['reference'], missing='none')})"
            for e in score["events"]
            if e["verdict"] == "false"
        ]
        if len(wrong) > 3:
            wrong[3:] = [f"{len(wrong) - 3} more false events"]
        if score["off_20pct"]:
            wrong.append(f"{score['off_20pct']} epochs with HR off by > 20 %")
        if wrong:
            flagged.append(f"  {name}: " + "; ".join(wrong))
    if flagged:
        lines += ["", "Simulated nights with a false event or an HR off by > 20 %:", *flagged]
    if results["transforms"]:
        lines += [
            "",
            "Transforms: each run against the untransformed run of the same record",
            f"{'record':14} {'transform':16} {'epochs':>6} {'state %':>7} {'HR pres %':>9} "
            f"{'HR base/tr/both':>15} {'<=1bpm %':>8} {'max diff':>8} {'ref MAE':>7} "
            f"{'HRV diff':>8}",
        ]
        for rec, table in results["transforms"].items():
            for name, c in table.items():
                if c["error"]:
                    lines.append(f"{rec[:14]:14} {name[:16]:16} error {c['error']}")
                    continue
                counts = f"{c['hr_base']}/{c['hr_other']}/{c['hr_both']}"
                lines.append(
                    f"{rec[:14]:14} {name[:16]:16} {c['epochs']:>6} {_fmt(c['same_state']):>7} "
                    f"{_fmt(c['hr_presence']):>9} {counts:>15} {_fmt(c['hr_within']):>8} "
                    f"{_fmt(c['hr_max_diff'], 2):>8} {_fmt(c.get('hr_mae_ref'), 2):>7} "
                    f"{_fmt(c['hrv_diff']):>8}"
                )
    if results["machines"]:
        lines += [
            "",
            "Periodic signals that are not a person (120 s each): no HR may be stored",
            f"{'signal':30} {'epochs':>6} {'HR':>3} {'RR':>3}  {'states':24} events / HR values",
        ]
        for name, m in results["machines"].items():
            if m["error"]:
                lines.append(f"{name[:30]:30} error {m['error']}")
                continue
            states = _states_text(m["states"])
            events = ", ".join(f"{k} {n}" for k, n in m["events"].items()) or "-"
            hrs = " ".join(f"{v:g}" for v in m["hr_values"][:4])
            lines.append(
                f"{name[:30]:30} {m['epochs']:>6} {m['hr_epochs']:>3} {m['rr_epochs']:>3}  "
                f"{states[:24]:24} {events}" + (f" / HR {hrs}" if hrs else "")
            )
    if results.get("claims"):
        lines += [
            "",
            "Wrong sampling-rate claims (a file without a rate, read with the wrong --fs): "
            "no rate may be stored",
            f"{'record and claim':44} {'epochs':>6} {'HR':>4} {'RR':>4}  states / refusal",
        ]
        for name, c in results["claims"].items():
            if c["error"]:
                lines.append(f"{name[:44]:44} refused: {c['error'][:60]}")
                continue
            states = _states_text(c["states"])
            lines.append(
                f"{name[:44]:44} {c['epochs']:>6} {c['hr_epochs']:>4} {c['rr_epochs']:>4}  {states}"
            )
    lines += ["", "Targets (issue 15)"]
    for t in targets(results):
        verdict = "PASS" if t.met else "FAIL"
        lines.append(f"  {verdict}  {t.name}: {t.value} (goal {t.goal})")
    return "\n".join(lines)
