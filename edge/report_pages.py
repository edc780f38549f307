"""``bedside report`` and ``bedside nights``: which page from which file, and the pages of a
whole pulled log archive.

    bedside report --db vitals.db --out night.html                 # the last night
    bedside report --db archive/units/unit-7.sqlite --out n.html   # a pulled unit alike
    bedside report --db vitals.db --trend --since 2026-12-01 --out trend.html
    bedside report --archive archive --out pages/                  # every unit, and an index
    bedside nights --db vitals.db [--since DATE] [--until DATE] [--json]

For ``--archive DIR`` (the folder ``bedside-host logs pull --archive DIR`` fills) the ``--out``
folder gets, per unit, ``<device_id>.html`` (its last night) and ``<device_id>-trend.html``
(its nights within ``--since``/``--until``), and ``index.html`` linking them. A unit's file
that cannot be read is named in the index and on stderr, the other units' pages are made,
and the command exits 1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BedsideError, fail

if TYPE_CHECKING:  # imported when a page is made, so `bedside --help` stays quick
    from .nights import Night

__all__ = [
    "UnitPages",
    "add_parsers",
    "nights_command",
    "nights_table",
    "report_command",
    "write_archive_pages",
]

REPORT_EXAMPLES = """examples:
  bedside report --db build/night.db --out build/night.html       (the last night)
  bedside report --db build/night.db --session 3 --out night3.png
  bedside report --db build/night.db --trend --since 2026-12-01 --out trend.html
  bedside report --db archive/units/unit-7.sqlite --out unit-7.html
  bedside report --archive archive --out pages    (pages/index.html: every unit)"""


def add_parsers(commands) -> None:
    """``bedside report`` and ``bedside nights`` on the ``bedside`` command line."""
    report = commands.add_parser(
        "report",
        help="the night report (or the trend of many nights): one HTML file (or PNG)",
        description="One night's report, the trend page of many nights, or both for every\n"
        "unit of a pulled log archive. A store and a unit's archive file read alike.",
        epilog=REPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = report.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--db", help="a vitals store, or one unit's archive file (DIR/units/ID.sqlite)"
    )
    where.add_argument("--archive", metavar="DIR", help="a pulled log archive: pages of every unit")
    report.add_argument("--out", required=True, help="output: .html or .png (--archive: a folder)")
    report.add_argument("--session", type=int, help="session id (default the last night)")
    report.add_argument("--generation", type=int, help="archive: the store generation of --session")
    report.add_argument("--trend", action="store_true", help="the trend page of many nights")
    report.add_argument("--since", metavar="DATE", help="trend: first night, YYYY-MM-DD")
    report.add_argument("--until", metavar="DATE", help="trend: last night, YYYY-MM-DD")
    nights = commands.add_parser(
        "nights",
        help="list the nights of a store or an archive file",
        epilog="example: bedside nights --db build/night.db --since 2026-12-01 --json",
    )
    nights.add_argument("--db", required=True, help="a vitals store, or one unit's archive file")
    nights.add_argument("--since", metavar="DATE", help="first night, YYYY-MM-DD")
    nights.add_argument("--until", metavar="DATE", help="last night, YYYY-MM-DD")
    nights.add_argument("--json", action="store_true", help="one JSON list of the nights")


@dataclass(frozen=True)
class UnitPages:
    """What :func:`write_archive_pages` made for one unit."""

    device_id: str
    nights: int  #: nights with epochs in the range
    last: Night | None  #: the last of them
    night_page: str | None  #: file names in the out folder, None when not made
    trend_page: str | None
    error: str | None = None  #: why the unit has no pages (``E263 ...``)


def write_archive_pages(
    archive_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
) -> list[UnitPages]:
    """Per unit of the archive folder, its last night's report and its trend page, and an
    ``index.html`` of them, in ``out_dir`` (made if missing).

    Raises:
        BedsideError: E272 no unit archives in the folder, E268 ``out_dir`` cannot be
            written, E270 ``since`` after ``until``. A unit's own failure is in its
            :class:`UnitPages` ``error`` instead.
    """
    from .nights import archive_unit_files
    from .report import write_page
    from .trend import check_range

    files = archive_unit_files(archive_dir)
    if not files:
        fail(
            "E272",
            f"{Path(archive_dir).name}: no unit archives (units/*.sqlite)",
            "give the folder `bedside-host logs pull --archive DIR` filled",
        )
    check_range(since, until)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail("E268", f"{out.name}: cannot make the folder ({error.strerror})", "check --out")
    units = [_unit_pages(path, out, since, until) for path in files]
    write_page(out / "index.html", _index(units, Path(archive_dir).name, since, until))
    return units


def _unit_pages(path: Path, out: Path, since, until) -> UnitPages:
    from .nights import list_nights, open_readonly
    from .report import write_page, write_report
    from .trend import render_trend

    device = path.stem
    try:
        db = open_readonly(path)
        try:
            nights = [n for n in list_nights(db, since=since, until=until) if n.n_epochs]
        finally:
            db.close()
        if not nights:
            return UnitPages(device, 0, None, None, None)
        last = max(nights, key=lambda n: (n.start_utc, n.generation or 0))
        write_report(path, out / f"{device}.html", session_id=last.session_id,
                     generation=last.generation)  # fmt: skip
        # The trend of the nights just summarized (write_trend would read them all again).
        trend = render_trend(nights, since=since, until=until, title=f"Unit {device}: nights")
        write_page(out / f"{device}-trend.html", trend)
    except BedsideError as error:
        if error.code == "E268":
            raise  # the out folder, not the unit: no other unit will do better
        return UnitPages(device, 0, None, None, None, f"{error.code} {error}")
    return UnitPages(device, len(nights), last, f"{device}.html", f"{device}-trend.html")


def _index(units: list[UnitPages], folder: str, since, until) -> str:
    from .report import page

    span = ""
    if since or until:
        span = f", nights from {since or 'the first'} to {until or 'the last'}"
    rows = []
    for u in units:
        if u.error:
            rows.append(f"<tr><td>{escape(u.device_id)}</td><td colspan=4>cannot be read: "
                        f"{escape(u.error)}</td></tr>")  # fmt: skip
            continue
        if u.last is None:
            rows.append(f"<tr><td>{escape(u.device_id)}</td><td>0</td><td colspan=3>no night "
                        "recorded</td></tr>")  # fmt: skip
            continue
        resting = "-" if u.last.hr_resting is None else f"{u.last.hr_resting:.0f} bpm"
        coverage = "-" if u.last.coverage is None else f"{100 * u.last.coverage:.0f}%"
        rows.append(
            f"<tr><td>{escape(u.device_id)}</td><td>{u.nights}</td>"
            f'<td><a href="{escape(u.night_page)}">{u.last.night_date.isoformat()}</a> '
            f"({resting}, coverage {coverage})</td>"
            f'<td><a href="{escape(u.trend_page)}">trend</a></td></tr>'
        )
    table = (
        '<div class="scroll"><table><tr><th>unit</th><th>nights</th><th>last night</th>'
        f"<th>all nights</th></tr>{''.join(rows)}</table></div>"
    )
    title = f"Units in {folder}"
    return page(
        title,
        [
            f"<h1>{escape(title)}</h1>",
            f'<div class="sub">{len(units)} unit{"s" if len(units) != 1 else ""}{span}</div>',
            table,
        ],
    )


# --- the commands ----------------------------------------------------------------------------


def _dates(args: argparse.Namespace) -> tuple[datetime.date | None, datetime.date | None]:
    from .trend import check_range, parse_date

    since = None if args.since is None else parse_date(args.since, "--since")
    until = None if args.until is None else parse_date(args.until, "--until")
    check_range(since, until)
    return since, until


def report_command(args: argparse.Namespace) -> int:
    """``bedside report``: one night, a trend, or an archive folder's pages."""
    from .report import write_report
    from .trend import write_trend

    since, until = _dates(args)
    one_night = not (args.trend or args.archive)
    if (args.session is not None or args.generation is not None) and not one_night:
        fail("E273", "--session picks one night", "leave it out with --trend or --archive")
    if args.generation is not None and args.session is None:
        fail("E273", "--generation goes with --session", "give the session's id too")
    if (since or until) and one_night:
        fail("E273", "--since/--until choose nights for a trend", "add --trend, or use --session")
    if args.archive:
        if Path(args.out).suffix.lower() in (".html", ".htm", ".png"):
            fail("E273", f"with --archive, --out is a folder, not {Path(args.out).name}",
                 "give a folder such as pages/")  # fmt: skip
        units = write_archive_pages(args.archive, args.out, since=since, until=until)
        failed = [u for u in units if u.error]
        for u in units:
            if u.error is None:
                made = "no night" if u.last is None else f"{u.night_page}, {u.trend_page}"
                print(f"{u.device_id}: {u.nights} nights: {made}")
        print(str(Path(args.out) / "index.html"))
        for u in failed:
            code, _, message = u.error.partition(" ")
            print(f"error {code}: {u.device_id}: {message}", file=sys.stderr)
        return 1 if failed else 0
    if args.trend:
        print(write_trend(args.db, args.out, since=since, until=until))
        return 0
    print(write_report(args.db, args.out, session_id=args.session, generation=args.generation))
    return 0


def nights_command(args: argparse.Namespace) -> int:
    """``bedside nights``: the nights of a store or an archive file, as text or JSON."""
    from .nights import list_nights, open_readonly

    since, until = _dates(args)
    db = open_readonly(args.db)
    try:
        nights = list_nights(db, since=since, until=until)
    finally:
        db.close()
    if args.json:
        print(json.dumps([n.as_dict() for n in nights]))
    else:
        print(nights_table(nights))
    return 0


def nights_table(nights: list[Night]) -> str:
    """The nights as a text table, one a line (``bedside nights``)."""
    if not nights:
        return "no nights"

    def num(value, fmt: str, unit: str, scale: float = 1.0) -> str:
        return "-" if value is None else f"{format(value * scale, fmt)}{unit}"

    rows = [("night", "session", "start", "in bed", "resting HR", "lowest HR", "HRV",
             "breathing", "coverage")]  # fmt: skip
    for n in nights:
        start = "-" if n.first_epoch_utc is None else _start_clock(n)
        rows.append(
            (
                n.night_date.strftime("%a %Y-%m-%d"),
                n.session_name,
                start,
                f"{n.hours_in_bed:.1f} h",
                num(n.hr_resting, ".0f", " bpm"),
                num(n.hr_lowest, ".0f", " bpm"),
                num(n.hrv_rmssd_ms, ".0f", " ms"),
                num(n.breathing_mean, ".1f", " /min"),
                num(n.coverage, ".0f", "%", 100),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _start_clock(night: Night) -> str:
    from .nights import local_time

    return local_time(night.first_epoch_utc, night.tz).strftime("%H:%M")
