"""The product evaluation (edge.eval.product): scoring of stored epochs against a reference,
the sensor transforms, the machine signals, and one replay of Sadek through the unit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal as sps

from edge.eval import product
from edge.eval.__main__ import main
from edge.eval.epochs import (
    Reference,
    StoredRun,
    compare_runs,
    score_run,
    span_rates,
    span_rmssd,
    worst_window,
)
from edge.eval.machines import MACHINES, machine_runs
from edge.eval.transforms import (
    ADC_BITS,
    add_resonance,
    clip_percentiles,
    resample,
    to_adc_counts,
    transforms_for,
)

nan = np.nan


def _run(state, hr, events=(), rr=None, hrv=None) -> StoredRun:
    run = StoredRun.empty(len(state))
    run.state[:] = state
    run.hr[:] = hr
    if rr is not None:
        run.rr[:] = rr
    if hrv is not None:
        run.hrv[:] = hrv
    run.events = list(events)
    return run


def _labels(*labels: str) -> np.ndarray:
    return np.array(labels, dtype=object)


# --- scoring ---------------------------------------------------------------------------------


def test_coverage_mae_and_off_by_20_percent():
    ref = Reference(
        hr=np.array([60.0, 60.0, 60.0, 60.0, 80.0, nan]),
        state=_labels("good", "good", "good", "good", "motion", "empty"),
    )
    run = _run(
        ["good", "good", "good", "poor", "good", "empty"],
        [61.0, 58.0, 75.0, nan, 80.5, nan],
    )
    s = score_run(run, ref)
    assert s["still"] == 4  # the labelled-good epochs with a reference HR
    assert s["coverage"] == pytest.approx(75.0)  # 3 of the 4 stored an HR
    # Every epoch with both counts, the HR stored while moving too: (1 + 2 + 15 + 0.5) / 4.
    assert s["hr_epochs"] == 4
    assert s["hr_mae"] == pytest.approx(18.5 / 4)
    assert s["off_20pct"] == 1  # 75 against 60
    assert s["stored"] == 6


def test_coverage_without_labels_counts_every_epoch_with_a_reference():
    ref = Reference(hr=np.array([70.0, 70.0, nan, 70.0]))
    s = score_run(_run(["good"] * 4, [70.0, nan, 70.0, 71.0]), ref)
    assert s["still"] == 3 and s["coverage"] == pytest.approx(200 / 3)
    assert np.isnan(s["state_agreement"]) and s["state_labelled"] == 0


def test_worst_30_s_is_the_worst_run_of_three_epochs_with_an_error():
    assert worst_window(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(3.0)
    # A gap (no HR) breaks a run: 10, 10 then a gap is no window.
    assert worst_window(np.array([1.0, 1.0, 1.0, 10.0, 10.0, nan, 30.0])) == pytest.approx(7.0)
    assert np.isnan(worst_window(np.array([5.0, nan, 5.0, 5.0])))
    assert np.isnan(worst_window(np.array([5.0, 5.0])))
    ref = Reference(hr=np.full(5, 60.0))
    s = score_run(_run(["good"] * 5, [60.0, 66.0, 63.0, 60.0, 60.0]), ref)
    assert s["worst_30s"] == pytest.approx(3.0)  # (0 + 6 + 3) / 3


def test_false_events_are_out_of_range_events_while_the_reference_is_normal():
    hr_ref = np.array([60.0, 35.0, nan, 60.0])
    events = [
        (0, "hr_out_of_range", "HR 38.8 bpm, below 40"),  # the reference says 60: false
        (1, "hr_out_of_range", "HR 36 bpm, below 40"),  # the reference says 35: true
        (2, "hr_out_of_range", "HR 130 bpm, above 120"),  # no heartbeat at all: false
        (3, "rr_out_of_range", "RR 32.0 /min, above 25"),
        (3, "bed_entry", ""),  # not a range event
    ]
    run = _run(["good"] * 4, [38.8, 36.0, 130.0, 60.0], events)
    # A complete reference without RR: the RR event cannot be checked.
    s = score_run(run, Reference(hr=hr_ref, complete=True))
    assert (s["range_events"], s["false_events"], s["unverified_events"]) == (4, 2, 1)
    assert [e["verdict"] for e in s["events"]] == ["false", "true", "false", "unverified"]
    # An incomplete reference: a missing value is unknown, not "no heartbeat".
    s = score_run(run, Reference(hr=hr_ref, rr=np.array([nan, nan, nan, 14.0]), complete=False))
    assert [e["verdict"] for e in s["events"]] == ["false", "true", "unverified", "false"]


def test_state_agreement_skips_unlabelled_epochs_and_counts_missing_ones():
    ref = Reference(hr=np.full(5, 60.0), state=_labels("good", "good", "", "motion", "empty"))
    run = _run(["good", "motion", "good", "motion", ""], [60.0] * 5)
    s = score_run(run, ref)
    assert s["state_labelled"] == 4
    assert s["state_agreement"] == pytest.approx(50.0)  # good/good and motion/motion
    assert s["state_confusion"] == {
        "good": {"good": 1, "motion": 1},
        "motion": {"motion": 1},
        "empty": {"none": 1},
    }


def test_rr_and_hrv_against_the_truth():
    ref = Reference(
        hr=np.full(3, 60.0),
        state=_labels("good", "poor", "motion"),
        rr=np.array([15.0, 12.0, 12.0]),
        hrv=np.array([40.0, nan, 30.0]),
    )
    run = _run(
        ["good", "poor", "motion"], [60.0, nan, nan], rr=[16.0, nan, nan], hrv=[44.0, nan, 20.0]
    )
    s = score_run(run, ref)
    assert s["rr_mae"] == pytest.approx(1.0)
    assert s["rr_coverage"] == pytest.approx(50.0)  # good and poor epochs are still
    assert s["hrv_mae"] == pytest.approx(7.0) and s["hrv_epochs"] == 2


def test_span_rates_read_the_intervals_ending_in_the_span():
    fs = 100.0
    beats = np.arange(50, 3000, 100)  # one a second: 60 bpm
    hr = span_rates(beats, fs, 3000, epoch_s=10.0, span_s=10.0)
    assert hr == pytest.approx(np.full(3, 60.0))
    # Faster in the last 10 s; a 20 s span mixes both halves in the last epoch.
    beats = np.concatenate([np.arange(50, 1900, 100), np.arange(1950, 3000, 50)])
    hr = span_rates(beats, fs, 3000, epoch_s=10.0, span_s=10.0)
    assert hr[0] == pytest.approx(60.0) and hr[2] == pytest.approx(120.0)
    assert 60.0 < span_rates(beats, fs, 3000, 10.0, 20.0)[2] < 120.0
    # Invalid intervals are left out; too few leave NaN.
    valid = np.ones(beats.size, bool)
    valid[beats >= 2000] = False
    assert np.isnan(span_rates(beats, fs, 3000, 10.0, 10.0, valid=valid)[2])
    # The median, for breathing: one long pause does not move it.
    breaths = np.array([0, 400, 800, 1200, 2400, 2800])  # 4 s apart, one 12 s pause
    rr = span_rates(breaths, fs, 3000, 30.0, 30.0, statistic="median")
    assert rr == pytest.approx([15.0])


def test_span_rmssd_of_alternating_intervals():
    fs = 1000.0
    intervals = np.tile([1.0, 1.1], 10)
    beats = np.concatenate([[0], np.cumsum(intervals * fs)]).astype(np.int64)
    ibi = np.concatenate([[nan], intervals])
    out = span_rmssd(beats, ibi, np.ones(beats.size, bool), fs, int(beats[-1]) + 1, 25.0, 25.0)
    assert out[0] == pytest.approx(100.0)


def test_compare_runs_of_a_transformed_record():
    base = _run(
        ["good", "good", "motion", "good", ""],
        [60.0, 61.0, nan, 62.0, nan],
        hrv=[30.0, 40.0, nan, 50.0, nan],
    )
    other = _run(
        ["good", "poor", "motion", "good", ""],
        [60.5, nan, nan, 64.0, nan],
        hrv=[32.0, nan, nan, 46.0, nan],
    )
    c = compare_runs(base, other)
    assert c["epochs"] == 4  # the epoch neither stored is left out
    assert c["same_state"] == pytest.approx(75.0)
    assert c["hr_presence"] == pytest.approx(75.0)
    assert (c["hr_base"], c["hr_other"], c["hr_both"]) == (3, 2, 2)
    assert c["hr_within"] == pytest.approx(50.0) and c["hr_max_diff"] == pytest.approx(2.0)
    assert c["hrv_diff"] == pytest.approx(3.0)  # the median of 2 and 4 ms


# --- transforms ------------------------------------------------------------------------------


def _main_frequency(x: np.ndarray, fs: float) -> float:
    spectrum = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size)))
    return float(np.argmax(spectrum) * fs / x.size)


@pytest.mark.parametrize("fs_new", [50.0, 100.0, 500.0, 1000.0])
def test_resampling_keeps_a_sine_and_the_length(fs_new):
    fs, hz = 250.0, 1.3
    t = np.arange(int(60 * fs)) / fs
    x = 2000.0 + 300.0 * np.sin(2 * np.pi * hz * t + 0.3)
    y = resample(x, fs, fs_new)
    assert y.size == int(round(x.size * fs_new / fs))
    assert _main_frequency(y, fs_new) == pytest.approx(hz, abs=0.02)
    # The same sine at the new rate, end to end (the mirrored ends do not ring).
    t_new = np.arange(y.size) / fs_new
    expected = 2000.0 + 300.0 * np.sin(2 * np.pi * hz * t_new + 0.3)
    assert np.max(np.abs(y - expected)) < 6.0


def test_resampling_down_removes_what_the_new_rate_cannot_hold():
    fs = 1000.0
    t = np.arange(int(20 * fs)) / fs
    x = np.sin(2 * np.pi * 5.0 * t) + np.sin(2 * np.pi * 40.0 * t)  # 40 Hz: above 25
    y = resample(x, fs, 50.0)
    reference = sps.resample_poly(x, 1, 20)
    inner = slice(50, -50)  # scipy's polyphase filter has its own edge effects
    assert np.max(np.abs(y[inner] - reference[inner])) < 0.05
    assert np.max(np.abs(y[inner])) < 1.05  # the 40 Hz part is gone, not aliased


def test_gain_and_inversion_are_exact():
    rng = np.random.default_rng(1)
    x = rng.normal(5000.0, 100.0, 2000)
    t = transforms_for(250.0)
    assert np.array_equal(t["gain x1e-3"](x, 250.0)[0], x * 1e-3)
    assert np.array_equal(t["gain x1e4"](x, 250.0)[0], x * 1e4)
    assert np.array_equal(t["inverted"](x, 250.0)[0], -x)
    assert t["100 Hz"](x, 250.0)[1] == 100.0 and "250 Hz" not in t


def test_adc_counts_are_whole_12_bit_counts_about_2000():
    rng = np.random.default_rng(2)
    x = 0.017 + 0.01 * rng.normal(size=5000)  # volts
    counts = to_adc_counts(x)
    assert np.array_equal(counts, np.round(counts))
    assert counts.min() >= 0 and counts.max() <= 2**ADC_BITS - 1
    assert np.median(counts) == pytest.approx(2000.0, abs=1.0)
    lo, hi = np.percentile(counts, [1, 99])
    assert hi - lo == pytest.approx(1000.0, abs=2.0)
    volts = transforms_for(250.0)["volts"](x, 250.0)[0]
    assert np.allclose(volts, counts * 3.3 / 4096)


def test_resonance_rings_at_its_frequency_and_clipping_caps_the_extremes():
    fs = 250.0
    x = np.zeros(int(10 * fs))
    x[1000] = 1.0  # one sharp wave: the echo that follows rings at 8 Hz
    y = add_resonance(x, fs)
    echo = y[1001:1251]
    spectrum = np.abs(np.fft.rfft(echo, 2500))
    assert np.argmax(spectrum) * fs / 2500 == pytest.approx(8.0, abs=0.3)
    peaks = sps.find_peaks(np.abs(echo))[0]
    assert len(peaks) >= 4  # several waves after the one
    rng = np.random.default_rng(3)
    z = rng.normal(size=10000)
    c = clip_percentiles(z)
    lo, hi = np.percentile(z, [1, 99])
    assert c.min() == pytest.approx(lo) and c.max() == pytest.approx(hi)
    assert np.mean((c == lo) | (c == hi)) == pytest.approx(0.02, abs=0.002)


# --- machines --------------------------------------------------------------------------------


def _period_s(x: np.ndarray, fs: float) -> float:
    """The lag of the highest autocorrelation between 0.4 and 2 s."""
    x = x - x.mean()
    ac = np.correlate(x, x, "full")[x.size - 1 :]
    lo, hi = int(0.4 * fs), int(2.0 * fs)
    return (lo + int(np.argmax(ac[lo:hi]))) / fs


@pytest.mark.parametrize("name", sorted(MACHINES))
@pytest.mark.parametrize("fs", [50.0, 250.0])
def test_machine_signals_repeat_at_their_rate(name, fs):
    make, rate_hz = MACHINES[name]
    x = make(fs, 60.0)
    assert x.size == int(60 * fs) and np.all(np.isfinite(x))
    assert _period_s(x, fs) == pytest.approx(1.0 / rate_hz, abs=0.05)


def test_machine_runs_cover_every_machine_at_both_rates():
    runs = machine_runs()
    assert len({r.name for r in runs}) == len(runs)
    assert {r.machine for r in runs if r.fs == 50.0} == set(MACHINES)
    run = next(r for r in runs if r.offset)
    x = run.samples()
    assert np.median(x) == pytest.approx(run.offset, abs=run.gain)


# --- end to end ------------------------------------------------------------------------------


def test_sadek_through_the_unit(tmp_path):
    """The Sadek recording through the real pipeline and store: the structure of what comes
    back (not the figures, which the issue's work is changing)."""
    sadek = next(r for r in product.real_records() if r.name == "sadek")
    run, error = product.replay(sadek.x, sadek.fs, tmp_path)
    assert error is None
    n = int(np.ceil(sadek.x.size / (product.EPOCH_S * sadek.fs)))
    assert run.n == n == sadek.reference.hr.size
    assert set(run.state) <= {"empty", "motion", "poor", "good"}  # every epoch was stored
    assert np.all(np.isnan(run.hr[run.state != "good"]))  # no HR outside a good epoch
    assert np.all((run.quality >= 0) & (run.quality <= 1))
    score = product.score_run(run, sadek.reference)
    for key in ("coverage", "hr_mae", "worst_30s", "false_events", "state_agreement"):
        assert key in score
    assert score["state_labelled"] >= 100 and score["still"] >= 90


def test_a_wrong_rate_claim_passes_only_when_refused_or_without_rates():
    def claim(error=None, hr=0, rr=0):
        return {"error": error, "hr_epochs": hr, "rr_epochs": rr, "states": {}, "epochs": 3}

    results = {"records": {}, "groups": {}, "transforms": {}, "machines": {}}
    for claims, met in (
        ({"a": claim("E227: no"), "b": claim()}, True),
        ({"a": claim(rr=2)}, False),  # a breathing rate read off a stretched time axis
        ({"a": claim(hr=1)}, False),
    ):
        (target,) = [t for t in product.targets({**results, "claims": claims}) if "--fs" in t.name]
        assert target.met is met


def test_the_sensor_models_pass_only_without_a_wrong_rate_or_false_event():
    def group(off=0, false=0):
        return {"off_20pct": off, "false_events": false}

    results = {"records": {}, "transforms": {}, "machines": {}, "claims": {}}
    for groups, met in (
        ({k: group() for k in product.SENSOR_KINDS}, True),
        ({"ringing": group(off=2), "adc12": group()}, False),
        ({"fiber_mat": group(false=1)}, False),
    ):
        (target,) = [
            t for t in product.targets({**results, "groups": groups}) if "sensor" in t.name
        ]
        assert target.met is met
        assert ("ringing (2 off" in target.value) is ("ringing" in groups and not met)


def test_a_transformed_run_is_also_scored_against_the_reference(monkeypatch):
    """Alike is not enough: each transformed run of a record with a reference gets its own
    HR MAE against it (the table's "ref MAE"), beside its agreement with the base run."""
    imp_env = next(r for r in product.real_records() if r.name == "aydin imp_env")
    monkeypatch.setattr(product, "real_records", lambda: [imp_env])
    monkeypatch.setattr(product, "robustness_records", lambda: [])
    transforms = {
        "inverted": lambda x, f: (-x, f),
        "flat": lambda x, f: (np.full_like(x, 2.0), f),  # no heartbeat left
    }
    monkeypatch.setattr(product, "transforms_for", lambda fs: transforms)
    results = product.evaluate_product(sim=False, machines=False, claims=False)
    table = results["transforms"]["aydin imp_env"]
    base = results["records"]["aydin imp_env"]["score"]["hr_mae"]
    assert table["inverted"]["hr_mae_ref"] == pytest.approx(base)  # inversion moves no beat
    assert table["flat"]["hr_mae_ref"] is None or np.isnan(table["flat"]["hr_mae_ref"])
    assert "ref MAE" in product.report(results)
    assert f"{base:.2f}" in product.report(results).split("ref MAE")[1]


def test_product_cli_prints_targets_and_writes_json(tmp_path, capsys):
    out = tmp_path / "acc.json"
    code = main(
        [
            "--seeds",
            "dev",
            "--nights",
            "1",
            "--no-peers",
            "--no-transforms",
            "--no-machines",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "What the unit stores" in text and "Targets (issue 15)" in text
    assert "sadek: HR MAE at coverage" in text and "sim nominal (held out): hr_mae" in text
    data = json.loads(out.read_text())
    prod = data["product"]
    sets = {"nominal", "night", "low_snr", "slow", "fast", "heldout_like", "heldout_ringing"}
    assert set(prod["groups"]) == sets | set(product.SENSOR_KINDS)
    assert "sensor models (simulated)" in text
    assert {"aydin imp_env", "aydin bcg", "sadek"} <= set(prod["records"])
    assert all(set(t) == {"name", "goal", "value", "met"} for t in prod["targets"])
    sadek = prod["records"]["sadek"]
    assert len(sadek["epochs"]["state"]) == len(sadek["epochs"]["ref_hr"])
    # Scored against the oximeter read 28 s later, and as recorded, both shown.
    assert sadek["score"]["hr_mae"] < sadek["score_as_recorded"]["hr_mae"]
    assert "sadek (as recorded)" in text and "(oximeter 28 s late)" in text
    assert sadek["epochs"]["ref_hr"][-1] is None  # past the end of the oximeter's record
    # Wrong rate claims: a claim outside 50-1000 Hz is refused, the others replayed.
    claims = prod["claims"]
    assert claims["sadek at 50 Hz read as 10"]["error"].startswith("E227")
    assert claims["sadek at 50 Hz read as 250"]["error"] is None
    assert "wrong --fs claims" in text
