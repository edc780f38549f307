"""Power cuts at a chosen point inside a unit process: SIGKILL after the Nth step.

A step is one of two things the unit does to its disk, counted from :func:`arm` on:

- ``fs``: a file system operation under ``root`` seen by a Python audit hook (a file opened
  for writing, a rename, a delete, a mkdir, an rmtree) or an ``os.fsync``;
- ``sql``: ``TICK`` SQLite virtual-machine instructions on any connection to a file under
  ``root`` (its progress handler), i.e. somewhere inside a statement, a commit included.

A third kind, ``ms``, cuts N milliseconds after a named phase starts: for stretches where
the unit works in a child process (the boot manager's build and health check) and so makes
no step here. The delay is drawn from the seed too; where it lands depends on the machine.

At the Nth step the whole process group gets SIGKILL (the health check and build children
die too, as they would in a power cut): no ``finally``, no atexit, no flush. The same N on
the same input reaches the same operation, so a cut is chosen by a seed, not by timing.

The process also keeps a *witness* file (opened ``O_APPEND``; each line one ``write(2)``, so
what was written is in the kernel when the process dies): ``phase NAME`` when an operation
starts and ``commit ID COUNT`` each time a store commit returned. The harness reads it to
know what the unit had been told was durable, and where the cut landed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote

TICK = 100  # SQLite VM instructions per progress-handler call

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_FS_EVENTS = {
    "os.rename",
    "os.remove",
    "os.rmdir",
    "os.mkdir",
    "os.truncate",
    "os.link",
    "os.symlink",
    "shutil.rmtree",
    "shutil.move",
}


class Cutter:
    """Counts steps under ``root`` and kills the process group at step ``at`` of ``kind``
    (``fs``, ``sql``), or ``at`` ms after phase ``phase`` starts (``ms``).

    ``at=0`` never kills (a run that only counts the steps of each phase).
    """

    def __init__(
        self, root: Path, kind: str, at: int, witness: Path | None, phase: str = ""
    ) -> None:
        if kind not in ("fs", "sql", "ms"):
            raise ValueError(f"kind: expected 'fs', 'sql' or 'ms', got {kind!r}")
        self.root = str(Path(root).resolve())
        self.kind, self.at, self.target = kind, int(at), phase
        self.steps = {"fs": 0, "sql": 0}
        self.armed = False
        self._witness = (
            os.open(witness, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if witness else None
        )

    def note(self, line: str) -> None:
        """One line in the witness file (durable in the kernel once this returns)."""
        if self._witness is not None:
            os.write(self._witness, (line + "\n").encode())

    def phase(self, name: str) -> None:
        """Mark the start of a phase, with the steps counted so far."""
        self.note(f"phase {name} {self.steps['fs']} {self.steps['sql']} {time.monotonic():.3f}")
        if self.kind == "ms" and self.at > 0 and name == self.target:
            threading.Timer(self.at / 1000.0, self._cut, args=(f"ms {self.at}",)).start()

    def _cut(self, what: str) -> None:
        self.note(f"cut {what}")
        os.killpg(os.getpgid(0), signal.SIGKILL)
        os._exit(137)  # not reached

    def step(self, kind: str) -> None:
        if not self.armed:
            return
        self.steps[kind] += 1
        if kind == self.kind and self.steps[kind] == self.at:
            self._cut(f"{kind} {self.at}")

    def _mine(self, path) -> bool:
        if isinstance(path, int) or path is None:
            return False
        try:
            text = os.fsdecode(path)
        except TypeError:
            return False
        return os.path.abspath(text).startswith(self.root)

    def audit(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writes = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writes and self._mine(path):
                self.step("fs")
        elif event in _FS_EVENTS:
            if self._mine(args[0]):
                self.step("fs")

    def tick(self) -> int:
        self.step("sql")
        return 0


_cutter: Cutter | None = None


def install(root: Path, kind: str, at: int, witness: Path | None = None, phase: str = "") -> Cutter:
    """Install the hooks in this process (once); steps count after :func:`arm`."""
    global _cutter
    if _cutter is not None:
        raise RuntimeError("cut points are installed already")
    cutter = _cutter = Cutter(root, kind, at, witness, phase)
    sys.addaudithook(cutter.audit)
    real_fsync = os.fsync

    def fsync(fd):
        cutter.step("fs")
        return real_fsync(fd)

    os.fsync = fsync  # no audit event for fsync; the unit calls it as os.fsync(...)
    real_connect = sqlite3.connect

    def connect(database, *args, **kwargs):
        conn = real_connect(database, *args, **kwargs)
        name = os.fsdecode(database)
        if cutter._mine(unquote(name.removeprefix("file:").split("?")[0])):
            conn.set_progress_handler(cutter.tick, TICK)
        return conn

    sqlite3.connect = connect  # the unit calls it as sqlite3.connect(...)
    return cutter


def arm() -> None:
    """Start counting (after the setup that is not part of the operation under test)."""
    if _cutter is not None:
        _cutter.armed = True


def witness_store_commits() -> None:
    """Note ``commit LAST_EPOCH_ID EPOCHS`` after each :meth:`edge.store.Store.commit` that
    returned: from then on those epochs must survive anything."""
    from edge.store import Store

    real_commit = Store.commit

    def commit(self, *args, **kwargs):
        out = real_commit(self, *args, **kwargs)
        if _cutter is not None and self._conn is not None:
            with _cutter_paused():
                last, count = self._conn.execute("SELECT max(id), count(*) FROM epochs").fetchone()
            _cutter.note(f"commit {last or 0} {count}")
        return out

    Store.commit = commit


@contextlib.contextmanager
def _cutter_paused():
    """The witness's own queries are not steps of the unit."""
    was, _cutter.armed = _cutter.armed, False
    try:
        yield
    finally:
        _cutter.armed = was


__all__ = ["TICK", "Cutter", "arm", "install", "witness_store_commits"]
