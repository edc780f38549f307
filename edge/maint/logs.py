"""The maintenance agent's log commands: the unit's vitals, events and log files, in pages.

``register(agent)`` adds them to an :class:`edge.maint.agent.Agent`; every one needs an
authenticated host. Each answer fits the frame the host asks for (``max_bytes``, the link's
negotiated ``max_data``) and carries the SHA-256 of its data, which the host checks.

=================  =========================================  ===================================
command            args                                       reply (args; data)
=================  =========================================  ===================================
``logs.sessions``  since_id, max_bytes, with (optional:        n, last_id, more, sha256, with;
                   names of SESSION_EXTRA_COLUMNS)            page of :data:`SESSION_COLUMNS`
                                                              and the extra columns in with
``logs.epochs``    session_id, since_id, max_bytes            n, last_id, more, sha256;
                                                              page of :data:`EPOCH_COLUMNS`
``logs.events``    session_id, since_id, max_bytes            the same, :data:`EVENT_COLUMNS`
``logs.files``     (none)                                     files: [{name, size, ident}]
``logs.read``      name, ident, offset, max_bytes             offset, next_offset, size, gone,
                                                              sha256; zlib of whole lines
=================  =========================================  ===================================

Rows are read per session because the store's rows carry no session id of their own; ids
only increase and one writer writes one session at a time, so a host that asks for the
sessions from the one of its last row onwards, each from its cursor, misses nothing.
Events recorded between sessions (no session yet) are served once the next session adopts
them; they are the newest rows until then, so no cursor passes them.

A log file is known by ``ident``, the digest of its first line, not by its name: a rotated
``bedside.log`` that became ``bedside.log.1`` is the same file and resumes at its offset.
Only whole lines are served, so a line being written is never cut.
"""

from __future__ import annotations

import os
import re
import stat
import zlib
from pathlib import Path

from ..errors import fail
from ..link.commands import Command
from ..link.frame import max_data
from ..log_pages import (
    EPOCH_COLUMNS,
    EVENT_COLUMNS,
    SESSION_EXTRA_COLUMNS,
    digest,
    encode_fitting,
    session_columns,
)
from ..store import STORE_NAME, Store

__all__ = ["LOG_DIR", "STORE_NAME", "LogSource", "register"]

LOG_DIR = "logs"  #: the unit's log files in the state folder
#: Log files that are served: ``NAME.log`` and its rotations ``NAME.log.N`` (no compressed ones).
LOG_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}\.log(\.[0-9]{1,3})?")
_IDENT_HEAD = 4096  # bytes read for a file's identity: its first line, or this much of it
_MIN_PAGE = 256  # smallest page a host may ask for
_MAX_ROWS = 50_000  # rows read for one page at most, whatever the frame size


class LogSource:
    """Pages of the store and the log files of one state folder (see the module docstring).

    Each call opens the store read-only and closes it again: the unit's writer is never
    blocked, and a store that was moved aside and started anew is seen at once.
    """

    def __init__(self, state_dir: str | os.PathLike, *, max_page: int | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.max_page = max_page  #: the largest page sent, whatever a host asks for
        # Compressed bytes per row of the last page, per table: sizes the next read.
        self._bytes_per_row = {"sessions": 40.0, "epochs": 20.0, "events": 40.0}

    # --- the store --------------------------------------------------------------------------

    def sessions(self, args: dict, data: bytes = b"") -> tuple[dict, bytes]:
        """``logs.sessions``: sessions with id > ``since_id``, with their row counts now, and
        the extra columns named in ``with`` that this unit has (named in the reply)."""
        since_id, budget = _whole(args, "since_id"), self._budget(args)
        extra = [name for name, _ in SESSION_EXTRA_COLUMNS if name in _names(args, "with")]
        columns = session_columns(extra)
        store = self._store()
        rows = []
        if store is not None:
            with store:
                rows = [
                    (
                        s.id,
                        s.source,
                        s.fs,
                        s.epoch_s,
                        s.software_version,
                        s.started_utc,
                        s.ended_utc,
                        None if s.clean is None else float(s.clean),
                        s.n_epochs,
                        s.n_events,
                        *([s.tz] if "tz" in extra else []),
                    )
                    for s in store.sessions()
                    if s.id > since_id
                ]
        reply, blob = self._page("sessions", columns, rows, budget, more=False)
        return {**reply, "with": extra}, blob

    def epochs(self, args: dict, data: bytes = b"") -> tuple[dict, bytes]:
        """``logs.epochs``: epochs of ``session_id`` with id > ``since_id``, as many as fit."""
        return self._rows("epochs", EPOCH_COLUMNS, args)

    def events(self, args: dict, data: bytes = b"") -> tuple[dict, bytes]:
        """``logs.events``: events of ``session_id`` with id > ``since_id``, as many as fit."""
        return self._rows("events", EVENT_COLUMNS, args)

    def _rows(self, kind: str, columns: tuple, args: dict) -> tuple[dict, bytes]:
        """A page of the store's ``kind`` rows (``epochs`` or ``events``, its method of that
        name) of ``session_id`` with id > ``since_id``, as many as fit the budget; each row
        its id, the session and the record's fields (:mod:`edge.records` order)."""
        session_id, since_id = _whole(args, "session_id"), _whole(args, "since_id")
        budget = self._budget(args)
        store = self._store()
        if store is None:
            return self._page(kind, columns, [], budget, more=False)
        limit = self._rows_for(kind, budget)
        rows, more = [], False
        with store:
            for row_id, record in getattr(store, kind)(session_id=session_id, since_id=since_id):
                if len(rows) == limit:
                    more = True
                    break
                rows.append((row_id, session_id, *record.values()))
        return self._page(kind, columns, rows, budget, more=more)

    def _budget(self, args: dict) -> int:
        budget = _budget(args)
        return budget if self.max_page is None else min(budget, max(_MIN_PAGE, self.max_page))

    def _store(self) -> Store | None:
        path = self.state_dir / STORE_NAME
        if not path.exists():
            return None  # the unit has not recorded yet: nothing to serve
        return Store(path, readonly=True)

    def _rows_for(self, table: str, budget: int) -> int:
        # A little under the last page's density: most pages then fit at the first try.
        return max(1, min(_MAX_ROWS, int(budget / self._bytes_per_row[table] * 0.97) + 1))

    def _page(
        self, table: str, columns: tuple, rows: list[tuple], budget: int, *, more: bool
    ) -> tuple[dict, bytes]:
        blob, n = encode_fitting(columns, rows, budget)
        if n:
            self._bytes_per_row[table] = max(1.0, len(blob) / n)
        return (
            {
                "n": n,
                "last_id": rows[n - 1][0] if n else None,
                "more": more or n < len(rows),
                "sha256": digest(blob),
            },
            blob,
        )

    # --- log files --------------------------------------------------------------------------

    def files(self, args: dict | None = None, data: bytes = b"") -> tuple[dict, bytes]:
        """``logs.files``: the log files that hold at least one whole line."""
        folder = self.state_dir / LOG_DIR
        out = []
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            names = []
        except OSError as error:
            fail("E367", f"cannot list the unit's log folder ({error.strerror})", "check it")
        for name in names:
            if not LOG_NAME.fullmatch(name):
                continue
            try:
                with _open_log(folder / name) as f:
                    ident = _ident(f)
                    size = os.fstat(f.fileno()).st_size
            except OSError:
                continue  # rotated away or not a plain file: the next pull sees it
            if ident is not None:
                out.append({"name": name, "size": size, "ident": ident})
        return {"files": out}, b""

    def read(self, args: dict, data: bytes = b"") -> tuple[dict, bytes]:
        """``logs.read``: whole lines of file ``name`` from ``offset`` on, as many as fit.

        ``gone`` is true (and no data sent) when ``name`` is no longer the file ``ident``:
        it was rotated between the listing and this call, and is listed anew next time.
        """
        name, ident = _text(args, "name"), _text(args, "ident")
        offset, budget = _whole(args, "offset"), self._budget(args)
        if not LOG_NAME.fullmatch(name):
            fail("E367", f"{name!r} is not a log file of the unit", "ask for a listed name")
        gone = {"offset": offset, "next_offset": offset, "size": 0, "gone": True, "sha256": ""}
        try:
            f = _open_log(self.state_dir / LOG_DIR / name)
        except OSError:
            return gone, b""
        with f:
            if _ident(f) != ident:
                return gone, b""
            size = os.fstat(f.fileno()).st_size
            if offset > size:
                fail("E365", f"{name}: offset {offset} is past its end ({size})", "pull again")
            want = max(1, min(size - offset, 4 * budget))
            while True:
                f.seek(offset)
                chunk = _whole_lines(f.read(want), full=want < size - offset)
                blob = zlib.compress(chunk, 6)
                if len(blob) <= budget or len(chunk) <= 1:
                    break
                want = max(1, int(len(chunk) * budget / len(blob) * 0.9))
        if len(blob) > budget:
            fail("E366", f"{name}: a line does not fit in a frame", "connect with a larger frame")
        reply = {"offset": offset, "next_offset": offset + len(chunk), "size": size, "gone": False}
        return {**reply, "sha256": digest(blob)}, blob


def register(agent) -> LogSource:
    """Add the ``logs.*`` commands (all authenticated) to ``agent``, an
    ``edge.maint.agent.Agent``."""
    # The agent's own frame bounds a page too, whatever size a host asks for.
    source = LogSource(agent.state_dir, max_page=max_data(agent.max_frame))
    for name, handler in (
        (Command.LOGS_SESSIONS, source.sessions),
        (Command.LOGS_EPOCHS, source.epochs),
        (Command.LOGS_EVENTS, source.events),
        (Command.LOGS_FILES, source.files),
        (Command.LOGS_READ, source.read),
    ):
        agent.command(name, auth=True)(handler)
    return source


# --- helpers --------------------------------------------------------------------------------


def _open_log(path: Path):
    """Open a log file to read, refusing symlinks and anything but a plain file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path.name}: not a plain file")
    return os.fdopen(fd, "rb")


def _ident(f) -> str | None:
    """A file's identity: the digest of its first line (or first 4 KiB); None without one."""
    f.seek(0)
    head = f.read(_IDENT_HEAD)
    end = head.find(b"\n")
    if end < 0 and len(head) < _IDENT_HEAD:
        return None  # the first line is still being written
    return digest(head if end < 0 else head[: end + 1])[:32]


def _whole_lines(chunk: bytes, *, full: bool) -> bytes:
    """``chunk`` up to its last newline; a line longer than a whole read goes as it is."""
    end = chunk.rfind(b"\n")
    if end >= 0:
        return chunk[: end + 1]
    return chunk if full else b""


def _whole(args: dict, key: str) -> int:
    value = (args or {}).get(key, 0 if key in ("since_id", "offset") else None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        fail("E365", f"request: {key} must be a whole number >= 0, got {value!r}", _UPDATE)
    return value


def _text(args: dict, key: str) -> str:
    value = (args or {}).get(key)
    if not isinstance(value, str) or not value:
        fail("E365", f"request: {key} must be text, got {value!r}", _UPDATE)
    return value


def _names(args: dict, key: str) -> list[str]:
    value = (args or {}).get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail("E365", f"request: {key} must be a list of names, got {value!r}", _UPDATE)
    return value


def _budget(args: dict) -> int:
    value = (args or {}).get("max_bytes")
    if isinstance(value, bool) or not isinstance(value, int) or value < _MIN_PAGE:
        fail("E365", f"request: max_bytes must be a whole number >= {_MIN_PAGE}", _UPDATE)
    return value


_UPDATE = "update the host tools to match the unit"
