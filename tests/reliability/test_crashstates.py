"""Crash states below the page cache (crashstates.py, crashcheck.py): the shim logs every
kind of call it must, the model loses what was not synced and keeps what was, and the
power-cut checks run on modelled crash states (`make crashcheck` runs many more)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.errors import BedsideError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import crashcheck  # noqa: E402
import crashstates  # noqa: E402
import powercut  # noqa: E402

ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def shim(tmp_path_factory) -> Path:
    return crashstates.build_shim(tmp_path_factory.mktemp("shim"))


def logged(shim: Path, root: Path, code: str, tmp: Path) -> crashstates.Replay:
    """Run Python ``code`` (``R`` is the root's path) under the shim; the replay of its log,
    its snapshot taken before."""
    root.mkdir(exist_ok=True)
    replay = crashstates.Replay([root])
    log = tmp / "calls.log"
    log.unlink(missing_ok=True)
    program = f"import os, sqlite3, shutil\nR = {str(root)!r}\n" + textwrap.dedent(code)
    env = crashstates.shim_env(shim, [root], log)
    subprocess.run([sys.executable, "-c", program], env=env, check=True)
    return replay.use_log(crashstates.read_log(log))


def end_image(replay: crashstates.Replay, root: Path, rng=None) -> dict:
    replay.advance(len(replay.records))
    return replay.image(rng)[str(root.resolve())]


ATOMIC_WRITE = """
with open(f"{R}/state.tmp", "wb") as f:
    f.write(b"new")
    f.flush()
    os.fsync(f.fileno())
os.replace(f"{R}/state.tmp", f"{R}/state")
"""
DIR_FSYNC = """
fd = os.open(R, os.O_RDONLY | os.O_DIRECTORY)
os.fsync(fd)
os.close(fd)
"""


# --- the model --------------------------------------------------------------------------------


def test_a_rename_without_the_folder_fsync_is_lost(shim, tmp_path):
    root = tmp_path / "unit"
    root.mkdir()
    (root / "state").write_bytes(b"old")
    replay = logged(shim, root, ATOMIC_WRITE, tmp_path)
    assert (root / "state").read_bytes() == b"new"  # what the process saw
    assert end_image(replay, root) == {"state": b"old"}  # what a power cut leaves


def test_with_the_folder_fsync_the_rename_survives(shim, tmp_path):
    root = tmp_path / "unit"
    root.mkdir()
    (root / "state").write_bytes(b"old")
    replay = logged(shim, root, ATOMIC_WRITE + DIR_FSYNC, tmp_path)
    assert end_image(replay, root) == {"state": b"new"}
    # Cut just before the folder's fsync: the rename is not durable yet.
    fsync_at = max(r.index for r in replay.records if r.kind == "fsync")
    replay.rewind().advance(fsync_at)
    assert replay.image()[str(root.resolve())] == {"state": b"old"}


def test_a_durable_name_without_a_data_fsync_keeps_an_empty_file(shim, tmp_path):
    root = tmp_path / "unit"
    code = 'open(f"{R}/night.csv", "w").write("hr,rr\\n")\n' + DIR_FSYNC
    replay = logged(shim, root, code, tmp_path)
    assert end_image(replay, root) == {"night.csv": b""}


def test_a_c_program_writing_and_renaming_is_followed_too(shim, tmp_path):
    """Not only Python: plain libc calls from C (open, write, fsync, rename, mkdir)."""
    source = tmp_path / "w.c"
    source.write_text(
        textwrap.dedent(
            """\
            #include <fcntl.h>
            #include <stdio.h>
            #include <sys/stat.h>
            #include <unistd.h>
            int main(int argc, char **argv) {
                char tmp[4096], dst[4096], sub[4096];
                snprintf(tmp, sizeof tmp, "%s/a.tmp", argv[1]);
                snprintf(dst, sizeof dst, "%s/a", argv[1]);
                snprintf(sub, sizeof sub, "%s/d", argv[1]);
                int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd < 0 || write(fd, "payload", 7) != 7 || fsync(fd) != 0) return 1;
                close(fd);
                if (rename(tmp, dst) != 0 || mkdir(sub, 0755) != 0) return 1;
                if (argc > 2) { /* the folder's fsync */
                    int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
                    if (dir < 0 || fsync(dir) != 0) return 1;
                    close(dir);
                }
                return 0;
            }
            """
        )
    )
    exe = tmp_path / "w"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(source)], check=True)
    for sync, want in ((False, {}), (True, {"a": b"payload", "d": None})):
        root = tmp_path / f"c{int(sync)}"
        root.mkdir()
        replay = crashstates.Replay([root])
        log = tmp_path / f"c{int(sync)}.log"
        env = crashstates.shim_env(shim, [root], log)
        subprocess.run([str(exe), str(root), *(["sync"] if sync else [])], env=env, check=True)
        replay.use_log(crashstates.read_log(log))
        assert crashstates.check_fidelity(replay, [root]) == []
        assert replay.image()[str(root.resolve())] == want


def test_reorder_keeps_what_was_synced_and_sometimes_more(shim, tmp_path):
    root = tmp_path / "unit"
    code = (
        'f = open(f"{R}/log", "wb")\nf.write(b"A" * 10); f.flush(); os.fsync(f.fileno())\n'
        + DIR_FSYNC
        + 'f.write(b"B" * 10); f.flush()\nopen(f"{R}/late", "w").write("x")\n'
    )
    replay = logged(shim, root, code, tmp_path)
    assert end_image(replay, root) == {"log": b"A" * 10}
    seen = set()
    for seed in range(40):
        image = replay.image(random.Random(seed))[str(root.resolve())]
        assert image["log"].startswith(b"A" * 10)  # a synced thing stays synced
        seen.add((image["log"], "late" in image))
    assert {log for log, _ in seen} == {b"A" * 10, b"A" * 10 + b"B" * 10}
    assert {late for _, late in seen} == {True, False}


def test_images_in_one_pass_equal_images_replayed_alone(shim, tmp_path):
    root = tmp_path / "unit"
    code = (
        'c = sqlite3.connect(f"{R}/v.db")\nc.execute("PRAGMA journal_mode=WAL")\n'
        'c.execute("PRAGMA synchronous=FULL")\nc.execute("CREATE TABLE t (x)")\n'
        'for i in range(20):\n    c.execute("INSERT INTO t VALUES (?)", (i,)); c.commit()\n'
        "c.close()\n"
    )
    replay = logged(shim, root, code, tmp_path)
    cuts = sorted(random.Random(3).sample(range(len(replay.records) + 1), 8))
    for model in crashstates.MODELS:
        together = dict(crashstates.images(replay, cuts, model, seed=5))
        for at in cuts:
            alone = dict(crashstates.images(replay.rewind(), [at], model, seed=5))
            assert alone[at] == together[at]


# --- the shim misses nothing ------------------------------------------------------------------


EVERY_KIND = """
os.mkdir(f"{R}/d")
with open(f"{R}/d/f", "wb") as f:
    f.write(b"0123456789")
os.truncate(f"{R}/d/f", 4)
fd = os.open(f"{R}/g", os.O_RDWR | os.O_CREAT)
os.pwrite(fd, b"xyz", 100)
os.ftruncate(fd, 50)
os.close(fd)
os.link(f"{R}/g", f"{R}/h")
os.rename(f"{R}/d/f", f"{R}/f")
os.unlink(f"{R}/g")
os.mkdir(f"{R}/e")
os.rmdir(f"{R}/e")
shutil.rmtree(f"{R}/d")
"""


@pytest.mark.parametrize("kind", ["open", "write", "truncate", "rename", "unlink", "mkdir", "link"])
def test_a_call_kind_missing_from_the_log_is_caught(shim, tmp_path, kind):
    root = tmp_path / "unit"
    replay = logged(shim, root, EVERY_KIND, tmp_path)
    assert crashstates.check_fidelity(replay.rewind(), [root]) == []
    assert kind in {r.kind for r in replay.records}
    replay.rewind().records = [r for r in replay.records if r.kind != kind]
    try:
        problems = crashstates.check_fidelity(replay, [root])
    except crashstates.ModelError as exc:  # the replay cannot even go on: caught too
        problems = [str(exc)]
    assert problems


def test_a_write_that_bypasses_libc_is_caught(shim, tmp_path):
    """A raw write(2) system call never reaches the shim: the replay differs from the disk."""
    root = tmp_path / "unit"
    code = """
    import ctypes
    fd = os.open(f"{R}/raw", os.O_WRONLY | os.O_CREAT)
    ctypes.CDLL(None).syscall(1, fd, b"unseen", 6)
    os.close(fd)
    """
    replay = logged(shim, root, code, tmp_path)
    (problem,) = crashstates.check_fidelity(replay, [root])
    assert "raw: model 0 bytes, disk 6 bytes" in problem


# --- on the unit's operations -----------------------------------------------------------------


def test_crash_states_of_every_phase_pass_the_power_cut_checks(tmp_path):
    report = crashcheck.run(12, seed=2, model="both", work=tmp_path)
    assert report.problems == []
    assert {"record", "upload", "install", "boot", "pull"} <= set(report.by_phase)
    assert report.tried >= 10


@pytest.fixture(scope="module")
def flashed(tmp_path_factory, shim):
    """A flash of a fresh unit and its trial boot, run under the shim."""
    tmp = tmp_path_factory.mktemp("flash")
    rig = powercut.FlashRig(tmp, random.Random(1))
    state = rig._fresh(tmp)
    witness = tmp / "wit" / "w"
    witness.parent.mkdir()
    run = crashcheck.run_logged(shim, "flash", [state], witness, *rig._args(state), "--boot")
    assert run.problems == []
    return state, run


def test_the_built_dsp_module_is_durable_once_the_trial_is_confirmed(flashed, tmp_path):
    """Regression: the boot manager confirmed a trial slot whose freshly built
    _bcg_dsp*.so was never fsynced, so a power cut right after left a confirmed slot that
    cannot import dsp_c (found by `make crashcheck`, both models)."""
    state, run = flashed
    image_dir = tmp_path / "image"
    at = len(run.replay.records)  # the power cut just after the boot manager returned
    ((_, image),) = crashstates.images(run.replay, [at], "lose-unsynced")
    crashstates.materialise(image, {str(state.resolve()): image_dir})
    assert crashcheck.confirmed_slot_runs(image_dir) == []
    now = powercut.Slots(image_dir).load()
    built = sorted(powercut.Slots(image_dir).slot_dir(now["confirmed"]).glob("dsp_c/*.so"))
    assert len(built) == 1
    assert built[0].read_bytes() == (state / built[0].relative_to(image_dir)).read_bytes()


def test_a_finished_upload_leaves_no_part_file_in_any_crash_state(flashed):
    """Regression: flash.finish unlinked the upload's .part and its .json record together,
    then fsynced the folder; a disk that kept the second unlink and lost the first left a
    .part that no later flash removes (found by `make crashcheck`, reorder, mid-install)."""
    state, run = flashed
    incoming = str((state / "incoming").resolve())
    unlinks = [
        r.index for r in run.replay.records if r.kind == "unlink" and r.path.startswith(incoming)
    ]
    assert len(unlinks) == 2  # the .part, then its record
    # The cut: just before the folder's fsync that follows the second unlink.
    at = next(r.index for r in run.replay.records if r.kind == "fsync" and r.index > unlinks[1])
    for seed in range(30):
        ((_, image),) = crashstates.images(run.replay, [at], "reorder", seed=seed)
        tree = image[str(state.resolve())]
        parts = {p[: -len(".part")] for p in tree if p.endswith(".part")}
        records = {p[: -len(".json")] for p in tree if p.endswith(".json")}
        assert parts <= records, f"seed {seed}: a .part without its record"


def test_the_slot_state_is_whole_in_every_crash_state_of_a_flash(flashed, tmp_path):
    """Regression (issue 16): with an atomic_write that wrote in place, 5 of 243 install and
    boot cut points left slots/state.json empty. The boot manager set it aside and booted
    the installed software, forgetting the slots, and no harness counted that (the power-cut
    checks now do: powercut.FlashRig._state_kept)."""
    state, run = flashed
    root = str(state.resolve())
    series = [("lose-unsynced", run.candidates("lose-unsynced"), 0)]
    every = list(range(1, len(run.replay.records) + 1))
    series += [("reorder", every, seed) for seed in range(5)]
    probe = powercut.Slots(tmp_path)
    probe.load()  # makes the folders
    whole: set[bytes] = set()
    for model, cuts, seed in series:
        for at, image in crashstates.images(run.replay, cuts, model, seed=seed):
            raw = image[root].get("slots/state.json")
            if raw is None or raw in whole:
                continue
            probe.path.write_bytes(raw)
            try:
                probe.load()
            except BedsideError as exc:
                pytest.fail(f"{model} (seed {seed}) at record {at}: {exc}")
            whole.add(raw)
    assert len(whole) >= 4  # factory, installing, trial, its boot counted, confirmed


@pytest.fixture(scope="module")
def first_pull(tmp_path_factory, shim):
    """A unit's first pull into a new archive folder, run under the shim."""
    tmp = tmp_path_factory.mktemp("pull")
    chain = powercut.PullChain(tmp, random.Random(1), 0)
    assert not (chain.state / "device.json").exists() and not chain.archive.exists()
    witness = tmp / "wit" / "w"
    witness.parent.mkdir()
    run = crashcheck.run_logged(shim, "pull", [chain.dir], witness, *chain.args)
    assert run.problems == []
    return chain, run


def test_a_pull_that_returned_is_whole_in_the_archive_after_a_power_cut(first_pull, tmp_path):
    """Regression: the pull made the archive folders without an fsync of their parents, so
    a power cut right after a first pull returned could take the whole archive away
    (found by `make crashcheck`, lose-unsynced, at the end of a pull)."""
    chain, run = first_pull
    end = len(run.replay.records)
    ((_, image),) = crashstates.images(run.replay, [end], "lose-unsynced")
    crashstates.materialise(image, {str(chain.dir.resolve()): tmp_path / "image"})
    state, archive = chain.state, chain.archive
    try:
        chain.state, chain.archive = tmp_path / "image" / "unit", tmp_path / "image" / "archive"
        assert chain.consistent(whole=True) == []
    finally:
        chain.state, chain.archive = state, archive


def test_the_agent_identity_survives_every_crash_state_of_its_first_start(first_pull):
    """Regression: the agent wrote DIR/device.json at its first start without an fsync, and
    SQLite's folder sync made the name durable: a power cut left an empty device.json, and
    the agent refused to start ever after ("state directory unusable"; found by
    `make crashcheck` in the pull phase)."""
    chain, run = first_pull
    root = str(chain.dir.resolve())
    states = [
        (f"lose-unsynced at {at}", image[root])
        for at, image in crashstates.images(
            run.replay, run.candidates("lose-unsynced"), "lose-unsynced"
        )
    ]  # before every sync, and the end
    end = len(run.replay.records)
    for seed in range(40):  # the disk wrote some of the unsynced changes back, at random
        ((_, image),) = crashstates.images(run.replay, [end], "reorder", seed=seed)
        states.append((f"reorder seed {seed}", image[root]))
    for what, tree in states:
        identity = tree.get("unit/device.json")
        if identity is not None:
            assert json.loads(identity or b"null"), what


def test_a_new_archive_opens_in_every_crash_state_of_its_creation(first_pull, tmp_path):
    """Regression: the archive file was made empty and filled by its first commit; a pull
    cut off between the two (a power cut, or a kill) left a file that every reader refused
    (E361 "not a log archive") until a person moved it away (found by `make crashcheck`)."""
    chain, run = first_pull
    archive_dir = str((chain.archive / "units").resolve())
    made = next(r.index for r in run.replay.records if archive_dir in (r.path + r.path2))
    state, archive = chain.state, chain.archive
    image_dir = tmp_path / "image"
    try:
        chain.state, chain.archive = image_dir / "unit", image_dir / "archive"
        for model in crashstates.MODELS:  # every record around the archive's creation
            cuts = list(range(made, made + 120))
            for at, image in crashstates.images(run.replay, cuts, model, seed=3):
                crashstates.materialise(image, {str(chain.dir.resolve()): image_dir})
                assert chain.consistent(whole=False) == [], f"{model} at record {at}"
    finally:
        chain.state, chain.archive = state, archive
