"""The fleet schema (issue 17, item 12): timestamps, rounded values and the nights table in
``logs export``; the Hive-partitioned dataset of ``logs export --dataset`` (appended night
by night, never a row twice, readable after a kill); ``bedside-host query`` (DuckDB)."""

from __future__ import annotations

import csv
import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.errors import BedsideError
from edge.records import Epoch
from edge.store import Store
from host_tools.archive import Archive, unit_archives
from host_tools.dataset import MANIFEST, export_dataset, query, table_glob
from host_tools.export import KEY_NAME, TABLES, export
from host_tools.logs import pull
from host_tools.parquet import duckdb_connection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from logs_fixtures import ROOT, T0, connect, record, vitals, write_archive  # noqa: E402

DAY = 86400.0


# --- the tables: timestamps, precision, nights --------------------------------------------------


def test_values_are_rounded_and_times_are_utc_timestamps(tmp_path):
    epoch = Epoch(
        t_utc=T0 + 0.25,
        duration_s=1.0,
        state="good",
        quality=0.48506601190309195,
        hr_bpm=68.5894070147492,
        hrv_rmssd_ms=44.995678193281506,
        rr_bpm=15.85828123802707,
        motion=0.0001838606461766401,
        beats=1,
        hr_reason=None,
        rr_reason=None,
    )
    with Archive.create(tmp_path / "a", "bcg-test-1") as archive:
        archive.save_sessions(1, [(1, "sim:1", 250.0, 1.0, "0.1.0", T0, T0 + 1, 1.0, 1, 0)])
        archive.add_epochs(1, [(1, 1, *epoch.values())])
    export(tmp_path / "a", tmp_path / "csv", fmt="csv")
    with open(tmp_path / "csv" / "epochs.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert {k: row[k] for k in ("t_utc", "quality", "hr_bpm", "hrv_rmssd_ms", "rr_bpm")} == {
        "t_utc": "2026-11-24T22:30:00.250Z",
        "quality": "0.485",
        "hr_bpm": "68.6",
        "hrv_rmssd_ms": "45.0",
        "rr_bpm": "15.9",
    }
    assert row["motion"] == "0.000184"  # significant digits: its scale is the sensor's

    export(tmp_path / "a", tmp_path / "pq", fmt="parquet")
    con = duckdb_connection()
    path = tmp_path / "pq" / "epochs.parquet"
    schema = {
        name: (kind, logical or "")
        for name, kind, logical in con.execute(
            f"SELECT name, type, CAST(logical_type AS VARCHAR) FROM parquet_schema('{path}')"
        ).fetchall()
    }
    assert schema["t_utc"][0] == "INT64" and "isAdjustedToUTC=1" in schema["t_utc"][1]
    assert schema["hr_bpm"][0] == "DOUBLE"
    values = con.execute(f"SELECT epoch_ms(t_utc), hr_bpm, quality FROM '{path}'").fetchall()
    assert values == [(int((T0 + 0.25) * 1000), 68.6, 0.485)]
    nights = tmp_path / "pq" / "nights.parquet"
    assert con.execute(
        f"SELECT CAST(night AS VARCHAR), tz, typeof(start_utc) FROM '{nights}'"
    ).fetchall() == [("2026-11-24", "UTC", "TIMESTAMP WITH TIME ZONE")]


def test_the_nights_table_holds_the_night_reports_figures(tmp_path):
    write_archive(tmp_path / "a", nights=2, epochs=900)
    export(tmp_path / "a", tmp_path / "csv", fmt="csv")
    with open(tmp_path / "csv" / "nights.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    (path,) = unit_archives(tmp_path / "a")
    with Archive.open(path) as archive:
        nights = archive.nights()
    assert [r["night"] for r in rows] == ["2026-11-24", "2026-11-25"]
    for row, night in zip(rows, nights, strict=True):
        assert float(row["hr_mean_bpm"]) == round(night.hr_mean, 1)
        assert float(row["hr_resting_bpm"]) == round(night.hr_resting, 1)
        assert float(row["hr_lowest_bpm"]) == round(night.hr_lowest, 1)
        assert float(row["coverage"]) == round(night.coverage, 3)
        assert float(row["hours_in_bed"]) == round(night.hours_in_bed, 2)
        assert (row["tz"], row["software_version"]) == ("UTC", "0.1.0")


def test_every_column_is_documented():
    """docs/field-tester.md has a row for each exported column of each table."""
    doc = (ROOT / "docs" / "field-tester.md").read_text(encoding="utf-8")
    section = doc[doc.index("### Columns") :]
    for table, columns in TABLES.items():
        part = section[section.index(f"**{table}**") :]
        part = part[: part.index("\n\n", part.index("|"))]
        documented = {
            line.split("|")[1].strip(" `") for line in part.splitlines()[2:] if "|" in line
        }
        missing = (
            {name for name, _ in columns}
            - documented
            - {"device", "person", "generation", "session_id"}
        )
        assert not missing, (table, missing)


# --- the dataset ----------------------------------------------------------------------------------


def _files(dataset: Path, night: str) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of each file of ``night``: a rewritten file has a new inode."""
    return {
        str(p.relative_to(dataset)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in dataset.glob(f"*/device=*/night={night}/*.parquet")
    }


def _add(store: Store, epochs: list[Epoch]) -> None:
    for e in epochs:
        store.add_epoch(e)
    store.commit()


def test_the_dataset_adds_new_nights_and_rewrites_one_that_grew(paired_unit, tmp_path):
    proc, key = paired_unit
    archive, dataset = tmp_path / "archive", tmp_path / "dataset"
    store = Store(proc.state / "vitals.db")
    try:
        for day, n in ((0, 600), (1, 300)):  # night 2 still recording at the first pull
            store.open_session(
                source="sim:1", fs=250, epoch_s=1, software_version="0.1.0", t_utc=T0 + day * DAY
            )
            _add(store, vitals(n, seed=day + 1, t0=T0 + day * DAY))
            if day == 0:
                store.close_session(clean=True, t_utc=T0 + n)
        with connect(proc.url, key) as client:
            pull(client, archive, person="P017")
        first = export_dataset(archive, dataset)
        assert (first.nights_written, first.nights_rewritten) == (2, 0)
        night1 = _files(dataset, "2026-11-24")
        assert len(night1) == len(TABLES)
        again = export_dataset(archive, dataset)
        assert again.nights_written + again.nights_rewritten == 0
        assert again.nights_unchanged == 2 and "nothing new" in again.summary()

        # Night 2 grows, night 3 is new; night 1 must not be touched.
        _add(store, vitals(300, seed=7, t0=T0 + DAY + 300))
        store.close_session(clean=True, t_utc=T0 + DAY + 600)
    finally:
        store.close()
    record(proc.state, 200, seed=3, t0=T0 + 2 * DAY)
    with connect(proc.url, key) as client:
        pull(client, archive)
    third = export_dataset(archive, dataset)
    assert (third.nights_written, third.nights_rewritten, third.nights_unchanged) == (1, 1, 1)
    assert third.rows["epochs"] == 600 + 200  # only night 2 (whole) and night 3 were written
    assert _files(dataset, "2026-11-24") == night1

    # Every archived row is there once, and DuckDB answers per night per device.
    names, rows = query(
        dataset,
        "SELECT night, count(*), count(DISTINCT epoch_id) FROM epochs "
        "GROUP BY night ORDER BY night",
    )
    assert rows == [("2026-11-24", 600, 600), ("2026-11-25", 600, 600), ("2026-11-26", 200, 200)]
    (path,) = unit_archives(archive)
    with Archive.open(path) as a:
        nights = a.nights()
    names, rows = query(
        dataset,
        "SELECT device, night, hr_mean_bpm, coverage FROM nights ORDER BY device, night",
    )
    assert names == ["device", "night", "hr_mean_bpm", "coverage"]
    assert [r[1:] for r in rows] == [
        (n.night_date.isoformat(), round(n.hr_mean, 1), round(n.coverage, 3)) for n in nights
    ]
    assert len({r[0] for r in rows}) == 1 and rows[0][0].startswith("u_")
    # The same from the epochs themselves: mean HR and coverage per night per device.
    names, rows = query(
        dataset,
        "SELECT device, night, round(avg(hr_bpm), 1), "
        "round(count(hr_bpm) / count(*) FILTER (WHERE state <> 'empty'), 3) "
        "FROM epochs GROUP BY device, night ORDER BY device, night",
    )
    assert [r[2] for r in rows] == [pytest.approx(round(n.hr_mean, 1), abs=0.11) for n in nights]
    assert [r[3] for r in rows] == [pytest.approx(n.coverage, abs=0.002) for n in nights]
    # Pseudonyms only: no device id, participant code or source path in any file.
    for f in dataset.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert proc.device_id.encode() not in data and b"P017" not in data, f


def test_a_night_whose_date_moved_leaves_its_old_folder(paired_unit, tmp_path):
    """A session opened at 11:58 with no epochs yet is the night before; once its first
    epoch (12:01) arrives it is that day's night, and the old partition goes."""
    proc, key = paired_unit
    archive, dataset = tmp_path / "archive", tmp_path / "dataset"
    noon = T0 - 10.5 * 3600  # 2026-11-24 12:00 UTC
    with Store(proc.state / "vitals.db") as store:
        store.open_session(
            source="sim:1", fs=250, epoch_s=1, software_version="0.1.0", t_utc=noon - 120
        )
        store.commit()
        with connect(proc.url, key) as client:
            pull(client, archive)
        assert export_dataset(archive, dataset).nights_written == 1
        assert _files(dataset, "2026-11-23")
        _add(store, vitals(60, seed=1, t0=noon + 60))
        store.close_session(clean=True, t_utc=noon + 120)
    with connect(proc.url, key) as client:
        pull(client, archive)
    result = export_dataset(archive, dataset)
    assert (result.nights_written, result.nights_removed) == (1, 1)
    assert not _files(dataset, "2026-11-23") and len(_files(dataset, "2026-11-24")) == 4
    assert query(dataset, "SELECT night, count(*) FROM epochs GROUP BY night")[1] == [
        ("2026-11-24", 60)
    ]


def test_an_export_killed_midway_leaves_a_readable_dataset(tmp_path):
    archive, dataset = tmp_path / "archive", tmp_path / "dataset"
    write_archive(archive, nights=4, epochs=6000)
    command = [sys.executable, "-m", "host_tools", "logs", "export", "--archive", str(archive)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*command, "--dataset", str(dataset)], env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    # Kill -9 as soon as a file of the epochs of the second night or a later one appears:
    # while it is being written.
    while not list(dataset.glob("epochs/*/night=2026-11-2[5-7]/*")) + list(
        dataset.glob("epochs/*/night=2026-11-2[5-7]/.*")
    ):
        assert proc.poll() is None, "the export ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    con = duckdb_connection()
    for table in TABLES:
        if list(dataset.glob(f"{table}/*/*/*.parquet")):
            con.execute(f"SELECT count(*) FROM read_parquet('{table_glob(dataset, table)}')")
    done = {p.parent.name for p in dataset.glob("nights/*/*/*.parquet")}
    assert 1 <= len(done) < 4  # killed midway, and what is there reads
    for table in TABLES:  # a night's four tables appear together
        assert {p.parent.name for p in dataset.glob(f"{table}/*/*/*.parquet")} == done
    # The next export finishes the job: the same dataset as one never interrupted.
    export_dataset(archive, dataset)
    export_dataset(archive, tmp_path / "clean")
    assert not list(dataset.rglob(".*.tmp-*"))
    for table in TABLES:
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        assert query(dataset, sql) == query(tmp_path / "clean", sql), table


# --- failures ---------------------------------------------------------------------------------


def test_a_dataset_of_another_key_is_refused(tmp_path):
    write_archive(tmp_path / "a", nights=1)
    export_dataset(tmp_path / "a", tmp_path / "d")
    (tmp_path / "a" / KEY_NAME).unlink()  # a new key: every pseudonym changes
    with pytest.raises(BedsideError) as info:
        export_dataset(tmp_path / "a", tmp_path / "d")
    assert info.value.code == "E395" and "another pseudonym key" in str(info.value)
    (tmp_path / "d" / MANIFEST).write_text("{not json")
    with pytest.raises(BedsideError) as info:
        export_dataset(tmp_path / "a", tmp_path / "d")
    assert info.value.code == "E395" and "damaged" in str(info.value)


def test_two_exports_into_one_dataset_do_not_mix(tmp_path):
    write_archive(tmp_path / "a", nights=1)
    (tmp_path / "d").mkdir()
    fd = os.open(tmp_path / "d" / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(BedsideError) as info:
            export_dataset(tmp_path / "a", tmp_path / "d")
        assert info.value.code == "E396"
    finally:
        os.close(fd)
    assert export_dataset(tmp_path / "a", tmp_path / "d").nights_written == 1


def test_an_unwritable_dataset_folder(tmp_path):
    write_archive(tmp_path / "a", nights=1)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(BedsideError) as info:
        export_dataset(tmp_path / "a", tmp_path / "file")
    assert info.value.code == "E394"


def test_query_errors(tmp_path):
    with pytest.raises(BedsideError) as info:
        query(tmp_path / "nothing", "SELECT 1")
    assert info.value.code == "E398"
    write_archive(tmp_path / "a", nights=1)
    export_dataset(tmp_path / "a", tmp_path / "d")
    with pytest.raises(BedsideError) as info:
        query(tmp_path / "d", "SELECT no_such_column FROM nights")
    assert info.value.code == "E397" and "no_such_column" in str(info.value)


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "host_tools", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_export_dataset_and_query(tmp_path):
    write_archive(tmp_path / "a", nights=2)
    env = {"BEDSIDE_ARCHIVE": str(tmp_path / "a")}  # the default --archive
    run = _cli(["logs", "export", "--dataset", str(tmp_path / "d")], **env)
    assert run.returncode == 0, run.stderr
    assert "2 new nights" in run.stdout and "100%" in run.stderr  # the progress bar
    run = _cli(
        ["query", "SELECT night, count(*) AS n FROM epochs GROUP BY night ORDER BY night"],
        BEDSIDE_DATASET=str(tmp_path / "d"),
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["night         n", "2026-11-24  120", "2026-11-25  120"]
    run = _cli(["query", "--dataset", str(tmp_path / "d"), "--json", "SELECT 1 AS one, 1.5 AS x"])
    assert run.stdout.strip() == '[{"one": 1, "x": 1.5}]'
    for args in (["logs", "export"], ["logs", "export", "--out", "x", "--dataset", "y"]):
        run = _cli(args, **env)
        assert run.returncode == 2 and run.stderr.startswith("error E382"), run.stderr
    run = _cli(["query", "--dataset", str(tmp_path / "d"), "SELECT nope"])
    assert run.returncode == 1 and run.stderr.startswith("error E397"), run.stderr
    run = _cli(["logs", "export", "--dataset", str(tmp_path / "d")], BEDSIDE_ARCHIVE=str(tmp_path))
    assert run.returncode == 1 and run.stderr.startswith("error E369"), run.stderr


def test_the_codes_raised_here_are_in_errors_md():
    """Every code the export, dataset and query modules raise has its row in docs/errors.md."""
    rows = set(re.findall(r"^\| (E\d{3}) \|", (ROOT / "docs" / "errors.md").read_text(), re.M))
    raised = set()
    for name in ("dataset.py", "export.py", "parquet.py", "logs.py", "archive.py"):
        raised |= set(re.findall(r'"(E\d{3})"', (ROOT / "host_tools" / name).read_text()))
    assert {"E394", "E395", "E396", "E397", "E398", "E371"} <= raised
    assert raised <= rows, raised - rows
