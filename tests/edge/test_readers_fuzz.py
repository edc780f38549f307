"""Fuzzing every recording parser (edge.readers): random bytes, and valid files (written by
scipy, pyedflib, wfdb and numpy) truncated, bit-flipped or with a chunk cut out, must
give a Recording or a RecordingError, never another exception, a hang or a huge
allocation. Inputs stay small (a few KiB), so a slow case means a loop, not a big file.
"""

from __future__ import annotations

import functools
import io
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.readers import RecordingError, read_bytes, wfdb

CODES = {f"E2{k:02d}" for k in range(1, 20)}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: A generous bound per input (a hang or a runaway parse, not speed: make bench times speed).
SLOW_S = 10.0


@functools.cache
def seeds() -> dict[str, bytes]:
    """Small valid files of every format, by a file name whose extension picks the parser."""
    rng = np.random.default_rng(11)
    x = rng.normal(0, 100, 120)
    out: dict[str, bytes] = {}
    for name, kwargs in [
        ("plain.mat", {"do_compression": False}),
        ("zipped.mat", {"do_compression": True}),
        ("level4.mat", {"format": "4"}),
    ]:
        buf = io.BytesIO()
        variables = {"Fs": 100.0, "bcg": x, "ecg": x.astype("i2"), "peaks_r": [[3, 50]]}
        if kwargs.get("format") != "4":
            variables.update(date="02.08.2019", cell=np.array([1, "a"], dtype=object))
        sio.savemat(buf, variables, **kwargs)
        out[name] = buf.getvalue()
    t = np.arange(40)
    out["timed.csv"] = "epoch,bcg,PulseOximeter_results\n" + "".join(
        f"{1473817327008 + 20 * i},{v:.2f},{90 + i % 3}\n" for i, v in zip(t, x, strict=False)
    )
    out["semi.csv"] = "Time (s);a;b\n" + "".join(
        f"{i * 0.004:.3f};{v:.1f};{-v:.1f}\n".replace(".", ",") for i, v in zip(t, x, strict=False)
    )
    out["plain.txt"] = "".join(f"{v:.3f} {v / 2:.3f}\n" for v in x[:40])
    out = {k: v.encode() if isinstance(v, str) else v for k, v in out.items()}
    buf = io.BytesIO()
    np.save(buf, np.column_stack([x, x]).astype(np.float32))
    out["cols.npy"] = buf.getvalue()
    buf = io.BytesIO()
    np.savez_compressed(buf, fs=np.int32(100), bcg=x, r_peaks=np.array([3, 50]))
    out["arch.npz"] = buf.getvalue()
    out.update(_edf_seeds(x))
    return out


def _edf_seeds(x: np.ndarray) -> dict[str, bytes]:
    from pyedflib import highlevel

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind in [("plus.edf", 1), ("plus.bdf", 3), ("plain.edf", 0)]:
            path = Path(tmp) / name
            headers = [
                highlevel.make_signal_header("BCG", "uV", 20, -300, 300),
                highlevel.make_signal_header("Resp", "a.u.", 5, -300, 300),
            ]
            header = highlevel.make_header(startdate=datetime(2024, 3, 1, 22, 15, 30))
            if kind in (1, 3):
                header["annotations"] = [[0.5, 0, "R"], [1.25, -1, "R"]]
            highlevel.write_edf(str(path), [x[:60], x[:15]], headers, header, file_type=kind)
            out[name] = path.read_bytes()
    return out


@functools.cache
def wfdb_seed() -> tuple[bytes, bytes]:
    import wfdb as wfdb_lib

    rng = np.random.default_rng(12)
    with tempfile.TemporaryDirectory() as tmp:
        wfdb_lib.wrsamp(
            "rec",
            fs=100,
            units=["mV", "mV"],
            sig_name=["BCG", "ECG"],
            p_signal=rng.normal(0, 1, (31, 2)),
            fmt=["212", "212"],
            base_datetime=datetime(2023, 5, 6, 7, 8, 9),
            write_dir=tmp,
        )
        return (Path(tmp) / "rec.hea").read_bytes(), (Path(tmp) / "rec.dat").read_bytes()


def check(call, *args, **kwargs) -> None:
    """The call gives a sane Recording or a well-formed RecordingError, quickly."""
    start = time.perf_counter()
    try:
        rec = call(*args, **kwargs)
    except RecordingError as exc:
        assert exc.code in CODES
        message = str(exc)
        assert " — " in message and "\n" not in message, message
    else:
        assert rec.signal.ndim == 1 and rec.signal.dtype == np.float64 and rec.signal.size > 0
        assert np.isfinite(rec.fs) and rec.fs > 0
        assert rec.channel in rec.channels
    took = time.perf_counter() - start
    assert took < SLOW_S, f"{took:.1f} s on one input"


def mutate(data: bytes, draw) -> bytes:
    """A truncation, a few flipped bytes, or a cut-out chunk of ``data``."""
    kind = draw(st.sampled_from(["truncate", "flip", "cut", "flip+truncate"]))
    out = bytearray(data)
    if "flip" in kind:
        for _ in range(draw(st.integers(1, 12))):
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= draw(st.integers(1, 255))
    if "truncate" in kind:
        out = out[: draw(st.integers(0, len(out)))]
    if kind == "cut":
        i = draw(st.integers(0, len(out)))
        out = out[:i] + out[i + draw(st.integers(1, 64)) :]
    return bytes(out)


SUFFIXES = [".mat", ".csv", ".txt", ".npy", ".npz", ".edf", ".bdf", ".unknown"]


def test_seeds_are_valid():
    for name, data in seeds().items():
        rec = read_bytes(
            data, name, fs=100 if name.endswith(".npy") or name.endswith(".txt") else None
        )
        assert rec.signal.size > 0, name
    header, dat = wfdb_seed()
    assert wfdb.parse(header, {"rec.dat": dat}.__getitem__, source="rec.hea").signal.size == 31


@FUZZ
@given(
    data=st.binary(max_size=2048),
    suffix=st.sampled_from(SUFFIXES),
    fs=st.sampled_from([None, 50.0]),
)
def test_random_bytes(data, suffix, fs):
    check(read_bytes, data, f"x{suffix}", fs=fs)


@FUZZ
@given(name=st.sampled_from(sorted(seeds())), data=st.data())
def test_damaged_files(name, data):
    damaged = mutate(seeds()[name], data.draw)
    fs = 100.0 if name.endswith((".npy", ".txt")) else None
    check(read_bytes, damaged, name, fs=fs)


@FUZZ
@given(
    prefix=st.sampled_from([b"MATLAB 5.0", b"\x93NUMPY\x01\x00", b"PK\x03\x04", b"0       "]),
    tail=st.binary(max_size=1024),
)
def test_magic_then_garbage(prefix, tail):
    check(read_bytes, prefix + tail, "x.unknown")


@FUZZ
@given(data=st.data(), which=st.sampled_from(["header", "signal", "both"]))
def test_wfdb_damaged(data, which):
    header, dat = wfdb_seed()
    if which in ("header", "both"):
        header = mutate(header, data.draw)
    if which in ("signal", "both"):
        dat = mutate(dat, data.draw)

    def read_file(name: str) -> bytes:
        if name != "rec.dat":
            raise RecordingError("E202", f"{name}: no such file — check the record")
        return dat

    check(wfdb.parse, header, read_file, source="rec.hea")


@FUZZ
@given(
    text=st.text(alphabet="0123456789.,;\t -e+nai\n#\"'tmsx", max_size=400),
    fs=st.sampled_from([None, 10.0]),
)
def test_text_like_csv(text, fs):
    """Text made of the characters numbers and delimiters are made of."""
    check(read_bytes, text.encode(), "x.csv", fs=fs)


@pytest.mark.parametrize("name", ["plain.mat", "zipped.mat", "arch.npz", "plus.edf"])
def test_every_truncation_of_a_small_file(name):
    """Exhaustive rather than sampled: each prefix of the file."""
    data = seeds()[name]
    step = max(1, len(data) // 300)
    for n in range(0, len(data), step):
        check(read_bytes, data[:n], name)
