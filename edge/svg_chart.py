"""Just enough SVG for the night report: time axes, line panels with gaps, bands and bars.

Hand-written so the unit needs no plotting library. Every function returns SVG text in
pixel coordinates of one drawing; :class:`TimeAxis` maps Unix seconds to x. A series is
drawn as one ``<path>`` whose subpaths are the runs of consecutive values: a missing value
(NaN) or a hole in time starts a new subpath, so a gap is never bridged by a line.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from html import escape

import numpy as np

__all__ = ["TimeAxis", "ValueAxis", "bars", "bands", "line", "nice_axis", "runs"]

_TIME_STEPS_S = (600, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class TimeAxis:
    """Unix seconds ``[t0, t1]`` onto pixels ``[x0, x1]``; ticks at whole hours of ``zone``
    (the night's time zone; None: this machine's)."""

    t0: float
    t1: float
    x0: float
    x1: float
    zone: datetime.tzinfo | None = None

    def x(self, t: np.ndarray | float) -> np.ndarray | float:
        return self.x0 + (np.asarray(t) - self.t0) * (self.x1 - self.x0) / max(self.t1 - self.t0, 1)

    def local(self, t: float) -> datetime.datetime:
        """``t`` on the axis's clock."""
        return datetime.datetime.fromtimestamp(t, self.zone or datetime.UTC).astimezone(self.zone)

    def ticks(self, max_ticks: int = 14) -> list[tuple[float, str]]:
        """``(t, "HH:MM")`` at whole steps of local time (the axis's zone)."""
        span = self.t1 - self.t0
        step = next((s for s in _TIME_STEPS_S if span / s <= max_ticks), _TIME_STEPS_S[-1])
        offset = self.local(self.t0).utcoffset().total_seconds()
        first = math.ceil((self.t0 + offset) / step) * step - offset
        fmt = "%H:%M" if step < 86400 else "%d %b"
        return [(t, self.local(t).strftime(fmt)) for t in np.arange(first, self.t1 + 1e-6, step)]


@dataclass(frozen=True)
class ValueAxis:
    """Values ``[lo, hi]`` onto pixels ``[y_bottom, y_top]``, optionally log10."""

    lo: float
    hi: float
    y_bottom: float
    y_top: float
    log: bool = False

    def y(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        if self.log:
            v = np.log10(np.where(v > 0, v, np.nan))
        frac = (v - self.lo) / (self.hi - self.lo)
        return self.y_bottom - np.clip(frac, 0, 1) * (self.y_bottom - self.y_top)


def nice_axis(values: np.ndarray, *, max_ticks: int = 5, floor: float | None = None):
    """``(lo, hi, ticks)`` with round steps around the finite ``values`` (None if none)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if floor is not None:
        lo = min(lo, floor)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    raw = (hi - lo) / max_ticks
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    ticks = [lo + k * step for k in range(int(round((hi - lo) / step)) + 1)]
    return lo, hi, ticks


def runs(t: np.ndarray, values: np.ndarray, max_step: float) -> list[slice]:
    """Slices of consecutive finite values whose times are at most ``max_step`` apart."""
    ok = np.isfinite(values)
    breaks = np.flatnonzero(~ok[:-1] | ~ok[1:] | (np.diff(t) > max_step)) + 1
    out = []
    for part in np.split(np.arange(len(values)), breaks):
        part = part[ok[part]]
        if part.size:
            out.append(slice(int(part[0]), int(part[-1]) + 1))
    return out


def line(xs: np.ndarray, ys: np.ndarray, parts: list[slice], *, css: str, title: str) -> str:
    """One ``<path>``: a subpath per run (a lone point is a dot, not lost)."""
    d = []
    for part in parts:
        x, y = xs[part], ys[part]
        pts = " ".join(f"{a:.1f} {b:.1f}" for a, b in zip(x, y, strict=True))
        d.append(f"M{pts}" if len(x) > 1 else f"M{x[0]:.1f} {y[0]:.1f}h0.1")
    return (
        f'<path class="series {css}" data-runs="{len(parts)}" d="{" ".join(d)}">'
        f"<title>{escape(title)}</title></path>"
    )


def bands(x_start: np.ndarray, x_stop: np.ndarray, y: float, h: float, css: list[str], tips):
    """Rectangles ``[x_start, x_stop)`` in one row, a class and a tooltip each."""
    return "".join(
        f'<rect class="{c}" x="{a:.1f}" y="{y:.1f}" width="{max(b - a, 0.6):.1f}" '
        f'height="{h:.1f}"><title>{escape(tip)}</title></rect>'
        for a, b, c, tip in zip(x_start, x_stop, css, tips, strict=True)
    )


def bars(x_start, x_stop, y_top, y_bottom: float, css: str, tips) -> str:
    """Vertical bars from ``y_bottom`` up to each ``y_top``."""
    return "".join(
        f'<rect class="{css}" x="{a:.1f}" y="{t:.1f}" width="{max(b - a - 1, 0.6):.1f}" '
        f'height="{max(y_bottom - t, 0):.1f}"><title>{escape(tip)}</title></rect>'
        for a, b, t, tip in zip(x_start, x_stop, y_top, tips, strict=True)
    )
