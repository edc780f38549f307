"""The unit's time zone, as each session records it (``sessions.tz`` in the vitals store).

    unit_time_zone()            # "Europe/Berlin" when the unit knows its zone's name
    unit_time_zone(t_utc)       # else the UTC offset at that moment, e.g. "+01:00"

The epochs are labelled in UTC; the zone lets a reader (a night's local date, a fleet's
per-night table) put a night back on the clock of the room it was recorded in. The name is
taken from where the C library takes the local time: ``$TZ`` when it is set, else
``/etc/timezone`` (Debian, Raspberry Pi OS), else the ``/etc/localtime`` link. A zone that
has no IANA name there (a POSIX ``TZ`` string such as ``CET-1CEST``, a copied file) is
recorded as its offset at the session's start, which is right for that night.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["unit_time_zone", "utc_offset_text"]

_TIMEZONE_FILE = Path("/etc/timezone")
_LOCALTIME_LINK = Path("/etc/localtime")
_ZONEINFO_DIR = "zoneinfo/"


def unit_time_zone(
    t_utc: float | None = None,
    *,
    environ: dict[str, str] | None = None,
    timezone_file: Path = _TIMEZONE_FILE,
    localtime_link: Path = _LOCALTIME_LINK,
) -> str:
    """The unit's time zone: its IANA name when known, else the UTC offset at ``t_utc``
    (now when None) as ``+HH:MM``.

    ``environ``, ``timezone_file`` and ``localtime_link`` replace the process's environment
    and the system files (tests)."""
    env = os.environ if environ is None else environ
    if "TZ" in env:
        # The C library follows $TZ over the system files: so does the name recorded.
        name = env["TZ"].removeprefix(":")
        return name if _is_zone_name(name) else utc_offset_text(t_utc)
    try:
        name = timezone_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        name = ""
    if _is_zone_name(name):
        return name
    try:
        target = os.readlink(localtime_link)
    except OSError:
        target = ""
    _, found, name = target.rpartition(_ZONEINFO_DIR)
    if found and _is_zone_name(name):
        return name
    return utc_offset_text(t_utc)


def utc_offset_text(t_utc: float | None = None) -> str:
    """The local time's offset from UTC at ``t_utc`` (now when None): ``+01:00``, ``-03:30``."""
    offset = time.localtime(t_utc).tm_gmtoff
    sign = "-" if offset < 0 else "+"
    minutes = abs(offset) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _is_zone_name(name: str) -> bool:
    """A name this machine's zone database knows (``Europe/Berlin``, ``Etc/UTC``)."""
    if not name or name.startswith("/") or ".." in name:
        return False  # a path, not a key: ZoneInfo would refuse it anyway
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
