"""Replay inputs that used to escape the coded-error contract (issue 16, finding 4): each gets
one coded line or a clean session, never a traceback, a hang or a huge allocation, and a
refused file writes nothing."""

from __future__ import annotations

import os
import sqlite3
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from edge.readers import RecordingError, read_bytes, read_recording

ROOT = Path(__file__).resolve().parents[2]


def _bedside(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``bedside run --source replay:... --speed max`` in a child (a hang fails by timeout)."""
    argv = [sys.executable, "-m", "edge", "run", "--speed", "max", "--db", "v.db", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(argv, cwd=cwd, capture_output=True, timeout=120, env=env)


def _one_coded_line(done: subprocess.CompletedProcess, code: str) -> str:
    err = done.stderr.decode("utf-8", "replace").strip()
    assert done.returncode == 1, err
    assert err.startswith(f"error {code}: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def _sessions(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT source, ended_utc, clean FROM sessions").fetchall()


def _events(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT kind, detail FROM events ORDER BY id").fetchall()


def test_samples_beyond_the_dsp_range_refuse_the_file_and_write_nothing(tmp_path) -> None:
    np.savez(tmp_path / "huge.npz", bcg=np.full(75000, 1e16), fs=250.0)
    done = _bedside("--source", "replay:huge.npz", cwd=tmp_path)
    assert "no usable sample" in _one_coded_line(done, "E203")
    assert not (tmp_path / "v.db").exists()


def test_one_absurd_sample_is_a_gap_in_a_clean_session(tmp_path) -> None:
    x = np.random.default_rng(1).normal(size=75000)
    x[40000] = 1e20
    np.savez(tmp_path / "one.npz", bcg=x, fs=250.0)
    done = _bedside("--source", "replay:one.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [(source, ended, clean)] = _sessions(tmp_path / "v.db")
    assert ended is not None and clean == 1
    events = _events(tmp_path / "v.db")
    assert ("sensor_gap", "1 sample missing") in events
    assert [k for k, _ in events].count("shutdown") == 1


def test_a_file_name_that_is_not_utf8_is_stored_and_printed(tmp_path) -> None:
    name = os.fsdecode(b"caf\xe9.npz")
    np.savez(tmp_path / name, bcg=np.random.default_rng(2).normal(size=25000), fs=250.0)
    done = _bedside("--source", f"replay:{name}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [(source, ended, clean)] = _sessions(tmp_path / "v.db")
    assert source == "replay:caf\\xe9.npz" and clean == 1
    assert read_recording(tmp_path / name).source == "caf\\xe9.npz"


def test_a_device_or_a_fifo_is_refused_at_once(tmp_path) -> None:
    (tmp_path / "zero.npy").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.csv")
    for name in ("zero.npy", "fifo.csv"):
        done = _bedside("--source", f"replay:{name}", "--fs", "250", cwd=tmp_path)
        assert "not a regular file" in _one_coded_line(done, "E202")
    assert not (tmp_path / "v.db").exists()


def _mat_with_compressed(inner: bytes) -> bytes:
    """A level-5 MAT-file holding one miCOMPRESSED element of ``inner`` (already zlib)."""
    header = b"MATLAB 5.0 MAT-file, written by a test".ljust(116) + b"\0" * 8
    header += struct.pack("<H", 0x0100) + b"IM"
    return header + struct.pack("<II", 15, len(inner)) + inner


def _zeros_declared_as(declared: int, actual: int) -> bytes:
    """A zlib stream of ``actual`` bytes whose first 8 are a miMATRIX tag claiming
    ``declared`` bytes of data after it."""
    z = zlib.compressobj(9)
    out = z.compress(struct.pack("<II", 14, declared))
    block = bytes(1 << 20)
    left = actual - 8
    while left > 0:
        out += z.compress(block[: min(left, len(block))])
        left -= len(block)
    return out + z.flush()


def _peak_mib(call) -> tuple[float, BaseException | None]:
    tracemalloc.start()
    try:
        call()
        error = None
    except RecordingError as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return peak, error


def test_a_mat_zlib_bomb_is_refused_before_it_is_inflated() -> None:
    """3 GB declared (and 256 MiB of zeros actually in the stream, ~250 KB compressed): E212
    without inflating it; 256 MiB in a stream that declares 1 KB: E204, also without."""
    bomb = _mat_with_compressed(_zeros_declared_as(3 * 10**9, 256 * 2**20))
    assert len(bomb) < 1_000_000
    peak, error = _peak_mib(lambda: read_bytes(bomb, "bomb.mat"))
    assert error is not None and error.code == "E212" and "declares" in str(error)
    assert peak < 16, f"{peak:.0f} MiB allocated"
    liar = _mat_with_compressed(_zeros_declared_as(1024, 256 * 2**20))
    peak, error = _peak_mib(lambda: read_bytes(liar, "liar.mat"))
    assert error is not None and error.code == "E204"
    assert peak < 16, f"{peak:.0f} MiB allocated"


@pytest.mark.parametrize("cut", [10, 100])
def test_a_cut_short_compressed_element_is_damaged(cut: int) -> None:
    whole = _zeros_declared_as(4096, 4096 + 8)
    with pytest.raises(RecordingError) as info:
        read_bytes(_mat_with_compressed(whole[:cut]), "cut.mat")
    assert info.value.code == "E204"
