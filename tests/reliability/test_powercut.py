"""Power cuts in `make test`: 30 seeded cut points over every phase (the 1000-point run is
`make powercut`), and proof that the harness's checks catch what they are there to catch."""

from __future__ import annotations

import random
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import powercut  # noqa: E402


def test_thirty_cut_points_lose_nothing_and_leave_the_unit_bootable(tmp_path):
    report = powercut.run(30, seed=7, work=tmp_path)
    assert report.problems == []
    assert report.tried >= 25  # a point drawn past the operation's end is no cut
    # Cuts landed in every phase the issue names.
    assert {"record", "upload", "install", "boot", "pull"} <= set(report.by_phase)


def test_plan_is_seeded_and_keeps_the_shares():
    assert powercut.plan(200, 3) == powercut.plan(200, 3)
    assert powercut.plan(200, 3) != powercut.plan(200, 4)
    counts = {p: powercut.plan(1000, 1).count(p) for p in powercut.PHASES}
    assert counts == {p: round(1000 * s) for p, s in powercut.PHASES.items()}


def test_a_lost_commit_is_reported(tmp_path):
    chain = powercut.RecordChain(tmp_path, random.Random(1))
    result = chain.cut(tmp_path)
    assert result.cut and result.problems == []
    # What a store without fsync could do after a power cut: an epoch it had committed is gone.
    with sqlite3.connect(chain.db) as conn:
        conn.execute("DELETE FROM epochs WHERE id = (SELECT min(id) FROM epochs)")
    conn.close()
    again = chain.check(powercut.CutResult("record", "none", 0), [])
    assert any("gone or changed" in p for p in again.problems)


def test_an_unbootable_confirmed_slot_is_reported(tmp_path):
    rig = powercut.FlashRig(tmp_path, random.Random(1))  # its setup flashes and confirms once
    state = tmp_path / "unit"
    assert rig._bootable(state) == []
    slot = powercut.Slots(state).load()["confirmed"]
    victim = next(p for p in powercut.Slots(state).slot_dir(slot).rglob("*.py"))
    victim.write_text(victim.read_text() + "# a bit flipped by a dying disk\n")
    (problem,) = rig._bootable(state)
    assert "not bootable" in problem


def test_a_torn_slot_state_is_reported(tmp_path):
    """What an atomic_write that writes in place can leave after a cut: an empty
    slots/state.json. The boot manager sets it aside and boots the installed software, and
    the same flash then goes through: only the check of the state itself sees the loss."""
    rig = powercut.FlashRig(tmp_path, random.Random(1))
    state = rig._fresh(tmp_path)
    slots = powercut.Slots(state)
    slots.load()  # the state of a unit never flashed
    slots.path.write_bytes(b"")
    result = powercut.CutResult("install", "fs", 1, cut=True)
    rig.recover(state, result)
    (problem,) = result.problems
    assert "damaged the slot state (state.json.damaged: b'')" in problem
    assert "back to the installed software" in problem  # the boot manager's own account


def test_a_row_missing_from_the_archive_is_reported(tmp_path):
    chain = powercut.PullChain(tmp_path, random.Random(1), 0)
    assert chain.finish(tmp_path) == []
    (path,) = powercut.unit_archives(chain.archive)
    with sqlite3.connect(path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(epochs)")]
        # The archive changed shape: fix this test, never let it pass unseen.
        assert columns and "rowid" not in columns, f"unexpected archive layout: {columns}"
        conn.execute("DELETE FROM epochs WHERE rowid = (SELECT max(rowid) FROM epochs)")
    conn.close()
    assert any("rows, the unit has" in p for p in chain.consistent(whole=True))
