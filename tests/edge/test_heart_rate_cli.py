"""``python -m edge.eval.heart_rate``: the field tester's heart rate per epoch of a file is what
the unit stores for it (one definition), with clear errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from edge.cli import main as bedside
from edge.eval.heart_rate import main
from edge.store import Store

DATA = Path(__file__).resolve().parents[1] / "data"


def test_the_rates_are_those_bedside_run_stores(tmp_path, capsys) -> None:
    with np.load(DATA / "sadek_sample.npz") as data:  # 4 min of the fiber mat, as a file
        x, fs = data["raw"][: int(240 * 50)], float(data["fs"])
    path = tmp_path / "mat.npz"
    np.savez(path, raw=x, fs=fs)
    assert main([str(path), "--json"]) == 0
    tool = json.loads(capsys.readouterr().out)["epochs"]

    db = tmp_path / "v.db"
    run = ["run", "--source", f"replay:{path}", "--speed", "max", "--epoch", "10"]
    assert bedside([*run, "--db", str(db)]) == 0
    capsys.readouterr()
    with Store(db, readonly=True) as store:
        stored = [e for _, e in store.epochs()]
    assert tool[0]["state"] is not None  # the first epoch is stored: it starts the grid
    t0 = stored[0].t_utc
    by_start = {round(e.t_utc - t0): e for e in stored}
    with_rate = 0
    for epoch in tool:
        e = by_start.get(round(epoch["start_s"]))
        if e is None:  # the tool lists every epoch of the grid; the store only judged ones
            assert epoch["state"] is None and epoch["bpm"] is None
            continue
        assert epoch["state"] == e.state and epoch["reason"] == e.hr_reason
        if e.hr_bpm is None:
            assert epoch["bpm"] is None
        else:
            with_rate += 1
            assert math.isclose(epoch["bpm"], e.hr_bpm, abs_tol=0.005)
    assert with_rate >= 15


def test_the_table_and_clear_errors(capsys) -> None:
    assert main([str(DATA / "aydin_left1.npz"), "--channel", "imp_env"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "aydin_left1.npz [imp_env], 20 s at 1000 Hz: a heart rate in 2 of 2 epochs of 10 s (100%)"
    )
    assert all(" good " in line and "bpm" in line for line in out[1:])
    assert main([str(DATA / "aydin_left1.npz"), "--channel", "nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error E206: ") and len(err.splitlines()) == 1
    assert main(["missing.csv"]) == 1
    assert capsys.readouterr().err.startswith("error E202: ")
    for bad in ("0", "nan", "301"):
        assert main([str(DATA / "sadek_sample.npz"), "--epoch", bad]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error E280: ") and "--epoch" in err


def test_a_file_the_unit_refuses_is_one_coded_line(tmp_path, capsys) -> None:
    path = tmp_path / "huge.npz"
    np.savez(path, bcg=np.full(2500, 1e16), fs=250.0)  # beyond what the DSP core takes
    assert main([str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error E") and len(err.splitlines()) == 1


def test_the_old_name_runs_the_same_tool(tmp_path) -> None:
    """``python -m edge.heart_rate`` (its name before the re-layout) prints what
    ``python -m edge.eval.heart_rate`` prints, and fails as it does."""
    with np.load(DATA / "sadek_sample.npz") as data:
        x, fs = data["raw"][: int(60 * 50)], float(data["fs"])
    path = tmp_path / "mat.npz"
    np.savez(path, raw=x, fs=fs)
    runs = {
        name: [
            subprocess.run(
                [sys.executable, "-m", name, *args], capture_output=True, text=True, timeout=120
            )
            for args in ([str(path)], [str(tmp_path / "missing.npz")])
        ]
        for name in ("edge.heart_rate", "edge.eval.heart_rate")
    }
    old, new = runs["edge.heart_rate"], runs["edge.eval.heart_rate"]
    assert old[0].returncode == 0 and "bpm" in old[0].stdout
    for a, b in zip(old, new, strict=True):
        assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)
    assert old[1].returncode != 0 and old[1].stderr
