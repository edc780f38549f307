"""Many nights: `bedside nights`, the trend page, and the pages of a pulled log archive."""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edge.cli import main
from edge.nights import list_nights, open_readonly

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nights_fixtures import DAY, archive_of, consecutive_nights, write_nights  # noqa: E402
from store_fixtures import T0  # noqa: E402
from test_report import _needs_chromium, measure_in_chromium  # noqa: E402


@pytest.fixture(scope="module")
def three_nights(tmp_path_factory) -> Path:
    return consecutive_nights(tmp_path_factory.mktemp("trend") / "vitals.db")


@pytest.fixture(scope="module")
def archive_dir(three_nights, tmp_path_factory) -> Path:
    """An archive folder with two units: one pulled from the three nights, one with a night
    four days later and one a day after that (a hole of three days)."""
    folder = tmp_path_factory.mktemp("archive") / "archive"
    archive_of(three_nights, folder, "unit-1")
    other = write_nights(tmp_path_factory.mktemp("b") / "v.db", [T0, T0 + 4 * DAY, T0 + 5 * DAY])
    archive_of(other, folder, "unit-2")
    return folder


def test_nights_lists_each_night_as_text_and_json(three_nights, capsys):
    assert main(["nights", "--db", str(three_nights)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["night", "session", "start", "in"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["Tue", "2026-11-24", "1", "22:30"],
        ["Wed", "2026-11-25", "2", "22:30"],
        ["Thu", "2026-11-26", "3", "22:30"],
    ]
    assert main(["nights", "--db", str(three_nights), "--since", "2026-11-25", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = [n.as_dict() for n in list_nights(open_readonly(three_nights))[1:]]
    assert got == json.loads(json.dumps(want))


def test_a_pulled_archive_file_gives_the_same_report(three_nights, archive_dir, tmp_path, capsys):
    """`bedside report --db archive/units/<id>.sqlite` (E263 before): the same page."""
    unit = archive_dir / "units" / "unit-1.sqlite"
    assert main(["report", "--db", str(unit), "--out", str(tmp_path / "a.html")]) == 0
    assert main(["report", "--db", str(three_nights), "--out", str(tmp_path / "s.html")]) == 0
    capsys.readouterr()

    def figures(path: Path) -> str:
        html = path.read_text(encoding="utf-8")
        return re.sub(r'<div class="sub">.*?</div>|<p class="foot">.*?</p>', "", html)

    assert figures(tmp_path / "a.html") == figures(tmp_path / "s.html")
    assert "session 1/3" in (tmp_path / "a.html").read_text(encoding="utf-8")  # generation/id
    assert main(["report", "--db", str(unit), "--session", "1", "--generation", "1",
                 "--out", str(tmp_path / "one.html")]) == 0  # fmt: skip
    assert "Night of Tuesday 24 November 2026" in (tmp_path / "one.html").read_text()


def test_the_trend_page_shows_each_night_and_holes_for_days_without(archive_dir, tmp_path):
    unit = archive_dir / "units" / "unit-2.sqlite"
    out = tmp_path / "trend.html"
    assert main(["report", "--db", str(unit), "--trend", "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    for forbidden in ("http:", "https:", "//", "<script", "src=", "href=", "url("):
        assert forbidden not in html
    nights = list_nights(open_readonly(unit))
    assert len(nights) == 3
    for n in nights:
        assert f"<td>{n.night_date.strftime('%a %-d %b')}</td><td>{n.hours_in_bed:.1f}</td>" in html
        assert f"<td>{n.hr_resting:.0f}</td><td>{n.hr_lowest:.0f}</td>" in html
    for key in ("hr_resting", "hrv_rmssd_ms", "breathing_mean", "hours_in_bed", "coverage"):
        (wide,) = re.findall(rf'<svg class="wide"[^>]*aria-label="{key}">.*?</svg>', html, re.S)
        svg = ET.fromstring(wide)
        line = next(p for p in svg.iter("path") if "series" in p.get("class"))
        assert line.get("data-runs") == "2", key  # 24 Nov | hole 25-27 | 28, 29 Nov
        assert len([c for c in svg.iter("circle")]) == 3
    assert "3 nights recorded on 3 of 6 days" in html


def test_since_and_until_choose_the_nights(archive_dir, tmp_path, capsys):
    unit = archive_dir / "units" / "unit-2.sqlite"
    out = tmp_path / "t.html"
    args = ["report", "--db", str(unit), "--trend", "--out", str(out)]
    assert main([*args, "--since", "2026-11-28", "--until", "2026-11-30"]) == 0
    html = out.read_text(encoding="utf-8")
    assert "Nights Sat 28 Nov 2026 to Mon 30 Nov 2026" in html
    assert "<td>Tue 24 Nov</td>" not in html and "<td>Sat 28 Nov</td>" in html
    capsys.readouterr()
    assert main([*args, "--since", "2026-12-01"]) == 1
    assert capsys.readouterr().err.startswith("error E271: unit-2.sqlite: no night with epochs")


def test_an_archive_folder_gives_pages_per_unit_and_an_index(archive_dir, tmp_path, capsys):
    out = tmp_path / "pages"
    assert main(["report", "--archive", str(archive_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "unit-1: 3 nights: unit-1.html, unit-1-trend.html",
        "unit-2: 3 nights: unit-2.html, unit-2-trend.html",
        str(out / "index.html"),
    ]
    index = (out / "index.html").read_text(encoding="utf-8")
    for name in ("unit-1.html", "unit-1-trend.html", "unit-2.html", "unit-2-trend.html"):
        assert f'href="{name}"' in index and (out / name).is_file()
    assert "Night of Thursday 26 November 2026" in (out / "unit-1.html").read_text()
    assert "Night of Sunday 29 November 2026" in (out / "unit-2.html").read_text()


def test_a_damaged_unit_costs_its_own_pages_only(archive_dir, tmp_path, capsys):
    folder = tmp_path / "archive"
    (folder / "units").mkdir(parents=True)
    for name in ("unit-1.sqlite", "unit-2.sqlite"):
        (folder / "units" / name).write_bytes((archive_dir / "units" / name).read_bytes())
    (folder / "units" / "unit-3.sqlite").write_text("not a database")
    out = tmp_path / "pages"
    assert main(["report", "--archive", str(folder), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error E263: unit-3: unit-3.sqlite: not a vitals store")
    assert len(captured.err.splitlines()) == 1
    assert (out / "unit-1.html").is_file() and (out / "unit-2-trend.html").is_file()
    assert "unit-3</td><td colspan=4>cannot be read: E263" in (out / "index.html").read_text()


@pytest.mark.parametrize(
    "args, code",
    [
        (["--db", "{db}", "--trend", "--since", "24-11-2026"], "E270"),
        (["--db", "{db}", "--trend", "--since", "2026-11-26", "--until", "2026-11-24"], "E270"),
        (["--db", "{db}", "--trend", "--since", "2027-01-01"], "E271"),
        (["--archive", "{empty}"], "E272"),
        (["--db", "{db}", "--trend", "--session", "2"], "E273"),
        (["--db", "{db}", "--since", "2026-11-24"], "E273"),
        (["--archive", "{empty}", "--session", "1"], "E273"),
        (["--db", "{db}", "--generation", "1"], "E273"),
        (["--db", "{db}", "--session", "9"], "E264"),
        (["--db", "{empty}/none.sqlite"], "E263"),
    ],
)
def test_mistakes_give_one_line_with_a_code(three_nights, tmp_path, capsys, args, code):
    (tmp_path / "empty").mkdir()
    filled = [a.format(db=three_nights, empty=tmp_path / "empty") for a in args]
    out = tmp_path / ("pages" if "--archive" in args else "r.html")
    assert main(["report", *filled, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error {code}: ") and " — " in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_archive_pages_go_to_a_folder(archive_dir, tmp_path, capsys):
    args = ["report", "--archive", str(archive_dir), "--out", str(tmp_path / "x.html")]
    assert main(args) == 1
    assert capsys.readouterr().err.startswith("error E273: with --archive, --out is a folder")


@pytest.mark.parametrize("width", [390, 1280])
def test_the_trend_page_is_readable_on_a_phone(archive_dir, tmp_path, width):
    _needs_chromium()
    unit = archive_dir / "units" / "unit-2.sqlite"
    out = tmp_path / "trend.html"
    assert main(["report", "--db", str(unit), "--trend", "--out", str(out)]) == 0
    measure_in_chromium(out, width, 5, "Night by night")


def test_the_beta_user_page_shows_the_real_table(three_nights, capsys):
    """docs/beta-user.md pastes `bedside nights` output: its header is today's."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "beta-user.md").read_text()
    block = doc.split("$ bedside nights --db /tmp/sim.db\n", 1)[1].split("\n$ ", 1)[0]
    assert main(["nights", "--db", str(three_nights)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert block.splitlines()[0] == header
    assert len(block.splitlines()) == 4  # three nights, one a line
    assert "$ bedside report --db /tmp/sim.db --trend --since" in doc


def test_nights_mistakes(three_nights, tmp_path, capsys):
    assert main(["nights", "--db", str(three_nights), "--until", "26/11/2026"]) == 1
    assert capsys.readouterr().err.startswith("error E270: --until '26/11/2026' is not a date")
    assert main(["nights", "--db", str(tmp_path / "none.db")]) == 1
    assert capsys.readouterr().err.startswith("error E263: none.db: no such store")
    assert main(["nights", "--db", str(three_nights), "--since", "2030-01-01"]) == 0
    assert capsys.readouterr().out == "no nights\n"
