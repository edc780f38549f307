"""Flashing end to end against the virtual unit (a subprocess): pair, flash, trial boot,
confirm; a failing health check rolls back by itself; kill -9 and cut links mid-flash resume;
hostile bundles are refused with the unit unchanged."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

import pytest

from edge.errors import BedsideError
from edge.link import Client
from edge.maint import bundle as bundles
from edge.maint.boot import BUILT_MARK
from edge.maint.flash import Flasher
from edge.maint.slots import Slots
from host_tools.cli import main as host_main
from host_tools.flash import STAGES, flash_bundle

sys.path.insert(0, str(Path(__file__).parent))
from bundle_kit import (  # noqa: E402
    build,
    copy_tree,
    craft,
    install_release_key,
    member,
    release_key,
    tree_digest,
)
from faultproxy import Faults  # noqa: E402


@pytest.fixture
def rkey(tmp_path, keys_dir):
    """The release key, in the same keys folder as the host key (as `keys init --release`)."""
    return release_key(keys_dir)


@pytest.fixture
def flash_unit(paired_unit, rkey):
    """A paired virtual unit that trusts ``rkey``."""
    unit, host_key = paired_unit
    install_release_key(unit.state, rkey)
    return unit, host_key


def connector(url: str, host_key):
    def open_unit():
        client = Client.open(url, timeout_s=1.0, retries=4)
        client.authenticate(host_key)
        return client

    return open_unit


def slots_of(unit) -> dict:
    return json.loads((unit.state / "slots" / "state.json").read_text())


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = host_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_pair_flash_confirm_status_rollback(tmp_path, flash_unit, keys_dir, capsys) -> None:
    unit, _ = flash_unit
    out = tmp_path / "b.bundle"
    code, text, err = run_cli(
        capsys, "bundle", "build", "--version", "0.2.0", "--hardware", "sim", "--out", str(out)
    )
    assert code == 0, err
    assert "bundle 0.2.0" in text
    code, text, err = run_cli(capsys, "flash", str(out), "--port", unit.url, "--json")
    assert code == 0, err
    result = json.loads(text)
    assert result["outcome"] == "confirmed" and result["slot"] == "b"
    assert result["sent"] == out.stat().st_size  # nothing sent twice on a clean link
    # The stages (issue 17, item 3): one record a line on stderr as each starts, then all
    # of them with their durations in the result.
    live = [json.loads(line) for line in err.splitlines()]
    names = [record["stage"] for record in live]
    assert names[:4] == ["upload", "verify", "check", "unpack"]
    # Then the trial boot's stages ("boot", its start, may be over before the first look).
    assert [name for name in names[4:] if name != "boot"] == ["build", "health"]
    assert [stage["stage"] for stage in result["stages"]] == names
    elapsed = [stage["elapsed"] for stage in result["stages"]]
    # A stage over between two looks is shown when the unit confirms: it may start and end
    # with the flash (0 s).
    assert elapsed == sorted(elapsed) and elapsed[-1] <= result["seconds"]
    assert abs(sum(s["seconds"] for s in result["stages"]) - result["seconds"]) < 0.2
    building = next(s for s in result["stages"] if s["stage"] == "build")
    assert building["seconds"] > 0.5  # compiling dsp_c: the long one the user waits for
    state = slots_of(unit)
    assert state["confirmed"] == "b" and state["slots"]["b"]["version"] == "0.2.0"
    assert not list((unit.state / "incoming").iterdir())  # the upload was cleaned up
    code, text, err = run_cli(capsys, "status", "--port", unit.url, "--json")
    assert code == 0, err
    assert json.loads(text)["slots"]["confirmed"] == "b"
    code, text, err = run_cli(capsys, "rollback", "--port", unit.url)
    assert code == 0, err
    assert "slot a: 0.1.0" in text and "[confirmed, running]" in text.splitlines()[0]
    assert slots_of(unit)["confirmed"] == "a"


def test_failing_health_check_rolls_back_by_itself(tmp_path, flash_unit, rkey, capsys) -> None:
    unit, _ = flash_unit
    root = copy_tree(tmp_path / "tree")
    (root / "edge" / "sources" / "__init__.py").write_text("raise ImportError('broken')\n")
    bundle = build(tmp_path / "bad.bundle", rkey, root=root)
    code, _, err = run_cli(capsys, "flash", str(bundle), "--port", unit.url)
    assert code == 1
    # The stages the unit went through, each with the seconds since the flash began.
    shown = [line.split(" s  ", 1) for line in err.splitlines() if " s  unit: " in line]
    assert [float(seconds) for seconds, _ in shown] == sorted(float(s) for s, _ in shown)
    texts = [text for _, text in shown]
    assert texts[:3] == [STAGES["verify"], STAGES["check"], STAGES["unpack"]]
    assert texts[-1] == STAGES["health"]  # where it failed
    line = err.strip().splitlines()[-1]
    assert line.startswith("error E352: version 0.2.0 failed its trial boot")
    assert "source" in line and "rolled back to slot a" in line
    state = slots_of(unit)
    assert state["confirmed"] == "a" and state["slots"]["b"]["status"] == "failed"


def test_kill_minus_9_of_the_agent_mid_flash_resumes(tmp_path, flash_unit, rkey) -> None:
    unit, host_key = flash_unit
    bundle = build(tmp_path / "b.bundle", rkey)
    size, chunk = bundle.stat().st_size, 16384
    killed_at: list[int] = []

    def kill_once(offset: int) -> None:
        if not killed_at and offset >= size // 2:
            unit.kill()  # kill -9 between two chunks: the part file is all it keeps
            part = next((unit.state / "incoming").glob("*.part"))
            killed_at.append(part.stat().st_size)
            unit.start()  # same state, same URL

    result = flash_bundle(
        connector(unit.url, host_key),
        bundle,
        show_progress=False,
        chunk_bytes=chunk,
        on_chunk=kill_once,
    )
    assert killed_at and killed_at[0] >= size // 2  # fsynced before it was acknowledged
    assert result["outcome"] == "confirmed" and result["reconnects"] >= 1
    assert result["sent"] <= size + chunk  # resumed, not restarted from zero
    assert slots_of(unit)["confirmed"] == "b"


def test_killed_flash_is_resumed_by_running_it_again(tmp_path, flash_unit, rkey) -> None:
    unit, host_key = flash_unit
    bundle = build(tmp_path / "b.bundle", rkey)
    size = bundle.stat().st_size

    def cut(offset: int) -> None:
        if offset >= size // 3:
            raise KeyboardInterrupt  # the operator's Ctrl-C, or the laptop dying

    with pytest.raises(KeyboardInterrupt):
        flash_bundle(
            connector(unit.url, host_key),
            bundle,
            show_progress=False,
            chunk_bytes=8192,
            on_chunk=cut,
        )
    assert slots_of(unit)["trial"] is None  # nothing installed from a partial upload
    result = flash_bundle(connector(unit.url, host_key), bundle, show_progress=False)
    assert result["sent"] <= size - size // 3
    assert result["outcome"] == "confirmed"


def test_cut_and_damaged_link_still_flashes(tmp_path, flash_unit, rkey, fault_proxy) -> None:
    unit, host_key = flash_unit
    bundle = build(tmp_path / "b.bundle", rkey)
    proxy = fault_proxy(unit.url, Faults(cut_after=60_000, cuts=3, corrupt=0.002), seed=3)
    result = flash_bundle(
        connector(proxy.url, host_key), bundle, show_progress=False, chunk_bytes=8192
    )
    assert proxy.stats.cut >= 1
    assert result["outcome"] == "confirmed"
    assert slots_of(unit)["confirmed"] == "b"


def test_hostile_bundles_are_refused_and_the_unit_unchanged(tmp_path, flash_unit, rkey) -> None:
    unit, host_key = flash_unit
    files = {"edge/__init__.py": b"x = 1\n", "models/m.bin": b"\x00" * 5000}
    honest = [member("payload/" + p, d) for p, d in files.items()]
    good = build(tmp_path / "good.bundle", rkey).read_bytes()
    truncated = tmp_path / "truncated.bundle"
    truncated.write_bytes(good[: len(good) * 2 // 3])
    tampered = [member("payload/edge/__init__.py", b"x = 2\n"), honest[1]]
    symlink = [member("payload/edge/__init__.py", kind=tarfile.SYMTYPE, linkname="/etc/passwd")]
    cases = {
        "tampered": ("E342", craft(tmp_path / "t.bundle", rkey, files, payload=tampered)),
        "truncated": ("E340", truncated),
        "wrong key": ("E341", craft(tmp_path / "k.bundle", release_key(tmp_path / "k"), files)),
        "wrong hardware": ("E345", craft(tmp_path / "h.bundle", rkey, files, hardware=("x",))),
        "downgrade": ("E346", craft(tmp_path / "d.bundle", rkey, files, version="0.0.9")),
        "too old": ("E347", craft(tmp_path / "o.bundle", rkey, files, min_version="0.1.5")),
        "path traversal": ("E343", craft(tmp_path / "p.bundle", rkey, {"../../x.py": b"1"})),
        "symlink": (
            "E343",
            craft(tmp_path / "s.bundle", rkey, files, payload=symlink + honest[1:]),
        ),
    }
    with connector(unit.url, host_key)() as client:
        client.call("slots.status")  # the unit's first look at its slots makes the state
    (unit.state / "slots" / ".lock").touch()  # the (empty) lock file is no state
    before = tree_digest(unit.state / "slots")
    assert "state.json" in before
    for name, (code, bundle) in cases.items():
        with pytest.raises(BedsideError) as info:
            flash_bundle(connector(unit.url, host_key), bundle, show_progress=False)
        assert info.value.code == code, f"{name}: {info.value}"
        assert tree_digest(unit.state / "slots") == before, name
        assert not list((unit.state / "incoming").glob("*")), name  # nothing left behind
    assert not (unit.state.parent / "x.py").exists()
    assert not list(tmp_path.rglob("x.py"))


def test_unauthenticated_host_cannot_flash(tmp_path, flash_unit, rkey) -> None:
    unit, _ = flash_unit
    bundle = build(tmp_path / "b.bundle", rkey)
    with pytest.raises(BedsideError) as info:
        flash_bundle(lambda: Client.open(unit.url), bundle, show_progress=False)
    assert info.value.code == "E320"
    assert not (unit.state / "incoming").exists() or not list((unit.state / "incoming").iterdir())


def test_flashing_again_is_idempotent(tmp_path, flash_unit, rkey) -> None:
    """A flash repeated after its finish (a lost reply, an impatient operator) sends nothing
    and never installs twice: the fallback slot is not spent on a retry."""
    unit, host_key = flash_unit
    bundle = build(tmp_path / "b.bundle", rkey)
    open_unit = connector(unit.url, host_key)
    first = flash_bundle(open_unit, bundle, boot=False, show_progress=False)
    assert first["outcome"] == "trial pending" and first["sent"] == bundle.stat().st_size
    again = flash_bundle(open_unit, bundle, show_progress=False)  # finishes the same trial
    assert again["outcome"] == "confirmed" and again["sent"] == 0 and again["slot"] == "b"
    state = slots_of(unit)
    assert state["slots"]["a"]["status"] == "factory"  # the fallback is untouched
    third = flash_bundle(open_unit, bundle, show_progress=False)
    assert third["outcome"] == "already confirmed" and third["sent"] == 0
    assert slots_of(unit)["slots"] == state["slots"]


CRASH_SCRIPT = """
import os, sys
from pathlib import Path
from edge.maint import bundle, flash, slots

state, bundle_path, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

def die(*args, **kwargs):
    os._exit(9)  # like kill -9: no cleanup runs

calls = {"n": 0}
real_unpack = bundle.unpack
def unpack(*args, **kwargs):  # the 1st call verifies, the 2nd writes the slot
    calls["n"] += 1
    if point == "writing" and calls["n"] == 2:
        kwargs["check"] = lambda m: die()
    return real_unpack(*args, **kwargs)

bundle.unpack = unpack
targets = {"begin_install": (slots.Slots, "begin_install"), "mark_trial": (slots.Slots,
    "mark_trial"), "replace": (bundle, "_replace_dir"), "fsync": (bundle, "fsync_tree")}
if point in targets:
    setattr(*targets[point], die)
f = flash.Flasher(state, hardware="sim", factory_version="0.1.0")
data = bundle_path.read_bytes()
import hashlib, zlib
sha = hashlib.sha256(data).hexdigest()
raw, sig = bundle.read_manifest(bundle_path)
f.begin({"sha256": sha, "size": len(data), "signature": sig.hex()}, zlib.compress(raw))
f.chunk({"sha256": sha, "offset": 0}, data)
f.finish({"sha256": sha}, b"")
"""


@pytest.mark.parametrize("point", ["begin_install", "writing", "fsync", "replace", "mark_trial"])
def test_agent_killed_during_finish_recovers_on_retry(tmp_path, rkey, point) -> None:
    """kill -9 of the agent at each step of installing: the unit stays on its confirmed
    slot, and the same flash run again installs the bundle whole."""
    state = tmp_path / "unit"
    install_release_key(state, rkey)
    bundle = build(tmp_path / "b.bundle", rkey)
    done = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(state), str(bundle), point],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 9, done.stderr
    slots = Slots(state)
    crashed = slots.load()
    assert crashed["confirmed"] == "a" and crashed["trial"] is None
    # The retry: a new agent, the same upload (resumed from what the unit holds).
    flasher = Flasher(state, hardware="sim", factory_version="0.1.0")
    data = bundle.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    raw, sig = bundles.read_manifest(bundle)
    begin = {"sha256": sha, "size": len(data), "signature": sig.hex()}
    reply, _ = flasher.begin(begin, zlib.compress(raw))
    assert reply["offset"] == len(data)  # nothing to send again
    reply, _ = flasher.finish({"sha256": sha}, b"")
    state_now = slots.load()
    assert state_now["trial"] == "b" and state_now["slots"]["b"]["sha256"] == sha
    assert bundles.verify_tree(slots.slot_dir("b")).version == "0.2.0"
    deadline = time.monotonic() + 5  # the old contents are deleted in the background
    while list(slots.root.glob("b.*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(slots.root.glob("b.*"))  # no staging or old folder left behind


def test_trial_stage_follows_the_boot_managers_marks(tmp_path, rkey) -> None:
    """slots.status says which stage a trial boot is in: from the attempt it counted and the
    built mark of the slot's dsp_c (issue 17, item 3)."""
    state = tmp_path / "unit"
    flasher = Flasher(state, hardware="sim", factory_version="0.1.0")
    slots = flasher.slots
    assert flasher.slot_status({}, b"")[0]["trial_stage"] is None  # no trial
    slots.save(slots.load())
    current = slots.mark_trial(slots.begin_install(slots.load()), version="0.2.0", sha256="0" * 64)
    assert flasher.trial_stage(current) == "boot"  # the boot manager has not started it
    current = slots.count_trial_boot(current)
    assert flasher.trial_stage(current) == "build"
    mark = slots.slot_dir(current["trial"]) / "dsp_c" / BUILT_MARK
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.touch()
    assert flasher.slot_status({}, b"")[0]["trial_stage"] == "health"


class _PolledUnit:
    """A unit whose ``slots.status`` answers come from a list, one a look."""

    def __init__(self, answers: list[dict]) -> None:
        self.answers = answers

    def call(self, command, args=None, data=b""):
        return self.answers.pop(0), b""


def _slots(trial_stage: str | None, confirmed: str, status: str = "pending") -> dict:
    return {
        "slots": {"b": {"sha256": "abc", "status": status, "version": "0.2.0"}},
        "confirmed": confirmed,
        "trial": "b" if trial_stage else None,
        "trial_stage": trial_stage,
        "failed_stage": {},
    }


@pytest.mark.parametrize(
    "looks, told",
    [
        (["boot", "build", "health", None], ["boot", "build", "health"]),
        (["build", None], ["build", "health"]),  # the health check passed between two looks
        ([None], ["boot", "build", "health"]),  # all of it between two looks
    ],
)
def test_a_confirmed_trial_shows_every_stage_it_went_through(looks, told, monkeypatch) -> None:
    from host_tools import flash

    monkeypatch.setattr(flash, "TRIAL_POLL_S", 0.0)
    answers = [_slots(stage, "a") for stage in looks[:-1]] + [_slots(None, "b")]
    seen: list[str] = []
    flash.wait_for_trial(_PolledUnit(answers), "b", "abc", on_stage=seen.append)
    assert [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s] == told
