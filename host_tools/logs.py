"""``bedside-host logs pull | export``: copy a unit's logs into the archive, export them.

    result = pull(client, "trial-logs/")               # client: an authenticated edge.link.Client
    print(result.summary())                            # "unit-0042: 1200 epochs, 3 events, ..."
    export("trial-logs/", "out/", fmt="parquet")       # pseudonymized, every unit of the archive

A pull asks the unit (commands of :mod:`edge.maint.logs`) for the rows after the archive's
cursors, page by page; each page is checked against the SHA-256 the unit sent with it,
decoded, checked to follow the cursor, and written with the cursor in one transaction
(:mod:`host_tools.archive`). A pull cut anywhere resumes at the last page written; a second
pull in a row copies nothing.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

from edge.errors import BedsideError, fail
from edge.link import Command
from edge.log_pages import (
    EPOCH_COLUMNS,
    EVENT_COLUMNS,
    MAX_PAGE_BYTES,
    SESSION_EXTRA_COLUMNS,
    decode_page,
    digest,
    session_columns,
)

from .archive import ARCHIVE_ENV, Archive, default_archive_dir
from .dataset import DATASET_ENV, export_dataset, query
from .export import FORMATS, export
from .ui import (
    connect,
    emit,
    json_option,
    keys_option,
    port_option,
    progress,
    timeout_option,
    trace_option,
)

__all__ = ["PullResult", "logs_group", "pull", "query_command"]

#: Times a page whose digest does not match is asked for again before giving up (E362).
PAGE_ATTEMPTS = 3
#: ``on_progress(stream, done, total)``: rows (or log bytes) copied of ``stream`` so far.
Progress = Callable[[str, int, int], None]
#: The command that pages each stream of rows.
_PAGES = {"epochs": Command.LOGS_EPOCHS, "events": Command.LOGS_EVENTS}


def _session_columns(reply: dict) -> tuple[tuple[str, str], ...]:
    """The columns of a sessions page: the extra ones the unit names (an older unit, none)."""
    extra = reply.get("with", [])
    if not isinstance(extra, list):
        fail("E362", "logs.sessions: its reply's 'with' is not a list", _AGAIN)
    return session_columns(extra)


@dataclass
class PullResult:
    """What one pull copied."""

    device_id: str
    epochs: int = 0
    events: int = 0
    sessions: int = 0  #: sessions new in the archive
    log_files: int = 0  #: log files that grew
    log_bytes: int = 0
    log_lines: int = 0
    pages: int = 0
    link_bytes: int = 0  #: page bytes received (compressed)
    seconds: float = 0.0
    new_store: bool = False  #: the unit's store had started anew (a new generation)
    archive: str = ""
    per_session: dict = field(default_factory=dict)  #: session id -> epochs copied

    @property
    def nothing_new(self) -> bool:
        return not (self.epochs or self.events or self.sessions or self.log_bytes)

    def summary(self) -> str:
        """One line for the terminal."""
        if self.nothing_new:
            return f"{self.device_id}: nothing new (archive up to date)"
        parts = [
            f"{self.epochs} epochs",
            f"{self.events} events",
            f"{self.sessions} new sessions",
            f"{self.log_lines} log lines ({self.log_files} files)",
        ]
        rate = self.link_bytes / self.seconds / 1024 if self.seconds > 0 else 0.0
        extra = "; the unit's store started anew" if self.new_store else ""
        return (
            f"{self.device_id}: {', '.join(parts)} in {self.seconds:.1f} s "
            f"({self.pages} pages, {self.link_bytes / 1024:.0f} KiB at {rate:.0f} KiB/s){extra}"
        )

    def as_json(self) -> dict:
        out = asdict(self)
        out["nothing_new"] = self.nothing_new
        out["per_session"] = {str(k): v for k, v in self.per_session.items()}
        return out


def pull(
    client,
    folder: str | Path,
    *,
    person: str | None = None,
    on_progress: Progress | None = None,
    page_bytes: int | None = None,
) -> PullResult:
    """Copy what is new on the unit behind ``client`` into the archive in ``folder``.

    Args:
        client: an :class:`edge.link.Client`, authenticated.
        folder: the archive folder (made if missing).
        person: the trial participant the unit is with now; sessions archived from now on
            carry it (exports replace it by a pseudonym).
        on_progress: called as rows arrive (see :data:`Progress`).
        page_bytes: pages of at most this many bytes (default: the link's ``max_data``);
            smaller pages lose less to a retry on a noisy line.

    Raises:
        BedsideError: E360-E368 (docs/errors.md), or the link's and the unit's own errors.
        Whatever was written before an error stays, and the next pull goes on from there.
    """
    started = time.monotonic()
    device_id = client.identify()["device_id"]
    result = PullResult(device_id=device_id)
    with Archive.create(folder, device_id) as archive:
        result.archive = str(archive.path)
        if person is not None:
            archive.set_meta("person", person)
        pull_id = archive.start_pull()
        complete = False
        try:
            puller = _Puller(client, archive, result, on_progress, page_bytes)
            puller.run()
            complete = True
        finally:
            result.seconds = time.monotonic() - started
            try:
                archive.end_pull(
                    pull_id,
                    epochs=result.epochs,
                    events=result.events,
                    log_bytes=result.log_bytes,
                    complete=complete,
                )
            except BedsideError:
                if complete:
                    raise  # else the first error is the one to report
    return result


class _Puller:
    """One pull: sessions, then epochs and events per session, then log files."""

    def __init__(
        self, client, archive: Archive, result: PullResult, on_progress, page_bytes
    ) -> None:
        self.client = client
        self.page_bytes = min(client.max_data, page_bytes or client.max_data)
        self.archive = archive
        self.result = result
        self.on_progress = on_progress or (lambda stream, done, total: None)

    def run(self) -> None:
        sessions = self._unit_sessions()
        generation = self._generation(sessions)
        known = {s.id for s in self.archive.sessions(generation)}
        self.result.sessions = sum(1 for s in sessions if s[0] not in known)
        self.archive.save_sessions(generation, sessions)
        self._rows("epochs", EPOCH_COLUMNS, generation, sessions, count_at=8)
        self._rows("events", EVENT_COLUMNS, generation, sessions, count_at=9)
        self._logs()

    # --- the store --------------------------------------------------------------------------

    def _unit_sessions(self) -> list[tuple]:
        """Every session on the unit now (all of them: a handful of pages even for years)."""
        rows, since_id, more = [], 0, True
        while more:
            args = {"since_id": since_id, "with": [name for name, _ in SESSION_EXTRA_COLUMNS]}
            reply, page = self._page(Command.LOGS_SESSIONS, _session_columns, args)
            rows += page
            more = reply["more"] and bool(page)
            since_id = page[-1][0] if page else since_id
        return rows

    def _generation(self, sessions: list[tuple]) -> int:
        """The archive's generation for the unit's store; a new one if the store started anew.

        Within one store session ids only rise and the newest session is never pruned while
        it records, so a unit whose newest session is older than the archive's newest, or
        whose session of that id started at another time, has a new store."""
        generation = self.archive.generation
        archived = self.archive.sessions(generation)
        if not archived or not sessions:
            return generation
        last = archived[-1]
        on_unit = {s[0]: s for s in sessions}
        same = on_unit.get(last.id)
        newest = max(on_unit)
        replaced = newest < last.id or (
            same is not None and (same[5], same[1]) != (last.started_utc, last.source)
        )
        if replaced:
            self.result.new_store = True
            return self.archive.new_generation()
        return generation

    def _rows(
        self, stream: str, columns, generation: int, sessions: list[tuple], *, count_at: int
    ) -> None:
        cursor_session, since_id = self.archive.cursor(stream, generation)
        todo = [s for s in sessions if s[0] >= cursor_session]
        # For the progress bar: the unit's rows from the cursor's session on, less those
        # of that session already here.
        have = self.archive.count_in_session(stream, generation, cursor_session)
        total = sum(s[count_at] for s in todo) - have
        done = 0
        newest = sessions[-1][0] if sessions else 0
        add = self.archive.add_epochs if stream == "epochs" else self.archive.add_events
        for s in todo:
            session_id = s[0]
            if s[count_at] == 0 and session_id != newest:
                continue  # a closed session without rows gets none any more
            more = True
            while more:
                args = {"session_id": session_id, "since_id": since_id}
                reply, rows = self._page(_PAGES[stream], columns, args)
                if rows and any(r[1] != session_id for r in rows):
                    fail("E363", f"{stream}: rows of another session came", _AGAIN)
                add(generation, rows)
                if rows:
                    since_id = rows[-1][0]
                    done += len(rows)
                    setattr(self.result, stream, getattr(self.result, stream) + len(rows))
                    if stream == "epochs":
                        per = self.result.per_session
                        per[session_id] = per.get(session_id, 0) + len(rows)
                    self.on_progress(stream, done, max(total, done))
                more = reply["more"] and bool(rows)

    def _page(self, command: str, columns, args: dict) -> tuple[dict, list[tuple]]:
        """One verified page: the digest matches, it decodes, and it holds what it says.
        ``columns``: the page's columns, or a function of the reply that gives them."""
        request = {**args, "max_bytes": self.page_bytes}
        for attempt in range(PAGE_ATTEMPTS):
            reply, blob = self.client.call(command, request)
            if digest(blob) != reply.get("sha256"):
                if attempt + 1 < PAGE_ATTEMPTS:
                    continue
                fail("E362", f"{command}: page digest does not match after retries", _AGAIN)
            rows = decode_page(columns(reply) if callable(columns) else columns, blob)
            last = rows[-1][0] if rows else None
            if len(rows) != reply.get("n") or last != reply.get("last_id"):
                fail("E362", f"{command}: the page does not hold what its reply says", _AGAIN)
            self.result.pages += 1
            self.result.link_bytes += len(blob)
            return reply, rows
        raise AssertionError("unreachable")

    # --- log files --------------------------------------------------------------------------

    def _logs(self) -> None:
        reply, _ = self.client.call(Command.LOGS_FILES, {})
        files = reply.get("files", [])
        total = sum(max(0, f["size"] - self.archive.log_offset(f["ident"])) for f in files)
        done = 0
        for f in files:
            name, ident = f["name"], f["ident"]
            offset = self.archive.log_offset(ident)
            grew = False
            while offset < f["size"]:
                chunk, next_offset = self._log_chunk(name, ident, offset)
                if chunk is None or not chunk:
                    break  # rotated away meanwhile, or only a partial line left
                self.archive.add_log_chunk(ident, name, offset, chunk)
                offset = next_offset
                grew = True
                done += len(chunk)
                self.result.log_bytes += len(chunk)
                self.result.log_lines += chunk.count(b"\n")
                self.on_progress("logs", done, max(total, done))
            self.result.log_files += grew

    def _log_chunk(self, name: str, ident: str, offset: int) -> tuple[bytes | None, int]:
        """Whole lines of a log file from ``offset``: ``(bytes, next offset)``; None if gone."""
        request = {"name": name, "ident": ident, "offset": offset, "max_bytes": self.page_bytes}
        for attempt in range(PAGE_ATTEMPTS):
            reply, blob = self.client.call(Command.LOGS_READ, request)
            if reply.get("gone"):
                return None, offset
            if digest(blob) != reply.get("sha256"):
                if attempt + 1 < PAGE_ATTEMPTS:
                    continue
                fail("E362", f"logs.read {name}: digest does not match after retries", _AGAIN)
            chunk = _inflate(blob, name)
            if reply.get("offset") != offset or reply.get("next_offset") != offset + len(chunk):
                fail("E362", f"logs.read {name}: the reply does not match its bytes", _AGAIN)
            self.result.pages += 1
            self.result.link_bytes += len(blob)
            return chunk, offset + len(chunk)
        raise AssertionError("unreachable")


_AGAIN = "pull again; the archive keeps every page written before"


def _inflate(blob: bytes, name: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(blob, MAX_PAGE_BYTES)
    except zlib.error as error:
        fail("E362", f"logs.read {name}: the page does not decompress ({error})", _AGAIN)
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        fail("E362", f"logs.read {name}: the page is truncated or too large", _AGAIN)
    return out


# --- the command line -------------------------------------------------------------------------


@click.group(
    "logs",
    epilog="example: bedside-host logs pull --port auto --archive ~/trial-logs",
)
def logs_group() -> None:
    """Copy units' vitals, events and log files to this laptop, and export them."""


@logs_group.command(
    "pull",
    epilog="examples:\n\n  bedside-host logs pull --port auto --archive ~/trial-logs\n\n"
    "  bedside-host logs pull --port /dev/ttyACM0 --archive ~/trial-logs --person P017",
)
@port_option
@keys_option
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="the archive folder on this laptop (made if missing; one file per unit inside); "
    f"default ${ARCHIVE_ENV}, else ~/bedside-archive",
)
@click.option(
    "--person",
    help="the trial participant code the unit is with; exports show only a pseudonym of it",
)
@timeout_option
@trace_option
@json_option
def pull_command(
    port: str,
    keys: Path | None,
    archive: Path,
    person: str | None,
    timeout: float,
    trace: bool,
    as_json: bool,
) -> None:
    """Copy what is new on the unit into the archive: incremental, resumable, verified.

    Only rows after the archive's cursors travel; each page is checked against its SHA-256
    and written with its cursor in one transaction. Interrupted (cable pulled, Ctrl-C, the
    unit restarting)? Run the same command again: it goes on where it stopped, and copies
    nothing twice. A second pull right after the first copies nothing."""
    archive = archive or default_archive_dir()
    with connect(port, keys=keys, trace=trace, timeout_s=timeout) as unit:
        with _Bars(enabled=not as_json) as bars:
            result = pull(unit, archive, person=person, on_progress=bars.update)
    emit(result.as_json(), as_json, result.summary())


@logs_group.command(
    "export",
    epilog="examples:\n\n  bedside-host logs export --dataset ~/trial-dataset\n\n"
    "  bedside-host logs export --archive ~/trial-logs --format parquet --out ~/trial-export\n\n"
    '  bedside-host query --dataset ~/trial-dataset "SELECT device, night, hr_mean_bpm, '
    'coverage FROM nights"',
)
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"the archive folder that logs pull filled; default ${ARCHIVE_ENV}, else "
    "~/bedside-archive",
)
@click.option(
    "--dataset",
    type=click.Path(file_okay=False, path_type=Path),
    help="bring this Hive-partitioned Parquet dataset (device=/night= folders) up to date: "
    "only new and grown nights are written",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="csv",
    show_default=True,
    help="of the --out tables",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="folder for the nights, sessions, epochs and events tables (.csv or .parquet), "
    "made if missing",
)
@json_option
def export_command(
    archive: Path | None, dataset: Path | None, fmt: str, out: Path | None, as_json: bool
) -> None:
    """Export every unit's nights, sessions, epochs and events, pseudonymized: as four
    tables (--out), or into a partitioned dataset that grows with each pull (--dataset).

    Device ids and participant codes become keyed pseudonyms (the key stays in the archive
    folder as export.key): the same unit has the same pseudonym in every export, so exports
    join across units and over time in DuckDB, Spark or Trino. Parquet needs the "host"
    extra (duckdb)."""
    if (dataset is None) == (out is None):
        raise click.UsageError("give --out FOLDER or --dataset FOLDER (one of them)")
    archive = archive or default_archive_dir()
    if dataset is not None:
        with _Bars(enabled=not as_json) as bars:
            done = export_dataset(
                archive, dataset, on_progress=lambda n, total: bars.update("export", n, total)
            )
        emit(done.as_json(), as_json, done.summary())
        return
    result = export(archive, out, fmt=fmt)
    emit(
        {"units": result.units, "rows": result.rows, "files": result.files},
        as_json,
        result.summary(),
    )


@click.command(
    "query",
    epilog="examples:\n\n"
    '  bedside-host query --dataset ~/trial-dataset "SELECT device, night, hr_mean_bpm, '
    'coverage FROM nights ORDER BY night"\n\n'
    '  BEDSIDE_DATASET=~/trial-dataset bedside-host query --json "SELECT count(*) FROM epochs"',
)
@click.argument("sql")
@click.option(
    "--dataset",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=DATASET_ENV,
    required=True,
    help=f"the dataset folder logs export --dataset wrote (default ${DATASET_ENV})",
)
@json_option
def query_command(sql: str, dataset: Path, as_json: bool) -> None:
    """Ask the exported dataset a question in SQL (DuckDB, on this laptop).

    The tables are nights, sessions, epochs and events, with the columns of the export
    (docs/field-tester.md) and the partition columns device and night. Times print in UTC."""
    names, rows = query(dataset, sql)
    if as_json:
        click.echo(json.dumps([dict(zip(names, row, strict=True)) for row in rows], default=str))
        return
    click.echo(_table(names, rows))


def _table(names: list[str], rows: list[tuple]) -> str:
    """Rows as aligned text columns, numbers to the right, NULL as an empty cell."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows)
        for i in range(len(names))
    ]

    def line(values):
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(names), *(line(r) for r in cells)])


class _Bars:
    """A progress bar per stream (epochs, events, logs), one after the other."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._stream: str | None = None
        self._bar = None
        self._done = 0

    def update(self, stream: str, done: int, total: int) -> None:
        if stream != self._stream:
            self.close()
            unit = "B" if stream == "logs" else "rows"
            label = {"logs": "log files", "export": "epochs"}.get(stream, stream)
            self._bar = progress(total, label, enabled=self.enabled, unit=unit)
            self._stream, self._done = stream, 0
        if total != self._bar.total:  # the unit wrote more while we pulled
            self._bar.set_total(total)
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
