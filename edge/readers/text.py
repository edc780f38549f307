"""Delimited text recordings: ``.csv``, ``.tsv``, ``.txt``.

One or more numeric columns, delimited by comma, semicolon, tab, ``|`` or whitespace
(sniffed from the first lines); with a semicolon or tab delimiter a decimal comma
(``1,25``) is read as a decimal point. An optional header row names the columns (a first
row with any non-numeric cell is the header); blank lines and lines starting with ``#``
or ``%`` are skipped. Empty cells and ``nan``/``NA``/``null`` are NaN (kept: downstream
decides); any other non-numeric cell is E211 naming its line and column.

A column named like ``time``, ``t``, ``epoch``, ``timestamp`` (unit from the name, e.g.
``time_ms``, ``Time (s)``, else from the values: an epoch in s/ms/us/ns by magnitude, or
relative time) is the time column: it gives the sampling rate and, for an epoch, the UTC
start, and must be regular (E210 names the line of a gap). Without a header, a first
column that increases at a regular step is taken as time. Without a time column the
caller must give ``fs`` (E208). Columns named like a reference (``PulseOximeter_results``,
``hr``, ``spo2``) become per-sample references; the rest are channels (``ch<i>`` when
unnamed, ``i`` the column's position in the file).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator

import numpy as np

from ._base import (
    EMPTY,
    NOT_NUMERIC,
    Recording,
    RecordingError,
    assemble,
    damaged,
    fail,
    time_axis,
    time_name_unit,
    unique_names,
)

__all__ = ["parse"]

_DELIMITERS = ("\t", ";", ",", "|")
_NA = frozenset({"", "nan", "-nan", "+nan", "na", "n/a", "null", "none"})
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(inf|infinity|nan)", re.I)
_SNIFF_LINES = 50
_CHUNK_LINES = 65536


def _decode(data: bytes, source: str) -> str:
    if b"\x00" in data[:65536]:
        damaged(source, "holds binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # old Windows exports (µ, °)


def _sniff_delimiter(lines: list[str]) -> str | None:
    """The delimiter that every sniffed line holds equally often, else the most common one;
    None for whitespace."""
    for d in _DELIMITERS:
        counts = {line.count(d) for line in lines}
        if len(counts) == 1 and counts != {0}:
            return d
    best = max(_DELIMITERS, key=lambda d: sum(d in line for line in lines))
    return best if any(best in line for line in lines) else None


def _clean(cell: str) -> str:
    return cell.strip().strip("\"'").strip()


def _is_value(cell: str, decimal_comma: bool) -> bool:
    s = _clean(cell)
    if decimal_comma:
        s = s.replace(",", ".")
    return s.lower() in _NA or _NUMBER.fullmatch(s) is not None


def _parse_column(
    cells: tuple[str, ...], *, decimal_comma: bool, name: str, lines: list[int], source: str
) -> np.ndarray:
    if decimal_comma:
        cells = tuple(c.replace(",", ".") for c in cells)
    try:
        return np.array(cells, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        pass
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        s = _clean(cell)
        try:
            out[i] = float(s)
        except (ValueError, OverflowError):
            if s.lower() not in _NA:
                fail(
                    NOT_NUMERIC,
                    f"{source}: line {lines[i]}, column {name!r}: {s[:24]!r} is not a number",
                    "write time as seconds, milliseconds or Unix epoch numbers"
                    if time_name_unit(name)[0]
                    else "fix the cell, or leave it empty for a missing value",
                )
            out[i] = np.nan
    return out


def _resolution(cells: tuple[str, ...], decimal_comma: bool) -> float:
    """The quantisation of a printed column: 10**-(most decimals), 1 for integers."""
    mark = "," if decimal_comma else "."
    decimals = 0
    for cell in cells:
        s = _clean(cell)
        if "e" in s or "E" in s:
            return 0.0
        k = s.find(mark)
        if k >= 0:
            decimals = max(decimals, len(s) - k - 1)
    return 10.0**-decimals


def _content_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line that is not blank or a comment, lazily."""
    for number, line in enumerate(io.StringIO(text, newline=None), start=1):
        stripped = line.strip()
        if stripped and stripped[0] not in "#%":
            yield number, line.rstrip("\r\n")


def parse(
    data: bytes, *, source: str, channel: str | None = None, fs: float | None = None
) -> Recording:
    """A :class:`~edge.readers.Recording` from delimited text (see the module docstring)."""
    lines = _content_lines(_decode(data, source))
    head = list(itertools.islice(lines, _SNIFF_LINES))
    if not head:
        fail(EMPTY, f"{source}: no data rows", "check the file")
    delimiter = _sniff_delimiter([line for _, line in head])
    trailing = delimiter is not None and all(line.rstrip().endswith(delimiter) for _, line in head)

    def split(line: str) -> list[str]:
        if trailing:
            line = line.rstrip()
            line = line[: -len(delimiter)] if line.endswith(delimiter) else line
        return line.split(delimiter) if delimiter is not None else line.split()

    first = split(head[0][1])
    decimal_comma = delimiter != "," and any("," in line for _, line in head)
    header: list[str] | None = None
    if not all(_is_value(c, decimal_comma) for c in first):
        if '"' in head[0][1] and delimiter is not None:
            first = next(csv.reader([head[0][1]], delimiter=delimiter))
            first = first[:-1] if trailing and first and not first[-1].strip() else first
        header = [_clean(c) for c in first]
        head = head[1:]
    width = len(first)
    names = unique_names(header if header is not None else [""] * width)
    time_named = [n for n in names if header is not None and time_name_unit(n)[0]]
    time_index = names.index(time_named[0]) if time_named else 0
    parts: list[list[np.ndarray]] = [[] for _ in names]
    line_numbers: list[int] = []
    resolution = 0.0
    shown = "whitespace" if delimiter is None else repr(delimiter)
    rows = itertools.chain(head, lines)
    while chunk := list(itertools.islice(rows, _CHUNK_LINES)):
        cells = []
        for number, line in chunk:
            row = split(line)
            if len(row) != width:
                damaged(source, f"line {number} has {len(row)} fields, expected {width} ({shown})")
            cells.append(row)
        numbers = [number for number, _ in chunk]
        line_numbers.extend(numbers)
        for j, column in enumerate(zip(*cells, strict=True)):
            parts[j].append(
                _parse_column(
                    column, decimal_comma=decimal_comma, name=names[j], lines=numbers, source=source
                )
            )
            if j == time_index:
                resolution = max(resolution, _resolution(column, decimal_comma))
    if not line_numbers:
        fail(EMPTY, f"{source}: a header but no data rows", "check the file")
    columns = {name: np.concatenate(p) for name, p in zip(names, parts, strict=True)}
    time_resolution = {}
    if time_named:
        time_resolution[time_named[0]] = resolution
    elif header is None and width >= 2 and len(line_numbers) >= 3:
        if _looks_like_time(columns[names[0]]):  # an unnamed, regularly increasing first column
            columns = {("time" if n == names[0] else n): v for n, v in columns.items()}
            time_resolution["time"] = resolution
    return assemble(
        columns,
        source=source,
        channel=channel,
        fs=fs,
        index_base=0,
        time_resolution=time_resolution,
        where=lambda i: f"line {line_numbers[i]}",
    )


def _looks_like_time(values: np.ndarray) -> bool:
    try:
        axis = time_axis(values, unit=None, resolution=0.0, source="", where=str)
    except RecordingError:
        return False
    return axis is not None
