"""The unit's configuration file: TOML, every key optional, every key checked.

``bedside run`` reads ``--config PATH``, else ``$BEDSIDE_CONFIG``, else
``/etc/bedside/bedside.toml`` when it exists, else uses the defaults below. Command-line
options override the file. An unknown key, a wrong type or a value out of range is refused
at start-up (E283/E284, naming the key), never discovered in the middle of a night.

Every key, its default and meaning (docs/beta-user.md shows a whole file)::

    [run]
    source = ""            # sim[:SEED] | replay:PATH | serial:PORT; required here or as --source
    db = "vitals.db"       # the vitals store (SQLite)
    speed = "realtime"     # realtime | max | a factor such as "60x" (sim and replay only)
    duration = ""          # stop after this much signal ("8h", "90m", "30s"); "" = no limit
    epoch_s = 30           # length of one epoch of vitals, 1..300 s
    new_session_at = ""    # "HH:MM" local time: a new session (one night) every day then; "" = one
                           # session per run (the installed unit's file sets "12:00")

    [sensor]
    fs = 250               # serial: the sensor's sampling rate, 50..1000 Hz
    channel = ""           # replay: the channel to read ("" = the file's raw sensor signal)
    stall_s = 10           # no samples for this long (wall time): a sensor_gap event

    [gate]
    enabled = true         # false = the bench/debug mode of --no-gate
    model = ""             # the .tflite quality model ("" = the one shipped with the software)

    [store]
    max_mb = 256           # retention: the store never grows beyond this (oldest nights go first)
    commit_s = 30          # commit at least this often (wall time), 1..3600 s
    commit_epochs = 100    # ... and whenever this many epochs are waiting, 1..10000

    [events]
    bed_entry_s = 30       # occupied this long before a bed_entry event
    bed_exit_s = 60        # empty this long before a bed_exit event
    hr_low_bpm = 40        # an epoch's HR outside [low, high]: an hr_out_of_range event
    hr_high_bpm = 120
    rr_low_bpm = 8         # the same for breathing (breaths/min)
    rr_high_bpm = 25
    range_hold_s = 60      # ... for at least this long (s) before the event: no lone-epoch alarms
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import fail
from .store import STORE_NAME

__all__ = [
    "DEFAULT_PATH",
    "Config",
    "find_config",
    "load_config",
    "parse_duration",
    "parse_speed",
]

#: Where the unit looks for its configuration when none is named.
DEFAULT_PATH = Path("/etc/bedside/bedside.toml")

BAD_OPTION = "E280"  # a command-line value that cannot be used
CONFIG_UNREADABLE = "E282"
CONFIG_UNKNOWN_KEY = "E283"
CONFIG_BAD_VALUE = "E284"

EPOCH_RANGE_S = (1.0, 300.0)


@dataclass(frozen=True)
class Config:
    """Settings of ``bedside run``; field names are ``section_key`` of the TOML file."""

    run_source: str = ""
    run_db: str = STORE_NAME
    run_speed: str = "realtime"
    run_duration: str = ""
    run_epoch_s: float = 30.0
    run_new_session_at: str = ""
    sensor_fs: float = 250.0
    sensor_channel: str = ""
    sensor_stall_s: float = 10.0
    gate_enabled: bool = True
    gate_model: str = ""
    store_max_mb: float = 256.0
    store_commit_s: float = 30.0
    store_commit_epochs: int = 100
    events_bed_entry_s: float = 30.0
    events_bed_exit_s: float = 60.0
    events_hr_low_bpm: float = 40.0
    events_hr_high_bpm: float = 120.0
    events_rr_low_bpm: float = 8.0
    events_rr_high_bpm: float = 25.0
    events_range_hold_s: float = 60.0

    def with_overrides(self, options: dict[str, tuple[str, Any]]) -> Config:
        """A copy with fields replaced by command-line options, each checked and named as
        the user wrote it: ``{"run_epoch_s": ("--epoch", 0.5)}`` fails naming ``--epoch``.
        Options given as None are left out."""
        given = {}
        for name, (option, value) in options.items():
            if value is not None:
                given[name] = _check_value(name, value, "command line", label=option)
        if "run_speed" in given:
            parse_speed(given["run_speed"], key=options["run_speed"][0])
        if "run_duration" in given:
            parse_duration(given["run_duration"], key=options["run_duration"][0])
        return check_config(replace(self, **given), source="command line")


# Ranges of numeric keys (inclusive); the type of every key is that of its default.
_RANGES: dict[str, tuple[float, float]] = {
    "run_epoch_s": EPOCH_RANGE_S,
    "sensor_fs": (50.0, 1000.0),
    "sensor_stall_s": (0.5, 3600.0),
    "store_max_mb": (1.0, 1e6),
    "store_commit_s": (1.0, 3600.0),
    "store_commit_epochs": (1, 10000),
    "events_bed_entry_s": (0.0, 3600.0),
    "events_bed_exit_s": (0.0, 3600.0),
    "events_hr_low_bpm": (20.0, 250.0),
    "events_hr_high_bpm": (20.0, 250.0),
    "events_rr_low_bpm": (2.0, 60.0),
    "events_rr_high_bpm": (2.0, 60.0),
    "events_range_hold_s": (0.0, 3600.0),
}

_FIELDS = {f.name: f for f in fields(Config)}


def _key(name: str) -> str:
    """``run_epoch_s`` -> ``run.epoch_s`` (as written in the file)."""
    section, _, key = name.partition("_")
    return f"{section}.{key}"


def _check_value(name: str, value: Any, where: str, label: str | None = None) -> Any:
    """``value`` for field ``name``, checked; E284 naming the key (E280 naming ``label``,
    the command-line option, when given)."""
    default = getattr(Config, name)
    key = label or _key(name)
    code = BAD_OPTION if label else CONFIG_BAD_VALUE
    kind = type(default)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        wanted = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "text")
        fail(
            code,
            f"{where}: {key} must be {wanted}, got {value!r}",
            f"fix {key} (default {default!r})",
        )
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            fail(code, f"{where}: {key} is {value}", f"give {key} a finite number")
    if name in _RANGES:
        low, high = _RANGES[name]
        if not low <= value <= high:
            fail(
                code,
                f"{where}: {key} = {value!r} is outside {low:g}..{high:g}",
                f"choose {key} in that range (default {default!r})",
            )
    return value


def check_config(config: Config, source: str = "config") -> Config:
    """Check every field of ``config`` and the relations between them; return it."""
    for name in _FIELDS:
        _check_value(name, getattr(config, name), source)
    pairs = (
        ("events_hr_low_bpm", "events_hr_high_bpm"),
        ("events_rr_low_bpm", "events_rr_high_bpm"),
    )
    for low, high in pairs:
        if getattr(config, low) >= getattr(config, high):
            fail(
                CONFIG_BAD_VALUE,
                f"{source}: {_key(low)} must be below {_key(high)}",
                f"fix {_key(low)} or {_key(high)}",
            )
    if config.run_new_session_at and not re.fullmatch(
        r"([01][0-9]|2[0-3]):[0-5][0-9]", config.run_new_session_at
    ):
        fail(
            CONFIG_BAD_VALUE,
            f"{source}: run.new_session_at = {config.run_new_session_at!r} is not a time",
            'write "HH:MM" (24 h, e.g. "12:00") or "" for none',
        )
    parse_speed(config.run_speed, key="run.speed")
    if config.run_duration:
        parse_duration(config.run_duration, key="run.duration")
    return config


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """The configuration in ``path`` (None: the defaults), every key checked.

    Raises:
        BedsideError: E282 when the file cannot be read or is not TOML (the line is named),
            E283 for an unknown section or key, E284 for a wrong type or range (the key
            is named).
    """
    if path is None:
        return Config()
    path = Path(path)
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(CONFIG_UNREADABLE, f"config {name}: no such file", "check the path of --config")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        fail(CONFIG_UNREADABLE, f"config {name} cannot be read ({reason})", "check the file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        fail(
            CONFIG_UNREADABLE,
            f"config {name} is not valid TOML ({exc})",
            "fix the line named; see docs/beta-user.md",
        )
    except RecursionError:  # tomllib recurses per nesting level
        fail(
            CONFIG_UNREADABLE,
            f"config {name} is not valid TOML (nested too deeply)",
            "a config has one level of sections; see docs/beta-user.md",
        )
    values: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            fail(
                CONFIG_UNKNOWN_KEY,
                f"config {name}: {section!r} is not a section",
                "put keys under [run], [sensor], [gate], [store] or [events]",
            )
        for key, value in table.items():
            field = f"{section}_{key}"
            if field not in _FIELDS:
                known = sorted(_key(f) for f in _FIELDS if f.startswith(f"{section}_"))
                hint = f"known keys: {', '.join(known)}" if known else "see docs/beta-user.md"
                fail(CONFIG_UNKNOWN_KEY, f"config {name}: unknown key {section}.{key}", hint)
            values[field] = _check_value(field, value, f"config {name}")
    return check_config(Config(**values), source=f"config {name}")


def find_config(explicit: str | None) -> Path | None:
    """The configuration file to read: the one named, else ``$BEDSIDE_CONFIG``, else
    :data:`DEFAULT_PATH` if it exists, else None (the defaults)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("BEDSIDE_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(h|m|min|s)?\s*")
_UNIT_S = {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0, None: 1.0}


def parse_duration(text: str, key: str = "--duration") -> float:
    """``"8h"``, ``"90m"``, ``"45s"`` or ``"30"`` (seconds) -> seconds (> 0)."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)] if match else 0.0
    if not seconds > 0:
        fail(BAD_OPTION, f"{key}: {text!r} is not a duration", "write e.g. 8h, 90m or 30s")
    return seconds


def parse_speed(text: str, key: str = "--speed") -> float | None:
    """``"max"`` -> None (as fast as possible), ``"realtime"`` -> 1.0, ``"60x"`` -> 60.0."""
    if text == "max":
        return None
    if text == "realtime":
        return 1.0
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?)x", text) if isinstance(text, str) else None
    factor = float(match.group(1)) if match else 0.0
    if not 0 < factor <= 1e6:
        fail(BAD_OPTION, f"{key}: {text!r} is not a speed", "write max, realtime or e.g. 60x")
    return factor
