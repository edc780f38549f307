"""Log pulls that go wrong: a damaged, slow or cut link, the unit's agent killed mid-pull,
the puller killed mid-pull, pages damaged past the link's CRC. Each time the next pull
completes, and the archive then holds exactly the unit's rows: none lost, none twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.errors import BedsideError
from edge.link import LinkError
from host_tools.archive import Archive, unit_archives
from host_tools.logs import pull

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faultproxy import FaultProxy, Faults  # noqa: E402
from logs_fixtures import (  # noqa: E402
    ROOT,
    archive_rows,
    connect,
    record,
    unit_rows,
    wait_for,
    write_log,
)

N_EPOCHS = 8000
PAGE = 4096  # small pages: many of them, so a fault lands mid-pull


@pytest.fixture
def filled_unit(paired_unit):
    """A paired virtual unit holding N_EPOCHS epochs in two sessions and a 3000-line log."""
    unit, key = paired_unit
    record(unit.state, N_EPOCHS, sessions=2)
    write_log(unit.state, "runtime.log", 3000)
    return unit, key


def _complete(archive: Path, state: Path) -> None:
    assert archive_rows(archive) == unit_rows(state)
    (path,) = unit_archives(archive)
    with Archive.open(path) as a:
        (ident,) = _log_idents(path)
        assert a.log_text(ident) == (state / "logs" / "runtime.log").read_bytes()


def _log_idents(path: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT ident FROM log_files")]


def _archived(archive: Path) -> int:
    paths = unit_archives(archive)
    if not paths:
        return 0
    try:
        with Archive.open(paths[0]) as a:
            return a.count("epochs")
    except BedsideError:
        return 0  # being made right now


def test_pull_through_dropped_corrupted_and_delayed_bytes(filled_unit, tmp_path):
    proc, key = filled_unit
    faults = Faults(drop=0.004, corrupt=0.004, delay_s=0.001, chunk=256)
    with FaultProxy(proc.url, seed=7) as proxy:
        with connect(proxy.url, key, timeout_s=0.3, retries=6) as client:
            proxy.faults = faults  # after authenticating: the pull itself meets the faults
            result = pull(client, tmp_path / "archive", page_bytes=PAGE)
        assert proxy.stats.dropped and proxy.stats.corrupted  # the faults did happen
    assert result.epochs == N_EPOCHS
    _complete(tmp_path / "archive", proc.state)


def test_a_cut_link_resumes_on_the_next_pull(filled_unit, tmp_path):
    proc, key = filled_unit
    archive = tmp_path / "archive"
    with FaultProxy(proc.url, Faults(cut_after=120_000, cuts=3), seed=3) as proxy:
        for _ in range(4):  # each connection is cut until the cuts are used up
            try:
                with connect(proxy.url, key, timeout_s=0.5, retries=2) as client:
                    pull(client, archive, page_bytes=PAGE)
                break
            except LinkError:
                continue
        assert proxy.stats.cut >= 1
    _complete(archive, proc.state)
    assert _archived(archive) == N_EPOCHS


def test_agent_killed_mid_pull(filled_unit, tmp_path):
    proc, key = filled_unit
    archive = tmp_path / "archive"

    def kill_once_under_way(stream: str, done: int, total: int) -> None:
        if stream == "epochs" and done >= N_EPOCHS // 4:
            proc.kill()

    with connect(proc.url, key, timeout_s=0.3, retries=1) as client:
        with pytest.raises(BedsideError) as info:
            pull(client, archive, on_progress=kill_once_under_way, page_bytes=PAGE)
    assert info.value.code.startswith("E30")  # the link's error, not a crash
    partial = _archived(archive)
    assert N_EPOCHS // 4 <= partial < N_EPOCHS
    proc.start()  # the unit comes back on the same URL, its keys kept
    with connect(proc.url, key) as client:
        result = pull(client, archive, page_bytes=PAGE)
    assert result.epochs == N_EPOCHS - partial
    _complete(archive, proc.state)


def test_puller_killed_mid_pull(filled_unit, keys_dir, tmp_path):
    proc, _ = filled_unit
    archive = tmp_path / "archive"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BEDSIDE_KEYS": str(keys_dir)}
    # A slow line (about 150 kB/s) so the kill lands in the middle of the pull.
    with FaultProxy(proc.url, Faults(rate=150_000), seed=1) as proxy:

        def command(url: str) -> list[str]:
            return [
                sys.executable,
                "-m",
                "host_tools",
                "logs",
                "pull",
                "--port",
                url,
                "--archive",
                str(archive),
                "--json",
            ]

        puller = subprocess.Popen(
            command(proxy.url), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            wait_for(lambda: _archived(archive) > 0 or puller.poll() is not None, 60)
        finally:
            os.kill(puller.pid, signal.SIGKILL)
            puller.communicate(timeout=10)
    partial = _archived(archive)
    assert 0 < partial < N_EPOCHS, "the kill did not land mid-pull"
    again = subprocess.run(
        command(proc.url), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["epochs"] == N_EPOCHS - partial
    _complete(archive, proc.state)


class _Tamper:
    """A real client whose first ``bad`` page replies get one data byte flipped, as a fault
    past the link's CRC would (a bug, or memory) do."""

    def __init__(self, client, bad: int) -> None:
        self.client, self.bad = client, bad
        self.max_data = client.max_data

    def identify(self) -> dict:
        return self.client.identify()

    def call(self, command, args=None, data=b""):
        reply, blob = self.client.call(command, args, data)
        if command == "logs.epochs" and blob and self.bad > 0:
            self.bad -= 1
            blob = blob[:20] + bytes([blob[20] ^ 0x10]) + blob[21:]
        return reply, blob


def test_a_page_damaged_past_the_crc_is_asked_again_or_refused(filled_unit, tmp_path):
    proc, key = filled_unit
    archive = tmp_path / "archive"
    with connect(proc.url, key) as client:
        with pytest.raises(BedsideError) as info:
            pull(_Tamper(client, bad=100), archive, page_bytes=PAGE)
        assert info.value.code == "E362" and _archived(archive) == 0  # nothing of it kept
        result = pull(_Tamper(client, bad=2), archive, page_bytes=PAGE)  # retried, then fine
    assert result.epochs == N_EPOCHS
    _complete(archive, proc.state)
