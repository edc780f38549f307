"""``bedside boot``: the A/B boot manager. Trial boot, health check, confirm or roll back.

    bedside boot --state /var/lib/bedside            # the service's ExecStart: then runs
                                                     # `bedside run` from the confirmed slot
    bedside boot --state DIR --check-only            # decide the trial, start nothing

What one boot does (the slots' rules are in :mod:`edge.maint.slots`):

1. Under the slots' lock, read the state (a damaged state file is moved aside and the
   installed software becomes the confirmed slot: the unit always boots).
2. If a slot waits for its trial boot: count the attempt (written before it starts), then
   check the slot: its files against its manifest, build ``dsp_c`` from source there, and run
   the health check *with that slot's code* in a child process: the DSP self-test (beats of
   a synthetic BCG), the quality model loads and gives its golden outputs, the source
   (sensor, or the simulator) produces samples, and a store can be written next to the
   vitals store. All pass: the slot is confirmed. Any fails: it is marked failed and the
   unit stays on the confirmed slot, by itself. A trial interrupted twice (killed, power
   cut) is rolled back without a third try. The outcome is an ``update`` or
   ``update_failed`` event of the vitals store, noted by :mod:`edge.maint.slots` in the
   store's journal, so that a store ``bedside run`` holds (or a damaged one) never stops a
   boot: the runtime imports it when it opens the store.
3. The confirmed slot's files are checked against its manifest; a damaged one is left for
   the previous slot (or the installed software) when there is one.
4. Unless ``--check-only``: replace this process with ``bedside run`` from the confirmed
   slot (the arguments after ``--`` are passed on).

A kill at any point leaves the unit bootable: the confirmed slot is never written, every
state change is one atomic rename, and an unfinished trial is retried or rolled back by the
next boot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BedsideError
from ..files import atomic_write, fsync_tree
from ..version import software_version
from .slots import MAX_TRIAL_BOOTS, Slots, slot_is_factory

__all__ = ["BootResult", "add_parser", "boot", "health_check", "main"]

DEFAULT_STATE = "/var/lib/bedside"
#: The health check's source when the config names none (the simulator: the code path runs).
DEFAULT_CHECK_SOURCE = "sim:1"
HEALTH_TIMEOUT_S = 180.0
BUILD_TIMEOUT_S = 600.0
#: Samples the source must produce within SOURCE_WAIT_S for the check to pass.
SOURCE_SECONDS = 1.0
SOURCE_WAIT_S = 15.0
_RESULT_TAG = "bedside-health: "
#: Written in a slot's dsp_c/ once its module is built and durable.
BUILT_MARK = ".built"


@dataclass(frozen=True)
class BootResult:
    """What a boot decided: the slot to run, and what happened to a trial (if any)."""

    slot: str
    version: str | None
    trial: str | None  #: the trial slot checked in this boot, None when there was none
    outcome: str  #: "none", "confirmed" or "rolled back"
    reason: str = ""


# --- the boot manager ---------------------------------------------------------------------


def boot(
    state_dir: str | os.PathLike,
    *,
    source: str | None = None,
    db: str | os.PathLike | None = None,
) -> BootResult:
    """Decide a pending trial (health check, confirm or roll back); return the slot to run.

    Args:
        state_dir: the unit's state folder.
        source: the health check's source spec (default: the config's ``run.source``, or
            the simulator when there is no config).
        db: the vitals store its events go to (default ``state_dir/vitals.db``).
    """
    slots = Slots(state_dir, factory_version=software_version(), db=db)
    with slots.locked():
        try:
            state = slots.load()
        except BedsideError as exc:
            _say(f"{exc.code}: {exc}")
            state = slots.recover(str(exc))
        trial, outcome, reason = state["trial"], "none", ""
        if trial is not None:
            if state["trial_boots"] >= MAX_TRIAL_BOOTS:
                reason = f"its trial boot was interrupted {state['trial_boots']} times"
                state = slots.fail_trial(state, reason)
                outcome = "rolled back"
            else:
                state = slots.count_trial_boot(state)
                _say(f"trial boot of slot {trial} (attempt {state['trial_boots']})")
                ok, reason = check_slot(slots, trial, source=source)
                if ok:
                    state = slots.confirm(state)
                    outcome = "confirmed"
                else:
                    state = slots.fail_trial(state, reason)
                    outcome = "rolled back"
            _say(state["history"][-1]["detail"])
        state = _check_confirmed(slots, state)
    slot = state["confirmed"]
    return BootResult(slot, state["slots"][slot]["version"], trial, outcome, reason)


def _check_confirmed(slots: Slots, state: dict[str, Any]) -> dict[str, Any]:
    """A confirmed slot whose files changed since install (a failing disk) is left for the
    previous one, when there is one; hashing ~1 MB costs milliseconds at each boot."""
    from .bundle import verify_tree

    slot = state["confirmed"]
    if slot_is_factory(state, slot):
        return state
    try:
        verify_tree(slots.slot_dir(slot))
    except BedsideError as exc:
        _say(f"the confirmed slot {slot} is damaged: {exc.code}: {exc}")
        changed = slots.abandon_confirmed(state, f"{exc.code}: {exc}")
        if changed is not None:
            _say(changed["history"][-1]["detail"])
            return changed
    return state


def check_slot(slots: Slots, slot: str, *, source: str | None = None) -> tuple[bool, str]:
    """Check ``slot``: files, ``dsp_c`` build, health check in a child. ``(ok, reason)``."""
    from .bundle import verify_tree

    state = slots.load()
    root = None if slot_is_factory(state, slot) else slots.slot_dir(slot)
    if root is not None:
        try:
            verify_tree(root)
        except BedsideError as exc:
            return False, f"{exc.code}: {exc}"
        problem = _build_dsp(root)
        if problem:
            return False, problem
    spec = source or _configured_source()
    # By its stable name (edge/boot.py): the slot may hold an older or newer layout.
    cmd = [sys.executable, "-m", "edge.boot", "--health", "--state", str(slots.state_dir)]
    cmd += ["--source", spec]
    if root is not None:
        cmd += ["--expect-root", str(root)]
    try:
        done = subprocess.run(
            cmd,
            cwd=root or slots.state_dir,
            env=_slot_env(root),
            capture_output=True,
            text=True,
            timeout=HEALTH_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return False, f"the health check did not finish within {HEALTH_TIMEOUT_S:.0f} s"
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(_RESULT_TAG):
            result = json.loads(line[len(_RESULT_TAG) :])
            return bool(result["ok"]), result["reason"]
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
    return False, f"the health check crashed (exit {done.returncode}): {tail}"


def _configured_source() -> str:
    from ..config import find_config, load_config

    try:
        config = load_config(find_config(None))
    except BedsideError:
        return DEFAULT_CHECK_SOURCE
    return config.run_source or DEFAULT_CHECK_SOURCE


def _slot_env(root: Path | None) -> dict[str, str]:
    """The environment that runs ``root``'s code (the installed software for None)."""
    env = dict(os.environ)
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    return env


def _build_dsp(root: Path) -> str:
    """Compile ``dsp_c`` from the slot's sources (once); an error text, or "" when built.

    The build counts as done only once its output is durable and marked so: a power cut
    mid-build leaves a torn ``_bcg_dsp*.so`` but no mark, and the next trial builds again.
    """
    script = root / "dsp_c" / "build_ffi.py"
    built = root / "dsp_c" / BUILT_MARK
    if not script.exists() or built.exists():
        return ""
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=root,
            env=_slot_env(root),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"dsp_c did not build within {BUILD_TIMEOUT_S:.0f} s"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return f"dsp_c did not build: {tail}"
    # The module is outside the signed manifest and the compiler never fsyncs it: durable
    # before the mark, and both before the slot can be confirmed, or a power cut after the
    # confirm leaves the confirmed slot with a missing or torn module (`make crashcheck`).
    fsync_tree(root / "dsp_c")
    atomic_write(built, b"")
    return ""


def exec_run(state_dir: str | os.PathLike, slot: str, run_args: list[str]) -> None:
    """Replace this process with ``bedside run`` from ``slot`` (never returns)."""
    slots = Slots(state_dir)
    state = slots.load()
    root = None if slot_is_factory(state, slot) else slots.slot_dir(slot)
    # -P: the working folder does not go first on sys.path (`python -m` puts it there), so
    # a unit started from a folder that holds a package `edge` (the virtual unit, run from
    # the project) still runs the slot's code, as PYTHONPATH says.
    argv = [sys.executable, "-P", "-m", "edge", "run", *run_args]
    sys.stdout.flush()
    os.execve(sys.executable, argv, _slot_env(root))


# --- the health check (runs in the child, with the slot's code) --------------------------


def health_check(state_dir: Path, source: str, expect_root: Path | None = None) -> dict[str, Any]:
    """Run every check; ``{"ok", "reason", "checks": [{name, ok, detail}]}``."""
    checks = []
    for name, check in (
        ("code", lambda: _check_code(expect_root)),
        ("dsp", _check_dsp),
        ("model", _check_model),
        ("source", lambda: _check_source(source)),
        ("store", lambda: _check_store(state_dir)),
    ):
        t0 = time.monotonic()
        try:
            detail, ok = check(), True
        except Exception as exc:  # any failure of the new software fails its health check
            code = getattr(exc, "code", type(exc).__name__)
            detail, ok = f"{code}: {str(exc)[:200]}", False
        checks.append({"name": name, "ok": ok, "detail": detail, "s": time.monotonic() - t0})
        if not ok:
            break
    failed = [c for c in checks if not c["ok"]]
    reason = f"health check {failed[0]['name']} failed ({failed[0]['detail']})" if failed else ""
    return {"ok": not failed, "reason": reason, "checks": checks}


def _check_code(expect_root: Path | None) -> str:
    import dsp_c
    import edge

    if expect_root is not None:
        for module in (edge, dsp_c):
            if not Path(module.__file__).resolve().is_relative_to(expect_root.resolve()):
                raise RuntimeError(f"{module.__name__} imported from outside the slot")
    return f"edge from {Path(edge.__file__).parent.parent}"


def _check_dsp() -> str:
    import numpy as np

    import dsp_c
    from dsp_c.synthetic import bcg_signal

    fs = 250.0
    rec = bcg_signal(fs=fs, seconds=30.0, heart_bpm=66.0, seed=7)
    found = np.asarray(dsp_c.detect_beats(rec.x, fs))
    # Each true beat needs a detection within 150 ms (the detector's delay is constant).
    lag = np.abs(found[None, :] - rec.beats[:, None]).min(axis=1) if len(found) else []
    matched = int(np.sum(np.asarray(lag) <= 0.15 * fs))
    if matched < 0.9 * len(rec.beats) or len(found) > 1.1 * len(rec.beats):
        raise RuntimeError(f"{matched} of {len(rec.beats)} beats found, {len(found)} detected")
    return f"{matched} of {len(rec.beats)} beats"


def _check_model() -> str:
    import numpy as np

    from ..model import MODELS_DIR, QualityModel

    model = QualityModel()
    golden = np.load(MODELS_DIR / "golden.npz")
    for x, expected in zip(golden["features"], golden["probs"], strict=True):
        # int8 kernels are exact: at most one output quantum from the recorded outputs.
        if np.max(np.abs(model.predict(x) - expected)) > 1.0 / 256 + 1e-6:
            raise RuntimeError("the quality model does not give its golden outputs")
    return repr(model)


def _check_source(spec: str) -> str:
    from ..sources import open_source

    kind = spec.partition(":")[0]
    source = open_source(spec, duration_s=60.0 if kind == "sim" else None)
    try:
        got, deadline = 0, time.monotonic() + SOURCE_WAIT_S
        while got < SOURCE_SECONDS * source.fs and time.monotonic() < deadline:
            chunk = source.read(timeout_s=0.5)
            if chunk is None:
                break
            got += len(chunk.samples)
    finally:
        source.close()
    if got < SOURCE_SECONDS * source.fs:
        raise RuntimeError(f"{source.name} produced {got} samples in {SOURCE_WAIT_S:.0f} s")
    return f"{source.name}: {got} samples"


def _check_store(state_dir: Path) -> str:
    from ..records import Epoch
    from ..store import Store

    path = state_dir / "boot-check.db"
    now = time.time()
    try:
        with Store(path) as store:
            store.open_session(
                source="boot-check", fs=250.0, epoch_s=30.0, software_version="check", t_utc=now
            )
            store.add_epoch(
                Epoch(now, 30.0, "empty", 1.0, None, None, None, 0.0, 0, "empty bed", "empty bed")
            )
            store.close_session(clean=True, t_utc=now + 30)
        with Store(path, readonly=True) as store:
            if len(list(store.epochs())) != 1:
                raise RuntimeError("the store did not keep the epoch written")
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"wrote and read back {path.name}"


# --- command line -------------------------------------------------------------------------


def _say(text: str) -> None:
    print(f"bedside boot: {text}", flush=True)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``boot`` to ``bedside``'s subcommands."""
    parser = commands.add_parser(
        "boot",
        help="A/B boot manager: trial boot, health check, confirm or roll back, then run",
        description="Decide a pending trial slot (health check; confirm or roll back by "
        "itself), then run `bedside run` from the confirmed slot.",
        epilog="examples:\n"
        "  bedside boot --state /var/lib/bedside -- --source serial:/dev/serial0\n"
        "  bedside boot --state /tmp/unit --check-only --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--state",
        default=os.environ.get("BEDSIDE_STATE", DEFAULT_STATE),
        help=f"state folder ($BEDSIDE_STATE, else {DEFAULT_STATE})",
    )
    parser.add_argument(
        "--source", help="the health check's source (default: run's --source, config, sim)"
    )
    parser.add_argument("--check-only", action="store_true", help="decide the trial; run nothing")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    parser.add_argument("run_args", nargs=argparse.REMAINDER, help="-- then `bedside run` options")
    return parser


def run_command(args: argparse.Namespace) -> int:
    """``bedside boot``: returns 0 when a confirmed slot runs (or is chosen, --check-only)."""
    run_args = args.run_args[1:] if args.run_args[:1] == ["--"] else args.run_args
    source = args.source
    if source is None and "--source" in run_args[:-1]:  # check what will run
        source = run_args[run_args.index("--source") + 1]
    result = boot(args.state, source=source, db=_run_db(run_args))
    if args.json:
        print(json.dumps(result.__dict__))
    if args.check_only:
        return 0
    exec_run(args.state, result.slot, run_args)
    return 0  # not reached


def _run_db(run_args: list[str]) -> str | None:
    """The store ``bedside run`` will write: ``--db`` after ``--``, else the db of its
    config (``--config`` after ``--``, ``$BEDSIDE_CONFIG``, /etc/bedside) when there is one;
    None (the state folder's ``vitals.db``) otherwise."""
    from ..config import find_config, load_config

    def option(name: str) -> str | None:
        return run_args[run_args.index(name) + 1] if name in run_args[:-1] else None

    if option("--db") is not None:
        return option("--db")
    try:
        config_path = find_config(option("--config"))
        return None if config_path is None else load_config(config_path).run_db
    except BedsideError as exc:  # `bedside run` refuses that config itself, with its line
        _say(f"{exc.code}: {exc}")
        return None


def main(argv: list[str] | None = None) -> int:
    """The health-check child: ``python -m edge.boot --health --state DIR --source SPEC``."""
    parser = argparse.ArgumentParser(prog="python -m edge.boot")
    parser.add_argument("--health", action="store_true", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--source", default=DEFAULT_CHECK_SOURCE)
    parser.add_argument("--expect-root")
    args = parser.parse_args(argv)
    root = Path(args.expect_root) if args.expect_root else None
    result = health_check(Path(args.state), args.source, root)
    print(_RESULT_TAG + json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
