"""Crash states below the page cache: what a power cut could leave on disk, from a call log.

A SIGKILL leaves every write in the kernel's page cache, so the power-cut harness
(powercut.py) cannot tell whether the unit fsyncs the right things. This module is the
application-level model instead (the approach of ALICE and CrashMonkey): the unit's
operation runs once under the ``crashlog`` LD_PRELOAD shim (crashlog/crashlog.c), which
logs every call that changes a file or folder under the chosen roots; :class:`Replay` then
applies that log, record by record, to a snapshot taken before the operation, and at any
record index builds the file tree a power cut at that moment could leave.

The persistence model (POSIX's, and ext4's without ``auto_da_alloc``):

- every inode has volatile content (what the running processes see) and durable content
  (what is on disk): the bytes of a file, the name -> inode entries of a folder;
- ``fsync``/``fdatasync`` of a file makes its current bytes durable; of a folder, its
  current entries (a create, rename, unlink, mkdir or link in it); ``syncfs``/``sync``
  make everything durable;
- a new file or folder starts with empty durable content; it is on disk only through a
  durable name, so a file created and fsynced whose folder was never fsynced is lost;
- at the cut, everything not durable is lost (``lose-unsynced``), or, in ``reorder``, a
  random subset of each object's pending changes since its last sync reached the disk
  anyway, in order (a disk writes back unsynced data in any order; what was synced
  stays).

Limits: a write is all or nothing (no torn sectors); a rename between two folders becomes
durable with its target folder; writes through a shared mmap are not seen (SQLite's -shm
index, which the first connection after a restart rebuilds: images leave -shm files out);
chmod/utime are not modelled; the roots must be on one file system (``syncfs``).
"""

from __future__ import annotations

import copy
import hashlib
import os
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHIM_SOURCE = HERE / "crashlog" / "crashlog.c"

#: Record kinds, as crashlog.c numbers them.
KINDS = {
    1: "open",
    2: "write",
    3: "truncate",
    4: "fsync",
    5: "syncall",
    6: "rename",
    7: "unlink",
    8: "mkdir",
    9: "link",
    10: "close",
    11: "unsupported",
}
_HEAD = struct.Struct("<IIiiQqqII")
_O_CREAT, _O_TRUNC = os.O_CREAT, os.O_TRUNC
_RENAME_EXCHANGE = 2
MODELS = ("lose-unsynced", "reorder")
#: Files the model cannot follow (written through mmap) and leaves out of every image.
UNMODELLED_SUFFIXES = ("-shm",)

Tree = dict[str, "bytes | None"]  # relative path -> file bytes, or None for a folder


class Image(dict):
    """A crash state: ``{root: Tree}``, and in :attr:`modes` the permission bits of what
    existed before the operation (chmod is not logged; new files get the default)."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: dict[str, dict[str, int]] = {}


class ModelError(Exception):
    """The log does not fit the model's picture of the tree: a call the shim did not see,
    or one it cannot model. The image would be wrong, so replay stops."""


@dataclass(frozen=True)
class Record:
    """One logged call (see crashlog.c for the fields)."""

    index: int
    kind: str
    pid: int
    fd: int
    ino: int
    a: int
    b: int
    path: str
    path2: str
    data: bytes


def read_log(path: str | os.PathLike) -> list[Record]:
    """Parse a crashlog file into records (a torn last record is an error)."""
    raw = Path(path).read_bytes()
    out: list[Record] = []
    at = 0
    while at < len(raw):
        if at + _HEAD.size > len(raw):
            raise ModelError(f"log {path}: a torn record at byte {at}")
        length, kind, pid, fd, ino, a, b, n1, n2 = _HEAD.unpack_from(raw, at)
        if length != _HEAD.size + n1 + n2 or at + length > len(raw) or kind not in KINDS:
            raise ModelError(f"log {path}: a damaged record at byte {at}")
        body = at + _HEAD.size
        p1 = raw[body : body + n1].decode("utf-8", "surrogateescape")
        tail = raw[body + n1 : body + n1 + n2]
        name = KINDS[kind]
        text = name in ("rename", "link")
        p2 = tail.decode("utf-8", "surrogateescape") if text else ""
        out.append(Record(len(out), name, pid, fd, ino, a, b, p1, p2, b"" if text else tail))
        at += length
    return out


# --- the shim ---------------------------------------------------------------------------------


def build_shim(build_dir: str | os.PathLike) -> Path:
    """Compile crashlog.c into ``build_dir`` (again only when the source changed)."""
    source = SHIM_SOURCE.read_bytes()
    tag = hashlib.sha256(source).hexdigest()[:12]
    out = Path(build_dir) / f"crashlog-{tag}.so"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        cc = os.environ.get("CC", "gcc")
        cmd = [cc, "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-o", str(tmp)]
        subprocess.run([*cmd, str(SHIM_SOURCE), "-ldl"], check=True)
        os.replace(tmp, out)
    return out


def shim_env(shim: Path, roots: list[Path], log: Path, env: dict | None = None) -> dict:
    """The environment that runs a command under the shim, logging calls under ``roots``."""
    env = dict(os.environ if env is None else env)
    env["LD_PRELOAD"] = str(shim)
    env["CRASHLOG_ROOT"] = ":".join(str(Path(r).resolve()) for r in roots)
    env["CRASHLOG_OUT"] = str(Path(log).resolve())
    return env


# --- trees on disk ----------------------------------------------------------------------------


def read_tree(root: str | os.PathLike) -> Tree:
    """Every folder and file under ``root`` (relative paths; symlinks are refused)."""
    root = Path(root)
    tree: Tree = {}
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        for name in dirs:
            tree[os.path.normpath(os.path.join(rel, name))] = None
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                raise ModelError(f"{path} is a symlink: not modelled")
            tree[os.path.normpath(os.path.join(rel, name))] = Path(path).read_bytes()
    return tree


def write_tree(tree: Tree, dest: str | os.PathLike, modes: dict[str, int] | None = None) -> None:
    """Make ``dest`` hold exactly ``tree`` (it must not exist yet), with ``modes`` (by
    relative path, "" the root) where given."""
    dest = Path(dest)
    dest.mkdir(parents=True)
    for rel in sorted(tree):
        path = dest / rel
        if tree[rel] is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tree[rel])
    for rel, mode in (modes or {}).items():
        os.chmod(dest / rel, mode)


def modelled(tree: Tree) -> Tree:
    """``tree`` less the files the model cannot follow (:data:`UNMODELLED_SUFFIXES`)."""
    return {p: v for p, v in tree.items() if not p.endswith(UNMODELLED_SUFFIXES)}


# --- the model --------------------------------------------------------------------------------


@dataclass
class _Inode:
    is_dir: bool
    mode: int = 0  # permission bits: from the snapshot; new files and folders get the default
    data: bytearray = field(default_factory=bytearray)  # a file's bytes, as processes see them
    durable: bytes = b""
    entries: dict[str, int] = field(default_factory=dict)  # a folder's names -> inode ids
    durable_entries: dict[str, int] = field(default_factory=dict)
    # (record index, change) since the last sync: a rename's two name changes share one
    # index, so they reach the disk together or not at all (journaled, as everywhere)
    pending: list[tuple[int, tuple]] = field(default_factory=list)

    def sync(self) -> None:
        if self.is_dir:
            self.durable_entries = dict(self.entries)
        else:
            self.durable = bytes(self.data)
        self.pending.clear()


def _apply_data(data: bytearray, change: tuple) -> None:
    if change[0] == "write":
        _, offset, payload = change
        if offset > len(data):
            data.extend(bytes(offset - len(data)))
        data[offset : offset + len(payload)] = payload
    else:  # ("truncate", length)
        length = change[1]
        if length < len(data):
            del data[length:]
        else:
            data.extend(bytes(length - len(data)))


def _apply_name(entries: dict[str, int], change: tuple) -> None:
    if change[0] == "set":
        entries[change[1]] = change[2]
    else:  # ("del", name)
        entries.pop(change[1], None)


class Replay:
    """The log applied on a snapshot of ``roots``, one record at a time.

    Args:
        roots: the folders the shim logs under, read now as the snapshot: make it before
            the operation starts, then hand over its log with :meth:`use_log`.
    """

    def __init__(self, roots: list[Path]) -> None:
        self.records: list[Record] = []
        self.applied = 0  #: records applied so far: the cut point of :meth:`image`
        self.inodes: dict[int, _Inode] = {}
        self.by_ino: dict[int, int] = {}  # the file system's inode numbers -> ours
        self.roots: dict[str, int] = {}
        self._modes: dict[str, int] = {}  # the image being built: its permission bits
        for root in roots:
            root = Path(root).resolve()
            self.roots[str(root)] = self._load(root)
        self._start = copy.deepcopy((self.inodes, self.by_ino))

    def rewind(self) -> Replay:
        """Back to the snapshot, to replay the log again (another model, another seed)."""
        self.inodes, self.by_ino = copy.deepcopy(self._start)
        self.applied = 0
        return self

    def use_log(self, records: list[Record]) -> Replay:
        """The log of the operation that started after the snapshot (:func:`read_log`)."""
        if self.applied:
            raise ValueError("the log is replayed already")
        self.records = records
        return self

    def _new(self, is_dir: bool, ino: int = 0) -> int:
        ident = len(self.inodes) + 1
        self.inodes[ident] = _Inode(is_dir)
        if ino:
            self.by_ino[ino] = ident
        return ident

    def _load(self, path: Path) -> int:
        if path.is_symlink():
            raise ModelError(f"{path} is a symlink: not modelled")
        st = os.lstat(path)
        ident = self._new(path.is_dir(), st.st_ino)
        node = self.inodes[ident]
        node.mode = st.st_mode & 0o7777
        if node.is_dir:
            for child in sorted(path.iterdir()):
                node.entries[child.name] = self._load(child)
        else:
            node.data = bytearray(path.read_bytes())
        node.sync()
        return ident

    # --- paths ---

    def _split(self, path: str) -> tuple[int, list[str]]:
        for root, ident in self.roots.items():
            if path == root or path.startswith(root + "/"):
                rest = path[len(root) :].strip("/")
                return ident, [p for p in rest.split("/") if p]
        raise ModelError(f"{path} is under no root")

    def _parent(self, path: str) -> tuple[_Inode, str]:
        """The folder holding ``path``, and its last name."""
        ident, parts = self._split(path)
        if not parts:
            raise ModelError(f"{path}: a root itself cannot be created, moved or removed")
        for name in parts[:-1]:
            node = self.inodes[ident]
            if not node.is_dir or name not in node.entries:
                raise ModelError(f"{path}: the model has no folder {name!r} on the way")
            ident = node.entries[name]
        node = self.inodes[ident]
        if not node.is_dir:
            raise ModelError(f"{path}: the model's parent is not a folder")
        return node, parts[-1]

    def lookup(self, path: str) -> int | None:
        """Our inode id at ``path`` now (volatile), or None."""
        ident, parts = self._split(path)
        for name in parts:
            node = self.inodes[ident]
            if not node.is_dir or name not in node.entries:
                return None
            ident = node.entries[name]
        return ident

    def _inode_of(self, rec: Record) -> _Inode:
        if rec.ino not in self.by_ino:
            raise ModelError(f"record {rec.index} ({rec.kind}): inode {rec.ino} never opened")
        return self.inodes[self.by_ino[rec.ino]]

    def _name(self, folder: _Inode, name: str, ident: int | None) -> None:
        change = ("set", name, ident) if ident is not None else ("del", name)
        _apply_name(folder.entries, change)
        folder.pending.append((self.applied, change))

    # --- applying records ---

    def advance(self, to: int) -> None:
        """Apply records up to (not including) index ``to``."""
        if to < self.applied or to > len(self.records):
            raise ValueError(f"cannot go from record {self.applied} to {to}")
        while self.applied < to:
            self._apply(self.records[self.applied])
            self.applied += 1

    def _apply(self, rec: Record) -> None:
        kind = rec.kind
        if kind == "open":
            self._open(rec)
        elif kind in ("write", "truncate"):
            if kind == "truncate" and rec.fd < 0:
                ident = self.lookup(rec.path)
                if ident is None:
                    raise ModelError(f"record {rec.index}: truncate of {rec.path}, not there")
                self.by_ino[rec.ino] = ident
            node = self._inode_of(rec)
            if node.is_dir:
                raise ModelError(f"record {rec.index}: {kind} of a folder")
            change = ("write", rec.a, rec.data) if kind == "write" else ("truncate", rec.a)
            _apply_data(node.data, change)
            node.pending.append((self.applied, change))
        elif kind == "fsync":
            self._inode_of(rec).sync()
        elif kind == "syncall":
            for node in self.inodes.values():
                node.sync()
        elif kind == "rename":
            self._rename(rec)
        elif kind == "unlink":
            folder, name = self._parent(rec.path)
            if name not in folder.entries:
                raise ModelError(f"record {rec.index}: unlink of {rec.path}, not there")
            if self.inodes[folder.entries[name]].is_dir != bool(rec.b):
                raise ModelError(f"record {rec.index}: unlink/rmdir of {rec.path}: wrong kind")
            self._name(folder, name, None)
        elif kind == "mkdir":
            folder, name = self._parent(rec.path)
            if name in folder.entries:
                raise ModelError(f"record {rec.index}: mkdir of {rec.path}, there already")
            self._name(folder, name, self._new(True, rec.ino))
        elif kind == "link":
            source = self.lookup(rec.path) if rec.path else None
            if source is None:
                raise ModelError(f"record {rec.index}: link from {rec.path!r}: not modelled")
            folder, name = self._parent(rec.path2)
            self._name(folder, name, source)
        elif kind == "unsupported":
            raise ModelError(f"record {rec.index}: {rec.path} on a logged file: not modelled")
        # close: nothing to do (the record marks when a file was let go)

    def _open(self, rec: Record) -> None:
        ident = self.lookup(rec.path)
        if ident is None:
            if not rec.a & _O_CREAT:
                raise ModelError(f"record {rec.index}: open of {rec.path}, not in the model")
            folder, name = self._parent(rec.path)
            ident = self._new(False, rec.ino)
            self._name(folder, name, ident)
            return
        if rec.b:  # the shim saw the open create it, the model had it already
            raise ModelError(f"record {rec.index}: {rec.path} created, but the model has it")
        self.by_ino[rec.ino] = ident
        node = self.inodes[ident]
        if rec.a & _O_TRUNC and not node.is_dir and node.data:
            change = ("truncate", 0)
            _apply_data(node.data, change)
            node.pending.append((self.applied, change))

    def _rename(self, rec: Record) -> None:
        if not rec.path:
            raise ModelError(f"record {rec.index}: rename from outside the roots: not modelled")
        old_folder, old = self._parent(rec.path)
        if old not in old_folder.entries:
            raise ModelError(f"record {rec.index}: rename of {rec.path}, not there")
        moved = old_folder.entries[old]
        if not rec.path2:  # moved out of the roots: gone, as far as the model goes
            self._name(old_folder, old, None)
            return
        new_folder, new = self._parent(rec.path2)
        if new_folder is old_folder and new == old:
            return
        if rec.a & _RENAME_EXCHANGE:
            other = new_folder.entries.get(new)
            if other is None:
                raise ModelError(f"record {rec.index}: exchange with {rec.path2}, not there")
            self._name(old_folder, old, other)
        else:
            self._name(old_folder, old, None)
        # A cross-folder rename is durable with its target folder (the conservative side).
        self._name(new_folder, new, moved)

    # --- images ---

    def _tree(self, ident: int, prefix: str, tree: Tree, rng: random.Random | None) -> None:
        node = self.inodes[ident]
        if node.mode:
            self._modes[prefix.rstrip("/")] = node.mode
        entries = dict(node.durable_entries)
        if rng is not None:
            for op, change in node.pending:
                if self._reached(op, rng):
                    _apply_name(entries, change)
        for name in sorted(entries):
            rel = f"{prefix}{name}"
            child = self.inodes[entries[name]]
            if child.is_dir:
                tree[rel] = None
                self._tree(entries[name], rel + "/", tree, rng)
            elif not name.endswith(UNMODELLED_SUFFIXES):
                if child.mode:
                    self._modes[rel] = child.mode
                data = bytearray(child.durable)
                if rng is not None:
                    for op, change in child.pending:
                        if self._reached(op, rng):
                            _apply_data(data, change)
                tree[rel] = bytes(data)

    def _reached(self, op: int, rng: random.Random) -> bool:
        """Whether the pending change of record ``op`` reached the disk (a coin per record)."""
        if op not in self._coins:
            self._coins[op] = rng.random() < 0.5
        return self._coins[op]

    def image(self, rng: random.Random | None = None) -> Image:
        """What a power cut now leaves under each root: durable content only, or with
        ``rng``, plus a random subset of each object's pending changes (``reorder``)."""
        out = Image()
        self._coins: dict[int, bool] = {}
        for root, ident in self.roots.items():
            tree: Tree = {}
            self._modes = out.modes[root] = {}
            self._tree(ident, "", tree, rng)
            out[root] = tree
        return out

    def volatile(self) -> dict[str, Tree]:
        """What the processes see now (every record applied as it was): after the whole log
        it must equal the real folders, byte for byte."""
        out = {}
        for root, ident in self.roots.items():
            tree: Tree = {}
            stack = [(ident, "")]
            while stack:
                node_id, prefix = stack.pop()
                for name, child in self.inodes[node_id].entries.items():
                    node = self.inodes[child]
                    rel = f"{prefix}{name}"
                    if node.is_dir:
                        tree[rel] = None
                        stack.append((child, rel + "/"))
                    else:
                        tree[rel] = bytes(node.data)
            out[root] = tree
        return out

    def volatile_file(self, path: str | os.PathLike) -> bytes | None:
        """A file's bytes as the processes see them now, None when there is none."""
        ident = self.lookup(str(Path(path).resolve()))
        if ident is None or self.inodes[ident].is_dir:
            return None
        return bytes(self.inodes[ident].data)


def tree_diff(want: Tree, got: Tree, limit: int = 5) -> list[str]:
    """How two trees differ, in a few lines (empty when they are equal)."""
    out = []
    for path in sorted(set(want) | set(got)):
        a, b = want.get(path, "missing"), got.get(path, "missing")
        if a != b:
            show = [
                "missing" if v == "missing" else "folder" if v is None else f"{len(v)} bytes"
                for v in (a, b)
            ]
            out.append(f"{path}: model {show[0]}, disk {show[1]}")
    return out[:limit] + ([f"... {len(out) - limit} more"] if len(out) > limit else [])


def check_fidelity(replay: Replay, roots: list[Path]) -> list[str]:
    """After the whole log: the model's every-write-applied tree must be the real one."""
    replay.advance(len(replay.records))
    now = replay.volatile()
    problems = []
    for root in roots:
        root = str(Path(root).resolve())
        diff = tree_diff(modelled(now[root]), modelled(read_tree(root)))
        problems += [f"{root}: {d}" for d in diff]
    return problems


def images(
    replay: Replay, cuts: list[int], model: str, seed: int = 0
) -> Iterator[tuple[int, Image]]:
    """``(index, image)`` at each cut point (record indices, ascending), under ``model``."""
    if model not in MODELS:
        raise ValueError(f"model: expected one of {MODELS}, got {model!r}")
    if cuts and replay.applied > min(cuts):
        replay.rewind()
    for at in sorted(cuts):
        replay.advance(at)
        rng = random.Random(f"{seed}:{at}") if model == "reorder" else None
        yield at, replay.image(rng)


def materialise(image: Image, dest_of: dict[str, Path]) -> None:
    """Write an image: the tree of each root named in ``dest_of`` into ``dest_of[root]``
    (replaced if there)."""
    for root, dest in dest_of.items():
        shutil.rmtree(dest, ignore_errors=True)
        write_tree(image[root], dest, image.modes.get(root))


__all__ = [
    "MODELS",
    "Image",
    "ModelError",
    "Record",
    "Replay",
    "build_shim",
    "check_fidelity",
    "images",
    "materialise",
    "modelled",
    "read_log",
    "read_tree",
    "shim_env",
    "tree_diff",
    "write_tree",
]

if __name__ == "__main__":  # a look at a log: python crashstates.py LOG
    for r in read_log(sys.argv[1]):
        print(r.index, r.pid, r.kind, r.fd, r.ino, r.a, r.b, r.path, r.path2, len(r.data))
