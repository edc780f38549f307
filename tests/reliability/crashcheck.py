"""Power cuts below the page cache: the power-cut harness's checks on modelled crash states.

    python tests/reliability/powercut.py --model both --cuts 1600 --seed 1   # `make crashcheck`

Each batch runs one unit operation of powercut.py (``record``, a ``flash`` with its trial
boot, a ``pull``) to its end, uncut, under the crashlog shim (crashstates.py), which logs
every call that changes the unit's folder and the witness file in one ordered log. Then,
at record indices drawn from the seed (each a cut point), it builds the tree a power cut
there could leave under a model (``lose-unsynced``: everything not fsynced is lost;
``reorder``: a seeded random part of the unsynced changes reached the disk too), writes
it out, and runs powercut.py's restart and checks on it. What the unit had been told was
durable is the witness's lines up to that record: the same cut splits both.

For ``lose-unsynced`` the image only changes at a sync, so its cut points are the records
just before each fsync, fdatasync or syncfs (the most the unit can have been told with the
least on disk) and the end of the operation, which every batch cuts first (a power cut
right after the operation returned); ``reorder`` draws from every record. Two checks are
added to powercut.py's: the confirmed slot runs its own ``dsp_c``, and a pull that had
returned is whole in the archive.

Before any image is used, the log is checked against the disk: every record applied must
give the real folders after the operation, byte for byte (files the shim cannot see into,
SQLite's -shm, left out), so a call the shim missed fails the run instead of hiding.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import crashstates  # noqa: E402
import powercut  # noqa: E402
from powercut import ROOT, CutResult, Report  # noqa: E402

BATCH = 10  # cut points taken from one logged operation
CHOICES = ("lose-unsynced", "reorder", "both")


@dataclass
class Logged:
    """One operation run to its end under the shim: its replay and its witness."""

    replay: crashstates.Replay
    witness: list[tuple[int, str]]  #: (record index of the write, line)
    problems: list[str]

    def lines_at(self, at: int) -> list[str]:
        """The witness lines written before record ``at``: what the unit had been told."""
        return [line for index, line in self.witness if index < at]

    def candidates(self, model: str, phases: set[str] | None = None) -> list[int]:
        """Cut points worth trying under ``model``, in the given landed phases."""
        records = self.replay.records
        if model == "lose-unsynced":
            at = [r.index for r in records if r.kind in ("fsync", "syncall")] + [len(records)]
        else:
            at = list(range(1, len(records) + 1))
        if phases is None:
            return at
        return [i for i in at if landed(self.lines_at(i)) in phases]


def landed(lines: list[str]) -> str:
    """The phase a cut at this point of the witness lands in; a cut after the operation
    returned (a power cut right after it) counts in its last phase."""
    names = [line.split()[1] for line in lines if line.startswith("phase ")]
    names = [n for n in names if n != "done"] if names[-1:] == ["done"] else names
    return names[-1] if names else "start"


def run_logged(shim: Path, op: str, roots: list[Path], witness: Path, *args: str) -> Logged:
    """Run ``unit_ops.py op`` to its end under the shim, logging changes under ``roots`` and
    the witness's folder; the replay is checked against the disk before it is returned."""
    witness.unlink(missing_ok=True)
    log = witness.with_name(witness.name + ".crashlog")
    log.unlink(missing_ok=True)
    watched = [*roots, witness.parent]
    replay = crashstates.Replay(watched)  # the snapshot, before the operation
    cmd = [sys.executable, str(HERE / "unit_ops.py"), op, "--root", str(roots[0])]
    cmd += ["--kind", "fs", "--at", "0", "--witness", str(witness), *args]
    env = crashstates.shim_env(shim, watched, log, {**os.environ, "PYTHONPATH": str(ROOT)})
    done = subprocess.run(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        timeout=powercut.RUN_TIMEOUT_S,
    )  # fmt: skip
    if done.returncode != 0:
        raise powercut.OperationError(f"{op} failed under the shim: {done.stderr[-800:]}")
    records = crashstates.read_log(log)
    log.unlink()
    replay.use_log(records)
    problems = [
        f"the log does not replay to the disk: {p}"
        for p in crashstates.check_fidelity(replay, watched)
    ]
    ino = _witness_ino(records, witness)
    lines = [
        (r.index, r.data.decode().rstrip("\n"))
        for r in records
        if r.kind == "write" and r.ino == ino
    ]
    return Logged(replay.rewind(), lines, problems)


def _witness_ino(records: list[crashstates.Record], witness: Path) -> int:
    path = str(witness.resolve())
    for r in records:
        if r.kind == "open" and r.path == path:
            return r.ino
    raise powercut.OperationError("the witness file was never opened under the shim")


def confirmed_slot_runs(state: Path) -> list[str]:
    """What the unit runs after a restart must import: the confirmed slot's ``dsp_c`` (built
    at its trial boot, outside the signed manifest, so ``verify_tree`` does not see it)."""
    slots = powercut.Slots(state)
    now = slots.load()
    slot = now["confirmed"]
    if powercut.slot_is_factory(now, slot):
        return []
    root = slots.slot_dir(slot)
    # From the slot's own files: on a dev machine the editable install would hand over the
    # repository's extension when the slot has none.
    code = (
        "import sys, dsp_c, dsp_c._bcg_dsp as m; dsp_c.butter_bandpass(2, 0.5, 10.0, 250.0)\n"
        f"sys.exit(0 if m.__file__.startswith({str(root) + '/'!r}) else "
        "f'ImportError: no dsp_c._bcg_dsp in the slot (would load {m.__file__})')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=powercut.boot._slot_env(root),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return [f"the confirmed slot {slot} does not run: {tail}"]
    return []


class Cuts:
    """The crash-state cut points of one run: the phases of powercut.py, the models."""

    def __init__(self, work: Path, rng: random.Random, model: str, shim: Path) -> None:
        self.work, self.rng, self.shim = work, rng, shim
        self.models = ("lose-unsynced", "reorder") if model == "both" else (model,)
        self.turn = 0
        self.wit = work / "wit"
        self.wit.mkdir(parents=True, exist_ok=True)
        self.witness = self.wit / "w"
        self.made = 0
        self.flash: powercut.FlashRig | None = None
        self.pull: powercut.PullChain | None = None

    def _model(self) -> str:
        self.turn += 1
        return self.models[self.turn % len(self.models)]

    def _draw(self, logged: Logged, count: int, phases: set[str] | None) -> list[tuple]:
        """``count`` (index, model) cut points, seeded, distinct per model; the first is
        the end of the operation under ``lose-unsynced`` (a power cut right after it
        returned: all it had been told, nothing unsynced) when that model is in use."""
        out: list[tuple] = []
        end = len(logged.replay.records)
        if "lose-unsynced" in self.models and end in logged.candidates("lose-unsynced", phases):
            out.append((end, "lose-unsynced"))
        while len(out) < count:
            model = self._model()
            pool = [i for i in logged.candidates(model, phases) if (i, model) not in out]
            if not pool:
                break
            out.append((self.rng.choice(pool), model))
        return sorted(out)

    def _images(self, logged: Logged, cuts: list[tuple], seed: int):
        """(index, model, image) for each cut point, one replay pass per model."""
        by_model: dict[str, list[int]] = {}
        for at, model in cuts:
            by_model.setdefault(model, []).append(at)
        for model, points in by_model.items():
            for at, image in crashstates.images(logged.replay, points, model, seed):
                yield at, model, image

    # --- record: bedside run committing batches --------------------------------------------

    def record(self, count: int) -> list[CutResult]:
        self.made += 1
        chain = powercut.RecordChain(self.work / f"r{self.made}", self.rng)  # one plain run
        results: list[CutResult] = []
        while len(results) < count:
            batch = self._record_batch(chain, min(BATCH, count - len(results)))
            results += batch
            if not any(r.cut for r in batch):  # a failed run, or no point to cut: stop
                break
        return results

    def _record_batch(self, chain: powercut.RecordChain, count: int) -> list[CutResult]:
        logged = self._logged("record", [chain.state], *chain._args())
        if logged.problems:
            return [CutResult("record", "log", 0, problems=logged.problems)]
        cuts = self._draw(logged, count, {"record"})
        keep = self.rng.randrange(len(cuts)) if cuts else -1
        seen, killed, db = chain.seen, set(chain.killed_sessions), chain.db
        image_dir = self.work / "image"
        out, next_state = [], None
        for n, (at, model, image) in enumerate(self._images(logged, cuts, self.rng.random())):
            crashstates.materialise(image, {str(chain.state.resolve()): image_dir})
            chain.seen, chain.killed_sessions = seen, set(killed)
            chain.db = image_dir / db.name
            # The "cut" line: the crash happened, so the session left open is a killed one.
            lines = [*logged.lines_at(at), f"cut {model} {at}"]
            out.append(chain.check(CutResult("record", model, at), lines))
            out[-1].landed = landed(lines)
            if n == keep:  # the chain goes on from this crash, restarted
                next_state = (chain.seen, set(chain.killed_sessions))
                shutil.rmtree(chain.state)
                shutil.copytree(image_dir, chain.state)
        chain.db = db
        if next_state is not None:  # the next run must mark the crashed session unclean
            chain.seen, chain.killed_sessions = next_state
        return out

    # --- flash: upload, install, boot -------------------------------------------------------

    def flash_phase(self, phase: str, count: int) -> list[CutResult]:
        self.flash = self.flash or powercut.FlashRig(self.work, self.rng)
        rig = self.flash
        results: list[CutResult] = []
        while len(results) < count:
            state = rig._fresh(self.work)
            logged = self._logged("flash", [state], *rig._args(state), "--boot")
            if logged.problems:
                return results + [CutResult(phase, "log", 0, problems=logged.problems)]
            cuts = self._draw(logged, min(BATCH, count - len(results)), {phase})
            if not cuts:
                break
            image_dir = self.work / "unit-image"
            for at, model, image in self._images(logged, cuts, self.rng.random()):
                crashstates.materialise(image, {str(state.resolve()): image_dir})
                result = CutResult(phase, model, at, cut=True)
                result.landed = landed(logged.lines_at(at))
                rig.recover(image_dir, result)
                result.problems += confirmed_slot_runs(image_dir)
                results.append(result)
        return results

    # --- pull: the agent serving logs pull into the host archive ----------------------------

    def pull_phase(self, count: int) -> list[CutResult]:
        results: list[CutResult] = []
        while len(results) < count:
            problems = [f"end of the last pull chain: {p}" for p in self.finish_pulls()]
            self.made += 1
            chain = self.pull = powercut.PullChain(self.work, self.rng, self.made)
            chain.grow()
            logged = self._logged("pull", [chain.dir], *chain.args)
            if logged.problems:
                return results + [CutResult("pull", "log", 0, problems=problems + logged.problems)]
            cuts = self._draw(logged, min(BATCH, count - len(results)), {"pull"})
            if not cuts:
                return results + [CutResult("pull", "none", 0, problems=problems)]
            image_dir = self.work / "pull-image"
            state, archive = chain.state, chain.archive
            keep = self.rng.randrange(len(cuts)) if cuts else -1
            for n, (at, model, image) in enumerate(self._images(logged, cuts, self.rng.random())):
                crashstates.materialise(image, {str(chain.dir.resolve()): image_dir})
                chain.state, chain.archive = image_dir / "unit", image_dir / "archive"
                result = CutResult("pull", model, at, cut=True, problems=problems)
                problems = []
                lines = logged.lines_at(at)
                result.landed = landed(lines)
                # A pull that had returned must be whole in the archive: the tester was told so.
                returned = any(line.startswith("phase done") for line in lines)
                result.problems += chain.consistent(whole=returned)
                results.append(result)
                chain.state, chain.archive = state, archive
                if n == keep:  # the chain's last, whole pull starts from this crash
                    shutil.rmtree(chain.dir)
                    shutil.copytree(image_dir, chain.dir)
        return results

    def finish_pulls(self) -> list[str]:
        return self.pull.finish(self.work) if self.pull is not None else []

    # --- common -------------------------------------------------------------------------------

    def _logged(self, op: str, roots: list[Path], *args: str) -> Logged:
        return run_logged(self.shim, op, roots, self.witness, *args)


def run(
    cuts: int,
    seed: int = 1,
    *,
    model: str = "both",
    work: Path | None = None,
    progress=None,
) -> Report:
    """Try ``cuts`` crash-state cut points (seeded) in powercut.py's phase shares."""
    if model not in CHOICES:
        raise ValueError(f"model: expected one of {CHOICES}, got {model!r}")
    started = time.monotonic()
    report = Report(seed=seed)
    by_phase: Counter = Counter()
    counts = Counter(powercut.plan(cuts, seed))
    with tempfile.TemporaryDirectory(prefix="crashcheck-", dir=work) as tmp:
        shim = crashstates.build_shim(ROOT / "build")
        rigs = Cuts(Path(tmp), random.Random(seed), model, shim)
        for phase in powercut.PHASES:
            if not counts[phase]:
                continue
            try:
                if phase == "record":
                    results = rigs.record(counts[phase])
                elif phase == "pull":
                    results = rigs.pull_phase(counts[phase])
                else:
                    results = rigs.flash_phase(phase, counts[phase])
            except (powercut.OperationError, crashstates.ModelError) as exc:
                results = [CutResult(phase, "?", 0, problems=[str(exc)])]
            for result in results:
                if result.cut:
                    report.tried += 1
                    by_phase[result.landed] += 1
                    report.resumed_uploads += result.note.startswith("resumed")
                report.problems += [
                    f"{result.phase} {result.kind} at record {result.at} (in {result.landed}): {p}"
                    for p in result.problems
                ]
                if progress is not None:
                    progress(report.tried, result)
        try:  # the last pull chain's whole pull, from its crashed image
            report.problems += [f"last pull: {p}" for p in rigs.finish_pulls()]
        except powercut.OperationError as exc:
            report.problems.append(f"last pull: {exc}")
    report.by_phase = dict(by_phase)
    report.seconds = time.monotonic() - started
    return report
