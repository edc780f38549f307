"""Recording readers (edge.readers): real recordings, every format against its reference
library (scipy.io, pyedflib, wfdb; used here only, never by the unit), CSV variants and
the errors a user meets. Fuzzing is in test_readers_fuzz.py.

Real recordings: dorsoventral BCG recordings, RWTH MedIT (MIT licence), and the sample
recording of Sadek et al. (MIT licence): tests/data/*.npz always, ../shared/data when it
is beside the checkout (those tests skip otherwise).
"""

from __future__ import annotations

import io
import struct
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from edge.readers import RecordingError, read_bytes, read_recording
from edge.readers.mat import load_mat

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared" / "data"
AYDIN_MAT = SHARED / "bcg-aydin" / "rec_proc_Aydin-Left-1.mat"
GOODBCG_MAT = SHARED / "bcg-aydin" / "goodbcg1.mat"
SADEK_CSV = SHARED / "bcg-sadek" / "sample_data.csv"


def needs(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path.name} not found: ../shared/data is not beside this checkout")


def code_of(call, *args, **kwargs) -> str:
    """The code of the RecordingError a call raises, checking the message's form."""
    with pytest.raises(RecordingError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert " — " in message and "\n" not in message, message
    return info.value.code


# ---------------------------------------------------------------- real recordings


def test_repo_npz_recordings():
    aydin = read_recording(DATA / "aydin_left1.npz")
    assert aydin.channel == "bcg" and aydin.fs == 1000.0
    assert aydin.channels == ("bcg", "imp_env", "ecg")
    assert aydin.signal.dtype == np.float64 and aydin.signal.shape == (19799,)
    assert aydin.duration_s == pytest.approx(19.799)
    with np.load(DATA / "aydin_left1.npz") as z:
        np.testing.assert_array_equal(aydin.reference["r_peaks"], z["r_peaks"])
        np.testing.assert_array_equal(
            read_recording(DATA / "aydin_left1.npz", "imp_env").signal, z["imp_env"]
        )
    assert aydin.source == "aydin_left1.npz" and aydin.start_time is None

    sadek = read_recording(DATA / "sadek_sample.npz")
    assert sadek.channel == "raw" and sadek.fs == 50.0 and sadek.signal.size == 55850
    assert sadek.start_time == datetime(2016, 9, 14, 1, 42, 7, 8000, tzinfo=UTC)
    assert sadek.reference["pulse_ox_bpm"].shape == (55850,)
    assert sadek.reference["pulse_ox_bpm"].min() == 89


def test_aydin_mat_matches_scipy_and_the_repo_copy():
    needs(AYDIN_MAT)
    data = AYDIN_MAT.read_bytes()
    ours = load_mat(data, AYDIN_MAT.name)
    ref = sio.loadmat(io.BytesIO(data), mat_dtype=True)
    for name, value in ref.items():
        if name.startswith("__"):
            continue
        if value.dtype == object:  # cell arrays of channel names and comments
            assert ours.skipped[name] == "a cell array"
            continue
        assert ours.variables[name].dtype == value.dtype, name
        np.testing.assert_array_equal(ours.variables[name], value)
    rec = read_recording(AYDIN_MAT)
    assert rec.channel == "bcg" and rec.fs == 1000.0
    assert set(rec.channels) == {
        "C_coupling",
        "C_filtered",
        "bcg",
        "bcg_filtered",
        "ecg",
        "imp_env",
    }
    with np.load(DATA / "aydin_left1.npz") as z:
        np.testing.assert_array_equal(rec.signal, z["bcg"])
        np.testing.assert_array_equal(rec.reference["r_peaks"], z["r_peaks"])  # 1-based -> 0-based
        np.testing.assert_array_equal(read_recording(AYDIN_MAT, "imp_env").signal, z["imp_env"])
    assert "/" not in rec.source


def test_goodbcg_mat():
    needs(GOODBCG_MAT)
    rec = read_recording(GOODBCG_MAT)
    assert (rec.channel, rec.fs, rec.signal.size) == ("data", 10000.0, 300000)
    ref = sio.loadmat(GOODBCG_MAT)
    np.testing.assert_array_equal(rec.signal, ref["data"].ravel())


def test_sadek_csv_matches_the_repo_copy():
    needs(SADEK_CSV)
    rec = read_recording(SADEK_CSV)
    assert rec.channel == "raw_data_sleepMat" and rec.channels == ("raw_data_sleepMat",)
    assert rec.fs == 50.0 and rec.start_time == datetime(2016, 9, 14, 1, 42, 7, 8000, tzinfo=UTC)
    with np.load(DATA / "sadek_sample.npz") as z:
        np.testing.assert_array_equal(rec.signal, z["raw"])
        np.testing.assert_array_equal(rec.reference["pulse_ox_bpm"], z["pulse_ox_bpm"])


# ------------------------------------------------------------------------ MAT


def _savemat(variables: dict, **kwargs) -> bytes:
    buf = io.BytesIO()
    sio.savemat(buf, variables, **kwargs)
    return buf.getvalue()


DTYPES = ("f8", "f4", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8")


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("oned_as", ["row", "column"])
def test_mat_v5_parity_with_scipy(rng, compress, oned_as):
    variables: dict[str, object] = {}
    for dt in DTYPES:
        variables[f"m_{dt}"] = rng.normal(0, 100, (7, 3)).astype(dt)
        variables[f"v_{dt}"] = rng.normal(0, 100, 11).astype(dt)
    variables.update(
        flag=rng.normal(size=5) > 0,
        text="hello",
        rows=np.array(["ab", "cd"]),
        z=rng.normal(size=3) + 1j * rng.normal(size=3),
        empty=np.zeros((0, 3)),
        st={"x": 1},
        cell=np.array([1, "a"], dtype=object),
    )
    data = _savemat(variables, do_compression=compress, oned_as=oned_as)
    ours = load_mat(data)
    ref = sio.loadmat(io.BytesIO(data))  # stored as their class: scipy's dtypes are MATLAB's
    assert ours.skipped == {"st": "a struct", "cell": "a cell array"}
    for name, value in ref.items():
        if name.startswith("__") or name in ours.skipped:
            continue
        mine = ours.variables[name]
        assert mine.shape == value.shape, name
        if name == "flag":  # logical: scipy gives uint8, we give bool
            assert mine.dtype == bool
        else:
            assert mine.dtype == value.dtype, name
        np.testing.assert_array_equal(mine, value)


def test_mat_v4_parity_with_scipy(rng):
    variables = {
        "a": rng.normal(size=(4, 3)),
        "v": np.arange(9, dtype="i2"),
        "s": "hi",
        "fs": 200.0,
    }
    data = _savemat(variables, format="4")
    ours = load_mat(data)
    for name, value in sio.loadmat(io.BytesIO(data), mat_dtype=True).items():
        if not name.startswith("__"):
            np.testing.assert_array_equal(ours.variables[name], value)
    rec = read_bytes(data, "v4.mat")
    assert rec.channel == "v" and rec.fs == 200.0


def _mat5(order: str, variables: dict[str, np.ndarray]) -> bytes:
    """A minimal uncompressed level-5 MAT-file of double matrices in either byte order."""

    def element(typ: int, payload: bytes) -> bytes:
        return struct.pack(order + "II", typ, len(payload)) + payload + b"\0" * (-len(payload) % 8)

    out = b"MATLAB 5.0 MAT-file, written by a test".ljust(116) + b"\0" * 8
    out += struct.pack(order + "H", 0x0100) + (b"IM" if order == "<" else b"MI")
    for name, arr in variables.items():
        arr = np.atleast_2d(arr)
        body = element(6, struct.pack(order + "II", 6, 0))
        body += element(5, struct.pack(order + "ii", *arr.shape))
        body += element(1, name.encode())
        body += element(9, arr.astype(order + "f8").tobytes(order="F"))
        out += struct.pack(order + "II", 14, len(body)) + body
    return out


@pytest.mark.parametrize("order", ["<", ">"])
def test_mat_either_byte_order(rng, order):
    x = rng.normal(size=(50, 2))
    data = _mat5(order, {"fs": np.array(100.0), "x": x})
    np.testing.assert_array_equal(sio.loadmat(io.BytesIO(data))["x"], x)  # the writer is right
    np.testing.assert_array_equal(load_mat(data).variables["x"], x)
    rec = read_bytes(data, "be.mat", channel="x[1]")
    assert rec.channels == ("x[0]", "x[1]") and rec.fs == 100.0
    np.testing.assert_array_equal(rec.signal, x[:, 1])


def test_mat_channels_rates_and_refusals(rng):
    x = rng.normal(size=1000)
    data = _savemat({"Fs": 250, "bcg_filtered": x, "bcg": 2 * x, "peaks_r": [[1, 10, 99]]})
    rec = read_bytes(data, "r.mat")
    assert rec.channel == "bcg" and rec.channels == ("bcg_filtered", "bcg")
    np.testing.assert_array_equal(rec.reference["r_peaks"], [0, 9, 98])
    assert read_bytes(data, "r.mat", fs=250.5).fs == 250.0  # agrees within 1 %: the file's rate
    assert code_of(read_bytes, data, "r.mat", fs=500) == "E209"
    assert code_of(read_bytes, data, "r.mat", channel="ecg") == "E206"
    assert read_bytes(data, "r.mat", channel="BCG").channel == "bcg"  # unique, case folded
    timed = _savemat({"bcg": x, "time": np.arange(1000) / 500.0})
    assert read_bytes(timed, "t.mat").fs == 500.0
    assert (
        code_of(
            read_bytes, _savemat({"Fs": 250, "bcg": x, "time": np.arange(1000) / 500.0}), "c.mat"
        )
        == "E209"
    )
    assert code_of(read_bytes, _savemat({"bcg": x}), "n.mat") == "E208"
    assert read_bytes(_savemat({"bcg": x}), "n.mat", fs=100).fs == 100.0
    assert code_of(read_bytes, _savemat({"z": x + 1j, "fs": 1}), "z.mat", channel="z") == "E205"
    assert code_of(read_bytes, _savemat({"s": {"a": 1}, "fs": 1}), "s.mat") == "E207"
    assert code_of(read_bytes, _savemat({"fs": 1.0, "x": np.zeros(0)}), "e.mat") == "E203"


def test_mat_v73_is_refused_clearly():
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116) + b"\0" * 8
    data = (
        header + struct.pack("<H", 0x0200) + b"IM" + b"\0" * 384 + b"\x89HDF\r\n\x1a\n" + b"\0" * 64
    )
    with pytest.raises(RecordingError, match="v7.3") as info:
        read_bytes(data, "big.mat")
    assert info.value.code == "E205"


# ------------------------------------------------------------------------ EDF


def _write_edf(path: Path, file_type: int) -> tuple[list[np.ndarray], list[dict], dict]:
    from pyedflib import highlevel

    rng = np.random.default_rng(5)
    signals = [rng.normal(0, 50, 2500), rng.normal(0, 1, 1000), 3 * np.sin(np.arange(500) / 10)]
    headers = [
        highlevel.make_signal_header("BCG", "uV", 250, -300, 300),
        highlevel.make_signal_header("ECG", "mV", 100, -5, 5, -2048, 2047),
        highlevel.make_signal_header("Resp", "a.u.", 50, -3.5, 3.5),
    ]
    header = highlevel.make_header(startdate=datetime(2024, 3, 1, 22, 15, 30))
    if file_type in (1, 3):  # EDF+, BDF+
        header["annotations"] = [[1.5, 0, "R"], [2.25, -1, "R"], [5.0, 0.5, "Lights off"]]
    highlevel.write_edf(str(path), signals, headers, header, file_type=file_type)
    return highlevel.read_edf(str(path))


@pytest.mark.parametrize(
    ("suffix", "file_type"), [(".edf", 0), (".edf", 1), (".bdf", 2), (".bdf", 3)]
)
def test_edf_parity_with_pyedflib(tmp_path, suffix, file_type):
    path = tmp_path / f"night{suffix}"  # pyedflib file types: EDF, EDF+, BDF, BDF+
    signals, headers, header = _write_edf(path, file_type)
    rec = read_recording(path)
    assert rec.channel == "BCG" and rec.channels == ("BCG", "ECG", "Resp")
    assert rec.start_time == header["startdate"] and rec.start_time.tzinfo is None
    for sig, head in zip(signals, headers, strict=True):
        got = read_recording(path, head["label"])
        assert got.fs == head["sample_frequency"] and got.unit == head["dimension"]
        np.testing.assert_array_equal(got.signal, sig)  # the same scaling, bit for bit
    if file_type in (1, 3):
        onsets = np.array([onset for onset, _, text in header["annotations"] if text == "R"])
        np.testing.assert_array_equal(rec.reference["annotation:R"], np.round(onsets * 250))
        np.testing.assert_array_equal(rec.reference["annotation:Lights off"], [1250])
    else:
        assert rec.reference == {}
    assert code_of(read_recording, path, "Resp", fs=100) == "E209"
    data = path.read_bytes()
    assert code_of(read_bytes, data[:-7], path.name) == "E204"  # a record cut short
    edited = data[:236] + b"-1      " + data[244:]  # still being written: count the records
    assert read_bytes(edited, path.name).signal.size == 2500


def test_edf_plus_discontinuous(tmp_path):
    _write_edf(tmp_path / "d.edf", 1)
    data = (tmp_path / "d.edf").read_bytes()
    assert data[192:197] == b"EDF+C"
    contiguous = data[:192] + b"EDF+D" + data[197:]
    assert read_bytes(contiguous, "d.edf").signal.size == 2500  # records back to back: fine
    assert contiguous.count(b"+3\x14\x14") == 1
    gap = contiguous.replace(b"+3\x14\x14", b"+9\x14\x14")  # record 4 starts 6 s late
    with pytest.raises(RecordingError, match="gap before data record 4") as info:
        read_bytes(gap, "d.edf")
    assert info.value.code == "E205"


# ----------------------------------------------------------------------- WFDB


@pytest.mark.parametrize("fmt", ["16", "212", "80", "24", "32"])
def test_wfdb_parity_with_wfdb(tmp_path, rng, fmt):
    import wfdb

    p = np.column_stack(
        [rng.normal(0, 1, 1001), rng.normal(0, 0.5, 1001), np.linspace(-2, 2, 1001)]
    )
    p[10:15, 1] = np.nan
    wfdb.wrsamp(
        "rec",
        fs=360,
        units=["mV", "mV", "V"],
        sig_name=["ECG", "BCG", "resp"],
        p_signal=p,
        fmt=[fmt] * 3,
        base_datetime=datetime(2023, 5, 6, 7, 8, 9),
        write_dir=str(tmp_path),
    )
    ref = wfdb.rdrecord(str(tmp_path / "rec"))
    for i, name in enumerate(["ECG", "BCG", "resp"]):
        got = read_recording(tmp_path / "rec.hea", name)
        np.testing.assert_array_equal(got.signal, ref.p_signal[:, i])
        assert got.fs == 360.0 and got.unit == ref.units[i]
    rec = read_recording(tmp_path / "rec")  # the record name, as PhysioNet users write it
    assert rec.channel == "BCG" and np.isnan(rec.signal[10:15]).all()
    assert rec.start_time == datetime(2023, 5, 6, 7, 8, 9)
    assert read_recording(tmp_path / "rec.dat").channel == "BCG"


def test_wfdb_frames_offsets_and_other_formats(tmp_path, rng):
    import wfdb

    e = [rng.normal(0, 1, 500), rng.normal(0, 1, 1000)]
    wfdb.wrsamp(
        "spf",
        fs=100,
        units=["mV", "mV"],
        sig_name=["a", "b"],
        e_p_signal=e,
        samps_per_frame=[1, 2],
        fmt=["16", "16"],
        adc_gain=[100.0, 200.0],
        baseline=[0, 5],
        write_dir=str(tmp_path),
    )
    ref = wfdb.rdrecord(str(tmp_path / "spf"), smooth_frames=False)
    for i, name in enumerate("ab"):
        got = read_recording(tmp_path / "spf.hea", name)
        assert got.fs == 100.0 * (i + 1)
        np.testing.assert_array_equal(got.signal, ref.e_p_signal[i])

    wfdb.wrsamp(
        "c16",
        fs=250,
        units=["mV", "mV"],
        sig_name=["x", "y"],
        p_signal=rng.normal(0, 1, (301, 2)),
        fmt=["16", "16"],
        write_dir=str(tmp_path),
    )
    d = np.fromfile(tmp_path / "c16.dat", "<i2")
    header = (tmp_path / "c16.hea").read_text()
    variants = {
        "61": d.astype(">i2").tobytes(),
        "160": (d.astype(np.int32) + 32768).astype("<u2").tobytes(),
    }
    for fmt, blob in variants.items():  # formats wfdb cannot write: converted, read by wfdb
        (tmp_path / f"c{fmt}.dat").write_bytes(b"\x07" * 6 + blob)  # behind a 6-byte offset
        text = header.replace("c16.dat 16", f"c{fmt}.dat {fmt}+6").replace("c16 ", f"c{fmt} ", 1)
        (tmp_path / f"c{fmt}.hea").write_text(text)
        ref = wfdb.rdrecord(str(tmp_path / f"c{fmt}"))
        for i, name in enumerate("xy"):
            np.testing.assert_array_equal(
                read_recording(tmp_path / f"c{fmt}.hea", name).signal, ref.p_signal[:, i]
            )


def test_wfdb_refusals(tmp_path):
    def write(name: str, header: str, dat: bytes = b"\0" * 40) -> Path:
        (tmp_path / f"{name}.dat").write_bytes(dat)
        (tmp_path / f"{name}.hea").write_text(header)
        return tmp_path / f"{name}.hea"

    assert code_of(read_recording, write("a", "a 1 250 10\na.dat 310 200 12 0 0 0 0 x\n")) == "E205"
    assert code_of(read_recording, write("b", "b/2 1 250 10\nb_1 5\nb_2 5\n")) == "E205"
    assert (
        code_of(read_recording, write("c", "c 1 250 10\n../c.dat 16 200 12 0 0 0 0 x\n")) == "E205"
    )
    assert code_of(read_recording, write("d", "d 1 250 10\nmissing.dat 16\n")) == "E202"
    assert code_of(read_recording, write("e", "e 1 250 100000000000\ne.dat 16\n")) == "E204"
    assert code_of(read_recording, write("f", "f 2 250 10\nf.dat 16\n")) == "E204"
    assert code_of(read_recording, tmp_path / "nothing.dat") == "E202"  # no header beside it


# ------------------------------------------------------------------------ CSV


def csv_read(text: str, name: str = "r.csv", **kwargs):
    return read_bytes(text.encode(), name, **kwargs)


@pytest.mark.parametrize(
    ("text", "fs", "start"),
    [
        ("time,bcg\n0.000,1\n0.004,2\n0.008,3\n0.012,4\n", 250.0, None),
        ("t_ms,bcg\n0,1\n4,2\n8,3\n12,4\n", 250.0, None),
        ("Time (s);bcg\n0,000;1,5\n0,004;2,5\n0,008;3,5\n0,012;4,5\n", 250.0, None),
        ("epoch\tbcg\n1700000000000\t1\n1700000000002\t2\n1700000000004\t3\n", 500.0, 1.7e9),
        ("epoch,bcg\n1700000000.00,1\n1700000000.01,2\n1700000000.02,3\n", 100.0, 1.7e9),
        (
            "timestamp,bcg\n1700000000000000,1\n1700000000004000,2\n1700000000008000,3\n",
            250.0,
            1.7e9,
        ),
        ("0 1\n4 2\n8 3\n12 4\n", 250.0, None),  # no header: a regular first column is time
    ],
)
def test_csv_time_columns(text, fs, start):
    rec = csv_read(text, "r.txt")
    assert rec.fs == fs and rec.signal.size >= 3
    assert rec.channels == (("bcg",) if "bcg" in text else ("ch1",))
    if start is None:
        assert rec.start_time is None
    else:
        assert rec.start_time == datetime.fromtimestamp(start, tz=UTC)
    np.testing.assert_allclose(rec.signal[:2], [1.5, 2.5] if ";" in text else [1, 2])


def test_csv_forms():
    rec = csv_read("\ufeff# exported by a logger\na,b,c,\n1,2,3,\n4,,6,\n\n7,nan,9,\n", fs=100)
    assert rec.channels == ("a", "b", "c") and rec.channel == "a"
    np.testing.assert_array_equal(
        csv_read("a,b\n1,2\n3,\n5,NA\n", channel="b", fs=1).signal[1:], [np.nan] * 2
    )
    assert csv_read('"time, s","bcg"\r\n0,1\r\n0.5,2\r\n1.0,3\r\n').fs == 2.0
    assert csv_read("1\n2\n3\n", fs=10).channels == ("ch0",)
    two = csv_read("1 5\n2 6\n2 7\n", fs=10)  # a first column that repeats is not time
    assert two.channels == ("ch0", "ch1")
    mixed = csv_read("x;y\n1,5;2\n3;4\n", fs=1, channel="x")  # semicolon: decimal comma
    np.testing.assert_array_equal(mixed.signal, [1.5, 3])


def test_csv_errors_name_the_line():
    with pytest.raises(RecordingError, match="line 3, column 'b'") as info:
        csv_read("a,b\n1,2\n3,x7\n", fs=1)
    assert info.value.code == "E211"
    with pytest.raises(RecordingError, match="line 3 has 1 fields") as info:
        csv_read("a,b\n1,2\n3\n", fs=1)
    assert info.value.code == "E204"
    with pytest.raises(RecordingError, match="line 4") as info:  # a gap of one sample
        csv_read("time,bcg\n0,1\n4,2\n12,3\n16,4\n")
    assert info.value.code == "E210"
    assert code_of(csv_read, "time,bcg\n0,1\n4,2\n4,3\n") == "E210"
    assert code_of(csv_read, "bcg\n1\n2\n") == "E208"
    assert code_of(csv_read, "time,bcg\n0,1\n4,2\n8,3\n", fs=100) == "E209"
    assert csv_read("time,bcg\n0,1\n4,2\n8,3\n", fs=250).fs == 250.0
    assert code_of(csv_read, "a,b\n") == "E203"
    assert code_of(csv_read, "# only a comment\n\n") == "E203"
    assert code_of(read_bytes, b"1,2\n\x00\x01", "bin.csv") == "E204"


# ---------------------------------------------------------------------- NumPy


def _npy(arr: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, **kwargs)
    return buf.getvalue()


def test_npy_and_npz(rng):
    x = rng.normal(size=(300, 3)).astype(np.float32)
    rec = read_bytes(_npy(x), "x.npy", fs=100, channel="ch2")
    assert rec.channels == ("ch0", "ch1", "ch2")
    np.testing.assert_array_equal(rec.signal, x[:, 2])
    np.testing.assert_array_equal(
        read_bytes(_npy(x.T), "x.npy", fs=100, channel="ch2").signal, x[:, 2]
    )
    np.testing.assert_array_equal(
        read_bytes(_npy(np.asfortranarray(x)), "f.npy", fs=1).signal, x[:, 0]
    )
    assert code_of(read_bytes, _npy(x), "x.npy") == "E208"
    assert code_of(read_bytes, _npy(np.array([{}, 1]), allow_pickle=True), "o.npy", fs=1) == "E205"
    assert code_of(read_bytes, _npy(np.zeros((2, 2, 2))), "c.npy", fs=1) == "E207"
    buf = io.BytesIO()
    np.savez_compressed(buf, fs=np.int32(200), piezo=x[:, 0], r_peaks=np.array([3, 50]))
    rec = read_bytes(buf.getvalue(), "n.npz")
    assert rec.fs == 200.0 and rec.channel == "piezo"
    np.testing.assert_array_equal(rec.reference["r_peaks"], [3, 50])  # numpy: already 0-based
    rec = read_bytes(_npy(x[:, 0]), "unknown.bin", fs=5)  # sniffed from the NUMPY magic
    assert rec.channel == "ch0"


# --------------------------------------------------------------------- errors


def test_file_errors_never_show_directories(tmp_path):
    secret = tmp_path / "Jane Doe"
    secret.mkdir()
    for path, code in [
        (secret / "night.csv", "E202"),
        (secret, "E202"),
        (secret / "empty.mat", "E203"),
        (secret / "notes.docx", "E201"),
    ]:
        if code in ("E203", "E201"):
            path.write_bytes(b"" if code == "E203" else b"\x01\x02hello")
        with pytest.raises(RecordingError) as info:
            read_recording(path)
        assert info.value.code == code
        assert "Jane" not in str(info.value) or path == secret  # a directory is named by itself
        assert str(tmp_path) not in str(info.value)


def _npy_claiming(shape: str) -> bytes:
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}".ljust(117) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 64


def test_absurd_sizes_fail_without_allocating(tmp_path):
    """Headers claiming gigabytes in a few hundred bytes: E204, and little memory used."""
    mat = _mat5("<", {"x": np.zeros((2, 2))})
    mat = mat.replace(struct.pack("<ii", 2, 2), struct.pack("<ii", 10**9, 10**9))
    _write_edf(tmp_path / "e.edf", 1)
    edf = (tmp_path / "e.edf").read_bytes()
    edf_records = edf[:236] + b"99999999" + edf[244:]
    ns = int(edf[252:256])
    at = 256 + ns * 216  # samples per record of the first signal
    edf_samples = edf[:at] + b"99999999" + edf[at + 8 :]
    cases = [
        (mat, "m.mat"),
        (_npy_claiming("(1000000000000,)"), "n.npy"),
        (_npy_claiming("(100000, 100000, 100000)"), "n.npy"),
        (edf_records, "e.edf"),
        (edf_samples, "e.edf"),
    ]
    tracemalloc.start()
    try:
        for data, name in cases:
            assert code_of(read_bytes, data, name, fs=1 if name == "n.npy" else None) == "E204"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024**2
