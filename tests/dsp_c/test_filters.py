"""dsp_c filters: Butterworth band-pass design and streaming SOS filtering vs scipy.

What is reached (scipy 1.17.1, numpy 1.26.4, x86-64):
* butter_bandpass == scipy.signal.butter(..., output='sos') row by row within
  rtol=1e-9, atol=1e-12*max|row| over the grid below; the worst seen is ~1e-11 relative
  (bit-identical when numpy's tan() is glibc's, see dsp_c/src/butter.c). For bands symmetric
  about fs/4, scipy's section order is decided by rounding noise (mirrored pole pairs have
  equal magnitude), so there the same sections are checked in any order.
* SosFilter.process == scipy.signal.sosfilt bit for bit on x86-64 (relative RMS error 0).
"""

from __future__ import annotations

import itertools
import platform
from collections.abc import Callable

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st

import dsp_c
from dsp_c import DspError, SosFilter, butter_bandpass
from dsp_c._bcg_dsp import lib
from dsp_c._status import check, strerror

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

DESIGNS = [
    (2, 0.5, 10.0, 250.0),
    (4, 0.7, 30.0, 250.0),
    (8, 0.1, 0.5, 50.0),
    (3, 0.1, 120.0, 250.0),
    (6, 1.0, 400.0, 1000.0),
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


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1.0", [1.0]])
def test_prime_rejects_non_finite_input(bad: object) -> None:
    f = SosFilter(butter_bandpass(2, 0.5, 10.0, 250.0))
    with pytest.raises(ValueError, match=r"^steady_input"):
        f.reset(bad)  # type: ignore[arg-type]


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


# ---- NaN / inf samples -------------------------------------------------------------------------


def test_nan_poisons_state_until_reset(sos2: np.ndarray) -> None:
    x = np.ones(20)
    x[5] = np.nan
    f = SosFilter(sos2)
    y = f.process(x)
    np.testing.assert_array_equal(y, ss.sosfilt(sos2, x))  # NaN where scipy has NaN
    assert np.all(np.isfinite(y[:5])) and np.all(np.isnan(y[5:]))
    assert np.all(np.isnan(f.state))
    assert np.all(np.isnan(f.process(np.ones(10))))  # still poisoned
    f.reset()
    assert np.all(np.isfinite(f.process(np.ones(10))))
    f.process([np.nan])
    f.reset(1.0)  # priming also clears it
    assert np.all(np.isfinite(f.process(np.ones(10))))


def test_inf_sample_propagates_like_scipy(sos2: np.ndarray) -> None:
    x = np.zeros(10)
    x[3] = np.inf
    y = SosFilter(sos2).process(x)
    np.testing.assert_array_equal(y, ss.sosfilt(sos2, x))
    assert np.all(np.isfinite(y[:3])) and not np.any(np.isfinite(y[3:]))


# ---- status codes --------------------------------------------------------------------------------


def test_check_maps_status_codes() -> None:
    check(lib.BCG_OK)
    for code in (
        lib.BCG_ERR_ORDER,
        lib.BCG_ERR_FS,
        lib.BCG_ERR_BAND,
        lib.BCG_ERR_SECTIONS,
        lib.BCG_ERR_COEF,
        lib.BCG_ERR_CAPACITY,
        lib.BCG_ERR_PARAM,
    ):
        with pytest.raises(ValueError, match=r"^thing: ") as info:
            check(code, "thing")
        assert strerror(code) in str(info.value)
        with pytest.raises(ValueError):
            check(code)
    with pytest.raises(DspError) as err:
        check(lib.BCG_ERR_NULL)
    assert err.value.status == lib.BCG_ERR_NULL
    assert isinstance(err.value, RuntimeError)
    with pytest.raises(DspError, match="unknown status"):
        check(12345)


def test_every_status_has_its_own_text() -> None:
    codes = [getattr(lib, n) for n in dir(lib) if n.startswith("BCG_ERR_") or n == "BCG_OK"]
    texts = [strerror(c) for c in codes]
    assert len(codes) == 9
    assert len(set(texts)) == len(texts)
    assert "unknown status" not in texts
    assert strerror(-1) == "unknown status"


def test_public_api() -> None:
    for name in ("butter_bandpass", "SosFilter", "DspError"):
        assert name in dsp_c.__all__
        assert getattr(dsp_c, name) is not None
