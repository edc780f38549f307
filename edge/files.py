"""Crash-safe file writes: what is written here survives a kill -9 and a power cut.

A unit is switched off at the wall and its processes are killed mid-write; a laptop's
battery dies mid-pull. A plain ``write`` can then leave a file empty, torn or missing, and a
rename that was never fsynced in its folder can be undone at the next mount. So every
durable write goes through these helpers: :func:`atomic_write` (temp file, fsync, rename,
fsync of the folder: the old file or the new one, whole), :func:`fsync_dir` (a new name in
a folder made durable) and :func:`fsync_tree` (files written by someone else, a compiler or
an unpack, made durable). ``make crashcheck`` (docs/reliability.md) checks them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir", "fsync_tree"]


def fsync_dir(path: Path) -> None:
    """fsync a folder, so that a rename or a new file in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike) -> None:
    """Make every file and folder under ``root`` durable, whoever wrote them (a compiler
    never fsyncs its output): one ``syncfs`` of its filesystem on Linux (one journal commit
    instead of one per file: ~100 fsyncs cost ~0.25 s on an SD card), else an fsync per
    file and folder."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _syncfs is not None and _syncfs(fd) == 0:
            return
    finally:
        os.close(fd)
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def _load_syncfs():
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # not Linux/glibc: the per-file fallback
        return None


_syncfs = _load_syncfs()


def atomic_write(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash (or a power cut) leaves either the old
    or the new file, whole; the new one has ``mode`` from its first byte (0o600: never
    readable by others, not even for a moment). ``durable=False`` skips the two fsyncs, for
    a file rewritten often whose loss in a power cut costs nothing (it may then be left
    empty, so its reader must take that)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a crash of an earlier process with this pid: its mode may differ
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)
