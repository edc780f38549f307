"""The night report: a self-contained page with the summary and the series, gaps as gaps."""

from __future__ import annotations

import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from edge.errors import BedsideError
from edge.report import write_report
from edge.sim import Night
from edge.store import Store
from edge.summary import summary_of_session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_fixtures import T0, night_epochs  # noqa: E402
from test_store import epoch, session  # noqa: E402

GAP_S = (3600.0, 3900.0)  # a pulled cable an hour into the night


@pytest.fixture(scope="module")
def night_db(tmp_path_factory) -> Path:
    """A store with one realistic simulated night (30 s epochs, a 5 min sensor gap)."""
    path = tmp_path_factory.mktemp("report") / "vitals.db"
    epochs, events = night_epochs(Night(seed=3), gap_s=GAP_S)
    with Store(path) as store:
        session(store, T0)
        for e in epochs:
            store.add_epoch(e)
        for e in events:
            store.add_event(e)
        store.close_session(clean=True, t_utc=T0 + 8 * 3600)
    return path


def _svg(html: str) -> ET.Element:
    (svg,) = re.findall(r'<svg viewBox=.*?aria-label="night timeline">.*?</svg>', html, re.S)
    return ET.fromstring(svg)  # well-formed, or this raises


def _subpaths(d: str) -> list[np.ndarray]:
    """x coordinates of each subpath of an SVG path written by edge.svg_chart.line."""
    out = []
    for sub in d.split("M")[1:]:
        nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", sub.replace("h0.1", ""))]
        out.append(np.array(nums[0::2]))
    return out


def test_the_page_is_self_contained_and_holds_the_summary(night_db, tmp_path):
    out = write_report(night_db, tmp_path / "night.html")
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    # Nothing to fetch: no URL, no script, no external resource of any kind.
    for forbidden in ("http:", "https:", "//", "<script", "src=", "href=", "url(", "@import"):
        assert forbidden not in html
    with Store(night_db, readonly=True) as store:
        s = summary_of_session(store)
    for number in (
        f"{s.hours_in_bed:.1f} h",
        f"{s.hr_mean_bpm:.1f} bpm",
        f"{s.hr_min_bpm:.1f} to {s.hr_max_bpm:.1f}",
        f"{s.rr_mean_bpm:.1f} /min",
        f"{s.hrv_rmssd_median_ms:.0f} ms",
        f"{100 * s.hr_coverage:.0f}%",
    ):
        assert number in html
    assert "sensor_gap" in html and "300 s lost" in html


def test_every_series_is_drawn_and_gaps_are_gaps(night_db, tmp_path):
    html = write_report(night_db, tmp_path / "night.html").read_text(encoding="utf-8")
    svg = _svg(html)
    paths = {p.get("class").split()[1]: p for p in svg.iter("path") if "series" in p.get("class")}
    assert set(paths) == {"hr", "hrv", "rr", "motion"}
    with Store(night_db, readonly=True) as store:
        epochs = [e for _, e in store.epochs()]
    t = np.array([e.t_utc for e in epochs])
    hr = np.array([np.nan if e.hr_bpm is None else e.hr_bpm for e in epochs])
    # The runs of heart rate, counted here independently: consecutive epochs with a value.
    breaks = ~np.isfinite(hr[:-1]) | ~np.isfinite(hr[1:]) | (np.diff(t) > 31)
    starts = np.isfinite(hr[0]) + np.sum(np.isfinite(hr[1:]) & breaks)
    runs = _subpaths(paths["hr"].get("d"))
    assert int(paths["hr"].get("data-runs")) == len(runs) == starts
    # The x of the sensor gap's edges: no line crosses it, lines end and start at its sides.
    x0, x1 = 70.0, 1180.0
    span = t[-1] + 30 - t[0]
    gap_a = x0 + (T0 + GAP_S[0] - t[0]) / span * (x1 - x0)
    gap_b = x0 + (T0 + GAP_S[1] - t[0]) / span * (x1 - x0)
    for name, path in paths.items():
        xs = np.concatenate([r for r in _subpaths(path.get("d"))])
        assert not np.any((xs > gap_a + 0.2) & (xs < gap_b - 0.2)), name
        for sub in _subpaths(path.get("d")):
            assert not (sub.min() < gap_a < sub.max()), f"{name} bridges the gap"
        assert len(xs) > 500  # the night is there, not a stub
    bands = [
        r
        for r in svg.iter("rect")
        if r.get("class", "").startswith("st-") and r.find("title") is not None
    ]
    assert {b.get("class") for b in bands} == {"st-empty", "st-motion", "st-poor", "st-good"}
    for band in bands:  # the bed state shows the hole too: no band covers it
        a = float(band.get("x"))
        b = a + float(band.get("width"))
        assert b <= gap_a + 0.2 or a >= gap_b - 0.2


def test_a_long_night_of_1_s_epochs_is_averaged_into_columns_keeping_its_holes(tmp_path):
    path = tmp_path / "v.db"
    with Store(path) as store:
        session(store, T0, 1.0)
        for i in range(30000):
            if 10000 <= i < 10600:
                continue  # 10 min without data
            state = "poor" if i % 7 == 0 else "good"  # a state flickering every few epochs
            store.add_epoch(epoch(i, 1.0, hr_bpm=60.0 + 10 * np.sin(i / 3000), state=state))
        store.close_session(clean=True, t_utc=T0 + 30000)
    html = write_report(path, tmp_path / "r.html").read_text(encoding="utf-8")
    hr = next(p for p in _svg(html).iter("path") if p.get("class") == "series hr")
    runs = _subpaths(hr.get("d"))
    assert len(runs) == 2  # the hole splits the line, nothing else does
    assert sum(len(r) for r in runs) <= 1200
    bands = [r for r in _svg(html).iter("rect") if r.get("class") in ("st-good", "st-poor")]
    assert 2 <= len(bands) <= 1201  # one per column at most, not one per epoch
    assert len(html) < 400_000


def test_which_session_and_bad_arguments(night_db, tmp_path):
    with pytest.raises(BedsideError) as err:
        write_report(night_db, tmp_path / "r.html", session_id=42)
    assert err.value.code == "E264"
    with pytest.raises(BedsideError) as err:
        write_report(night_db, tmp_path / "r.pdf")
    assert err.value.code == "E268"
    (tmp_path / "notes.db").write_text("hello")
    with pytest.raises(BedsideError) as err:
        write_report(tmp_path / "notes.db", tmp_path / "r.html")
    assert err.value.code == "E263"
    assert (tmp_path / "notes.db").read_text() == "hello"  # a reader never moves a file
    with pytest.raises(BedsideError) as err:
        write_report(night_db, tmp_path / "no" / "such" / "r.html")
    assert err.value.code == "E268"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_a_session_with_the_bed_empty_all_night_says_so(tmp_path):
    path = tmp_path / "v.db"
    with Store(path) as store:
        session(store)
        for i in range(40):
            store.add_epoch(
                epoch(i, state="empty", hr_bpm=None, hrv_rmssd_ms=None, rr_bpm=None,
                      hr_reason="empty bed", rr_reason="empty bed")
            )  # fmt: skip
        store.commit()
    html = write_report(path, tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.count("no values") == 3  # HR, HRV, breathing: no made-up line
    assert "no trustworthy value" in html


def _needs_chromium() -> None:
    """Skip without Chromium (`make test` installs it where it can); under CI, fail."""
    if shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed (CI): make browser, or apt-get install chromium")
        pytest.skip("Chromium is not installed: make browser, or apt-get install chromium")


def test_png_is_the_page_drawn_by_chromium(night_db, tmp_path):
    _needs_chromium()
    out = write_report(night_db, tmp_path / "night.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1400, 1250)
    assert len(data) > 50_000  # a drawn page, not a blank one
