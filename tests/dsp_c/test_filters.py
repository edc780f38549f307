"""dsp_c filters: Butterworth band-pass design and streaming SOS filtering vs scipy.

What is reached (scipy 1.17.1, numpy 1.26.4, x86-64):
* butter_bandpass == scipy.signal.butter(..., output='sos') row by row within
  rtol=1e-9, atol=1e-12*max|row| over the grid below; the worst seen is ~1e-12 relative
  (bit-identical when numpy's tan() is glibc's, see dsp_c/src/butter.c). For bands symmetric
  about fs/4, scipy's section order is decided by rounding noise (mirrored pole pairs have
  equal magnitude), so there the same sections are checked in any order (25 of the 96
  symmetric designs below come in another order).
* extreme bands (test_butter_extreme_bands_within_documented_tolerance): relative width
  (hi - lo)/lo below ~1e-6: up to 3e-7 seen; a high edge d * fs below Nyquist: up to
  ~7e-17 / d seen (1e-10 at d = 1e-6, 3e-8 at d = 1e-9; O(1) within a few ulps of fs/2).
* SosFilter.process == scipy.signal.sosfilt bit for bit on x86-64 (relative RMS error 0).
"""

from __future__ import annotations

import itertools
import platform
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st

import dsp_c
from dsp_c import DspError, DspValueError, SosFilter, butter_bandpass
from dsp_c._bcg_dsp import lib
from dsp_c._status import check, error_code, strerror

ROOT = Path(__file__).resolve().parents[2]

ORDERS = range(1, 9)
FS_VALUES = (50.0, 250.0, 1000.0)


def _bands(fs: float) -> list[tuple[float, float]]:
    """Narrow, wide, near-Nyquist, near-zero and typical BCG bands (not symmetric)."""
    nyq = fs / 2
    return [
        (0.5, 10.0),  # BCG heart band
        (0.1, 0.5),  # respiration
        (1.0, 1.05),  # very narrow, low
        (0.30 * nyq, 0.31 * nyq),  # narrow, mid
        (0.01, 0.02),  # near zero
        (0.001, 1.0),  # near zero, wide ratio
        (0.05, 0.97 * nyq),  # wide: real poles
        (0.2, 0.6 * nyq),  # wide
        (0.9 * nyq, 0.999 * nyq),  # near Nyquist
        (0.5 * nyq, 0.9999 * nyq),  # up to Nyquist
        (0.6 * nyq, 0.62 * nyq),  # narrow, high
    ]


def _symmetric_bands(fs: float) -> list[tuple[float, float]]:
    """lo + hi == fs/2: mirrored pole pairs, ties in scipy's section ordering."""
    q = fs / 4
    return [(q * 0.2, q * 1.8), (q * 0.5, q * 1.5), (q * 0.9, q * 1.1), (0.01, fs / 2 - 0.01)]


_freqz_sos = getattr(ss, "freqz_sos", None) or ss.sosfreqz


def _assert_rows_close(got: np.ndarray, ref: np.ndarray, rtol: float = 1e-9) -> None:
    assert got.shape == ref.shape
    for row_got, row_ref in zip(got, ref, strict=True):
        atol = 1e-12 * np.max(np.abs(row_ref))
        np.testing.assert_allclose(row_got, row_ref, rtol=rtol, atol=atol)


def _rel_row_error(got: np.ndarray, ref: np.ndarray) -> float:
    scale = np.max(np.abs(ref), axis=1, keepdims=True)
    return float(np.max(np.abs(got - ref) / scale))


# ---- butter_bandpass vs scipy -------------------------------------------------------------


@pytest.mark.parametrize("fs", FS_VALUES)
def test_butter_matches_scipy_row_by_row(fs: float) -> None:
    worst = 0.0
    for (lo, hi), order in itertools.product(_bands(fs), ORDERS):
        ref = ss.butter(order, [lo, hi], "band", fs=fs, output="sos")
        got = butter_bandpass(order, lo, hi, fs)
        _assert_rows_close(got, ref)
        worst = max(worst, _rel_row_error(got, ref))
    assert worst < 1e-10


def test_butter_matches_scipy_random_bands(rng: np.random.Generator) -> None:
    for _ in range(300):
        fs = float(rng.choice([10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 20000.0]))
        lo, hi = np.sort(rng.uniform(0.0, fs / 2, size=2))
        order = int(rng.integers(1, 9))
        if lo <= 0.0 or lo >= hi or abs(lo + hi - fs / 2) < 1e-3 * fs:
            continue  # skip degenerate draws and the symmetric ties (tested below)
        ref = ss.butter(order, [lo, hi], "band", fs=fs, output="sos")
        _assert_rows_close(butter_bandpass(order, lo, hi, fs), ref)


@pytest.mark.parametrize("fs", FS_VALUES)
def test_butter_symmetric_band_gives_scipy_sections(fs: float) -> None:
    """Same sections as scipy (possibly in another order), same gain, same response."""
    for (lo, hi), order in itertools.product(_symmetric_bands(fs), ORDERS):
        ref = ss.butter(order, [lo, hi], "band", fs=fs, output="sos")
        got = butter_bandpass(order, lo, hi, fs)
        assert got.shape == ref.shape
        # total gain, then each section normalised to b0 = 1 (gain moves with order)
        np.testing.assert_allclose(np.prod(got[:, 0]), np.prod(ref[:, 0]), rtol=1e-9)
        norm_got = got.copy()
        norm_ref = ref.copy()
        norm_got[:, :3] /= got[:, :1]
        norm_ref[:, :3] /= ref[:, :1]
        unmatched = list(range(order))
        for row in norm_got:
            for j in unmatched:
                if np.allclose(row, norm_ref[j], rtol=1e-9, atol=1e-12):
                    unmatched.remove(j)
                    break
            else:
                raise AssertionError(f"section {row} not in scipy's design {norm_ref}")
        w, h_ref = _freqz_sos(ref, worN=512, fs=fs)
        _, h_got = _freqz_sos(got, worN=w, fs=fs)
        np.testing.assert_allclose(np.abs(h_got), np.abs(h_ref), rtol=1e-7, atol=1e-12)


def test_butter_extreme_bands_within_documented_tolerance(rng: np.random.Generator) -> None:
    """The accuracy that butter_bandpass's docstring and bcg_dsp.h state for extreme bands."""
    fs_values = [10.0, 50.0, 250.0, 1000.0, 20000.0]
    worst_narrow = worst_nyquist = 0.0
    for _ in range(300):
        fs, order = float(rng.choice(fs_values)), int(rng.integers(1, 9))
        # very narrow: (hi - lo) / lo in 1e-12 .. 1e-5
        lo = rng.uniform(0.001, 0.49) * fs
        hi = lo * (1.0 + 10 ** rng.uniform(-12, -5))
        if hi < fs / 2 and abs(lo + hi - fs / 2) > 1e-3 * fs:
            ref = ss.butter(order, [lo, hi], "band", fs=fs, output="sos")
            worst_narrow = max(
                worst_narrow, _rel_row_error(butter_bandpass(order, lo, hi, fs), ref)
            )
        # high edge d * fs below Nyquist, d in 1e-10 .. 1e-6
        hi = fs / 2 - 10 ** rng.uniform(-10, -6) * fs
        d = (fs / 2 - hi) / fs
        lo = rng.uniform(0.0001, 0.45) * fs
        if abs(lo + hi - fs / 2) > 1e-3 * fs:
            ref = ss.butter(order, [lo, hi], "band", fs=fs, output="sos")
            err = _rel_row_error(butter_bandpass(order, lo, hi, fs), ref)
            assert err <= 1e-16 / d, (order, lo, hi, fs, err)
            worst_nyquist = max(worst_nyquist, err)
    assert worst_narrow <= 5e-7
    assert worst_nyquist <= 1e-6


def test_butter_wide_band_has_real_pole_sections() -> None:
    # bw > 2*wo gives real poles: zpk2sos's real-pole special cases are exercised
    ref = ss.butter(3, [0.1, 120.0], "band", fs=250.0, output="sos")
    got = butter_bandpass(3, 0.1, 120.0, 250.0)
    assert np.any(ref[:, 2] == -1.0)  # a section with zeros at +1 and -1
    _assert_rows_close(got, ref)


def test_butter_accepts_numpy_scalars() -> None:
    got = butter_bandpass(np.int64(2), np.float32(0.5), np.float64(10.0), np.int32(250))
    _assert_rows_close(got, ss.butter(2, [0.5, 10.0], "band", fs=250.0, output="sos"))
    assert got.dtype == np.float64 and got.flags.c_contiguous


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0, 1.0, 10.0, 250.0), "order"),
        ((9, 1.0, 10.0, 250.0), "order"),
        ((-1, 1.0, 10.0, 250.0), "order"),
        ((2.0, 1.0, 10.0, 250.0), "order"),
        ((2.5, 1.0, 10.0, 250.0), "order"),
        (("2", 1.0, 10.0, 250.0), "order"),
        ((True, 1.0, 10.0, 250.0), "order"),
        ((2, 1.0, 10.0, 0.0), "fs"),
        ((2, 1.0, 10.0, -250.0), "fs"),
        ((2, 1.0, 10.0, float("nan")), "fs"),
        ((2, 1.0, 10.0, float("inf")), "fs"),
        ((2, 1.0, 4.0, 5.0), "fs"),
        ((2, 1.0, 10.0, 1e6), "fs"),
        ((2, 1.0, 10.0, None), "fs"),
        ((2, 0.0, 10.0, 250.0), "low_hz"),
        ((2, -1.0, 10.0, 250.0), "low_hz"),
        ((2, float("nan"), 10.0, 250.0), "low_hz"),
        ((2, 10.0, 10.0, 250.0), "low_hz"),
        ((2, 20.0, 10.0, 250.0), "low_hz"),
        ((2, 1.0, 125.0, 250.0), "high_hz"),
        ((2, 1.0, 200.0, 250.0), "high_hz"),
        ((2, 1.0, float("nan"), 250.0), "high_hz"),
        ((2, 1.0, float("inf"), 250.0), "high_hz"),
        ((2, 1.0, "10", 250.0), "high_hz"),
    ],
)
def test_butter_bad_parameter_names_it(args: tuple, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        butter_bandpass(*args)


# ---- SosFilter vs scipy.signal.sosfilt ------------------------------------------------------

# The C core runs the sections two at a time; an odd count ends with one section alone.
DESIGNS = [
    (1, 5.0, 20.0, 50.0),
    (2, 0.5, 10.0, 250.0),
    (3, 0.1, 120.0, 250.0),
    (4, 0.7, 30.0, 250.0),
    (5, 0.5, 10.0, 250.0),
    (6, 1.0, 400.0, 1000.0),
    (7, 0.1, 0.5, 50.0),
    (8, 0.1, 0.5, 50.0),
]


def _signal(rng: np.random.Generator, n: int, fs: float = 250.0) -> np.ndarray:
    t = np.arange(n) / fs
    return 30000.0 + 800.0 * np.sin(2 * np.pi * 1.2 * t) + 50.0 * rng.standard_normal(n)


@pytest.mark.parametrize("design", DESIGNS)
def test_sosfilt_parity(design: tuple, rng: np.random.Generator) -> None:
    sos = ss.butter(design[0], design[1:3], "band", fs=design[3], output="sos")
    x = _signal(rng, 20000, design[3])
    ref = ss.sosfilt(sos, x)
    got = SosFilter(sos).process(x)
    rel_rms = np.sqrt(np.mean((got - ref) ** 2)) / np.sqrt(np.mean(ref**2))
    assert rel_rms < 1e-12
    if platform.machine() in ("x86_64", "AMD64"):
        # same arithmetic, no FMA on either side: identical bits
        assert np.array_equal(got, ref)


def test_state_matches_scipy_zf(rng: np.random.Generator) -> None:
    sos = butter_bandpass(4, 0.7, 30.0, 250.0)
    x = _signal(rng, 777)
    f = SosFilter(sos)
    f.process(x)
    _, zf = ss.sosfilt(sos, x, zi=np.zeros((4, 2)))
    assert f.state.shape == (4, 2)
    np.testing.assert_array_equal(f.state, zf)
    f.state[0, 0] = 1e9  # a copy: the filter is unchanged
    np.testing.assert_array_equal(f.state, zf)


@settings(max_examples=200, deadline=None)
@given(
    design=st.sampled_from(DESIGNS),
    x=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
        max_size=300,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=12),
)
def test_chunked_equals_one_shot_bit_exact(design: tuple, x: list[float], cuts: list[int]) -> None:
    sos = butter_bandpass(*design)
    signal = np.asarray(x, dtype=np.float64)
    one_shot = SosFilter(sos).process(signal)
    f = SosFilter(sos)
    bounds = [0, *sorted(c for c in cuts if c <= len(x)), len(x)]
    chunks = [f.process(signal[a:b]) for a, b in itertools.pairwise(bounds)]
    np.testing.assert_array_equal(np.concatenate(chunks), one_shot)


# ---- reset / prime ----------------------------------------------------------------------------


def test_reset_to_zero_restarts_the_filter(rng: np.random.Generator) -> None:
    sos = butter_bandpass(3, 0.5, 20.0, 250.0)
    x = _signal(rng, 1000)
    f = SosFilter(sos)
    first = f.process(x)
    assert np.any(f.state != 0.0)
    f.reset()
    np.testing.assert_array_equal(f.state, np.zeros((3, 2)))
    np.testing.assert_array_equal(f.process(x), first)


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("x0", [1.0, -3.5, 31234.0])
def test_prime_equals_scipy_sosfilt_zi(design: tuple, x0: float, rng: np.random.Generator) -> None:
    sos = butter_bandpass(*design)
    zi = ss.sosfilt_zi(sos) * x0
    f = SosFilter(sos)
    f.reset(x0)
    scale = np.max(np.abs(zi))
    np.testing.assert_allclose(f.state, zi, rtol=1e-9, atol=1e-9 * scale)
    x = x0 + _signal(rng, 500) - 30000.0
    ref, _ = ss.sosfilt(sos, x, zi=zi)
    np.testing.assert_allclose(f.process(x), ref, rtol=1e-7, atol=1e-7 * abs(x0))


def test_prime_gives_no_transient_on_constant_input() -> None:
    sos = butter_bandpass(4, 0.5, 10.0, 250.0)
    x = np.full(5000, 40000.0)
    f = SosFilter(sos)
    f.reset(steady_input=40000.0)
    assert np.max(np.abs(f.process(x))) < 1e-9 * 40000.0
    f.reset()
    assert np.max(np.abs(f.process(x))) > 1.0  # unprimed: a real step transient


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1.0", [1.0], 1.0000001e15, -1e300])
def test_prime_rejects_bad_input_and_keeps_the_state(bad: object) -> None:
    f = SosFilter(butter_bandpass(2, 0.5, 10.0, 250.0))
    f.process(np.arange(10.0))
    before = f.state
    with pytest.raises(ValueError, match=r"^steady_input: ") as err:
        f.reset(bad)  # type: ignore[arg-type]
    assert err.value.code == "E108"
    np.testing.assert_array_equal(f.state, before)
    f.reset(steady_input=-1e15)  # the limit itself is accepted
    assert np.all(np.isfinite(f.state))


@pytest.mark.parametrize(
    "sos",
    [
        [[1.0, 0.5, 0.0, 1.0, -0.5, 0.0], [1.0, 0.0, 0.0, 1.0, -1.0, 0.0]],  # integrator
        [[1.0, -2.0, 1.0, 1.0, -2.0, 1.0]],  # double pole at z = 1
        [[1e300, 0.0, 0.0, 1.0, -2.0, 1.0 - 2.0**-52]],  # finite DC gain, state overflows
    ],
)
def test_prime_without_a_steady_state_names_sos(sos: list) -> None:
    f = SosFilter(sos)
    f.process([1.0, 2.0])
    before = f.state
    with pytest.raises(ValueError, match=r"^sos: no steady state") as err:
        f.reset(steady_input=1.0)
    assert err.value.code == "E106"
    np.testing.assert_array_equal(f.state, before)
    f.reset()  # the zero state is always available
    np.testing.assert_array_equal(f.state, np.zeros_like(before))


# ---- sample arrays ---------------------------------------------------------------------------


@pytest.fixture
def sos2() -> np.ndarray:
    return butter_bandpass(2, 0.5, 10.0, 250.0)


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: [int(v) for v in a],
        lambda a: a.astype(np.int16),
        lambda a: a.astype(np.int64),
        lambda a: a.astype(np.float32),
        lambda a: tuple(a.tolist()),
    ],
)
def test_other_dtypes_are_converted(convert: Callable, sos2: np.ndarray) -> None:
    base = np.arange(-50, 50, dtype=np.float64) * 3.0
    x = convert(base)
    expected = SosFilter(sos2).process(np.asarray(np.asarray(x), dtype=np.float64))
    got = SosFilter(sos2).process(x)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


def test_non_contiguous_input(sos2: np.ndarray, rng: np.random.Generator) -> None:
    big = _signal(rng, 2000)
    strided = big[::3]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(
        SosFilter(sos2).process(strided), SosFilter(sos2).process(strided.copy())
    )
    reversed_view = big[::-1]
    np.testing.assert_array_equal(
        SosFilter(sos2).process(reversed_view), SosFilter(sos2).process(reversed_view.copy())
    )


def test_input_is_not_modified(sos2: np.ndarray, rng: np.random.Generator) -> None:
    x = _signal(rng, 100)
    before = x.copy()
    SosFilter(sos2).process(x)
    np.testing.assert_array_equal(x, before)


def test_read_only_input(sos2: np.ndarray) -> None:
    x = np.ones(10)
    x.setflags(write=False)
    assert SosFilter(sos2).process(x).shape == (10,)


def test_empty_input(sos2: np.ndarray) -> None:
    f = SosFilter(sos2)
    for empty in ([], np.array([]), np.zeros(0, dtype=np.int32)):
        out = f.process(empty)
        assert out.shape == (0,) and out.dtype == np.float64
    np.testing.assert_array_equal(f.state, np.zeros((2, 2)))


def test_misaligned_input_is_copied_not_passed_to_c(
    sos2: np.ndarray, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _signal(rng, 100)
    misaligned = np.frombuffer(b"\0" + data.tobytes(), dtype=np.float64, offset=1)
    assert not misaligned.flags.aligned and misaligned.flags.c_contiguous
    converted = []
    original = dsp_c._checks.as_samples

    def spy(x: object, name: str = "x", finite: bool = False) -> np.ndarray:
        out = original(x, name, finite)
        converted.append(out)
        return out

    monkeypatch.setattr(dsp_c._checks, "as_samples", spy)
    got = SosFilter(sos2).process(misaligned)
    assert len(converted) == 1 and converted[0].flags.aligned  # went through the copy
    np.testing.assert_array_equal(got, SosFilter(sos2).process(data))
    converted.clear()
    SosFilter(sos2).process(data)
    assert not converted  # the aligned fast path converts nothing


def test_masked_array_is_refused(sos2: np.ndarray) -> None:
    x = np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    with pytest.raises(TypeError, match=r"^x: masked arrays are not accepted"):
        SosFilter(sos2).process(x)


# ---- process(x, out=...) ---------------------------------------------------------------------


def test_out_receives_the_result(sos2: np.ndarray, rng: np.random.Generator) -> None:
    x = _signal(rng, 300)
    expected = SosFilter(sos2).process(x)
    f = SosFilter(sos2)
    out = np.full(300, np.nan)
    assert f.process(x, out=out) is out
    np.testing.assert_array_equal(out, expected)
    # chunked with one reused buffer == one shot
    f = SosFilter(sos2)
    buf = np.empty(100)
    parts = [f.process(x[i : i + 100], out=buf).copy() for i in range(0, 300, 100)]
    np.testing.assert_array_equal(np.concatenate(parts), expected)
    # from a list (converted) into out
    np.testing.assert_array_equal(SosFilter(sos2).process(x.tolist(), out=np.empty(300)), expected)
    assert SosFilter(sos2).process([], out=np.empty(0)).shape == (0,)


def test_out_may_be_x_or_overlap_it(sos2: np.ndarray, rng: np.random.Generator) -> None:
    x = _signal(rng, 300)
    expected = SosFilter(sos2).process(x)
    inplace = x.copy()
    assert SosFilter(sos2).process(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, expected)
    # out shifted by one sample over x: x is read before it is overwritten
    buf = np.concatenate([x, [0.0]])
    got = SosFilter(sos2).process(buf[:300], out=buf[1:])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("make_out", "exc", "text"),
    [
        (lambda n: np.empty(n, dtype=np.float32), ValueError, "dtype float64"),
        (lambda n: np.empty(n + 1), ValueError, "shape"),
        (lambda n: np.empty((n, 1)), ValueError, "shape"),
        (lambda n: np.empty(2 * n)[::2], ValueError, "C-contiguous"),
        (
            lambda n: np.frombuffer(bytearray(8 * n + 1), dtype=np.float64, offset=1),
            ValueError,
            "aligned",
        ),
        (lambda n: np.frombuffer(bytes(8 * n), dtype=np.float64), ValueError, "writeable"),
        (lambda n: [0.0] * n, TypeError, "numpy float64 array"),
        (lambda n: np.ma.masked_array(np.empty(n)), TypeError, "numpy float64 array"),
    ],
)
def test_bad_out_names_it(make_out: Callable, exc: type, text: str, sos2: np.ndarray) -> None:
    f = SosFilter(sos2)
    f.process([1.0, 2.0])
    before = f.state
    with pytest.raises(exc, match=rf"^out: .*{text}"):
        f.process(np.ones(10), out=make_out(10))
    np.testing.assert_array_equal(f.state, before)


@pytest.mark.parametrize(
    ("bad", "exc"),
    [
        (np.ones((3, 4)), ValueError),
        (np.ones((1, 5)), ValueError),
        (np.float64(1.0), ValueError),
        (np.ones(4, dtype=complex), TypeError),
        (np.array([1.0, None], dtype=object), TypeError),
        (["a", "b"], TypeError),
        ("abc", TypeError),
        ([[1.0, 2.0], [3.0]], TypeError),
    ],
)
def test_bad_arrays_raise_naming_x(bad: object, exc: type, sos2: np.ndarray) -> None:
    with pytest.raises(exc, match=r"^x\b"):
        SosFilter(sos2).process(bad)


# ---- SosFilter coefficients -----------------------------------------------------------------


def _bad_sos() -> list[object]:
    good = butter_bandpass(2, 0.5, 10.0, 250.0)
    a0 = good.copy()
    a0[1, 3] = 2.0
    nan = good.copy()
    nan[0, 4] = np.nan
    inf = good.copy()
    inf[1, 0] = np.inf
    return [
        a0,
        nan,
        inf,
        good[:, :5],
        good.ravel(),
        np.zeros((0, 6)),
        np.tile(good, (9, 1)),  # 18 sections > BCG_MAX_SECTIONS
        good.astype(complex),
        [[1, 2, 3]],
        "sos",
    ]


@pytest.mark.parametrize("bad", _bad_sos())
def test_bad_sos_raises_naming_it(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^sos\b"):
        SosFilter(bad)


def test_sos_from_lists_and_ints() -> None:
    f = SosFilter([[1, 0, 0, 1, 0, 0]])  # identity section, integer coefficients
    assert f.n_sections == 1
    np.testing.assert_array_equal(f.process([1, 2, 3]), [1.0, 2.0, 3.0])
    assert f.sos.dtype == np.float64
    assert repr(f) == "SosFilter(n_sections=1)"


def test_max_sections_accepted() -> None:
    sos = np.tile([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]], (dsp_c.filters.MAX_SECTIONS, 1))
    assert SosFilter(sos).n_sections == 16


# ---- bad samples: NaN, inf, |x| > 1e15 ------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "text"),
    [
        (np.nan, "nan"),
        (np.inf, "inf"),
        (-np.inf, "-inf"),
        (1e307, "1e+307"),
        (-1.0000001e15, "-1000000100000000.0"),
    ],
)
def test_bad_samples_are_refused_and_nothing_is_consumed(
    bad: float, text: str, sos2: np.ndarray, rng: np.random.Generator
) -> None:
    """Unlike scipy (NaN poisons the state until reset), the chunk is refused whole."""
    x = _signal(rng, 60)
    expected = SosFilter(sos2).process(x)
    f = SosFilter(sos2)
    head = f.process(x[:20])
    before = f.state
    poisoned = x[20:40].copy()
    poisoned[5] = bad
    poisoned[9] = np.nan
    out = np.full(20, -7.0)
    message = (
        r"^x: 2 sample\(s\) not finite or beyond ±1e15, the first at index 5 "
        rf"\({re.escape(text)}\); split the recording at the gap or interpolate it$"
    )
    with pytest.raises(ValueError, match=message) as err:
        f.process(poisoned, out=out)
    assert isinstance(err.value, dsp_c.DspValueError) and err.value.code == "E108"
    np.testing.assert_array_equal(f.state, before)  # state unchanged
    assert np.all(out == -7.0)  # nothing written
    tail = f.process(x[20:])  # carries on as if the bad chunk had never come
    np.testing.assert_array_equal(np.concatenate([head, tail]), expected)


def test_largest_samples_accepted(sos2: np.ndarray) -> None:
    x = np.zeros(50)
    x[10], x[20] = 1e15, -1e15
    f = SosFilter(sos2)
    y = f.process(x)
    np.testing.assert_array_equal(y, ss.sosfilt(sos2, x))
    assert np.all(np.isfinite(f.state))


def test_max_abs_sample_matches_the_c_core() -> None:
    internal = (ROOT / "dsp_c" / "src" / "internal.h").read_text(encoding="utf-8")
    value = re.search(r"#define BCG_MAX_ABS_SAMPLE (\S+)", internal).group(1)
    assert float(value) == dsp_c.filters.MAX_ABS_SAMPLE == 1e15


# ---- status codes --------------------------------------------------------------------------------


def test_check_maps_status_codes() -> None:
    check(lib.BCG_OK)
    for status, code in (
        (lib.BCG_ERR_ORDER, "E102"),
        (lib.BCG_ERR_FS, "E103"),
        (lib.BCG_ERR_BAND, "E104"),
        (lib.BCG_ERR_SECTIONS, "E105"),
        (lib.BCG_ERR_COEF, "E106"),
        (lib.BCG_ERR_PARAM, "E108"),
    ):
        with pytest.raises(DspValueError, match=r"^thing: ") as info:
            check(status, "thing")
        assert isinstance(info.value, ValueError)
        assert strerror(status) in str(info.value)
        assert info.value.status == status and info.value.code == code
        with pytest.raises(ValueError):
            check(status)
    # caller bugs, not bad values: DspError (a RuntimeError), never a ValueError
    for status, code in ((lib.BCG_ERR_NULL, "E101"), (lib.BCG_ERR_CAPACITY, "E107")):
        with pytest.raises(DspError) as err:
            check(status, "thing")
        assert not isinstance(err.value, ValueError)
        assert isinstance(err.value, RuntimeError)
        assert err.value.status == status and err.value.code == code
    with pytest.raises(DspError, match="unknown status") as err:
        check(12345)
    assert err.value.code == "E100"


def test_error_codes_match_docs_errors_md() -> None:
    """Every code of the Python exceptions is the one docs/errors.md gives its status."""
    doc = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    for name in dir(lib):
        if name.startswith("BCG_ERR_"):
            status = getattr(lib, name)
            assert f"| {error_code(status)} | `{name}` ({status}) |" in doc, name


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: butter_bandpass(0, 1.0, 10.0, 250.0), "E102"),
        (lambda: butter_bandpass(2, 1.0, 10.0, 5.0), "E103"),
        (lambda: butter_bandpass(2, 1.0, 200.0, 250.0), "E104"),
        (lambda: butter_bandpass(2, float("nan"), 10.0, 250.0), "E104"),
        (lambda: SosFilter(np.zeros((0, 6))), "E105"),
        (lambda: SosFilter([[1, 0, 0, 2, 0, 0]]), "E106"),
        (lambda: SosFilter([[1, 0, 0, 1, 0, 0]]).process(np.ones((2, 2))), "E108"),
    ],
)
def test_python_side_checks_carry_the_code_too(call: Callable, code: str) -> None:
    with pytest.raises(DspValueError) as err:
        call()
    assert err.value.code == code


def test_every_status_has_its_own_text() -> None:
    codes = [getattr(lib, n) for n in dir(lib) if n.startswith("BCG_ERR_") or n == "BCG_OK"]
    texts = [strerror(c) for c in codes]
    assert len(codes) == 9
    assert len(set(texts)) == len(texts)
    assert "unknown status" not in texts
    assert strerror(-1) == "unknown status"


def test_public_api() -> None:
    for name in ("butter_bandpass", "SosFilter", "DspError", "DspValueError"):
        assert name in dsp_c.__all__
        assert getattr(dsp_c, name) is not None


# --- power-line notches --------------------------------------------------------------------


@pytest.mark.parametrize(
    "f0, q, fs", [(50.0, 5.0, 500.0), (60.0, 30.0, 250.0), (150.0, 5.0, 1000.0), (0.5, 0.7, 50.0)]
)
def test_iir_notch_matches_scipy(f0: float, q: float, fs: float) -> None:
    b, a = ss.iirnotch(f0, q, fs)
    np.testing.assert_allclose(
        dsp_c.iir_notch(f0, q, fs)[0], np.concatenate([b, a]), rtol=1e-14, atol=1e-15
    )


@pytest.mark.parametrize("fs", [50.0, 100.0, 110.0, 250.0, 333.0, 500.0, 1000.0])
def test_mains_notches_take_out_the_hum_and_keep_the_bands(fs: float) -> None:
    from dsp_c.filters import MAINS_MAX_SHARE, mains_notches

    sos = mains_notches(fs)
    hum = [k * f for k in (1, 2, 3) for f in (50.0, 60.0) if k * f < MAINS_MAX_SHARE * fs]
    assert len(sos) == len(hum)
    if not hum:
        return
    _, gain = ss.sosfreqz(sos, worN=np.array(hum + [0.0, 2.5, 12.0, 20.0]), fs=fs)
    assert np.all(np.abs(gain[: len(hum)]) < 1e-9)  # each hum frequency removed
    assert np.all(np.abs(gain[len(hum) :]) >= 0.98)  # every band the unit reads kept


def test_the_units_beat_band_is_the_detectors_then_the_notches() -> None:
    from dsp_c.beats import beat_filter

    plain = beat_filter(500.0).sos
    unit = beat_filter(500.0, mains=True).sos
    np.testing.assert_array_equal(unit[: len(plain)], plain)
    np.testing.assert_array_equal(unit[len(plain) :], dsp_c.filters.mains_notches(500.0))
    assert len(beat_filter(100.0, mains=True).sos) == len(beat_filter(100.0).sos)  # none fit


@pytest.mark.parametrize(
    "args, name",
    [
        ((0.0, 5.0, 250.0), "f0_hz"),
        ((125.0, 5.0, 250.0), "f0_hz"),
        ((50.0, 0.0, 250.0), "q"),
        ((50.0, float("nan"), 250.0), "q"),
        ((50.0, 5.0, 1.0), "fs"),
    ],
)
def test_iir_notch_refuses_bad_parameters(args: tuple, name: str) -> None:
    with pytest.raises(DspValueError, match=name):
        dsp_c.iir_notch(*args)


def test_priming_level_is_the_first_sample_less_its_hum() -> None:
    fs = 500.0
    t = np.arange(int(2 * fs)) / fs
    slow = 7.0 + 0.5 * np.sin(2 * np.pi * 0.3 * t)  # breathing: not hum
    hum = 3.0 * np.sin(2 * np.pi * 50.0 * t + 1.0) + np.sin(2 * np.pi * 150.0 * t)
    assert dsp_c.priming_level(slow + hum, fs) == pytest.approx(slow[0], abs=1e-3)
    assert dsp_c.priming_level(slow, fs) == pytest.approx(slow[0], abs=1e-4)  # no hum: as is
    assert dsp_c.priming_level((slow + hum)[:10], fs) == (slow + hum)[0]  # too few to fit
    assert dsp_c.priming_level(slow + hum, 50.0) == (slow + hum)[0]  # no hum at 50 Hz
    with_nan = slow + hum
    with_nan[5] = np.nan
    assert dsp_c.priming_level(with_nan, fs) == with_nan[0]  # the chunk check names the bad one
    with_huge = slow + hum
    with_huge[3] = 1e20
    assert dsp_c.priming_level(with_huge, fs) == with_huge[0]


def test_mains_hum_is_fitted_where_asked_and_holds_everywhere() -> None:
    fs = 1000.0
    t = np.arange(int(fs)) / fs
    hum = 2.0 * np.sin(2 * np.pi * 60.0 * t) + 0.4 * np.cos(2 * np.pi * 120.0 * t + 0.2)
    step = np.where(t < 0.1, -50.0, 0.0)  # a start-up step, outside the fitted half
    found = dsp_c.filters.mains_hum(1000.0 + step + hum, fs, fit_from=500)
    np.testing.assert_allclose(found, hum, atol=1e-9)
    assert not dsp_c.filters.mains_hum(hum, 100.0).any()  # 100 samples/s carry none


def test_the_hum_fit_solver_solves_and_says_when_it_cannot() -> None:
    solve = dsp_c.filters._solve
    np.testing.assert_allclose(solve([[0.0, 2.0], [3.0, 1.0]], [4.0, 5.0]), [1.0, 2.0])
    with pytest.raises(DspValueError, match="not independent") as err:
        solve([[1.0, 2.0], [2.0, 4.0]], [1.0, 2.0])
    assert err.value.code == "E108"
