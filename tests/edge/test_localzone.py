"""The unit's time zone as sessions record it: an IANA name when the unit has one, else the
UTC offset at the session's start."""

from __future__ import annotations

import os
import time

import pytest

from edge.localzone import unit_time_zone, utc_offset_text

WINTER, SUMMER = 1_795_559_400.0, 1_781_000_000.0  # 2026-11-24 and 2026-06-09 (UTC)


@pytest.fixture
def local_tz(monkeypatch):
    """Set the process's local time zone (the C library's) for one test."""

    def use(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


def _no_files(tmp_path):
    return {"timezone_file": tmp_path / "none", "localtime_link": tmp_path / "none"}


def test_tz_names_a_zone(tmp_path):
    assert unit_time_zone(environ={"TZ": "Europe/Berlin"}, **_no_files(tmp_path)) == "Europe/Berlin"
    assert unit_time_zone(environ={"TZ": ":Asia/Kolkata"}, **_no_files(tmp_path)) == "Asia/Kolkata"


def test_the_system_files_name_it_when_tz_is_not_set(tmp_path):
    timezone_file = tmp_path / "timezone"
    timezone_file.write_text("Europe/Lisbon\n")
    assert unit_time_zone(environ={}, timezone_file=timezone_file) == "Europe/Lisbon"
    link = tmp_path / "localtime"
    os.symlink("/usr/share/zoneinfo/America/Chicago", link)
    found = unit_time_zone(environ={}, timezone_file=tmp_path / "none", localtime_link=link)
    assert found == "America/Chicago"
    timezone_file.write_text("Not/A_Zone\n")  # a name the zone database does not know
    assert unit_time_zone(environ={}, timezone_file=timezone_file, localtime_link=link) == (
        "America/Chicago"
    )


def test_a_zone_without_a_name_is_recorded_as_its_offset_at_that_moment(tmp_path, local_tz):
    local_tz("CET-1CEST,M3.5.0,M10.5.0/3")  # a POSIX rule: central Europe, no IANA name
    posix = {"TZ": os.environ["TZ"]}
    assert unit_time_zone(WINTER, environ=posix, **_no_files(tmp_path)) == "+01:00"
    assert unit_time_zone(SUMMER, environ=posix, **_no_files(tmp_path)) == "+02:00"
    local_tz("NST+3:30")
    assert unit_time_zone(WINTER, environ={}, **_no_files(tmp_path)) == "-03:30"
    assert utc_offset_text(WINTER) == "-03:30"
