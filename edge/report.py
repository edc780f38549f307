"""The night report: one self-contained HTML page (or a PNG of it) from the vitals store.

    write_report("vitals.db", "night.html")               # the last session with epochs
    write_report("vitals.db", "night.png", session_id=3)  # PNG: needs Chromium on the machine

The page holds the summary numbers and a timeline (inline SVG, no script, no network) of
bed state, events, heart rate, HRV, breathing rate, motion and coverage. A value the unit
did not trust is not drawn: the line stops, and a hole in the recording is a hole in every
line. Long nights at short epochs are averaged into about 1200 columns, a column without
any value staying empty.
"""

from __future__ import annotations

import os
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
from .records import STATES, Epoch, Event
from .store import SessionInfo, Store
from .summary import NightSummary, pick_session, summarize

__all__ = ["render_html", "write_report"]

_WIDTH = 1200  # drawing units; the SVG scales to the window
_LEFT, _RIGHT = 70, 20
_MAX_COLUMNS = 1200
_COVERAGE_BIN_S = 900.0
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
_CSS = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;
background:#fff;max-width:1300px}
h1{font-size:22px;margin:0 0 4px}.sub{color:#666;margin-bottom:16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:18px}
.card{border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:22px}.card span{color:#666;font-size:12px}
svg{width:100%;height:auto;display:block}
svg text{font-size:12px;fill:#444}
svg .label{font-weight:600;fill:#222;paint-order:stroke;stroke:#fff;stroke-width:4px}
.grid{stroke:#eee}.axis{stroke:#999}.none{fill:#999;font-style:italic}
.series{fill:none;stroke-width:1.6;stroke-linejoin:round;stroke-linecap:round}
.hr{stroke:#d62728}.hrv{stroke:#9467bd}.rr{stroke:#1f77b4}.motion{stroke:#7f7f7f}
.st-empty{fill:#e3e3e3}.st-motion{fill:#f28e2b}.st-poor{fill:#edc948}.st-good{fill:#59a14f}
.st-none{fill:#fff;stroke:#bbb;stroke-dasharray:3 2}
.cov{fill:#76b7b2}.ev-bed{fill:#555}.ev-sensor{fill:#d62728}.ev-vital{fill:#e377c2}
.ev-other{fill:#1f77b4}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:8px 0 0 70px;color:#555;font-size:12px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-2px;
margin-right:4px}
table{border-collapse:collapse;margin-top:16px;font-size:13px}
td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
.foot{color:#888;font-size:12px;margin-top:18px}
"""


def write_report(
    db_path: str | os.PathLike, out_path: str | os.PathLike, *, session_id: int | None = None
) -> Path:
    """Write the report of a session (default: the last one with epochs) and return its path.

    ``out_path`` ending in ``.html`` gives the page; ``.png`` a screenshot of it (needs
    Chromium). The file appears whole or not at all. Raises :class:`BedsideError` E263 (not a
    readable store), E264 (no such session), E268 (cannot write ``out_path``), E269 (PNG
    without Chromium).
    """
    out = Path(out_path)
    kind = out.suffix.lower()
    if kind not in (".html", ".htm", ".png"):
        fail("E268", f"{out.name}: the report is .html or .png", "end the --out path so")
    if kind == ".png" and _chromium() is None:
        fail("E269", "a PNG report needs Chromium, not found", "install chromium or write .html")
    with Store(db_path, readonly=True) as store:
        sid = pick_session(store, session_id)
        info = next(s for s in store.sessions() if s.id == sid)
        epochs = [e for _, e in store.epochs(session_id=sid)]
        events = [e for _, e in store.events(session_id=sid)]
    page = render_html(info, epochs, events, summarize(epochs, events, session_id=sid))
    if kind == ".png":
        with tempfile.TemporaryDirectory() as tmp:
            page_path = Path(tmp) / "report.html"
            page_path.write_text(page, encoding="utf-8")
            _atomic_write(out, _screenshot(page_path, Path(tmp)))
    else:
        _atomic_write(out, page.encode("utf-8"))
    return out


def render_html(
    session: SessionInfo, epochs: list[Epoch], events: list[Event], summary: NightSummary
) -> str:
    """The whole page as text."""
    start = _clock(summary.start_utc) if summary.start_utc else "-"
    end = _clock(summary.end_utc) if summary.end_utc else "-"
    title = f"Night report, session {session.id}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f'<div class="sub">{escape(start)} to {escape(end)} · source '
            f"{escape(session.source)} · {session.epoch_s:g} s epochs · software "
            f"{escape(session.software_version)}</div>",
            _cards(summary),
            _timeline(epochs, events) if epochs else "<p>No epochs in this session.</p>",
            _legend(),
            _event_table(events),
            f'<p class="foot">Made {escape(_clock(time.time()))} by bedside report. Times are '
            f"the unit's local time ({escape(time.strftime('%Z'))}). A line stops where the unit "
            "had no trustworthy value or no data.</p>",
            "</body></html>",
        ]
    )


# --- page parts -----------------------------------------------------------------------------


def _cards(s: NightSummary) -> str:
    def rate(mean, low, high, unit):
        if mean is None:
            return "<b>-</b><span>no trustworthy value</span>"
        return f"<b>{mean:.1f} {unit}</b><span>mean, {low:.1f} to {high:.1f}</span>"

    def share(value):
        return "-" if value is None else f"{100 * value:.0f}%"

    hrv = "-" if s.hrv_rmssd_median_ms is None else f"{s.hrv_rmssd_median_ms:.0f} ms"
    cards = [
        ("In bed", f"<b>{s.hours_in_bed:.1f} h</b><span>of {s.hours_recorded:.1f} h recorded"),
        ("Heart rate", rate(s.hr_mean_bpm, s.hr_min_bpm, s.hr_max_bpm, "bpm")),
        ("Breathing", rate(s.rr_mean_bpm, s.rr_min_bpm, s.rr_max_bpm, "/min")),
        ("HRV (RMSSD)", f"<b>{hrv}</b><span>median of epochs</span>"),
        (
            "Coverage",
            f"<b>{share(s.hr_coverage)}</b><span>of time in bed with a heart rate, "
            f"{share(s.rr_coverage)} with breathing</span>",
        ),
    ]
    body = "".join(
        f'<div class="card"><span>{escape(name)}</span>{value}</div>' for name, value in cards
    )
    return f'<div class="cards">{body}</div>'


def _legend() -> str:
    items = [(f"st-{s}", s) for s in STATES] + [
        ("ev-bed", "bed entry/exit"),
        ("ev-sensor", "sensor event"),
        ("ev-vital", "vital out of range"),
        ("ev-other", "restart, update, other"),
    ]
    spans = "".join(
        f'<span><svg class="sw" viewBox="0 0 12 12"><rect class="{c}" width="12" height="12"/>'
        f"</svg>{escape(text)}</span>"
        for c, text in items
    )
    return f'<div class="legend">{spans}</div>'


def _event_table(events: list[Event]) -> str:
    if not events:
        return "<p>No events.</p>"
    rows = "".join(
        f"<tr><td>{escape(_clock(e.t_utc))}</td><td>{escape(e.kind)}</td>"
        f"<td>{escape(e.detail)}</td></tr>"
        for e in sorted(events, key=lambda e: e.t_utc)[:200]
    )
    more = f"<p>and {len(events) - 200} more events.</p>" if len(events) > 200 else ""
    return f"<table><tr><th>time</th><th>event</th><th>detail</th></tr>{rows}</table>{more}"


def _timeline(epochs: list[Epoch], events: list[Event]) -> str:
    t = np.array([e.t_utc for e in epochs])
    dur = np.array([e.duration_s for e in epochs])
    axis = svg.TimeAxis(float(t[0]), float((t + dur).max()), _LEFT, _WIDTH - _RIGHT)
    cols = _columns(epochs, axis)
    parts: list[str] = []
    y = 10.0
    parts.append(_state_row(cols, axis, y))
    y += 40
    parts.append(_event_row(events, axis, y))
    y += 30
    for key, name, unit, log in (
        ("hr", "Heart rate", "bpm", False),
        ("hrv", "HRV RMSSD", "ms", False),
        ("rr", "Breathing", "/min", False),
        ("motion", "Motion", "", True),
    ):
        parts.append(_line_panel(cols, key, name, unit, axis, y, 110.0, log))
        y += 130
    parts.append(_coverage_panel(epochs, t, dur, axis, y, 70.0))
    y += 90
    parts.insert(0, _time_ticks(axis, 10.0, y - 20))  # first: behind the data
    return (
        f'<svg viewBox="0 0 {_WIDTH} {y:.0f}" role="img" aria-label="night timeline">'
        f"{''.join(parts)}</svg>"
    )


@dataclass(frozen=True)
class _Columns:
    """What is drawn: one column per epoch, or per time slice when epochs are too many."""

    start: np.ndarray  #: Unix s
    stop: np.ndarray
    state: np.ndarray  #: index into STATES: the epoch's, or the commonest in the slice
    values: dict[str, np.ndarray]  #: "hr", "hrv", "rr", "motion"; NaN = no value
    max_step: float  #: centres further apart than this have a hole between them

    @property
    def centre(self) -> np.ndarray:
        return (self.start + self.stop) / 2


def _columns(epochs: list[Epoch], axis: svg.TimeAxis) -> _Columns:
    """The epochs as columns; more than ``_MAX_COLUMNS`` are averaged into time slices
    (a slice without any value for a series stays NaN, one without epochs is left out)."""

    def column(name):
        return np.array([np.nan if getattr(e, name) is None else getattr(e, name) for e in epochs])

    start = np.array([e.t_utc for e in epochs])
    stop = start + np.array([e.duration_s for e in epochs])
    state = np.array([STATES.index(e.state) for e in epochs])
    values = {
        "hr": column("hr_bpm"),
        "hrv": column("hrv_rmssd_ms"),
        "rr": column("rr_bpm"),
        "motion": column("motion"),
    }
    step = float(np.median(stop - start))
    if len(epochs) <= _MAX_COLUMNS:
        return _Columns(start, stop, state, values, 1.5 * step)
    width = (axis.t1 - axis.t0) / _MAX_COLUMNS
    col = np.minimum(((start + stop) / 2 - axis.t0) // width, _MAX_COLUMNS - 1).astype(int)
    used = np.unique(col)
    for key, v in values.items():
        ok = np.isfinite(v)
        sums = np.bincount(col[ok], weights=v[ok], minlength=_MAX_COLUMNS)[used]
        counts = np.bincount(col[ok], minlength=_MAX_COLUMNS)[used]
        values[key] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    votes = np.zeros((_MAX_COLUMNS, len(STATES)))
    np.add.at(votes, (col, state), stop - start)
    slice_start = axis.t0 + used * width
    return _Columns(
        slice_start, slice_start + width, votes[used].argmax(axis=1), values, 1.5 * max(step, width)
    )


def _line_panel(cols, key, name, unit, axis, y0, h, log) -> str:
    values = cols.values[key]
    label = f"{name} ({unit})" if unit else name
    head = f'<text class="label" x="{_LEFT}" y="{y0 + 2:.0f}">{escape(label)}</text>'
    top, bottom = y0 + 10, y0 + h
    frame = f'<line class="axis" x1="{_LEFT}" x2="{axis.x1}" y1="{bottom}" y2="{bottom}"/>'
    if log:
        positive = values[np.isfinite(values) & (values > 0)]
        scale = svg.nice_axis(np.log10(positive)) if positive.size else None
        if scale is not None:
            lo, hi = np.floor(scale[0]), max(np.ceil(scale[1]), np.floor(scale[0]) + 1)
            scale = (lo, hi, list(np.arange(lo, hi + 1)))
    else:
        scale = svg.nice_axis(values)
    if scale is None:
        note = f'<text class="none" x="{_LEFT + 10}" y="{bottom - h / 2:.0f}">no values</text>'
        return head + frame + note
    lo, hi, ticks = scale
    vaxis = svg.ValueAxis(lo, hi, bottom, top, log=log)
    grid = []
    for tick in ticks:
        yy = bottom - (tick - lo) / (hi - lo) * (bottom - top)
        text = f"{10**tick:g}" if log else f"{tick:g}"
        grid.append(
            f'<line class="grid" x1="{_LEFT}" x2="{axis.x1}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
            f'<text x="{_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{text}</text>'
        )
    parts = svg.runs(cols.centre, values, cols.max_step)
    path = svg.line(
        axis.x(cols.centre), vaxis.y(values), parts, css=key, title=f"{name}: {len(parts)} runs"
    )
    return head + "".join(grid) + frame + path


def _state_row(cols: _Columns, axis: svg.TimeAxis, y0: float) -> str:
    """Bed state as coloured bands; consecutive columns of one state make one band."""
    t, stop, state = cols.start, cols.stop, cols.state
    width = stop - t
    new = (state[1:] != state[:-1]) | (t[1:] - stop[:-1] > 0.5 * width[1:])
    starts = np.concatenate([[0], np.flatnonzero(new) + 1])
    ends = np.concatenate([starts[1:], [len(t)]])
    a, b = t[starts], stop[ends - 1]
    names = [STATES[state[i]] for i in starts]
    css = [f"st-{name}" for name in names]
    tips = [f"{name} {_clock(x)} to {_clock(y)}" for name, x, y in zip(names, a, b, strict=True)]
    label = f'<text class="label" x="{_LEFT}" y="{y0 + 2:.0f}">Bed state</text>'
    # Behind the bands: a dashed box, so a hole in the recording shows as white.
    box = (
        f'<rect class="st-none" x="{_LEFT}" y="{y0 + 8:.0f}" width="{axis.x1 - _LEFT}" '
        f'height="20"/>'
    )
    return label + box + svg.bands(axis.x(a), axis.x(b), y0 + 8, 20, css, tips)


def _event_row(events, axis, y0) -> str:
    label = f'<text class="label" x="{_LEFT}" y="{y0 + 2:.0f}">Events</text>'
    marks = []
    for e in events:
        if not axis.t0 - 60 <= e.t_utc <= axis.t1 + 60:
            continue
        x = float(axis.x(min(max(e.t_utc, axis.t0), axis.t1)))
        tip = f"{e.kind} {_clock(e.t_utc)} {e.detail}".strip()
        marks.append(
            f'<path class="{_EVENT_CLASS.get(e.kind, "ev-other")}" '
            f'd="M{x:.1f} {y0 + 8:.0f}l5 9h-10z"><title>{escape(tip)}</title></path>'
        )
    return label + "".join(marks)


def _coverage_panel(epochs, t, dur, axis, y0, h) -> str:
    """Per 15 min: the share of the time in bed that has a heart rate."""
    label = (
        f'<text class="label" x="{_LEFT}" y="{y0 + 2:.0f}">Coverage (% of time in bed '
        "with a heart rate, per 15 min)</text>"
    )
    top, bottom = y0 + 10, y0 + h
    in_bed = np.array([e.in_bed for e in epochs])
    has_hr = np.array([e.hr_bpm is not None for e in epochs]) & in_bed
    k = ((t - axis.t0) // _COVERAGE_BIN_S).astype(int)
    n = int(k.max()) + 1
    bed_s = np.bincount(k, weights=dur * in_bed, minlength=n)
    hr_s = np.bincount(k, weights=dur * has_hr, minlength=n)
    used = np.flatnonzero(bed_s > 0)
    share = hr_s[used] / bed_s[used]
    a = axis.t0 + used * _COVERAGE_BIN_S
    b = np.minimum(a + _COVERAGE_BIN_S, axis.t1)
    tips = [f"{_clock(x)}: {100 * s:.0f}%" for x, s in zip(a, share, strict=True)]
    grid = "".join(
        f'<line class="grid" x1="{_LEFT}" x2="{axis.x1}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
        f'<text x="{_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{p}%</text>'
        for p, yy in ((0, bottom), (50, (top + bottom) / 2), (100, top))
    )
    ys = bottom - share * (bottom - top)
    return label + grid + svg.bars(axis.x(a), axis.x(b), ys, bottom, "cov", tips)


def _time_ticks(axis, top, bottom) -> str:
    out = []
    for t, text in axis.ticks():
        x = float(axis.x(t))
        out.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom:.0f}"/>'
            f'<text x="{x:.1f}" y="{bottom + 16:.0f}" text-anchor="middle">{text}</text>'
        )
    return "".join(out)


# --- output ---------------------------------------------------------------------------------


def _clock(t_utc: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t_utc))


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


def _screenshot(page: Path, tmp: Path) -> bytes:
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
        "--window-size=1400,1250",
        page.as_uri(),
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
