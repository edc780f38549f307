"""The night report: a self-contained page with the summary and the series, gaps as gaps."""

from __future__ import annotations

import colorsys
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from edge.errors import BedsideError
from edge.records import EVENT_KINDS, Event
from edge.report import _PLAIN, NARROW, WIDE, describe_events, write_report
from edge.sim import Night
from edge.store import Store
from edge.summary import summary_of_session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser  # noqa: E402
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


def _drawings(html: str, label: str, kind: str = "wide") -> list[ET.Element]:
    """The charts' SVGs of one width (each parsed: well-formed, or this raises)."""
    found = re.findall(
        rf'<svg class="{kind}" viewBox=[^>]*aria-label="{label}">.*?</svg>', html, re.S
    )
    return [ET.fromstring(f.replace("×", "x")) for f in found]


def _svg(html: str, label: str = "hr") -> ET.Element:
    (svg,) = _drawings(html, label)
    return svg


def _subpaths(d: str) -> list[np.ndarray]:
    """x coordinates of each subpath of an SVG path written by edge.svg_chart.line."""
    out = []
    for sub in d.split("M")[1:]:
        nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", sub.replace("h0.1", ""))]
        out.append(np.array(nums[0::2]))
    return out


class _TagBalance(HTMLParser):
    """Every element opened is closed, in order (void elements aside)."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "wbr"}
    SVG_LEAVES = {"line", "rect", "circle", "path"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def test_the_page_is_self_contained_and_holds_the_summary(night_db, tmp_path):
    out = write_report(night_db, tmp_path / "night.html")
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    # Nothing to fetch: no URL, no script, no external resource; links only within the page.
    for forbidden in ("http:", "https:", "//", "<script", "src=", "url(", "@import"):
        assert forbidden not in html
    links = re.findall(r'href="([^"]*)"', html)
    assert links and all(re.fullmatch(r"#ev-\d+", link) for link in links)
    for link in links:
        assert f'id="{link[1:]}"' in html  # each marker's tap lands on its event's line
    with Store(night_db, readonly=True) as store:
        s = summary_of_session(store)
    for number in (
        f"{s.hours_in_bed:.1f} h",
        f"{s.hr_mean_bpm:.1f} bpm",
        f"lowest {s.hr_lowest_bpm:.0f} (5 min), resting {s.hr_resting_bpm:.0f}",
        f"{s.rr_mean_bpm:.1f} /min",
        f"{s.rr_min_bpm:.1f} to {s.rr_max_bpm:.1f}",
        f"{s.hrv_rmssd_median_ms:.0f} ms",
        f"{100 * s.hr_coverage:.0f}%",
    ):
        assert number in html
    assert "<h1>Night of Tuesday 24 November 2026</h1>" in html
    assert "no signal from the sensor 5 min" in html  # the 300 s gap, in plain words
    balance = _TagBalance()
    balance.feed(html)
    assert balance.errors == [] and balance.stack == []


def test_every_event_kind_has_plain_words():
    # A kind added to edge.records must not reach a beta user as `update_failed`.
    assert set(EVENT_KINDS) <= set(_PLAIN)
    assert all("_" not in words for words in _PLAIN.values())


def test_events_in_plain_words_with_their_durations():
    t = T0
    events = [
        Event(t, "bed_entry"),
        Event(t + 600, "bed_exit"),
        Event(t + 840, "bed_entry"),
        Event(t + 1200, "sensor_gap", "12 gaps in 40 s"),
        Event(t + 1800, "hr_out_of_range", "HR 125.0 bpm, above 120"),
        Event(t + 3000, "bed_exit"),
    ]
    epochs = [epoch(i) for i in range(40)]  # good epochs to t + 1200
    epochs += [epoch(i, state="poor", quality=0.0, beats=0, hr_bpm=None, hrv_rmssd_ms=None,
                     rr_bpm=None, hr_reason="sensor gap", rr_reason="sensor gap")
               for i in range(40, 44)]  # fmt: skip
    epochs += [epoch(i) for i in range(44, 60)]
    epochs += [
        epoch(i, hr_bpm=hr)
        for i, hr in zip(range(60, 65), (125.0, 131.0, 124.0, 110.0, 60.0), strict=True)
    ]
    shown = describe_events(events, epochs, t + 3600, "UTC")
    assert [(s.number, s.clock, s.text) for s in shown] == [
        (1, "22:30", "got into bed"),
        (2, "22:40", "out of bed 4 min"),
        (3, "22:50", "no signal from the sensor 2 min"),
        (4, "23:00", "heart rate above 120 bpm for 2 min (up to 131)"),
        (5, "23:20", "out of bed 10 min (until the end)"),
    ]
    assert shown[1].css == shown[4].css == "ev-bed"


def test_no_alarm_colours_and_no_code_names_on_the_page(night_db, tmp_path):
    """The unit raises no alarm (docs/beta-user.md): no red or pink event markers, and
    events are named in words, not as the store's kinds."""
    html = write_report(night_db, tmp_path / "night.html").read_text(encoding="utf-8")
    body = html.split("</style>", 1)[1]
    for kind in ("bed_entry", "bed_exit", "sensor_gap", "rr_out_of_range", "hr_out_of_range"):
        assert kind not in body
    for css in ("ev-bed", "ev-sensor", "ev-vital", "ev-other"):
        colour = re.search(rf"\.{css}\{{fill:#([0-9a-f]{{6}})", html).group(1)
        hue, lightness, saturation = colorsys.rgb_to_hls(
            *(int(colour[i : i + 2], 16) / 255 for i in (0, 2, 4))
        )
        assert saturation < 0.35 or 0.08 < hue < 0.85, f"{css} looks like an alarm: #{colour}"


def test_breathing_pauses_are_pauses_not_a_minimum_rate(tmp_path):
    path = tmp_path / "v.db"
    with Store(path) as store:
        session(store, T0)
        for i in range(60):
            store.add_epoch(epoch(i, rr_bpm=2.8 if i in (20, 21, 40) else 14.0))
        store.commit()
    html = write_report(path, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "mean, 14.0 to 14.0; 3 pauses (under 6 /min)" in html
    assert not re.search(r"2\.8 (/min|to)|to 2\.8", html)  # never shown as a rate
    rr = next(p for p in _svg(html, "rr").iter("path") if p.get("class") == "series rr")
    assert len(_subpaths(rr.get("d"))) == 3  # the line stops at each pause
    pauses = [r for r in _svg(html, "rr").iter("rect") if r.get("class") == "pause"]
    assert len(pauses) == 3 and "a pause in breathing" in html


def test_axes_stay_put_from_night_to_night(tmp_path):
    """HRV and motion axes are the same whatever the night; heart rate and breathing too,
    unless a value falls outside their usual range."""

    def ticks(html: str, label: str) -> list[str]:
        svg = _svg(html, label)
        return [t.text for t in svg.iter("text") if t.get("text-anchor") == "end"]

    pages = []
    for k, (hr, hrv, motion) in enumerate(((50.0, 20.0, 0.3), (75.0, 140.0, 30.0))):
        path = tmp_path / f"{k}.db"
        with Store(path) as store:
            session(store, T0)
            for i in range(60):
                store.add_epoch(epoch(i, hr_bpm=hr + i % 5, hrv_rmssd_ms=hrv + (i % 3) * 40,
                                      motion=motion * (1 + i % 4)))  # fmt: skip
            store.commit()
        pages.append(write_report(path, tmp_path / f"{k}.html").read_text(encoding="utf-8"))
    for label in ("hr", "rr", "hrv", "motion"):
        assert ticks(pages[0], label) == ticks(pages[1], label), label
    assert ticks(pages[0], "hrv") == ["0", "50", "100", "150", "200"]
    assert ticks(pages[0], "motion") == ["0.1x", "1x", "10x", "100x"]
    assert "Movement (times the night&#x27;s usual stillness)" in pages[0]


def test_every_series_is_drawn_and_gaps_are_gaps(night_db, tmp_path):
    html = write_report(night_db, tmp_path / "night.html").read_text(encoding="utf-8")
    paths = {}
    for key in ("hr", "hrv", "rr", "motion"):
        (path,) = [p for p in _svg(html, key).iter("path") if "series" in p.get("class", "")]
        paths[key] = path
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
    x0, x1 = 56.0, WIDE - 14.0
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
        for r in _svg(html, "bed state and events").iter("rect")
        if r.get("class", "").startswith("st-") and r.find("title") is not None
    ]
    assert {b.get("class") for b in bands} == {"st-empty", "st-motion", "st-poor", "st-good"}
    for band in bands:  # the bed state shows the hole too: no band covers it
        a = float(band.get("x"))
        b = a + float(band.get("width"))
        assert b <= gap_a + 0.2 or a >= gap_b - 0.2
    # one drawing per chart and width: six charts, each for a phone and a wide screen
    assert len(re.findall(r'<svg class="narrow"', html)) == 6
    assert len(re.findall(r'<svg class="wide"', html)) == 6


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
    for kind, width in (("wide", WIDE), ("narrow", NARROW)):
        (svg,) = _drawings(html, "hr", kind)
        hr = next(p for p in svg.iter("path") if p.get("class") == "series hr")
        runs = _subpaths(hr.get("d"))
        assert len(runs) == 2  # the hole splits the line, nothing else does
        assert sum(len(r) for r in runs) <= 2 * width
        (bed,) = _drawings(html, "bed state and events", kind)
        bands = [r for r in bed.iter("rect") if r.get("class") in ("st-good", "st-poor")]
        assert 2 <= len(bands) <= 2 * width + 1  # one per column at most, not one per epoch
    assert len(html) < 600_000


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
    assert html.count(">no values<") == 6  # HR, HRV, breathing, at both widths: no made-up line
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
    assert (width, height) == (1100, 2400)
    assert len(data) > 50_000  # a drawn page, not a blank one


_MEASURE = """(() => {
  const shown = el => getComputedStyle(el).display !== 'none';
  const out = {scrollWidth: document.documentElement.scrollWidth, sections: [], svgText: [],
               overlaps: [], marks: [], htmlText: []};
  const meet = (a, b) => Math.min(a[2], b[2]) - Math.max(a[0], b[0]) > 0.5 &&
                         Math.min(a[3], b[3]) - Math.max(a[1], b[1]) > 0.5;
  for (const sec of document.querySelectorAll('section.chart')) {
    const svgs = [...sec.querySelectorAll('svg')].filter(shown);
    const legend = sec.querySelector('.legend');
    const info = {title: sec.querySelector('h2').textContent, svgs: svgs.length};
    if (svgs.length && legend)
      info.legendGap = svgs[0].getBoundingClientRect().top - legend.getBoundingClientRect().bottom;
    out.sections.push(info);
    for (const svg of svgs) {
      const scale = svg.getScreenCTM().a, boxes = [];
      for (const t of svg.querySelectorAll('text')) {
        const r = t.getBoundingClientRect();
        out.svgText.push(parseFloat(getComputedStyle(t).fontSize) * scale);
        boxes.push([r.left, r.top, r.right, r.bottom, t.textContent]);
      }
      for (let i = 0; i < boxes.length; i++)
        for (let j = i + 1; j < boxes.length; j++)
          if (meet(boxes[i], boxes[j])) out.overlaps.push([info.title, boxes[i][4], boxes[j][4]]);
      for (const a of svg.querySelectorAll('a.mark')) {
        const r = a.querySelector('circle').getBoundingClientRect();
        const href = a.getAttribute('href');
        out.marks.push({w: r.width, h: r.height, label: a.querySelector('text').textContent,
                        target: !!document.querySelector(href),
                        box: [r.left, r.top, r.right, r.bottom]});
      }
    }
  }
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') || !shown(el)) continue;
    if ([...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
      out.htmlText.push(parseFloat(getComputedStyle(el).fontSize));
  }
  return out;
})()"""


def measure_in_chromium(page: Path, width: int, charts: int, not_a_chart: str) -> dict:
    """Open ``page`` in Chromium ``width`` px wide (a screenshot beside it) and check what
    every page of the report holds to: no sideways scrolling, ``charts`` sections (all but
    the one titled ``not_a_chart``) of one drawing each with its legend right above, text
    at least 11 px in charts and 12 px elsewhere, no text on text. Returns the measures."""
    with Browser() as browser:
        browser.open(page, width)
        m = browser.evaluate(_MEASURE)
        browser.screenshot(page.with_name(f"{page.stem}-{width}.png"))
    assert m["scrollWidth"] <= width
    found = [s for s in m["sections"] if s["title"] != not_a_chart]
    assert len(found) == charts and all(s["svgs"] == 1 for s in found)
    assert all(0 <= s["legendGap"] <= 24 for s in found), found
    assert min(m["svgText"]) >= 11 and min(m["htmlText"]) >= 12
    assert m["overlaps"] == []
    return m


@pytest.fixture(scope="module")
def busy_db(tmp_path_factory) -> Path:
    """A night with many events: bed exits, a burst of sensor gaps, a vital out of range."""
    path = tmp_path_factory.mktemp("busy") / "vitals.db"
    epochs, events = night_epochs(Night(seed=3), gap_s=GAP_S)
    events += [Event(T0 + 7200 + 20 * k, "sensor_gap", "2 s lost") for k in range(12)]
    events += [Event(T0 + 600 * k, "sensor_disconnect", "no frames") for k in range(1, 40, 3)]
    events.append(Event(T0 + 5 * 3600, "hr_out_of_range", "HR 125.0 bpm, above 120"))
    with Store(path) as store:
        session(store, T0)
        for e in epochs:
            store.add_epoch(e)
        for e in sorted(events, key=lambda e: e.t_utc):
            store.add_event(e)
        store.close_session(clean=True, t_utc=T0 + 8 * 3600)
    return path


@pytest.mark.parametrize("width", [390, 1280])
def test_readable_on_a_phone_and_a_desktop_in_chromium(busy_db, tmp_path, width):
    """Drawn by headless Chromium: no sideways scrolling, one chart per drawing, text at
    least 11 px, no text on text, event markers a finger can hit, each labelled and leading
    to its line, the legend right above its chart."""
    _needs_chromium()
    m = measure_in_chromium(write_report(busy_db, tmp_path / "night.html"), width, 6, "Events")
    marks = m["marks"]
    assert len(marks) >= 10
    for mark in marks:
        assert mark["w"] >= 21.5 and mark["h"] >= 21.5 and mark["label"] and mark["target"]
    for i, a in enumerate(marks):
        for b in marks[i + 1 :]:
            overlap_x = min(a["box"][2], b["box"][2]) - max(a["box"][0], b["box"][0])
            overlap_y = min(a["box"][3], b["box"][3]) - max(a["box"][1], b["box"][1])
            assert overlap_x <= 0 or overlap_y <= 0, (a, b)
