"""The vitals store under faults: kill -9 mid-batch, damaged files, a full disk, two writers."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from edge.errors import BedsideError
from edge.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_fixtures import T0  # noqa: E402
from test_store import epoch, session  # noqa: E402

BATCH = 300

WRITER = textwrap.dedent(
    f"""
    import sys
    sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
    from edge.store import Store
    from test_store import epoch
    store = Store(sys.argv[1])
    sid = store.open_session(source="sim:1", fs=250.0, epoch_s=30.0, software_version="0.1.0",
                             t_utc=float(sys.argv[2]))
    i = int(sys.argv[3])
    while True:
        for _ in range({BATCH}):
            store.add_epoch(epoch(i))
            i += 1
        store.commit()
        print(i, flush=True)  # only after commit() returned: these epochs are on disk
    """
)


def test_kill_9_mid_batch_loses_no_committed_epoch(tmp_path):
    """A writer killed at random points, ten times: every epoch it was told is committed is
    there, in order, batches whole, and the database is intact."""
    path = tmp_path / "v.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = np.random.default_rng(6)
    told = 0
    for run in range(10):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path), str(T0 + run), str(told)],
            stdout=subprocess.PIPE,
            text=True,
        )
        # Let it commit a random number of batches, then kill it at a random moment,
        # most of the time in the middle of the next one.
        for _ in range(int(rng.integers(1, 6))):
            line = proc.stdout.readline()
            assert line, "the writer died on its own"
        time.sleep(float(rng.uniform(0.0, 0.03)))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read().split()
        proc.wait()
        told = int(rest[-1]) if rest else int(line)
        with Store(path) as store:
            assert store.recovered_to is None  # a killed writer leaves a healthy store
            assert store.integrity_check() == "ok"
            got = [e.t_utc for _, e in store.epochs()]
            assert len(got) >= told
            assert len(got) % BATCH == 0  # a batch is all or nothing
            assert got == [T0 + 30.0 * i for i in range(len(got))]
            told = len(got)
            restarts = [e for _, e in store.events() if e.kind == "restart"]
    assert len(restarts) == 9  # each run found the previous one killed


def test_kill_9_inside_the_transaction_loses_no_committed_epoch(tmp_path):
    """The writer kills itself from SQLite's progress handler, i.e. while a statement of the
    batch's transaction runs (an insert, the retention prune): the worst moment, exactly."""
    path = tmp_path / "v.db"
    script = tmp_path / "writer.py"
    # Small max_bytes so later runs also die inside retention's deletes.
    script.write_text(
        WRITER.replace(
            "store = Store(sys.argv[1])",
            "import os, signal\n"
            "store = Store(sys.argv[1], max_bytes=2**20)\n"
            "steps = [int(sys.argv[4])]\n"
            "def bomb():\n"
            "    steps[0] -= 1\n"
            "    if steps[0] <= 0:\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            "    return 0\n"
            "store._conn.set_progress_handler(bomb, 1000)",
        )
    )
    rng = np.random.default_rng(9)
    start = 0
    for run in range(6):
        steps = int(rng.integers(20, 2000))
        done = subprocess.run(
            [sys.executable, str(script), str(path), str(T0 + run), str(start), str(steps)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == -signal.SIGKILL, done.stderr
        told = done.stdout.split()
        with Store(path) as store:
            assert store.recovered_to is None and store.integrity_check() == "ok"
            got = np.array([e.t_utc for _, e in store.epochs()])
            newest = int(round((got[-1] - T0) / 30.0)) + 1 if got.size else 0
            if told:  # the last batch it said was committed is there
                assert newest >= int(told[-1])
            assert newest % BATCH == 0  # no part of a batch
            assert np.all(np.diff(got) == 30.0)  # in order, no hole (retention cuts the oldest)
            start = newest


def _our_store(path: Path, epochs: int = 50) -> None:
    with Store(path) as store:
        session(store)
        for i in range(epochs):
            store.add_epoch(epoch(i))
        store.commit()


def _other_app(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('shopping list')")
    conn.close()


def _truncated(path: Path) -> None:
    _our_store(path, 3000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damaged_page(path: Path) -> None:
    _our_store(path, 3000)
    data = bytearray(path.read_bytes())
    data[3 * 4096 : 3 * 4096 + 200] = os.urandom(200)  # a b-tree page of the epochs
    path.write_bytes(bytes(data))


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).bytes(20000))


def _text(path: Path) -> None:
    path.write_text("night,hr\n1,60\n")


def _sqlite_header_garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + np.random.default_rng(2).bytes(8000))


@pytest.mark.parametrize(
    "damage", [_garbage, _text, _sqlite_header_garbage, _truncated, _damaged_page, _other_app]
)
def test_a_damaged_or_foreign_file_is_moved_aside_never_overwritten(tmp_path, damage):
    path = tmp_path / "vitals.db"
    damage(path)
    original = path.read_bytes()
    with Store(path) as store:
        aside = store.recovered_to
        assert aside is not None and aside.name.startswith("vitals.db.corrupt-")
        assert aside.read_bytes() == original  # byte for byte
        sid = session(store)
        store.add_epoch(epoch(0))
        store.commit()
        (event,) = [e for _, e in store.events(session_id=sid)]
        assert event.kind == "store_recovered" and aside.name in event.detail
        assert store.integrity_check() == "ok"
    # Opening again finds a healthy store: nothing more is moved.
    with Store(path) as store:
        assert store.recovered_to is None
        assert len(list(store.epochs())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vitals.db", aside.name]


def test_the_wal_of_a_damaged_file_goes_with_it(tmp_path):
    """A stale WAL left beside a new store would be replayed into it."""
    path = tmp_path / "vitals.db"
    wal = tmp_path / "vitals.db-wal"
    _garbage(path)
    wal.write_bytes(b"not really a wal")
    with Store(path) as store:
        aside = store.recovered_to
        assert (tmp_path / f"{aside.name}-wal").read_bytes() == b"not really a wal"
        assert list(store.epochs()) == []


def test_a_second_aside_in_the_same_second_gets_its_own_name(tmp_path):
    path = tmp_path / "vitals.db"
    names = set()
    for _ in range(2):
        Store(path).close()
        _garbage(path)
        with Store(path) as store:
            names.add(store.recovered_to.name)
    assert len(names) == 2


def test_a_foreign_wal_database_is_left_exactly_as_it_was(tmp_path):
    """Looking at another application's WAL file must not checkpoint or delete its WAL."""
    live = tmp_path / "live.db"
    conn = sqlite3.connect(live, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES ('only in the WAL')")
    path = tmp_path / "vitals.db"  # a copy taken while the other app runs: db + WAL
    shutil.copy(live, path)
    shutil.copy(tmp_path / "live.db-wal", tmp_path / "vitals.db-wal")
    conn.close()
    db, wal = path.read_bytes(), (tmp_path / "vitals.db-wal").read_bytes()
    with Store(path) as store:
        aside = store.recovered_to
    assert aside.read_bytes() == db
    assert (tmp_path / f"{aside.name}-wal").read_bytes() == wal
    with sqlite3.connect(aside) as conn:  # it opens as the other app left it
        assert conn.execute("SELECT x FROM t").fetchall() == [("only in the WAL",)]
    conn.close()


def test_odd_characters_in_the_path_are_fine(tmp_path):
    path = tmp_path / "night #1 ?100%.db"
    _our_store(path)
    with Store(path, readonly=True) as store:
        assert len(list(store.epochs())) == 50
    with Store(path) as store:
        assert store.recovered_to is None


def test_an_unwritable_path_is_refused_with_e260(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "folder", tmp_path / "file" / "v.db"):
        with pytest.raises(BedsideError) as err:
            Store(bad)
        assert err.value.code == "E260" and "—" in str(err.value)
    assert (tmp_path / "file").read_text() == "x"


def test_a_second_writer_is_refused_and_readers_are_not(tmp_path):
    path = tmp_path / "v.db"
    with Store(path) as writer:
        session(writer)
        with pytest.raises(BedsideError) as err:
            Store(path)
        assert err.value.code == "E267"
        with Store(path, readonly=True) as reader:
            assert reader.sessions()[0].id == 1
    Store(path).close()  # the lock went with the writer


def test_readonly_refuses_what_is_not_a_store(tmp_path):
    _other_app(tmp_path / "other.db")
    _text(tmp_path / "text.db")
    for name in ("missing.db", "other.db", "text.db"):
        with pytest.raises(BedsideError) as err:
            Store(tmp_path / name, readonly=True)
        assert err.value.code == "E263"
    assert not (tmp_path / "missing.db").exists()


def test_a_reader_of_a_damaged_store_gets_e263_and_moves_nothing(tmp_path):
    path = tmp_path / "vitals.db"
    _truncated(path)
    data = path.read_bytes()
    with pytest.raises(BedsideError) as err:
        with Store(path, readonly=True) as store:
            store.sessions()
            list(store.epochs())
    assert err.value.code == "E263"
    assert path.read_bytes() == data
    assert not [p for p in tmp_path.iterdir() if "corrupt" in p.name]  # readers never move


def test_a_full_disk_keeps_the_batch_and_a_retry_writes_it_once(tmp_path):
    """Simulated with max_page_count: the file cannot grow, as on a full disk."""
    path = tmp_path / "v.db"
    store = Store(path)
    session(store)
    store.add_epoch(epoch(0))
    store.commit()
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    for i in range(1, 2001):
        store.add_epoch(epoch(i))
    with pytest.raises(BedsideError) as err:
        store.commit()
    assert err.value.code == "E261" and "kept" in str(err.value)
    assert store.pending == 2000
    assert len(list(store.epochs())) == 1  # nothing of the batch went in
    store._conn.execute("PRAGMA max_page_count = 100000")  # space freed
    store.commit()
    assert [e.t_utc for _, e in store.epochs()] == [T0 + 30.0 * i for i in range(2001)]
    store.close_session(clean=True, t_utc=T0)
    store.close()


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_really_full_disk_gives_e261_and_nothing_is_lost(small_disk):
    path = small_disk / "v.db"
    store = Store(path)
    session(store)
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * (free - 12 * 4096))
    i = 0
    with pytest.raises(BedsideError) as err:
        while i < 100000:
            for _ in range(100):
                store.add_epoch(epoch(i))
                i += 1
            store.commit()
    assert err.value.code == "E261"
    committed = len(list(store.epochs()))
    assert committed + store.pending == i
    filler.unlink()
    store.commit()  # the retry once there is room
    assert [e.t_utc for _, e in store.epochs()] == [T0 + 30.0 * k for k in range(i)]
    assert store.integrity_check() == "ok"
    store.close()
