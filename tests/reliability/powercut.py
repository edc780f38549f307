"""The power-cut harness: kill the unit's processes at many seeded points, restart, check.

    python tests/reliability/powercut.py --cuts 1000 --seed 1      # `make powercut`
    python tests/reliability/powercut.py --cuts 30 --json out.json

Each cut point runs one unit operation in a process of its own (unit_ops.py) and SIGKILLs
its process group at a point drawn from the seed (cutpoints.py: the Nth file-system step,
the Nth SQLite tick, or a delay into the boot manager's trial). The points are spread over
the phases the issue names:

============  ==========================================================================
``record``    mid-batch write: ``bedside run`` committing small batches to the store
``upload``    mid-flash: chunks of a bundle being written and fsynced
``install``   mid-unpack and mid-slot switch: verify, unpack into the slot, mark the trial
``boot``      mid-slot switch: the boot manager's trial (count, build, health check, confirm)
``pull``      mid-pull: the agent serving ``logs pull`` and the host archive writing it
============  ==========================================================================

After every cut the harness restarts what a unit restarts and checks:

- every commit the process had been told was durable is there, row for row as seen before,
  and ``PRAGMA integrity_check`` is ok (the vitals store; the host archive after a pull);
- the boot manager finds a confirmed slot, and that slot is bootable (the installed
  software, or a slot whose files match its signed manifest), and it found the slots' state
  whole (a damaged ``state.json`` still boots the installed software, but forgets the slots);
- the interrupted operation resumes or is cleanly retried: the next ``bedside run`` opens a
  new session and marks the killed one unclean; the same flash again completes (from the
  offset the unit held), leaving the bundle installed whole and no upload behind; the next
  pull completes and the archive then equals the unit, no row lost, none twice.

A run whose drawn point lies beyond the operation's end is not a cut and is not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "host")]

from bundle_kit import build, install_release_key, release_key  # noqa: E402
from logs_fixtures import archive_rows, record, unit_rows, write_log  # noqa: E402

from edge.link.auth import add_authorized  # noqa: E402
from edge.maint import boot  # noqa: E402
from edge.maint import bundle as bundles  # noqa: E402
from edge.maint.flash import Flasher  # noqa: E402
from edge.maint.slots import Slots, slot_is_factory  # noqa: E402
from edge.store import Store  # noqa: E402
from host_tools.archive import unit_archives  # noqa: E402
from host_tools.keys import HostKey  # noqa: E402

#: Share of the cut points per phase.
PHASES = {"record": 0.35, "upload": 0.15, "install": 0.22, "boot": 0.08, "pull": 0.20}
RUN_TIMEOUT_S = 120.0
CHAIN = 8  # cuts in a row on one store / one archive before a fresh one
PULL_EPOCHS = 2000  # the unit's store at the start of a pull chain; 300 more before each cut


@dataclass
class CutResult:
    """One cut point: where it was aimed, whether it happened, what the checks found."""

    phase: str
    kind: str
    at: int
    cut: bool = False
    landed: str = ""  #: the phase the process was in when it died
    problems: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Report:
    seed: int
    tried: int = 0  #: cut points that really cut a process
    not_reached: int = 0  #: drawn points past the operation's end (no cut)
    by_phase: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    resumed_uploads: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        phases = ", ".join(f"{k} {v}" for k, v in sorted(self.by_phase.items()))
        verdict = "no problem" if self.ok else f"{len(self.problems)} PROBLEMS"
        return (
            f"power cuts: {self.tried} cut points ({phases}), {self.not_reached} drawn past the "
            f"end; {self.resumed_uploads} uploads resumed mid-file; {verdict} "
            f"in {self.seconds:.0f} s (seed {self.seed})"
        )


# --- running one operation -----------------------------------------------------------------


class OperationError(Exception):
    """An operation failed by itself (no cut): a finding, reported with the cut points."""


def run_op(op: str, root: Path, kind: str, at: int, witness: Path, *args: str, phase: str = ""):
    """Run ``unit_ops.py op`` (cut at ``kind``/``at``); returns (witness lines, stderr)."""
    witness.unlink(missing_ok=True)
    cmd = [sys.executable, str(HERE / "unit_ops.py"), op, "--root", str(root)]
    cmd += ["--kind", kind, "--at", str(at), "--phase", phase, "--witness", str(witness), *args]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the cut kills it and its children
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        err = f"timed out after {RUN_TIMEOUT_S:.0f} s\n{err}"
    lines = witness.read_text().splitlines() if witness.exists() else []
    cut = any(line.startswith("cut ") for line in lines)
    if not cut and proc.returncode != 0:
        raise OperationError(f"{op} failed without a cut (exit {proc.returncode}): {err[-800:]}")
    return lines, err


def phases_of(lines: list[str]) -> dict[str, tuple[int, int, float]]:
    """``{phase: (fs steps, sql ticks, t)}`` at each phase's start, from a witness."""
    out = {}
    for line in lines:
        if line.startswith("phase "):
            _, name, fs, sql, t = line.split()
            out[name] = (int(fs), int(sql), float(t))
    return out


def landed(lines: list[str]) -> str:
    names = [line.split()[1] for line in lines if line.startswith("phase ")]
    return names[-1] if names else "start"


def committed(lines: list[str]) -> tuple[int, int]:
    """(last epoch id, epochs in the store) of the last commit that returned."""
    last = (0, 0)
    for line in lines:
        if line.startswith("commit "):
            _, ident, count = line.split()
            last = (int(ident), int(count))
    return last


# --- the record chain (mid-batch write) -----------------------------------------------------


class RecordChain:
    """``bedside run`` again and again on one store, cut each time by SQLite ticks or by
    file-system steps; restarts are the next run."""

    def __init__(self, work: Path, rng: random.Random):
        self.state = work / "record"
        self.state.mkdir(parents=True)
        self.db = self.state / "vitals.db"
        self.rng = rng
        self.seen: dict[int, tuple] = {}  # every epoch row seen after a cut, by id
        self.killed_sessions: set[int] = set()
        self.runs = 0
        lines, _ = run_op("record", self.state, "fs", 0, work / "w", *self._args())
        p = phases_of(lines)
        self.ticks = p["done"][1] - p["record"][1]
        self.steps = p["done"][0] - p["record"][0]
        self.check(CutResult("record", "count", 0), lines)

    def _args(self) -> list[str]:
        self.runs += 1
        return ["--state", str(self.state), "--seed", str(self.runs)]

    def cut(self, work: Path) -> CutResult:
        kind = "sql" if self.rng.random() < 0.85 else "fs"
        top = self.ticks if kind == "sql" else self.steps
        result = CutResult("record", kind, self.rng.randint(1, max(1, top)))
        lines, _ = run_op("record", self.state, kind, result.at, work / "w", *self._args())
        return self.check(result, lines)

    def check(self, result: CutResult, lines: list[str]) -> CutResult:
        result.cut = any(line.startswith("cut ") for line in lines)
        result.landed = landed(lines)
        last_id, count = committed(lines)
        problems = result.problems
        with Store(self.db) as store:  # a restart: the writer opens the store
            if store.recovered_to is not None:
                problems.append(f"the store was moved aside as damaged: {store.recovered_to}")
            if (check := store.integrity_check()) != "ok":
                problems.append(f"integrity_check: {check[:200]}")
            rows = {i: e for i, e in store.epochs()}
            sessions = store.sessions()
        have = sum(1 for i in rows if i <= last_id)
        if have != count:
            problems.append(f"{count} epochs were committed up to id {last_id}, {have} are there")
        changed = [i for i, row in self.seen.items() if rows.get(i) != row]
        if changed:
            problems.append(f"{len(changed)} epochs seen before are gone or changed: {changed[:5]}")
        self.seen = rows
        # Resumes: each session killed before is closed as unclean by the next run.
        for s in sessions:
            if s.id in self.killed_sessions and s.clean is not False:
                if s.id != sessions[-1].id:
                    problems.append(f"killed session {s.id} not marked unclean (clean={s.clean})")
        if result.cut and sessions and sessions[-1].ended_utc is None:
            self.killed_sessions.add(sessions[-1].id)
        return result


# --- flashing (mid-flash, mid-unpack, mid-slot switch) -------------------------------------


class FlashRig:
    """A fresh unit per cut (its factory software confirmed), the same signed bundle."""

    def __init__(self, work: Path, rng: random.Random):
        self.rng = rng
        self.template = work / "unit-template"
        key = release_key(work / "release-keys")
        install_release_key(self.template, key)
        self.bundle = build(work / "b.bundle", key)
        self.data = self.bundle.read_bytes()
        self.sha = hashlib.sha256(self.data).hexdigest()
        state = self._fresh(work)
        lines, _ = run_op("flash", state, "fs", 0, work / "w", *self._args(state), "--boot")
        p = phases_of(lines)
        self.ranges = {
            "upload": (p["upload"][0] + 1, p["install"][0]),
            "install": (p["install"][0] + 1, p["boot"][0]),
            "boot": (p["boot"][0] + 1, p["done"][0]),
        }
        self.boot_s = p["done"][2] - p["boot"][2]
        now = Slots(state).load()
        if self._bootable(state) or now["slots"][now["confirmed"]]["sha256"] != self.sha:
            raise OperationError(f"an uncut flash and boot did not confirm the bundle: {now}")

    def _fresh(self, work: Path) -> Path:
        state = work / "unit"
        shutil.rmtree(state, ignore_errors=True)
        shutil.copytree(self.template, state)
        return state

    def _args(self, state: Path) -> list[str]:
        return ["--state", str(state), "--bundle", str(self.bundle)]

    def cut(self, work: Path, phase: str) -> CutResult:
        state = self._fresh(work)
        args = self._args(state)
        if phase == "boot" and self.rng.random() < 0.7:
            # Most of a trial boot is the build and the health check in child processes.
            result = CutResult(phase, "ms", self.rng.randint(1, max(1, int(self.boot_s * 1000))))
            lines, _ = run_op("flash", state, "ms", result.at, work / "w", *args, "--boot",
                              phase="boot")  # fmt: skip
        else:
            lo, hi = self.ranges[phase]
            result = CutResult(phase, "fs", self.rng.randint(lo, max(lo, hi)))
            extra = ["--boot"] if phase == "boot" else []
            lines, _ = run_op("flash", state, "fs", result.at, work / "w", *args, *extra)
        result.cut = any(line.startswith("cut ") for line in lines)
        result.landed = landed(lines)
        self.recover(state, result)
        return result

    def recover(self, state: Path, result: CutResult) -> None:
        """The unit restarts (its boot manager runs), then the host flashes again."""
        problems = result.problems
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                boot.boot(state, source="sim:1")
            except Exception as exc:  # noqa: BLE001 - any failure to boot is the finding
                problems.append(f"the boot manager failed after the cut: {exc!r}")
                return
        problems += self._bootable(state) + self._state_kept(state)
        flasher = Flasher(state, hardware="sim", factory_version="0.1.0")
        raw, signature = bundles.read_manifest(self.bundle)
        begin = {"sha256": self.sha, "size": len(self.data), "signature": signature.hex()}
        try:
            reply, _ = flasher.begin(begin, zlib.compress(raw))
            offset = reply["offset"]
            if 0 < offset < len(self.data):
                result.note = f"resumed at {offset}"
            for at in range(offset, len(self.data), 16384):
                flasher.chunk({"sha256": self.sha, "offset": at}, self.data[at : at + 16384])
            flasher.finish({"sha256": self.sha}, b"")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"flashing again failed: {exc!r}")
            return
        slots = Slots(state)
        now = slots.load()
        holder = [s for s in (now["trial"], now["confirmed"]) if s and
                  now["slots"][s]["sha256"] == self.sha]  # fmt: skip
        if not holder:
            problems.append(f"after flashing again the bundle is in no slot: {now}")
        else:
            try:
                bundles.verify_tree(slots.slot_dir(holder[0]))
            except Exception as exc:  # noqa: BLE001
                problems.append(f"slot {holder[0]} holding the bundle is damaged: {exc}")
        leftovers = sorted(p.name for p in (state / "incoming").glob("*"))
        if leftovers:
            problems.append(f"uploads left behind after the flash: {leftovers}")
        problems += self._bootable(state)

    @staticmethod
    def _state_kept(state: Path) -> list[str]:
        """The slots' state survived the cut. A damaged ``state.json`` still boots (the boot
        manager moves it aside as ``state.json.damaged`` and starts over from the installed
        software, logging ``recovered``), but the unit has forgotten its confirmed and trial
        slots: a finding, though every later check passes."""
        slots = Slots(state)
        damaged = slots.path.with_name(slots.path.name + ".damaged")
        try:
            history = slots.load()["history"]
        except Exception:  # noqa: BLE001 - _bootable reports a state that does not load
            history = []
        resets = [h["detail"] for h in history if h.get("event") == "recovered"]
        if not damaged.exists() and not resets:
            return []
        kept = repr(damaged.read_bytes()[:60]) if damaged.exists() else "not kept"
        reset = resets[-1] if resets else "no 'recovered' entry in its history"
        return [f"the cut damaged the slot state ({damaged.name}: {kept}); {reset}"]

    @staticmethod
    def _bootable(state: Path) -> list[str]:
        try:
            now = Slots(state).load()
        except Exception as exc:  # noqa: BLE001
            return [f"the slots' state does not load: {exc!r}"]
        slot = now["confirmed"]
        if slot not in ("a", "b"):
            return [f"no confirmed slot: {now}"]
        if slot_is_factory(now, slot):
            return []
        try:
            bundles.verify_tree(Slots(state).slot_dir(slot))
        except Exception as exc:  # noqa: BLE001
            return [f"the confirmed slot {slot} is not bootable: {exc}"]
        return []


# --- pulling (mid-pull) -----------------------------------------------------------------------


class PullChain:
    """Pulls into one archive from one unit, cut by SQLite ticks (unit reads and archive
    writes together); the unit gets new rows before each; the chain ends with a whole pull."""

    def __init__(self, work: Path, rng: random.Random, index: int):
        self.rng = rng
        self.dir = work / f"pull{index}"
        self.state = self.dir / "unit"
        self.archive = self.dir / "archive"
        keys = self.dir / "host-keys"
        host_key = HostKey.generate(keys, name="powercut")
        record(self.state, PULL_EPOCHS, seed=index, sessions=2)
        write_log(self.state, "runtime.log", 400)
        add_authorized(self.state / "keys" / "authorized_hosts", host_key.public)
        self.args = ["--state", str(self.state), "--archive", str(self.archive)]
        self.args += ["--keys", str(keys)]
        self.t0 = 1_800_000_000.0
        self.added = 0
        self.ticks: int | None = None

    def grow(self) -> None:
        """What the unit recorded since: 300 more epochs, more log lines."""
        self.added += 1
        record(self.state, 300, seed=1000 + self.added, t0=self.t0 + 1000 * self.added)
        write_log(self.state, "runtime.log", 50, start=400 + 50 * self.added)

    def cut(self, work: Path) -> CutResult:
        self.grow()
        if self.ticks is None:  # a counting run on a copy: the size of a whole pull
            probe = self.dir / "probe"
            shutil.copytree(self.state, probe / "unit")
            args = ["--state", str(probe / "unit"), "--archive", str(probe / "archive")]
            lines, _ = run_op("pull", probe, "sql", 0, work / "w", *args, *self.args[4:])
            p = phases_of(lines)
            self.ticks = p["done"][1] - p["pull"][1]
            shutil.rmtree(probe)
        result = CutResult("pull", "sql", self.rng.randint(1, max(1, self.ticks)))
        lines, _ = run_op("pull", self.dir, "sql", result.at, work / "w", *self.args)
        result.cut = any(line.startswith("cut ") for line in lines)
        result.landed = landed(lines)
        self.ticks = max(50, self.ticks // 2)  # what is left is less each time
        result.problems += self.consistent(whole=False)
        return result

    def finish(self, work: Path) -> list[str]:
        """The last, uncut pull: then the archive holds exactly the unit's rows."""
        run_op("pull", self.dir, "sql", 0, work / "w", *self.args)
        return self.consistent(whole=True)

    def consistent(self, *, whole: bool) -> list[str]:
        problems = []
        with sqlite3.connect(self.state / "vitals.db") as conn:
            if (c := conn.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
                problems.append(f"unit store integrity_check: {c}")
        conn.close()
        paths = unit_archives(self.archive) if self.archive.exists() else []
        if not paths:
            return problems + (["no archive after a whole pull"] if whole else [])
        with sqlite3.connect(paths[0]) as conn:
            if (c := conn.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
                problems.append(f"archive integrity_check: {c}")
        conn.close()
        try:
            got = archive_rows(self.archive)
        except Exception as exc:  # noqa: BLE001 - an archive that does not open is a finding
            return problems + [f"the archive does not open: {exc!r}"]
        want = unit_rows(self.state)
        for name, g, w in zip(("epochs", "events"), got, want, strict=True):
            if len(set(g)) != len(g):
                problems.append(f"archive {name}: rows twice")
            if not set(g) <= set(w):
                problems.append(f"archive {name}: rows the unit does not have")
            if whole and g != w:
                problems.append(f"archive {name}: {len(g)} rows, the unit has {len(w)}")
        return problems


# --- the whole run ----------------------------------------------------------------------------


def plan(cuts: int, seed: int) -> list[str]:
    """The phase of each cut point, in a seeded order, in the shares of :data:`PHASES`."""
    counts = {p: int(round(cuts * share)) for p, share in PHASES.items()}
    counts["record"] += cuts - sum(counts.values())
    order = [p for p, n in counts.items() for _ in range(n)]
    random.Random(seed).shuffle(order)
    return order


class _Rigs:
    """The chains and the flash rig of one run, made as the plan needs them."""

    def __init__(self, tmp: Path, rng: random.Random) -> None:
        self.tmp, self.rng = tmp, rng
        self.made = 0
        self.record: RecordChain | None = None
        self.pull: PullChain | None = None
        self.flash: FlashRig | None = None
        self.record_cuts = self.pull_cuts = 0

    def cut(self, phase: str) -> CutResult:
        if phase == "record":
            if self.record is None or self.record_cuts % CHAIN == 0:
                self.made += 1
                self.record = RecordChain(self.tmp / f"r{self.made}", self.rng)
            self.record_cuts += 1
            return self.record.cut(self.tmp)
        if phase == "pull":
            ended: list[str] = []
            if self.pull is None or self.pull_cuts % CHAIN == 0:
                ended = [f"end of the last pull chain: {p}" for p in self.finish_pulls()]
                self.made += 1
                self.pull = PullChain(self.tmp, self.rng, self.made)
            self.pull_cuts += 1
            result = self.pull.cut(self.tmp)
            result.problems[:0] = ended
            return result
        self.flash = self.flash or FlashRig(self.tmp, self.rng)
        return self.flash.cut(self.tmp, phase)

    def finish_pulls(self) -> list[str]:
        """The uncut pull that ends a pull chain: the archive must equal the unit."""
        return self.pull.finish(self.tmp) if self.pull is not None else []


def run(cuts: int, seed: int = 1, *, work: Path | None = None, progress=None) -> Report:
    """Try ``cuts`` cut points (seeded); the :class:`Report` lists any problem found."""
    started = time.monotonic()
    report = Report(seed=seed)
    by_phase: Counter = Counter()
    with tempfile.TemporaryDirectory(prefix="powercut-", dir=work) as tmp:
        rigs = _Rigs(Path(tmp), random.Random(seed))
        for i, phase in enumerate(plan(cuts, seed)):
            try:
                result = rigs.cut(phase)
            except OperationError as exc:
                result = CutResult(phase, "?", 0, problems=[str(exc)])
            if result.cut:
                report.tried += 1
                by_phase[result.landed] += 1
                report.resumed_uploads += result.note.startswith("resumed")
            else:
                report.not_reached += 1
            report.problems += [
                f"cut {i} ({result.phase} {result.kind} {result.at}, in {result.landed}): {p}"
                for p in result.problems
            ]
            if progress is not None:
                progress(i + 1, result)
        report.problems += [f"last pull: {p}" for p in rigs.finish_pulls()]
    report.by_phase = dict(by_phase)
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Power cuts at seeded points, and checks.")
    parser.add_argument("--cuts", type=int, default=1000, help="cut points to draw (1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument(
        "--model",
        choices=("lose-unsynced", "reorder", "both"),
        help="cut below the page cache instead of SIGKILL: run each operation under the "
        "crashlog shim and check modelled crash states (crashcheck.py; `make crashcheck`)",
    )
    args = parser.parse_args(argv)

    def progress(n: int, result: CutResult) -> None:
        if n % 50 == 0 or result.problems:
            print(f"  {n}/{args.cuts} ... {result.phase}: {result.problems or 'ok'}", flush=True)

    if args.model:
        import crashcheck

        report = crashcheck.run(args.cuts, args.seed, model=args.model, progress=progress)
    else:
        report = run(args.cuts, args.seed, progress=progress)
    for problem in report.problems:
        print("PROBLEM:", problem)
    print(report.summary())
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=1) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
