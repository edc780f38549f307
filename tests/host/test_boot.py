"""The A/B slots and the boot manager: trial, health check, confirm or roll back; kills anywhere."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.errors import BedsideError
from edge.files import atomic_write
from edge.maint import bundle as bundles
from edge.maint.boot import BUILT_MARK, _build_dsp, boot
from edge.maint.slots import MAX_TRIAL_BOOTS, Slots
from edge.store import STORE_NAME, Store

sys.path.insert(0, str(Path(__file__).parent))
from bundle_kit import build, copy_tree, release_key, tree_digest  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def slot_images(tmp_path_factory) -> dict[str, Path]:
    """Unpacked slots, made once: the project's software ("good", dsp_c already built) and
    the same with a damaged quality model ("broken": its health check must fail)."""
    tmp = tmp_path_factory.mktemp("images")
    key = release_key(tmp / "keys")
    broken_root = copy_tree(tmp / "broken-tree")
    model = broken_root / "models" / "bcg_quality.tflite"
    model.write_bytes(model.read_bytes()[:-64] + bytes(64))  # its .sha256 no longer matches
    images = {}
    for name, root in (("good", None), ("broken", broken_root)):
        bundle = build(tmp / f"{name}.bundle", key, root=root)
        bundles.unpack(bundle, tmp / name, key.public)
        images[name] = tmp / name
    # Build dsp_c once in the good image (a boot builds it when missing: tested below).
    subprocess.run(
        [sys.executable, "dsp_c/build_ffi.py"], cwd=images["good"], check=True, capture_output=True
    )
    return images


def trial_unit(state: Path, image: Path, version: str = "0.2.0") -> Slots:
    """A unit on its factory software with ``image`` flashed into slot b, waiting to boot."""
    slots = Slots(state, factory_version="0.1.0")
    target = slots.begin_install(slots.load())
    shutil.rmtree(slots.slot_dir(target))
    shutil.copytree(image, slots.slot_dir(target))
    slots.mark_trial(target, version=version, sha256="ab" * 32)
    return slots


def bootable(slots: Slots) -> str:
    """Assert the unit can boot its confirmed slot; return its name."""
    state = slots.load()  # parses: never half-written
    confirmed = state["confirmed"]
    if state["slots"][confirmed]["status"] != "factory":
        bundles.verify_tree(slots.slot_dir(confirmed))
    return confirmed


def noted(state: Path) -> list[tuple[str, str]]:
    """(kind, detail) of the events in the unit's store, once its writer imported what the
    boot manager and the rollbacks noted (as `bedside run` does when it opens the store)."""
    with Store(state / STORE_NAME) as store:
        return [(event.kind, event.detail) for _, event in store.events()]


def test_factory_state(tmp_path) -> None:
    slots = Slots(tmp_path, factory_version="0.1.0")
    state = slots.load()
    assert state["confirmed"] == "a" and state["trial"] is None
    assert state["slots"]["a"] == {
        "status": "factory",
        "version": "0.1.0",
        "sha256": None,
        "installed_utc": None,
    }
    assert slots.install_target(state) == "b"
    assert json.loads((tmp_path / "slots" / "state.json").read_text()) == state


def test_good_trial_is_confirmed(tmp_path, slot_images) -> None:
    slots = trial_unit(tmp_path, slot_images["good"])
    with Store(tmp_path / STORE_NAME):  # the runtime holds the vitals store all night
        result = boot(tmp_path, source="sim:3")
    assert (result.slot, result.outcome, result.version) == ("b", "confirmed", "0.2.0")
    assert noted(tmp_path) == [
        (
            "update",
            "version 0.2.0 (slot b) passed its trial boot and runs from the next start; "
            "before: version 0.1.0 (slot a)",
        )
    ]
    state = slots.load()
    assert state["confirmed"] == "b" and state["trial"] is None
    assert state["slots"]["a"]["status"] == "factory"  # still the fallback
    assert state["history"][-1]["event"] == "confirmed"
    assert not (tmp_path / "boot-check.db").exists()  # the store check cleans up
    # The next boot has nothing to decide.
    assert boot(tmp_path, source="sim:3").outcome == "none"


def test_broken_trial_rolls_back_by_itself(tmp_path, slot_images) -> None:
    slots = trial_unit(tmp_path, slot_images["broken"])
    result = boot(tmp_path, source="sim:3")
    assert (result.slot, result.outcome) == ("a", "rolled back")
    assert "model" in result.reason and "E221" in result.reason  # the child's own error
    [(kind, detail)] = noted(tmp_path)
    assert kind == "update_failed" and detail.startswith("version 0.2.0 (slot b) failed its")
    assert "E221" in detail and detail.endswith("the unit stays on version 0.1.0 (slot a)")
    state = slots.load()
    assert state["confirmed"] == "a" and state["trial"] is None
    assert state["slots"]["b"]["status"] == "failed"
    # dsp_c was built from source in the slot before the checks ran.
    assert list((slots.slot_dir("b") / "dsp_c").glob("_bcg_dsp*.so"))


def test_slot_damaged_after_install_fails_its_trial(tmp_path, slot_images) -> None:
    slots = trial_unit(tmp_path, slot_images["good"])
    (slots.slot_dir("b") / "edge" / "pipeline.py").write_text("raise SystemExit\n")
    result = boot(tmp_path, source="sim:3")
    assert result.outcome == "rolled back" and "E342" in result.reason


def test_trial_interrupted_too_often_is_rolled_back_unchecked(tmp_path, slot_images) -> None:
    slots = trial_unit(tmp_path, slot_images["good"])
    state = slots.load()
    for _ in range(MAX_TRIAL_BOOTS):
        state = slots.count_trial_boot(state)
    result = boot(tmp_path, source="sim:3")
    assert result.outcome == "rolled back" and "interrupted" in result.reason
    [(kind, detail)] = noted(tmp_path)
    assert kind == "update_failed" and "interrupted 2 times" in detail


def test_kill_minus_9_anywhere_in_boot_leaves_a_bootable_unit(tmp_path, slot_images) -> None:
    """Kill the boot manager at random moments of trial boots (a new trial is flashed each
    time one gets decided); after every kill the state parses and the confirmed slot boots;
    a boot left alone then settles the trial."""
    rng = random.Random(7)
    slots = trial_unit(tmp_path, slot_images["good"])
    cmd = [sys.executable, "-m", "edge", "boot", "--state", str(tmp_path), "--check-only"]
    cmd += ["--source", "sim:3"]
    kills = 0
    for attempt in range(12):
        if slots.load()["trial"] is None:
            trial_unit(tmp_path, slot_images["good"], version=f"0.3.{attempt}")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 0.4))  # a whole boot takes about 0.3 s here
        if proc.poll() is None:
            proc.kill()  # SIGKILL: nothing gets to clean up
            kills += 1
        proc.wait()
        assert bootable(slots) in ("a", "b")
    assert kills >= 3
    state = slots.load()
    if state["trial"] is not None:  # still pending: the next boot decides it
        boot(tmp_path, source="sim:3")
        state = slots.load()
    assert state["trial"] is None
    assert bootable(slots) == state["confirmed"]
    # Either it passed on an attempt that finished, or two interrupted attempts rolled it back.
    assert state["history"][-1]["event"] in ("confirmed", "rollback")


def test_damaged_confirmed_slot_falls_back_to_the_previous_one(tmp_path, slot_images) -> None:
    slots = trial_unit(tmp_path, slot_images["good"])
    assert boot(tmp_path, source="sim:3").outcome == "confirmed"
    assert boot(tmp_path, source="sim:3").slot == "b"  # intact: stays
    (slots.slot_dir("b") / "models" / "bcg_quality.tflite").write_bytes(b"bit rot")
    result = boot(tmp_path, source="sim:3")
    assert result.slot == "a"  # the installed software, never written by flashing
    state = slots.load()
    assert state["slots"]["b"]["status"] == "failed" and "E342" in state["slots"]["b"]["reason"]
    assert state["slots"]["a"]["status"] == "factory"
    events = noted(tmp_path)
    assert [kind for kind, _ in events] == ["update", "rollback"]
    assert events[1][1].startswith("version 0.2.0 (slot b) is damaged (E342")
    assert events[1][1].endswith("back to version 0.1.0 (slot a)")


def test_damaged_state_file_boots_the_installed_software(tmp_path) -> None:
    slots = Slots(tmp_path, factory_version="0.1.0")
    slots.load()
    slots.path.write_text('{"format": 1, "confirmed": ')
    with pytest.raises(BedsideError) as info:
        slots.load()
    assert info.value.code == "E351"
    result = boot(tmp_path, source="sim:3")
    assert result.slot == "a" and slots.load()["slots"]["a"]["status"] == "factory"
    assert (tmp_path / "slots" / "state.json.damaged").exists()
    assert slots.load()["history"][-1]["event"] == "recovered"


def test_operator_rollback_rules(tmp_path, slot_images) -> None:
    slots = trial_unit(tmp_path, slot_images["good"])
    state = slots.roll_back(slots.load())  # a pending trial: cancelled
    assert state["trial"] is None and state["slots"]["b"]["status"] == "failed"
    with pytest.raises(BedsideError) as info:  # b failed, a is confirmed: nothing to go to
        slots.roll_back(state)
    assert info.value.code == "E353"
    slots = trial_unit(tmp_path, slot_images["good"], version="0.3.0")
    boot(tmp_path, source="sim:3")
    state = slots.roll_back(slots.load())  # b confirmed -> back to the factory software
    assert state["confirmed"] == "a" and state["slots"]["a"]["status"] == "factory"
    assert state["slots"]["b"]["status"] == "rolled back"
    with pytest.raises(BedsideError) as info:  # a second rollback never goes forward again
        slots.roll_back(state)
    assert info.value.code == "E353" and "never goes forward" in str(info.value)
    assert slots.load()["confirmed"] == "a"  # nothing changed
    assert noted(tmp_path) == [  # what changed the software, in order; refusals note nothing
        (
            "rollback",
            "the pending trial of version 0.2.0 (slot b) was cancelled by the operator; "
            "the unit stays on version 0.1.0 (slot a)",
        ),
        (
            "update",
            "version 0.3.0 (slot b) passed its trial boot and runs from the next start; "
            "before: version 0.1.0 (slot a)",
        ),
        (
            "rollback",
            "back to version 0.1.0 (slot a) by the operator, from version 0.3.0 (slot b); "
            "it runs from the next start",
        ),
    ]


def test_the_lock_refuses_a_second_writer(tmp_path) -> None:
    slots = Slots(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from edge.maint.slots import Slots\n"
            f"with Slots({str(tmp_path)!r}).locked():\n"
            "    print('locked', flush=True); time.sleep(30)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(BedsideError) as info, slots.locked(wait=False):
            pass
        assert info.value.code == "E358"
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with slots.locked(wait=False):  # released by the holder's death
        pass


def test_atomic_write_survives_kill_minus_9(tmp_path) -> None:
    path = tmp_path / "state.json"
    atomic_write(path, json.dumps({"n": 0, "pad": "x" * 100_000}).encode())
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, sys\nfrom pathlib import Path\nfrom edge.files import atomic_write\n"
            "n = 0\nwhile True:\n    n += 1\n"
            f"    atomic_write(Path({str(path)!r}), json.dumps({{'n': n, 'pad': 'x' * 100_000}})"
            ".encode())",
        ],
        cwd=ROOT,
    )
    seen = set()
    for _ in range(20):
        time.sleep(0.01)
        seen.add(json.loads(path.read_bytes())["n"])  # always a whole file, old or new
    writer.kill()
    writer.wait()
    assert json.loads(path.read_bytes())["n"] >= max(seen)
    assert len(seen) > 1


def test_boot_runs_the_confirmed_slot(tmp_path, slot_images) -> None:
    """`bedside boot` without --check-only replaces itself with the slot's `bedside run`."""
    trial_unit(tmp_path, slot_images["good"])
    db = tmp_path / "night.db"
    done = subprocess.run(
        [sys.executable, "-m", "edge", "boot", "--state", str(tmp_path), "--source", "sim:2"]
        + ["--", "--source", "sim:2", "--speed", "max", "--duration", "2m", "--db", str(db)]
        + ["--quiet", "--no-gate"],
        cwd=ROOT,  # a folder holding another `edge` (as the virtual unit's): the slot's runs
        env={**os.environ, "TZ": "Europe/Berlin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "passed its health check" in done.stdout
    with Store(db, readonly=True) as store:  # the night records the update
        kinds = [event.kind for _, event in store.events()]
        assert kinds.count("update") == 1
        assert len(list(store.epochs())) >= 3  # and `bedside run` recorded from the slot
        (night,) = store.sessions()  # made by the slot's release, as `status` shows it
        assert (night.software_version, night.tz) == ("0.2.0", "Europe/Berlin")
    assert not (tmp_path / STORE_NAME).exists()  # noted where `bedside run` writes (--db)
    assert tree_digest(tmp_path / "slots" / "a") == {}  # the factory slot has no files


def test_a_module_torn_by_a_cut_mid_build_is_built_again(tmp_path) -> None:
    """A power cut during the trial's build leaves a torn _bcg_dsp*.so but no mark: the
    next trial builds again instead of trusting the file (the build itself is replaced
    here by a script that writes the module, so the test is about the decision)."""
    dsp = tmp_path / "dsp_c"
    dsp.mkdir()
    module = dsp / "_bcg_dsp.abi3.so"
    module.write_bytes(b"\x7fEL")  # what a cut mid-write leaves
    (dsp / "build_ffi.py").write_text(
        "from pathlib import Path\nPath('dsp_c/_bcg_dsp.abi3.so').write_bytes(b'whole')\n"
    )
    assert _build_dsp(tmp_path) == ""
    assert module.read_bytes() == b"whole" and (dsp / BUILT_MARK).exists()
    # Built and marked: the next check does not build again (a failing build would show).
    (dsp / "build_ffi.py").write_text("raise SystemExit(1)\n")
    assert _build_dsp(tmp_path) == ""
    (dsp / BUILT_MARK).unlink()
    assert "did not build" in _build_dsp(tmp_path)
