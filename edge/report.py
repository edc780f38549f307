"""The night report: one self-contained HTML page (or a PNG of it) from a store or an archive.

    write_report("vitals.db", "night.html")               # the last night with epochs
    write_report("vitals.db", "night.png", session_id=3)  # PNG: needs Chromium on the machine
    write_report("archive/units/unit-7.sqlite", "night.html")   # a pulled archive alike

The page (no script, no network) holds the night's figures and one chart per series, each
with its legend beside it: bed state with the night's events as numbered markers (a tap
jumps to the event's line in the list under the charts), heart rate with the resting rate,
breathing with its pauses, HRV, motion and coverage. A value the unit did not trust is not
drawn: the line stops, and a hole in the recording is a hole in every line.

Readable on a phone: each chart is drawn twice, for a narrow screen (:data:`NARROW` drawing
units wide) and a wide one (:data:`WIDE`), and CSS shows the one that fits, so one drawing
unit is about one CSS pixel and the 12 px text stays 12 px. The axes do not move from night
to night: heart rate, breathing, HRV and motion have fixed ranges (widened only for values
outside them), so two nights' charts compare at a glance. Motion is on a log scale in
multiples of the night's usual stillness (:mod:`edge.vitals`). Times are the night's own
local time (the session's time zone, :mod:`edge.nights`).
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from . import svg_chart as svg
from .errors import fail
from .files import atomic_write
from .nights import (
    Night,
    last_night,
    local_time,
    night_records,
    open_readonly,
    summarize_night,
    time_zone,
)
from .records import STATES, Epoch, Event
from .summary import PAUSE_BELOW_BPM, NightSummary, summarize

__all__ = [
    "NARROW",
    "WIDE",
    "check_out",
    "describe_events",
    "page",
    "pick_night",
    "render_html",
    "value_scale",
    "write_page",
    "write_report",
]

#: Drawing widths (units ~ CSS px) of the phone and the desktop version of each chart.
NARROW, WIDE = 360, 1000
_COVERAGE_BIN_S = 900.0
_FONT = 12  # px, the charts' text
_MARK_R = 11  # an event marker's radius: a 22 px target
_LANES = 3  # rows of event markers before neighbours merge into one
#: Fixed value axes (lo, hi, ticks): the same on every night, widened only for values outside.
_AXES = {
    "hr": (40.0, 100.0, 20.0),
    "rr": (5.0, 25.0, 5.0),
    "hrv": (0.0, 200.0, 50.0),
}
#: Series whose axis never widens: a few high HRV epochs (an irregular beat) are drawn at
#: the top edge rather than squeezing every night's line.
_FIXED = ("hrv",)
_MOTION_DECADES = (-1, 2)  # 0.1x to 100x the night's usual stillness
_STATE_NAMES = {
    "good": "in bed, good signal",
    "poor": "in bed, weak signal",
    "motion": "moving",
    "empty": "bed empty",
}
_PLAIN = {
    "bed_entry": "got into bed",
    "bed_exit": "out of bed",
    "hr_out_of_range": "heart rate outside the set range",
    "rr_out_of_range": "breathing outside the set range",
    "sensor_gap": "no signal from the sensor",
    "sensor_disconnect": "sensor disconnected",
    "sensor_reconnect": "sensor reconnected",
    "sensor_error": "sensor fault",
    "clock_step": "the unit's clock was set",
    "restart": "the unit restarted",
    "shutdown": "recording stopped",
    "update": "software updated",
    "rollback": "software rolled back",
    "update_failed": "a software update failed; the unit kept its release",
    "store_recovered": "a damaged store was set aside",
}
_EVENT_CLASS = {
    "bed_entry": "ev-bed",
    "bed_exit": "ev-bed",
    "hr_out_of_range": "ev-vital",
    "rr_out_of_range": "ev-vital",
    "sensor_gap": "ev-sensor",
    "sensor_disconnect": "ev-sensor",
    "sensor_reconnect": "ev-sensor",
    "sensor_error": "ev-sensor",
}
CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;padding:12px;
color:#222;background:#fff;max-width:1040px}
h1{font-size:22px;margin:4px 0}h2{font-size:16px;margin:0 0 4px}
.sub{color:#555;margin-bottom:12px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px;
margin-bottom:10px}
.card{border:1px solid #ddd;border-radius:8px;padding:8px 12px}
.card b{display:block;font-size:22px}.card span{color:#555;font-size:13px}
.note{color:#555;font-size:13px;margin:6px 0 14px}
section.chart{margin:16px 0 8px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;color:#444;font-size:13px;margin:0 0 4px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;
margin-right:5px}
.sw.ln{height:3px;vertical-align:3px;width:16px;border-radius:0}
.sw.dash{height:0;border-top:2px dashed #d62728;width:16px;vertical-align:3px;border-radius:0}
svg{width:100%;height:auto;display:block;overflow:visible}
svg.wide{display:none}
@media (min-width:700px){svg.narrow{display:none}svg.wide{display:block}}
svg text{font-size:12px;fill:#444}
.grid{stroke:#eee}.axis{stroke:#999}.none{fill:#777;font-style:italic}
.series{fill:none;stroke-width:1.6;stroke-linejoin:round;stroke-linecap:round}
.hr{stroke:#d62728}.hrv{stroke:#9467bd}.rr{stroke:#1f77b4}.motion{stroke:#7f7f7f}
.rest{stroke:#d62728;stroke-dasharray:5 4;stroke-width:1.2}
.st-empty{fill:#e3e3e3;background:#e3e3e3}.st-motion{fill:#f28e2b;background:#f28e2b}
.st-poor{fill:#edc948;background:#edc948}.st-good{fill:#59a14f;background:#59a14f}
.st-none{fill:#fff;stroke:#bbb;stroke-dasharray:3 2}.sw.st-none{border:1px dashed #999}
.cov{fill:#76b7b2;background:#76b7b2}.pause{fill:#1f77b4;background:#1f77b4}
.ev-bed{fill:#5b6b80;background:#5b6b80}.ev-sensor{fill:#8a7550;background:#8a7550}
.ev-vital{fill:#6f6496;background:#6f6496}.ev-other{fill:#4f8a84;background:#4f8a84}
.mark text{fill:#fff;font-weight:600;font-size:11px}.tick{stroke:#888}
.hr.sw{background:#d62728}.rr.sw{background:#1f77b4}.hrv.sw{background:#9467bd}
.motion.sw{background:#7f7f7f}
ol.events{padding-left:0;list-style:none;margin:6px 0}
ol.events li{padding:5px 6px;border-bottom:1px solid #eee;display:flex;gap:10px}
ol.events li:target{background:#fff4c2}
ol.events .n{display:inline-block;min-width:22px;height:22px;border-radius:11px;color:#fff;
text-align:center;font-weight:600;font-size:12px;line-height:22px}
ol.events time{color:#555;min-width:44px}
table{border-collapse:collapse;font-size:14px;width:100%}
td,th{padding:4px 6px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left;white-space:nowrap}
.scroll{overflow-x:auto}
.foot{color:#777;font-size:12px;margin-top:18px}
"""


def write_report(
    db_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    session_id: int | None = None,
    generation: int | None = None,
) -> Path:
    """Write the report of a night (default: the last one with epochs) and return its path.

    ``db_path`` is a unit's store or a pulled archive file (``DIR/units/<id>.sqlite``);
    ``generation`` picks an archive's store generation (default the latest with the
    session). ``out_path`` ending in ``.html`` gives the page; ``.png`` a screenshot of it
    (needs Chromium). The file appears whole or not at all. Raises :class:`BedsideError`
    E263 (not a readable store or archive), E264 (no such session), E268 (cannot write
    ``out_path``), E269 (PNG without Chromium).
    """
    out = check_out(out_path)
    db = open_readonly(db_path)
    try:
        night = pick_night(db, Path(db_path).name, session_id, generation)
        epochs, events = night_records(db, night)
    finally:
        db.close()
    summary = summarize(epochs, events, session_id=night.session_id)
    return write_page(out, render_html(night, epochs, events, summary))


def check_out(out_path: str | os.PathLike) -> Path:
    """``out_path`` if it ends in .html or .png (a PNG only with Chromium): E268, E269."""
    out = Path(out_path)
    kind = out.suffix.lower()
    if kind not in (".html", ".htm", ".png"):
        fail("E268", f"{out.name}: the report is .html or .png", "end the --out path so")
    if kind == ".png" and _chromium() is None:
        fail("E269", "a PNG report needs Chromium, not found", "install chromium or write .html")
    return out


def pick_night(db, name: str, session_id: int | None, generation: int | None) -> Night:
    """The night of ``session_id`` (and ``generation``), or the last night with epochs; E264.
    Only that night's epochs are read, however many nights the file holds."""
    if session_id is not None:
        return summarize_night(db, session_id, generation=generation)
    night = last_night(db)
    if night is None:
        fail("E264", f"{name}: no session with epochs yet", "record a night first")
    return night


def write_page(out: Path, html: str) -> Path:
    """Write ``html`` to ``out`` (.html as is, .png drawn by Chromium), whole or not at all."""
    if out.suffix.lower() == ".png":
        with tempfile.TemporaryDirectory() as tmp:
            page_path = Path(tmp) / "report.html"
            page_path.write_text(html, encoding="utf-8")
            _atomic_write(out, _screenshot(page_path, Path(tmp)))
    else:
        _atomic_write(out, html.encode("utf-8"))
    return out


def page(title: str, body: list[str], *, css: str = "") -> str:
    """A whole self-contained page: the report's style (and ``css``), ``title`` and the
    ``body`` parts."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{CSS}{css}</style></head><body>",
            *body,
            "</body></html>",
        ]
    )


def render_html(
    night: Night, epochs: list[Epoch], events: list[Event], summary: NightSummary
) -> str:
    """The whole page of one night as text."""
    zone = time_zone(night.tz)
    title = f"Night of {night.night_date.strftime('%A %-d %B %Y')}"
    span = "-"
    if summary.start_utc is not None:
        span = (
            f"{_hhmm(summary.start_utc, night.tz)} to {_hhmm(summary.end_utc, night.tz)} "
            f"({escape(night.tz)}), {summary.hours_recorded:.1f} h recorded"
        )
    sub = (
        f"{span} · session {night.session_name} · {escape(night.source)} · software "
        f"{escape(night.software_version)}"
    )
    shown = describe_events(events, epochs, summary.end_utc, night.tz)
    body = [f"<h1>{escape(title)}</h1>", f'<div class="sub">{sub}</div>', _cards(summary)]
    body.append(
        '<p class="note">A research device, not a medical one: it raises no alarm and its '
        "numbers are no diagnosis. Where it could not trust the signal it shows nothing: the "
        "lines stop.</p>"
    )
    if epochs:
        body += _charts(epochs, shown, summary, zone)
    else:
        body.append("<p>No epochs in this session.</p>")
    body.append(_event_list(shown))
    body.append(
        f'<p class="foot">Made {escape(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))} by '
        f"bedside report. Times are the night's local time ({escape(night.tz)}).</p>"
    )
    return page(title, body)


# --- events in plain words -----------------------------------------------------------------


@dataclass(frozen=True)
class ShownEvent:
    """An event as the page shows it: a number, a time, plain words and a colour class."""

    number: int
    t_utc: float
    clock: str  #: local "HH:MM"
    text: str
    css: str


def describe_events(
    events: list[Event], epochs: list[Epoch], end_utc: float | None, tz: str
) -> list[ShownEvent]:
    """The night's events in plain words with their durations, numbered in time order.

    A time out of bed is one line ("out of bed 4 min", from the exit to the next entry); the
    entry that ends it is not repeated. A gap in the signal lasts until the next epoch that
    was judged; a vital outside its range for as long as its epochs stay out.
    """
    ordered = sorted(events, key=lambda e: e.t_utc)
    entries = [e.t_utc for e in ordered if e.kind == "bed_entry"]
    shown: list[tuple[float, str, str]] = []
    skip_entries: set[float] = set()
    for e in ordered:
        words = _PLAIN.get(e.kind, e.kind.replace("_", " "))
        css = _EVENT_CLASS.get(e.kind, "ev-other")
        if e.kind == "bed_entry":
            if e.t_utc in skip_entries:
                continue
        elif e.kind == "bed_exit":
            back = next((t for t in entries if t > e.t_utc), None)
            if back is not None:
                skip_entries.add(back)
                words += f" {_duration(back - e.t_utc)}"
            elif end_utc is not None:
                words += f" {_duration(end_utc - e.t_utc)} (until the end)"
        elif e.kind == "sensor_gap":
            resumed = next((p.t_utc for p in epochs if p.t_utc > e.t_utc and not p.unjudged), None)
            if resumed is not None:
                words += f" {_duration(resumed - e.t_utc)}"
        elif e.kind in ("hr_out_of_range", "rr_out_of_range"):
            words = _out_of_range(e, epochs)
        elif e.detail and e.kind in (
            "shutdown",
            "restart",
            "clock_step",
            "update",
            "rollback",
            "update_failed",
        ):
            words += f" ({e.detail})"
        shown.append((e.t_utc, words, css))
    return [ShownEvent(i + 1, t, _hhmm(t, tz), text, css) for i, (t, text, css) in enumerate(shown)]


def _out_of_range(e: Event, epochs: list[Epoch]) -> str:
    """ "heart rate above 120 bpm for 3 min (up to 131)": the run of epochs beyond the limit."""
    vital, unit, name = (
        ("hr_bpm", "bpm", "heart rate")
        if e.kind == "hr_out_of_range"
        else ("rr_bpm", "/min", "breathing")
    )
    found = re.search(r"(below|above) (-?[\d.]+)", e.detail)
    if found is None:
        return f"{name} outside the set range"
    side, limit = found.group(1), float(found.group(2))
    beyond, held = [], 0.0
    for p in epochs:
        if p.t_utc < e.t_utc:
            continue
        value = getattr(p, vital)
        if value is None:
            continue  # no value neither ends nor extends the run
        if (value < limit) if side == "below" else (value > limit):
            beyond.append(value)
            held = p.t_utc + p.duration_s - e.t_utc
        else:
            break
    text = f"{name} {side} {limit:g} {unit}"
    if beyond:
        extreme = min(beyond) if side == "below" else max(beyond)
        text += f" for {_duration(held)} ({'down' if side == 'below' else 'up'} to {extreme:.0f})"
    return text


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1.5:
        return "1 min" if seconds >= 30 else f"{seconds:.0f} s"
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def _event_list(shown: list[ShownEvent]) -> str:
    if not shown:
        return '<section class="chart"><h2>Events</h2><p>No events.</p></section>'
    rows = "".join(
        f'<li id="ev-{s.number}"><span class="n {s.css}">{s.number}</span>'
        f"<time>{escape(s.clock)}</time><span>{escape(s.text)}</span></li>"
        for s in shown[:300]
    )
    more = f"<p>and {len(shown) - 300} more events.</p>" if len(shown) > 300 else ""
    return f'<section class="chart"><h2>Events</h2><ol class="events">{rows}</ol>{more}</section>'


# --- figures -------------------------------------------------------------------------------


def _cards(s: NightSummary) -> str:
    def num(value, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    def share(value) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    if s.hr_mean_bpm is None:
        heart = "<b>-</b><span>no trustworthy value</span>"
    else:
        heart = (
            f"<b>{s.hr_mean_bpm:.1f} bpm</b><span>mean; lowest {num(s.hr_lowest_bpm, '.0f')} "
            f"(5 min), resting {num(s.hr_resting_bpm, '.0f')}</span>"
        )
    if s.rr_mean_bpm is None:
        breathing = "<b>-</b><span>no trustworthy value</span>"
    else:
        breathing = (
            f"<b>{s.rr_mean_bpm:.1f} /min</b><span>mean, {s.rr_min_bpm:.1f} to "
            f"{s.rr_max_bpm:.1f}</span>"
        )
    if s.rr_pauses:
        breathing = breathing.replace(
            "</span>",
            f"; {s.rr_pauses} pause{'s' if s.rr_pauses > 1 else ''} (under "
            f"{PAUSE_BELOW_BPM:g} /min)</span>",
        )
    hrv = "-" if s.hrv_rmssd_median_ms is None else f"{s.hrv_rmssd_median_ms:.0f} ms"
    cards = [
        (
            "In bed",
            f"<b>{s.hours_in_bed:.1f} h</b><span>of {s.hours_recorded:.1f} h recorded</span>",
        ),
        ("Heart rate", heart),
        ("Breathing", breathing),
        ("HRV (RMSSD)", f"<b>{hrv}</b><span>median of the night</span>"),
        (
            "Coverage",
            f"<b>{share(s.hr_coverage)}</b><span>of the time in bed with a heart rate, "
            f"{share(s.rr_coverage)} with breathing</span>",
        ),
    ]
    body = "".join(
        f'<div class="card"><span>{escape(name)}</span>{value}</div>' for name, value in cards
    )
    return f'<div class="cards">{body}</div>'


# --- charts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """One drawing of a chart: its width and the time axis across it."""

    width: int
    left: float
    axis: svg.TimeAxis

    @property
    def narrow(self) -> bool:
        return self.width == NARROW

    @property
    def right(self) -> float:
        return self.axis.x1


def _frames(epochs: list[Epoch], zone: datetime.tzinfo) -> list[_Frame]:
    t0 = epochs[0].t_utc
    t1 = max(e.t_utc + e.duration_s for e in epochs)
    out = []
    for width, left in ((NARROW, 40.0), (WIDE, 56.0)):
        out.append(_Frame(width, left, svg.TimeAxis(t0, t1, left, width - 14.0, zone)))
    return out


def _charts(epochs, shown, summary: NightSummary, zone) -> list[str]:
    frames = _frames(epochs, zone)
    # Two columns a unit at most: finer than the eye sees, and a page stays small.
    columns = {f.width: _columns(epochs, f.axis, 2 * int(f.right - f.left)) for f in frames}
    resting = summary.hr_resting_bpm
    pause_legend = []
    if summary.rr_pauses:
        pause_legend = [
            (
                "sw pause",
                f"a pause in breathing: breaths 10 s or more apart (under {PAUSE_BELOW_BPM:g} "
                "/min), not drawn as a rate",
            )
        ]
    sections = [
        (
            "Bed and events",
            _legend([(f"sw {c}", _STATE_NAMES[s]) for s, c in _state_classes()]
                    + [("sw st-none", "no data")]
                    + ([("sw ev-bed", "numbered: events (list below; tap one)")] if shown else [])),
            lambda f: _bed_chart(f, columns[f.width], shown),
        ),
        (
            "Heart rate (beats per minute)",
            _legend([("sw ln hr", "per epoch")]
                    + ([("sw dash", f"resting {resting:.0f} bpm")] if resting else [])),
            lambda f: _line_chart(f, columns[f.width], "hr", resting=resting),
        ),
        (
            "Breathing (breaths per minute)",
            _legend([("sw ln rr", "per epoch")] + pause_legend),
            lambda f: _line_chart(f, columns[f.width], "rr"),
        ),
        (
            "Heart-rate variability (RMSSD, ms)",
            _legend([("sw ln hrv", "per epoch; higher is usually more relaxed")]),
            lambda f: _line_chart(f, columns[f.width], "hrv"),
        ),
        (
            "Movement (times the night's usual stillness)",
            _legend([("sw ln motion", "1 = lying still; a turn over is 10 or more")]),
            lambda f: _line_chart(f, columns[f.width], "motion"),
        ),
        (
            "Coverage (% of the time in bed with a heart rate, per 15 min)",
            _legend([("sw cov", "the share the numbers speak for")]),
            lambda f: _coverage_chart(f, epochs),
        ),
    ]  # fmt: skip
    out = []
    for title, legend, draw in sections:
        drawings = "".join(draw(f) for f in frames)
        out.append(f'<section class="chart"><h2>{escape(title)}</h2>{legend}{drawings}</section>')
    return out


def _state_classes() -> list[tuple[str, str]]:
    return [(s, f"st-{s}") for s in ("good", "poor", "motion", "empty")]


def _legend(items: list[tuple[str, str]]) -> str:
    spans = "".join(f'<span><i class="{css}"></i>{escape(text)}</span>' for css, text in items)
    return f'<div class="legend">{spans}</div>'


def _svg(frame: _Frame, height: float, body: str, label: str) -> str:
    css = "narrow" if frame.narrow else "wide"
    return (
        f'<svg class="{css}" viewBox="0 0 {frame.width} {height:.0f}" role="img" '
        f'aria-label="{escape(label)}">{body}</svg>'
    )


def _time_ticks(frame: _Frame, top: float, bottom: float) -> str:
    out = []
    for t, text in frame.axis.ticks(max_ticks=5 if frame.narrow else 12):
        x = float(frame.axis.x(t))
        out.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top:.0f}" y2="{bottom:.0f}"/>'
            f'<text x="{x:.1f}" y="{bottom + 15:.0f}" text-anchor="middle">{text}</text>'
        )
    return "".join(out)


@dataclass(frozen=True)
class _Columns:
    """What is drawn: one column per epoch, or per time slice when epochs are too many."""

    start: np.ndarray  #: Unix s
    stop: np.ndarray
    state: np.ndarray  #: index into STATES: the epoch's, or the commonest in the slice
    values: dict[str, np.ndarray]  #: "hr", "hrv", "rr", "motion", "pause"; NaN = no value
    max_step: float  #: centres further apart than this have a hole between them

    @property
    def centre(self) -> np.ndarray:
        return (self.start + self.stop) / 2


def _columns(epochs: list[Epoch], axis: svg.TimeAxis, max_columns: int) -> _Columns:
    """The epochs as columns; more than ``max_columns`` are averaged into time slices
    (a slice without any value for a series stays NaN, one without epochs is left out)."""

    def column(name):
        return np.array([np.nan if getattr(e, name) is None else getattr(e, name) for e in epochs])

    start = np.array([e.t_utc for e in epochs])
    stop = start + np.array([e.duration_s for e in epochs])
    state = np.array([STATES.index(e.state) for e in epochs])
    rr = column("rr_bpm")
    pause = rr < PAUSE_BELOW_BPM
    values = {
        "hr": column("hr_bpm"),
        "hrv": column("hrv_rmssd_ms"),
        "rr": np.where(pause, np.nan, rr),  # a pause is not a rate
        "motion": column("motion"),
        "pause": np.where(pause, 1.0, np.nan),
    }
    step = float(np.median(stop - start))
    if len(epochs) <= max_columns:
        return _Columns(start, stop, state, values, 1.5 * step)
    width = (axis.t1 - axis.t0) / max_columns
    col = np.minimum(((start + stop) / 2 - axis.t0) // width, max_columns - 1).astype(int)
    used = np.unique(col)
    for key, v in values.items():
        ok = np.isfinite(v)
        sums = np.bincount(col[ok], weights=v[ok], minlength=max_columns)[used]
        counts = np.bincount(col[ok], minlength=max_columns)[used]
        values[key] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    votes = np.zeros((max_columns, len(STATES)))
    np.add.at(votes, (col, state), stop - start)
    slice_start = axis.t0 + used * width
    return _Columns(
        slice_start, slice_start + width, votes[used].argmax(axis=1), values, 1.5 * max(step, width)
    )


def value_scale(key: str, values: np.ndarray) -> tuple[float, float, list[float], bool]:
    """``(lo, hi, ticks, log)``: the fixed axis of a series, widened by whole steps only
    for values beyond it (so an ordinary night never rescales); HRV and motion never."""
    if key == "motion":
        lo, hi = _MOTION_DECADES
        return float(lo), float(hi), [float(d) for d in range(lo, hi + 1)], True
    lo, hi, step = _AXES[key]
    finite = values[np.isfinite(values)]
    if finite.size and key not in _FIXED:
        lo = min(lo, np.floor(finite.min() / step) * step)
        hi = max(hi, np.ceil(finite.max() / step) * step)
    lo = max(lo, 0.0)
    return lo, hi, [float(v) for v in np.arange(lo, hi + step / 2, step)], False


def _line_chart(frame: _Frame, cols: _Columns, key: str, *, resting: float | None = None) -> str:
    height = 150.0
    top, bottom = 10.0, height - 24
    values = cols.values[key]
    lo, hi, ticks, log = value_scale(key, values)
    vaxis = svg.ValueAxis(lo, hi, bottom, top, log=log)
    parts = [_time_ticks(frame, top, bottom)]
    for tick in ticks:
        yy = bottom - (tick - lo) / (hi - lo) * (bottom - top)
        text = f"{10**tick:g}×" if log else f"{tick:g}"
        parts.append(
            f'<line class="grid" x1="{frame.left}" x2="{frame.right}" y1="{yy:.1f}" '
            f'y2="{yy:.1f}"/><text x="{frame.left - 5}" y="{yy + 4:.1f}" '
            f'text-anchor="end">{text}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{frame.left}" x2="{frame.right}" y1="{bottom}" y2="{bottom}"/>'
    )
    if not np.isfinite(values).any():
        parts.append(
            f'<text class="none" x="{frame.left + 10}" y="{(top + bottom) / 2:.0f}">'
            "no values</text>"
        )
    else:
        runs = svg.runs(cols.centre, values, cols.max_step)
        parts.append(
            svg.line(
                frame.axis.x(cols.centre), vaxis.y(values), runs, css=key,
                title=f"{key}: {len(runs)} runs",
            )
        )  # fmt: skip
    if resting is not None:
        yy = float(vaxis.y(np.array([resting]))[0])
        parts.append(
            f'<line class="rest" x1="{frame.left}" x2="{frame.right}" y1="{yy:.1f}" '
            f'y2="{yy:.1f}"><title>resting {resting:.0f} bpm</title></line>'
        )
    if key == "rr":
        pause = np.isfinite(cols.values["pause"])
        if pause.any():
            a, b = frame.axis.x(cols.start[pause]), frame.axis.x(cols.stop[pause])
            tips = [f"pause in breathing {_hhmm_axis(frame, t)}" for t in cols.start[pause]]
            parts.append(svg.bars(a, b, np.full(a.shape, bottom - 8.0), bottom, "pause", tips))
    return _svg(frame, height, "".join(parts), key)


def _bed_chart(frame: _Frame, cols: _Columns, shown: list[ShownEvent]) -> str:
    """Bed state as coloured bands, and above them the events as numbered markers, each a
    link to its line in the event list."""
    lanes = _place_markers(frame, shown)
    n_lanes = max((lane for lane, _, _ in lanes), default=-1) + 1
    band_top = 8.0 + n_lanes * (2 * _MARK_R + 4)
    band_h = 24.0
    bottom = band_top + band_h
    t, stop, state = cols.start, cols.stop, cols.state
    width = stop - t
    new = (state[1:] != state[:-1]) | (t[1:] - stop[:-1] > 0.5 * width[1:])
    starts = np.concatenate([[0], np.flatnonzero(new) + 1])
    ends = np.concatenate([starts[1:], [len(t)]])
    a, b = t[starts], stop[ends - 1]
    names = [STATES[state[i]] for i in starts]
    tips = [
        f"{_STATE_NAMES[name]} {_hhmm_axis(frame, x)} to {_hhmm_axis(frame, y)}"
        for name, x, y in zip(names, a, b, strict=True)
    ]
    parts = [
        _time_ticks(frame, band_top, bottom),
        # Behind the bands: a dashed box, so a hole in the recording shows as white.
        f'<rect class="st-none" x="{frame.left}" y="{band_top:.0f}" '
        f'width="{frame.right - frame.left:.1f}" height="{band_h:.0f}"/>',
        svg.bands(
            frame.axis.x(a), frame.axis.x(b), band_top, band_h, [f"st-{n}" for n in names], tips
        ),
    ]
    for lane, x, group in lanes:
        cy = 8.0 + lane * (2 * _MARK_R + 4) + _MARK_R
        first = group[0]
        tip = "; ".join(f"{s.number}: {s.text}" for s in group)
        label = str(first.number) if len(group) == 1 else f"{first.number}+"
        for s in group:
            xs = float(frame.axis.x(s.t_utc))
            parts.append(
                f'<line class="tick" x1="{xs:.1f}" x2="{xs:.1f}" y1="{cy + _MARK_R:.1f}" '
                f'y2="{band_top + band_h:.1f}"/>'
            )
        parts.append(
            f'<a class="mark" href="#ev-{first.number}"><circle class="{first.css}" '
            f'cx="{x:.1f}" cy="{cy:.1f}" r="{_MARK_R}"/><text x="{x:.1f}" y="{cy + 4:.1f}" '
            f'text-anchor="middle">{label}</text><title>{escape(tip)}</title></a>'
        )
    return _svg(frame, bottom + 22, "".join(parts), "bed state and events")


def _place_markers(frame: _Frame, shown: list[ShownEvent]):
    """``(lane, x, events)`` per marker: the first lane where it clears its neighbour; where
    none does, it joins the last marker (one marker, "N+", for a burst of events)."""
    placed: list[tuple[int, float, list[ShownEvent]]] = []
    last_x = [-1e9] * _LANES
    gap = 2 * _MARK_R + 3
    for s in shown:
        x = min(max(float(frame.axis.x(s.t_utc)), frame.left + _MARK_R), frame.right - _MARK_R)
        lane = next((k for k in range(_LANES) if x - last_x[k] >= gap), None)
        if lane is None:
            placed[-1][2].append(s)
            continue
        last_x[lane] = x
        placed.append((lane, x, [s]))
    return placed


def _coverage_chart(frame: _Frame, epochs: list[Epoch]) -> str:
    """Per 15 min: the share of the time in bed that has a heart rate."""
    height = 110.0
    top, bottom = 10.0, height - 24
    t = np.array([e.t_utc for e in epochs])
    dur = np.array([e.duration_s for e in epochs])
    in_bed = np.array([e.in_bed for e in epochs])
    has_hr = np.array([e.hr_bpm is not None for e in epochs]) & in_bed
    k = ((t - frame.axis.t0) // _COVERAGE_BIN_S).astype(int)
    n = int(k.max()) + 1
    bed_s = np.bincount(k, weights=dur * in_bed, minlength=n)
    hr_s = np.bincount(k, weights=dur * has_hr, minlength=n)
    used = np.flatnonzero(bed_s > 0)
    share = hr_s[used] / bed_s[used]
    a = frame.axis.t0 + used * _COVERAGE_BIN_S
    b = np.minimum(a + _COVERAGE_BIN_S, frame.axis.t1)
    tips = [f"{_hhmm_axis(frame, x)}: {100 * s:.0f}%" for x, s in zip(a, share, strict=True)]
    grid = "".join(
        f'<line class="grid" x1="{frame.left}" x2="{frame.right}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
        f'<text x="{frame.left - 5}" y="{yy + 4:.1f}" text-anchor="end">{p}%</text>'
        for p, yy in ((0, bottom), (50, (top + bottom) / 2), (100, top))
    )
    ys = bottom - share * (bottom - top)
    bars = svg.bars(frame.axis.x(a), frame.axis.x(b), ys, bottom, "cov", tips)
    return _svg(frame, height, _time_ticks(frame, top, bottom) + grid + bars, "coverage")


# --- output --------------------------------------------------------------------------------


def _hhmm(t_utc: float, tz: str) -> str:
    return local_time(t_utc, tz).strftime("%H:%M")


def _hhmm_axis(frame: _Frame, t_utc: float) -> str:
    return frame.axis.local(float(t_utc)).strftime("%H:%M")


def _atomic_write(out: Path, data: bytes) -> None:
    try:
        atomic_write(out, data)
    except OSError as error:
        fail("E268", f"{out.name}: cannot write the report ({error.strerror})", "check --out")


def _chromium() -> str | None:
    return next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )


def _screenshot(page_path: Path, tmp: Path) -> bytes:
    png = tmp / "report.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}",
        f"--screenshot={png}",
        "--window-size=1100,2400",
        page_path.as_uri(),
    ]
    try:
        subprocess.run(
            [_chromium(), *flags], capture_output=True, timeout=120, check=False, cwd=tmp
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        fail("E269", f"Chromium failed to draw the PNG ({type(error).__name__})", "write .html")
    if not png.is_file():
        fail("E269", "Chromium made no PNG", "write .html instead and open it in a browser")
    return png.read_bytes()
