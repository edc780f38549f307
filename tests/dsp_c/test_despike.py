"""dsp_c.Despiker: single-sample glitches out, nothing else touched, any chunking.

The signals are the simulator's BCG (beats, breathing, noise) at the rates the unit takes,
and the real recordings of tests/data; a glitch is one sample moved far off the signal.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsp_c
import dsp_c.despike
from dsp_c import Despiker, DspValueError
from dsp_c.despike import GLITCH_RATIO, LOOK_AHEAD
from dsp_c.synthetic import bcg_signal

DATA = Path(__file__).resolve().parents[1] / "data"
FS_VALUES = (50.0, 250.0, 1000.0)


def _despiked(x: np.ndarray, fs: float, cuts: list[int] | None = None) -> tuple[np.ndarray, int]:
    """``x`` through one Despiker, in the chunks ``cuts`` gives (one chunk: None)."""
    d = Despiker(fs)
    parts = np.split(x, sorted(cuts)) if cuts else [x]
    y = np.concatenate([d.process(p) for p in parts] + [d.flush()])
    return y, d.replaced


def _bcg(fs: float, seconds: float = 60.0, seed: int = 0) -> np.ndarray:
    return bcg_signal(fs, seconds, seed=seed).x


def _with_glitches(x: np.ndarray, fs: float, size: float, every_s: float = 2.0):
    """``x`` with one sample every ``every_s`` (the first at 0.3 s) moved ``size`` times
    the signal's peak-to-peak, alternately up and down."""
    where = np.arange(0.3 * fs, x.size - 10, every_s * fs).astype(int)
    y = x.copy()
    y[where] += size * np.ptp(x) * np.where(np.arange(where.size) % 2, -1.0, 1.0)
    return y, where


@pytest.mark.parametrize("fs", FS_VALUES)
def test_glitches_are_replaced_and_nothing_else(fs) -> None:
    x = _bcg(fs)
    glitched, where = _with_glitches(x, fs, size=2.0)
    y, replaced = _despiked(glitched, fs)
    assert replaced == where.size
    changed = np.flatnonzero(y != glitched)
    np.testing.assert_array_equal(changed, where)
    # Each by its neighbours' mean: back near the clean signal, within a step of it.
    np.testing.assert_allclose(y[where], 0.5 * (x[where - 1] + x[where + 1]))
    assert np.max(np.abs(y[where] - x[where])) <= np.max(np.abs(np.diff(x)))


@pytest.mark.parametrize("fs", FS_VALUES)
def test_a_clean_signal_passes_untouched(fs) -> None:
    for seed in range(3):
        x = _bcg(fs, seed=seed)
        y, replaced = _despiked(x, fs)
        assert replaced == 0
        np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("name, channel", [("sadek_sample.npz", "raw"), ("aydin_left1.npz", "bcg")])
def test_real_recordings_pass_untouched(name, channel) -> None:
    """Beats at 50 Hz are two or three samples wide, movements are sharp: none is a glitch."""
    with np.load(DATA / name) as data:
        x, fs = data[channel].astype(np.float64), float(data["fs"])
    y, replaced = _despiked(x, fs)
    assert replaced == 0
    np.testing.assert_array_equal(y, x)


def test_the_first_second_is_judged_by_itself_once_whole() -> None:
    """No scale before a stretch's first second: it is held until whole, then judged by
    its own largest height (a glitch in it is not part of that)."""
    fs = 250.0
    x = _bcg(fs, 20.0)
    x[int(0.5 * fs)] += 5 * np.ptp(x)
    d = Despiker(fs)
    assert d.process(x[: int(fs) + LOOK_AHEAD - 1]).size == 0  # its last sample waits
    first = d.process(x[int(fs) + LOOK_AHEAD - 1 : int(fs) + LOOK_AHEAD])
    assert first.size == fs and d.replaced == 1
    assert first[int(0.5 * fs)] == 0.5 * (x[int(0.5 * fs) - 1] + x[int(0.5 * fs) + 1])


def test_a_run_over_start_does_not_shrink_the_scale() -> None:
    """A start-up step run over at a level near, not at, the next sample (the pipeline's
    settled level): its second has one tiny height; the seconds after it are judged by
    their own heights too, and nothing of the clean signal is replaced."""
    fs = 250.0
    x = _bcg(fs, 20.0)
    x[: int(fs)] = x[int(fs)] + 1e-6 * np.ptp(x)
    y, replaced = _despiked(x, fs)
    assert replaced == 0 and np.array_equal(y, x)
    x[int(2.2 * fs)] += 5 * np.ptp(x)
    y, replaced = _despiked(x, fs)
    assert replaced == 1 and np.flatnonzero(y != x).tolist() == [int(2.2 * fs)]


def test_a_line_flat_from_the_start_has_no_scale_and_a_stuck_one_keeps_its_own() -> None:
    """An idle input flat from its start (one-count flips aside) has nothing to judge a
    height by: it comes back as it went in. A sensor stuck after a signal keeps the
    signal's scale: a rail value on the flat line is a glitch, a one-count flip is not."""
    fs = 50.0
    idle = np.full(500, 2047.0)
    idle[[60, 130, 260]] += [1.0, -1.0, 2048.0]
    y, replaced = _despiked(idle, fs)
    assert replaced == 0 and np.array_equal(y, idle)
    stuck = np.concatenate([_bcg(fs, 20.0), np.full(500, 2047.0)])
    stuck[[1060, 1130]] += [1.0, 2048.0]
    y, replaced = _despiked(stuck, fs)
    assert replaced == 1 and np.flatnonzero(y != stuck).tolist() == [1130]


def test_two_glitches_side_by_side_stay() -> None:
    fs = 250.0
    x = _bcg(fs, 20.0)
    x[3000:3002] += 5 * np.ptp(x)  # two in a row: neither is isolated
    y, replaced = _despiked(x, fs)
    assert replaced == 0 and np.array_equal(y, x)


@pytest.mark.parametrize("share, replaced", [(0.7, 0), (1.4, 1)])
def test_the_height_is_judged_against_the_usual_largest(share, replaced) -> None:
    """A sample moved ``share`` times GLITCH_RATIO times the usual largest height (the
    median of the last ten one-second maxima) is a glitch only above the ratio."""
    fs = 250.0
    x = _bcg(fs, 30.0)
    height = np.abs(x[1:-1] - 0.5 * (x[:-2] + x[2:]))
    n, second = int(20.5 * fs), int(fs)  # in second 20: seconds 10 to 19 give the scale
    seconds = height[10 * second - 1 : 20 * second - 1].reshape(10, second)  # samples 1 on
    scale = float(np.median(seconds.max(axis=1)))
    x[n] = 0.5 * (x[n - 1] + x[n + 1]) + share * GLITCH_RATIO * scale
    y, count = _despiked(x, fs)
    assert count == replaced
    assert (y[n] != x[n]) == bool(replaced)


@pytest.mark.parametrize("gain, offset", [(1e-3, 0.0), (1e4, -3.0), (0.0625, 2000.0)])
def test_gain_and_offset_do_not_change_the_decision(gain, offset) -> None:
    fs = 250.0
    glitched, where = _with_glitches(_bcg(fs), fs, size=1.0)
    y, replaced = _despiked(offset + gain * glitched, fs)
    assert replaced == where.size
    np.testing.assert_array_equal(np.flatnonzero(y != offset + gain * glitched), where)


def test_frequent_glitches_do_not_grow_the_scale() -> None:
    """Glitches every 0.2 s: left out of the scale, so they go on being found."""
    fs = 250.0
    glitched, where = _with_glitches(_bcg(fs, 120.0), fs, size=2.0, every_s=0.2)
    _, replaced = _despiked(glitched, fs)
    assert replaced == where.size


@settings(max_examples=40, deadline=None)
@given(
    fs=st.sampled_from((10.0, 33.3, *FS_VALUES)),
    cuts=st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=25),
    seed=st.integers(0, 2**16),
)
def test_chunked_equals_one_shot(fs, cuts, seed) -> None:
    x = _bcg(fs, 8.0, seed=seed % 4)
    rng = np.random.default_rng(seed)
    # Six glitches anywhere, any size (side by side, several in one second) ...
    anywhere = x.copy()
    where = rng.choice(np.arange(5, x.size - 5), 6, replace=False)
    anywhere[where] += np.ptp(x) * rng.uniform(-3, 3, where.size)
    # ... and six the despiker is for: each alone in its second, one to three times the
    # signal's range, either way (the first kind can leave none found).
    alone = x.copy()
    seconds = rng.choice(int(x.size // fs), 6, replace=False)
    where = (seconds * fs).astype(int) + rng.integers(3, int(fs) - 3, seconds.size)
    alone[where] += np.ptp(x) * rng.uniform(1, 3, where.size) * rng.choice([-1.0, 1.0], 6)
    chunks = [int(c * x.size) for c in cuts]
    for y in (anywhere, alone):
        whole, n_whole = _despiked(y, fs)
        chunked, n_chunked = _despiked(y, fs, chunks)
        np.testing.assert_array_equal(chunked, whole)
        assert n_chunked == n_whole
    assert n_whole >= 6  # the second kind: every one found


def test_whole_seconds_wait_for_their_neighbours() -> None:
    fs = 50.0
    x = _bcg(fs, 5.0)
    d = Despiker(fs)
    assert d.process(x[:52]).size == 0 and d.held == 52  # a second, one sample short
    assert d.process(x[52:53]).size == 50 and d.held == LOOK_AHEAD
    assert d.process(x[53:120]).size == 50 and d.held == 20
    assert d.process(x[120:200]).size == 50 and d.held == 50
    np.testing.assert_array_equal(d.flush(), x[150:200])  # judged: nothing to replace
    assert d.held == 0 and d.flush().size == 0


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("end", [0, 1, 2, 3, -4, -3, -2, -1])
def test_the_ends_of_a_stretch_are_judged_too(end, seed) -> None:
    """A first or last sample is judged against the line through the two on its other
    side: a glitch on any of a stretch's first or last four samples is found (and only
    it: the end sample beside it is not moved), and it does not hide the others."""
    fs = 250.0
    x = _bcg(fs, 10.0, seed=seed % 4)
    sign = 1.0 if seed % 2 else -1.0
    where = sorted([end % x.size, 100, 400, 700, x.size - 300])
    glitched = x.copy()
    glitched[where] += 5 * np.ptp(x) * sign * np.array([1, -1, 1, -1, 1])
    y, replaced = _despiked(glitched, fs)
    assert np.flatnonzero(y != glitched).tolist() == where
    assert replaced == len(where)
    assert np.max(np.abs(y[where] - x[where])) <= 2 * np.max(np.abs(np.diff(x)))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 9])
def test_a_stretch_of_a_few_samples_comes_back_whole(n) -> None:
    x = _bcg(250.0, 1.0)[:n]
    y, _ = _despiked(x, 250.0)
    assert y.size == n


def test_the_example_in_the_module_runs() -> None:
    assert doctest.testmod(dsp_c.despike).failed == 0


def test_bad_samples_are_refused_and_nothing_is_lost() -> None:
    fs = 250.0
    glitched, _ = _with_glitches(_bcg(fs, 30.0), fs, size=2.0)
    whole, _ = _despiked(glitched, fs)
    d = Despiker(fs)
    first = d.process(glitched[:4000])
    for bad in ([1.0, np.nan], [np.inf], [2e15], "abc"):
        with pytest.raises((DspValueError, TypeError), match="x"):
            d.process(bad)
    rest = np.concatenate([d.process(glitched[4000:]), d.flush()])
    np.testing.assert_array_equal(np.concatenate([first, rest]), whole)


@pytest.mark.parametrize("fs", [0.0, -1.0, float("nan"), 5.0, 1e6, "250"])
def test_bad_rates_are_refused(fs) -> None:
    with pytest.raises((DspValueError, TypeError), match="fs"):
        Despiker(fs)


def test_reset_starts_a_new_stretch() -> None:
    fs = 250.0
    glitched, _ = _with_glitches(_bcg(fs, 30.0), fs, size=2.0)
    d = Despiker(fs)
    d.process(glitched[:1234])
    d.reset()
    again = np.concatenate([d.process(glitched), d.flush()])
    np.testing.assert_array_equal(again, _despiked(glitched, fs)[0])
