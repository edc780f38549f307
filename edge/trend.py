"""The trend page: one self-contained HTML page (or PNG) of many nights, night by night.

    write_trend("vitals.db", "trend.html", since=date(2026, 12, 1), until=date(2026, 12, 31))
    write_trend("archive/units/unit-7.sqlite", "trend.html")      # every night of a unit

Per night (:func:`edge.nights.list_nights`, the figures of the night report): resting and
lowest heart rate, HRV, breathing, time in bed and coverage, as a table and as one chart per
figure. The x axis is the calendar, a day per step, so a night without a recording is a
hole, not a shorter line; the value axes are the night report's fixed ones, so a month's
page and a night's page read the same way. Drawn twice like the report's charts (a phone
and a wide screen, :data:`edge.report.NARROW` and :data:`edge.report.WIDE`).
"""

from __future__ import annotations

import datetime
import os
from html import escape
from pathlib import Path

import numpy as np

from . import svg_chart as svg
from .errors import fail
from .nights import Night, list_nights, open_readonly
from .report import NARROW, WIDE, check_out, page, value_scale, write_page

__all__ = ["parse_date", "render_trend", "write_trend"]

_DAY_S = 86400.0
#: (key, title, unit, axis) of each chart; axis: "hr" etc. as the night report's, or
#: (lo, hi, step) fixed here.
_CHARTS = (
    ("hr_resting", "Resting heart rate (beats per minute)", "bpm", "hr"),
    ("hrv_rmssd_ms", "Heart-rate variability (RMSSD, ms, median of the night)", "ms", "hrv"),
    ("breathing_mean", "Breathing (breaths per minute, mean of the night)", "/min", "rr"),
    ("hours_in_bed", "Time in bed (hours)", "h", (0.0, 12.0, 3.0)),
    ("coverage", "Coverage (% of the time in bed with a heart rate)", "%", (0.0, 100.0, 25.0)),
)
_COLOURS = {
    "hr_resting": "hr",
    "hrv_rmssd_ms": "hrv",
    "breathing_mean": "rr",
    "hours_in_bed": "bed",
    "coverage": "covl",
}
_CSS = (
    ".bed{stroke:#59a14f}.covl{stroke:#76b7b2}.dot{stroke-width:0}.hr.dot{fill:#d62728}"
    ".hrv.dot{fill:#9467bd}.rr.dot{fill:#1f77b4}.bed.dot{fill:#59a14f}.covl.dot{fill:#76b7b2}"
    ".low{stroke:#d62728;stroke-dasharray:2 3}"
    ".bed.sw{background:#59a14f}.covl.sw{background:#76b7b2}"
    ".sw.dots{height:3px;vertical-align:3px;width:16px;border-radius:0;"
    "background:repeating-linear-gradient(90deg,#d62728 0 2px,transparent 2px 5px)}"
)


def parse_date(text: str, option: str) -> datetime.date:
    """``YYYY-MM-DD`` as a date; E270 for anything else (``option`` names the flag)."""
    try:
        return datetime.date.fromisoformat(text)
    except (TypeError, ValueError):
        fail("E270", f"{option} {text!r} is not a date", "give it as YYYY-MM-DD, e.g. 2026-12-01")


def check_range(since: datetime.date | None, until: datetime.date | None) -> None:
    """E270 when ``since`` is after ``until`` (either may be open)."""
    if since is not None and until is not None and since > until:
        fail("E270", f"--since {since} is after --until {until}", "swap them")


def write_trend(
    db_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
    title: str | None = None,
) -> Path:
    """Write the trend page of the nights within ``[since, until]`` (both inclusive, either
    open) of a store or an archive file, and return its path (.html, or .png with Chromium).

    Raises:
        BedsideError: E263 not a readable store or archive, E268/E269 as the night report,
            E270 ``since`` after ``until``, E271 no night in the range.
    """
    out = check_out(out_path)
    check_range(since, until)
    db = open_readonly(db_path)
    try:
        nights = list_nights(db, since=since, until=until)
    finally:
        db.close()
    nights = [n for n in nights if n.n_epochs]
    if not nights:
        span = f"from {since or 'the first'} to {until or 'the last'}"
        fail(
            "E271",
            f"{Path(db_path).name}: no night with epochs {span}",
            "widen --since/--until; `bedside nights --db PATH` lists the nights",
        )
    return write_page(out, render_trend(nights, since=since, until=until, title=title))


def render_trend(
    nights: list[Night],
    *,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
    title: str | None = None,
) -> str:
    """The trend page of ``nights`` (at least one) as text."""
    first = since or min(n.night_date for n in nights)
    last = until or max(n.night_date for n in nights)
    heading = title or f"Nights {_day(first)} to {_day(last)}"
    covered = len({n.night_date for n in nights})
    days = (last - first).days + 1
    body = [
        f"<h1>{escape(heading)}</h1>",
        f'<div class="sub">{len(nights)} night{"s" if len(nights) != 1 else ""} recorded on '
        f"{covered} of {days} days · each night belongs to the evening it began</div>",
        '<p class="note">A research device, not a medical one: it raises no alarm and its '
        "numbers are no diagnosis. A day without a point had no recording.</p>",
    ]
    for key, name, unit, axis in _CHARTS:
        legend = [(f"sw ln {_COLOURS[key]}", "one point per night")]
        if key == "hr_resting":
            legend = [
                (f"sw ln {_COLOURS[key]}", "resting: 10th percentile of the night"),
                ("sw dots", "lowest 5 min of the night"),
            ]
        drawings = "".join(
            _chart(width, nights, first, last, key, axis, unit) for width in (NARROW, WIDE)
        )
        spans = "".join(f'<span><i class="{c}"></i>{escape(t)}</span>' for c, t in legend)
        body.append(
            f'<section class="chart"><h2>{escape(name)}</h2><div class="legend">{spans}</div>'
            f"{drawings}</section>"
        )
    body.append(_table(nights))
    return page(heading, body, css=_CSS)


# --- parts ---------------------------------------------------------------------------------


def _day(d: datetime.date) -> str:
    return d.strftime("%a %-d %b %Y")


def _table(nights: list[Night]) -> str:
    def num(value, fmt: str, scale: float = 1.0) -> str:
        return "-" if value is None else format(value * scale, fmt)

    rows = "".join(
        f"<tr><td>{n.night_date.strftime('%a %-d %b')}</td><td>{n.hours_in_bed:.1f}</td>"
        f"<td>{num(n.hr_resting, '.0f')}</td><td>{num(n.hr_lowest, '.0f')}</td>"
        f"<td>{num(n.hrv_rmssd_ms, '.0f')}</td><td>{num(n.breathing_mean, '.1f')}</td>"
        f"<td>{num(n.coverage, '.0f', 100)}%</td></tr>"
        for n in nights
    )
    head = (
        "<tr><th>night</th><th>in bed</th><th>resting</th><th>lowest</th>"
        "<th>HRV</th><th>breathing</th><th>coverage</th></tr>"
    )
    caption = "<caption>in bed: hours; heart rates: bpm; HRV: ms; breathing: per minute</caption>"
    return (
        '<section class="chart"><h2>Night by night</h2><div class="scroll"><table>'
        f"{caption}{head}{rows}</table></div></section>"
    )


def _chart(width, nights, first, last, key, axis, unit) -> str:
    narrow = width == NARROW
    left, right = (40.0, width - 14.0) if narrow else (56.0, width - 14.0)
    height, top = 150.0, 10.0
    bottom = height - 24
    # Day d is drawn at its middle; the axis spans whole days.
    t0 = _noon(first) - _DAY_S / 2
    t1 = _noon(last) + _DAY_S / 2
    xaxis = svg.TimeAxis(t0, t1, left, right)
    scale = 100.0 if key == "coverage" else 1.0
    t = np.array([_noon(n.night_date) for n in nights])
    values = np.array(
        [np.nan if getattr(n, key) is None else getattr(n, key) * scale for n in nights]
    )
    lowest = np.array([np.nan if n.hr_lowest is None else n.hr_lowest for n in nights])
    if isinstance(axis, str):
        both = np.concatenate([values, lowest]) if key == "hr_resting" else values
        lo, hi, ticks, _ = value_scale(axis, both)
    else:
        lo, hi, step = axis
        ticks = [float(v) for v in np.arange(lo, hi + step / 2, step)]
    vaxis = svg.ValueAxis(lo, hi, bottom, top)
    parts = [_date_ticks(xaxis, first, last, top, bottom, 5 if narrow else 12)]
    for tick in ticks:
        yy = bottom - (tick - lo) / (hi - lo) * (bottom - top)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{right}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
            f'<text x="{left - 5}" y="{yy + 4:.1f}" text-anchor="end">{tick:g}</text>'
        )
    parts.append(f'<line class="axis" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    css = _COLOURS[key]
    xs, ys = xaxis.x(t), vaxis.y(values)
    runs = svg.runs(t, values, 1.5 * _DAY_S)  # consecutive days join; a missing day does not
    parts.append(svg.line(xs, ys, runs, css=css, title=f"{key}: {len(runs)} runs"))
    if key == "hr_resting":
        low_runs = svg.runs(t, lowest, 1.5 * _DAY_S)
        parts.append(svg.line(xs, vaxis.y(lowest), low_runs, css="low", title="lowest 5 min"))
    for x, y, v, n in zip(xs, ys, values, nights, strict=True):
        if np.isfinite(v):
            parts.append(
                f'<circle class="{css} dot" cx="{x:.1f}" cy="{y:.1f}" r="3.5">'
                f"<title>{n.night_date.isoformat()}: {v:.1f} {escape(unit)}</title></circle>"
            )
    return (
        f'<svg class="{"narrow" if narrow else "wide"}" viewBox="0 0 {width} {height:.0f}" '
        f'role="img" aria-label="{key}">{"".join(parts)}</svg>'
    )


def _date_ticks(xaxis, first, last, top, bottom, max_ticks) -> str:
    days = (last - first).days + 1
    step = next(s for s in (1, 2, 7, 14, 28, 56, 91, 182, 364, 10**6) if days / s <= max_ticks)
    out = []
    for k in range(0, days, step):
        day = first + datetime.timedelta(days=k)
        x = float(xaxis.x(_noon(day)))
        out.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top:.0f}" y2="{bottom:.0f}"/>'
            f'<text x="{x:.1f}" y="{bottom + 15:.0f}" text-anchor="middle">'
            f"{day.strftime('%-d %b')}</text>"
        )
    return "".join(out)


def _noon(day: datetime.date) -> float:
    """A date as a point on the axis (its noon, UTC seconds: only the spacing matters)."""
    return datetime.datetime(day.year, day.month, day.day, 12, tzinfo=datetime.UTC).timestamp()
