"""The night summary: numbers worked out by hand, no invented values, text and JSON forms."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edge.errors import BedsideError
from edge.records import Event
from edge.store import Store
from edge.summary import NightSummary, pick_session, summarize, summary_of_session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_fixtures import T0  # noqa: E402
from test_store import epoch, session  # noqa: E402


def night() -> list:
    none = {"hr_bpm": None, "hrv_rmssd_ms": None, "hr_reason": "x"}
    return [
        epoch(0, state="empty", **none, rr_bpm=None, rr_reason="empty bed"),
        epoch(1, hr_bpm=50.0, rr_bpm=10.0, hrv_rmssd_ms=30.0),
        epoch(2, hr_bpm=70.0, rr_bpm=14.0, hrv_rmssd_ms=50.0, duration_s=90.0),
        epoch(5, state="motion", **none, rr_bpm=None, rr_reason="motion"),
        epoch(6, state="poor", **none, rr_bpm=12.0),
    ]


def test_numbers_by_hand():
    s = summarize(night(), [Event(T0, "bed_entry"), Event(T0 + 1, "sensor_gap")] * 2)
    assert s.hours_recorded == pytest.approx(210 / 3600)
    assert s.hours_in_bed == pytest.approx(180 / 3600)
    assert s.hr_mean_bpm == pytest.approx((50 * 30 + 70 * 90) / 120)  # weighted by length
    assert (s.hr_min_bpm, s.hr_max_bpm) == (50.0, 70.0)
    assert s.rr_mean_bpm == pytest.approx((10 * 30 + 14 * 90 + 12 * 30) / 150)
    assert (s.rr_min_bpm, s.rr_max_bpm) == (10.0, 14.0)
    assert s.hrv_rmssd_median_ms == 40.0
    assert s.hr_coverage == pytest.approx(120 / 180)
    assert s.rr_coverage == pytest.approx(150 / 180)
    assert s.events == {"bed_entry": 2, "sensor_gap": 2}
    assert (s.start_utc, s.end_utc, s.n_epochs) == (T0, T0 + 7 * 30, 5)


def test_no_value_is_invented():
    empty_bed = [e for e in night() if e.state == "empty"]
    s = summarize(empty_bed)
    assert s.hr_mean_bpm is None and s.rr_max_bpm is None and s.hrv_rmssd_median_ms is None
    assert s.hr_coverage is None  # never in bed: coverage has no meaning
    assert "no trustworthy value" in s.format_text()
    nothing = summarize([])
    assert nothing.start_utc is None and nothing.hours_in_bed == 0
    assert "no epochs" in nothing.format_text()


def test_a_night_mostly_without_a_rate_says_why():
    """Under half the time in bed with a rate: the commonest reasons of the missing epochs
    follow it (what to check: the sensor's place, movement, a file's sampling rate)."""
    none = {"hr_bpm": None, "hrv_rmssd_ms": None, "rr_bpm": None}
    epochs = [
        epoch(0, state="motion", **none, hr_reason="motion", rr_reason="motion"),
        epoch(1, state="motion", **none, hr_reason="motion", rr_reason="motion"),
        epoch(2, **none, hr_reason="rate unconfirmed", rr_reason="no heart rhythm"),
        epoch(3, **none, hr_reason="irregular", rr_reason="no heart rhythm"),
        epoch(4, **none, hr_reason="few beats", rr_reason="no heart rhythm"),
        epoch(5, state="empty", **none, hr_reason="empty bed", rr_reason="empty bed"),
    ]
    s = summarize(epochs)
    assert s.hr_missing == {"motion": 2, "rate unconfirmed": 1, "irregular": 1, "few beats": 1}
    assert s.rr_missing == {"no heart rhythm": 3, "motion": 2}  # in bed only
    text = s.format_text()
    assert "no trustworthy value, in 0% of the time in bed (motion 2, rate unconfirmed 1, " in text
    assert "irregular 1)\n" in text  # the three commonest only
    assert "(no heart rhythm 3, motion 2)" in text
    covered = summarize(night())  # 67 % and 83 % covered: no reasons shown
    assert covered.format_text().split("\n")[2].endswith("in 67% of the time in bed")


def test_text_and_json_carry_the_same_numbers():
    s = summarize(night(), [Event(T0, "bed_exit")], session_id=7)
    text = s.format_text()
    for piece in ("Session 7", "65.0 bpm mean (50.0 to 70.0)", "in 67% of the time in bed"):
        assert piece in text
    assert "0.1 h recorded" in text and "bed_exit 1" in text
    d = json.loads(json.dumps(s.as_dict()))
    assert d["hr_mean_bpm"] == pytest.approx(65.0) and d["session_id"] == 7
    assert d["start_iso"] == "2026-11-24T22:30:00Z"
    assert NightSummary(**{k: v for k, v in d.items() if not k.endswith("_iso")}) == s


def test_summary_of_a_stored_session_and_which_session(tmp_path):
    path = tmp_path / "v.db"
    with Store(path) as store:
        with pytest.raises(BedsideError) as err:
            pick_session(store)
        assert err.value.code == "E264"
        first = session(store)
        for e in night():
            store.add_epoch(e)
        store.add_event(Event(T0, "bed_entry"))
        store.close_session(clean=True, t_utc=T0 + 300)
        session(store, T0 + 1000)  # open, no epochs yet: the last night is still the first
        assert pick_session(store) == first
        s = summary_of_session(store)
        assert s == summarize(night(), [Event(T0, "bed_entry")], session_id=first)
        with pytest.raises(BedsideError) as err:
            pick_session(store, 99)
        assert err.value.code == "E264" and "1, 2" in str(err.value)


def test_lowest_and_resting_heart_rate_by_hand():
    """Lowest: the lowest 5 min block median, blocks with a rate in half their time or more;
    resting: the 10th percentile of the in-bed epochs' rates; an empty bed counts in neither."""
    hrs = [50.0] + [70.0] * 9 + [60.0] * 10 + [45.0] * 2  # blocks of 10 epochs: 70, 60, (45)
    epochs = [epoch(i, hr_bpm=hr) for i, hr in enumerate(hrs)]
    epochs.append(epoch(len(hrs), state="empty", hr_bpm=30.0))  # not in bed
    s = summarize(epochs)
    assert s.hr_lowest_bpm == 60.0  # one low epoch (50) and a short block (45) do not set it
    # 45 45 50 60 ...: the 10th percentile of 22 values is at 2.1, between 50 and 60
    assert s.hr_resting_bpm == pytest.approx(51.0)
    assert "lowest HR     60.0 bpm (5 min), resting 51.0 bpm" in s.format_text()
    too_short = summarize([epoch(i, hr_bpm=50.0) for i in range(4)])
    assert too_short.hr_lowest_bpm is None and too_short.hr_resting_bpm == 50.0


def test_breathing_pauses_are_counted_not_taken_for_a_slow_rate():
    """Breathing under 6 /min (breaths 10 s or more apart) is a pause: counted, and kept out
    of the breathing mean, lowest and highest; the epoch still counts as covered."""
    epochs = [epoch(i, rr_bpm=rate) for i, rate in enumerate((12.0, 2.8, 14.0, 5.9, 6.0))]
    s = summarize(epochs)
    assert s.rr_pauses == 2
    assert (s.rr_min_bpm, s.rr_max_bpm) == (6.0, 14.0)
    assert s.rr_mean_bpm == pytest.approx((12 + 14 + 6) / 3)
    assert s.rr_coverage == 1.0
    assert "(6.0 to 14.0), in 100% of the time in bed, 2 pauses in breathing" in s.format_text()
