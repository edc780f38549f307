"""Unit software bundles: the signed manifest, its checks, and a safe unpack into a slot.

A bundle is a gzip-compressed tar archive whose members come in this order::

    manifest.json     what the bundle holds (below), UTF-8 JSON
    manifest.sig      the release key's Ed25519 signature of manifest.json's exact bytes
    payload/PATH ...  one regular file per manifest entry, in manifest order

and the manifest is::

    {"format": 1, "product": "bedside-bcg", "version": "0.2.0", "min_version": "0.1.0",
     "hardware": ["bedside-v1"], "created_utc": "...", "key": "SHA256:...",
     "files": [{"path": "edge/cli.py", "size": 1234, "sha256": "...", "mode": 420}, ...]}

``min_version`` is the oldest unit software this bundle may be installed over (a unit
running something older must take an intermediate release first); a ``version`` older than
the unit's confirmed one is a downgrade, refused unless forced.

Nothing in a bundle is trusted before its signature checks out, and nothing is written
outside the slot's staging folder: :func:`unpack` reads the archive as a stream, refuses
every member that is not a regular file at a plain relative path the manifest names
(absolute paths, ``..``, symlinks, hard links, devices, FIFOs), refuses absurd sizes before
reading them, and hashes every byte it writes. Any refusal leaves the target slot untouched:
the bundle is unpacked into a staging folder that replaces the slot only when complete.

The file is one gzip stream holding one tar archive, and nothing else: bytes after the gzip
stream, or anything but the tar archive's zero padding after its end, are refused (E340)
before they are decompressed, and decompression stops at what the manifest's files can take
(E344), so a small file cannot make the unit inflate gigabytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, NoReturn

from ..errors import BedsideError, fail
from ..files import fsync_dir, fsync_tree
from ..link.auth import PublicKey

__all__ = [
    "MANIFEST_NAME",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_TOTAL_BYTES",
    "Manifest",
    "FileEntry",
    "check_install",
    "check_path",
    "file_sha256",
    "manifest_bytes",
    "pack",
    "load_release_key",
    "parse_version",
    "read_manifest",
    "refuse_too_large",
    "unpack",
    "verify_manifest",
    "verify_tree",
]

FORMAT = 1
PRODUCT = "bedside-bcg"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
PAYLOAD = "payload/"
# Far above what the unit software needs (a few MB), far below what would fill the unit.
MAX_FILE_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 256 * 2**20
MAX_FILES = 5000
MAX_MANIFEST_BYTES = 2 * 2**20
MAX_PATH_CHARS = 240
_READ = 1 << 16
_SIGNATURE_BYTES = 1024
# What tar adds around a member's bytes, at most: a PAX header and its records (a path of
# MAX_PATH_CHARS fits in one block), the member's own header, the padding of its data.
_MEMBER_OVERHEAD = 4 * tarfile.BLOCKSIZE
# After the last member: two zero blocks, then zeros up to a whole record.
_END_BYTES = 2 * tarfile.RECORDSIZE
# Decompressed bytes a bundle may have before its manifest is verified: the manifest and its
# signature, and what tar reads ahead of them (less than one record).
_HEAD_BYTES = MAX_MANIFEST_BYTES + _SIGNATURE_BYTES + 2 * _MEMBER_OVERHEAD + tarfile.RECORDSIZE

NOT_A_BUNDLE = "E340"
BAD_SIGNATURE = "E341"
CONTENT_MISMATCH = "E342"
UNSAFE_MEMBER = "E343"
TOO_LARGE = "E344"
WRONG_HARDWARE = "E345"
DOWNGRADE = "E346"
TOO_OLD = "E347"
NO_RELEASE_KEY = "E348"

_VERSION_RE = re.compile(r"^\d{1,6}(\.\d{1,6}){0,3}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
# A path component: printable, no separators or shell-hostile control bytes.
_PART_RE = re.compile(r"^[A-Za-z0-9_.+@=,-]{1,100}$")


def parse_version(text: Any) -> tuple[int, ...]:
    """``"1.2.3"`` -> ``(1, 2, 3, 0)``: numeric dotted versions, compared as tuples.

    Raises:
        ValueError: not 1 to 4 dot-separated whole numbers.
    """
    if not isinstance(text, str) or not _VERSION_RE.match(text):
        raise ValueError(f"version {text!r} is not like 1.2.3")
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


def check_path(path: Any) -> str:
    """Return ``path`` if it is a plain relative POSIX path that stays inside a folder.

    Raises:
        BedsideError: E343 for an absolute path, ``..``, ``.``, an empty part, a backslash
            or any character outside ``[A-Za-z0-9_.+@=,-]`` in a part.
    """
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_CHARS:
        _unsafe(f"path {str(path)[:80]!r} is empty or too long")
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        _unsafe(f"path {path[:80]!r} is absolute or leaves the slot")
    if not all(_PART_RE.match(p) for p in parts):
        _unsafe(f"path {path[:80]!r} has characters a bundle may not use")
    return path


def _unsafe(what: str) -> NoReturn:
    fail(UNSAFE_MEMBER, f"bundle refused: {what}", "build the bundle again with `bundle build`")


@dataclass(frozen=True)
class FileEntry:
    """One file of a bundle."""

    path: str
    size: int
    sha256: str
    mode: int  #: 0o644 or 0o755


@dataclass(frozen=True)
class Manifest:
    """A parsed, checked manifest; ``raw`` is the exact bytes that were signed."""

    raw: bytes
    version: str
    min_version: str
    hardware: tuple[str, ...]
    key: str
    files: tuple[FileEntry, ...]

    @property
    def total_bytes(self) -> int:
        """Sum of the files' sizes."""
        return sum(f.size for f in self.files)

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        """Parse and check a manifest's structure (not its signature).

        Raises:
            BedsideError: E340 not a manifest, E343 an unsafe path, E344 absurd sizes.
        """
        if len(raw) > MAX_MANIFEST_BYTES:
            refuse_too_large(f"manifest of {len(raw)} bytes")
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError("not a bundle manifest of format 1")
            if doc.get("product") != PRODUCT:
                raise ValueError(f"made for {doc.get('product')!r}, not {PRODUCT}")
            parse_version(doc["version"])
            parse_version(doc["min_version"])
            hardware = doc["hardware"]
            if not (isinstance(hardware, list) and hardware):
                raise ValueError("no compatible hardware listed")
            if not all(isinstance(h, str) and h for h in hardware):
                raise ValueError("a hardware id is not text")
            files = doc["files"]
            if not isinstance(files, list) or not files:
                raise ValueError("no files")
            if len(files) > MAX_FILES:
                refuse_too_large(f"{len(files)} files (at most {MAX_FILES})")
            entries = []
            for item in files:
                size, sha, mode = item["size"], item["sha256"], item["mode"]
                if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                    raise ValueError("a file size is not a whole number")
                if not isinstance(sha, str) or not _SHA_RE.match(sha):
                    raise ValueError("a file's sha256 is not 64 hex digits")
                if mode not in (0o644, 0o755):
                    raise ValueError("a file mode is not 0644 or 0755")
                entries.append(FileEntry(check_path(item["path"]), size, sha, mode))
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # nesting: hostile
            fail(
                NOT_A_BUNDLE,
                f"bundle manifest is not valid ({exc})",
                "build the bundle with `bedside-host bundle build`",
            )
        if len({e.path for e in entries}) != len(entries):
            _unsafe("a path is listed twice")
        # A file and a folder of the same name cannot both exist.
        folders = {str(p) for e in entries for p in PurePosixPath(e.path).parents}
        if any(e.path in folders for e in entries):
            _unsafe("a path is both a file and a folder")
        for e in entries:
            if e.size > MAX_FILE_BYTES:
                refuse_too_large(f"file {e.path} of {e.size} bytes")
        total = sum(e.size for e in entries)
        if total > MAX_TOTAL_BYTES:
            refuse_too_large(f"{total} bytes unpacked")
        return cls(
            raw=raw,
            version=doc["version"],
            min_version=doc["min_version"],
            hardware=tuple(hardware),
            key=str(doc.get("key", "")),
            files=tuple(entries),
        )


def refuse_too_large(what: str) -> NoReturn:
    """Raise E344 for ``what`` (a size beyond the unit's limits)."""
    fail(
        TOO_LARGE,
        f"bundle refused: {what} is beyond the unit's limits",
        "check that this is a unit software bundle",
    )


def load_release_key(state_dir: str | os.PathLike) -> PublicKey:
    """The release public key the unit trusts, from ``DIR/keys/release.pub``.

    Raises:
        BedsideError: E348 no readable key there.
    """
    path = Path(state_dir) / "keys" / "release.pub"
    try:
        lines = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        return PublicKey.parse(lines[0])
    except (OSError, UnicodeDecodeError, IndexError, BedsideError):
        fail(
            NO_RELEASE_KEY,
            "the unit has no readable release key (keys/release.pub)",
            "install the release public key on the unit (docs/hardware-engineer.md, recovery)",
        )


def verify_manifest(raw: bytes, signature: bytes, key: PublicKey) -> Manifest:
    """Check the signature of ``raw`` with the release key, then parse it.

    Raises:
        BedsideError: E341 the signature does not verify (tampered manifest or another key),
            or the errors of :meth:`Manifest.parse`.
    """
    if not key.verify(signature, raw):
        signed_by = ""
        with contextlib.suppress(Exception):
            signed_by = f", signed by key {json.loads(raw).get('key', '?')}"
        fail(
            BAD_SIGNATURE,
            f"bundle signature does not verify with the unit's release key "
            f"{key.fingerprint}{signed_by}",
            "sign bundles with the release key the unit holds; never flash a modified bundle",
        )
    return Manifest.parse(raw)


def check_install(
    manifest: Manifest, *, hardware: str, running_version: str, force: bool = False
) -> None:
    """Refuse a bundle this unit must not install.

    Args:
        manifest: the verified manifest.
        hardware: the unit's hardware id (``DIR/device.json``).
        running_version: the version of the unit's confirmed slot.
        force: allow a downgrade (an authenticated host asked for it explicitly).

    Raises:
        BedsideError: E345 wrong hardware, E347 the unit runs a version older than the
            bundle's ``min_version``, E346 a downgrade without ``force``.
    """
    if hardware not in manifest.hardware:
        fail(
            WRONG_HARDWARE,
            f"bundle {manifest.version} is for hardware {', '.join(manifest.hardware)}, "
            f"this unit is {hardware}",
            "build a bundle for this hardware (`bundle build --hardware ID`)",
        )
    try:
        running = parse_version(running_version)
    except ValueError:
        running = None  # a unit whose version is unknown (a source tree): no ordering
    if running is not None and running < parse_version(manifest.min_version):
        fail(
            TOO_OLD,
            f"bundle {manifest.version} needs at least version {manifest.min_version} on "
            f"the unit, which runs {running_version}",
            f"flash a release between {manifest.min_version} and {manifest.version} first",
        )
    if running is not None and parse_version(manifest.version) < running and not force:
        fail(
            DOWNGRADE,
            f"bundle {manifest.version} is older than the unit's {running_version}",
            "pass --force-downgrade if you mean to go back (your key is authorized for it)",
        )


class _Inflated:
    """The decompressed bytes of a bundle file: one gzip stream, nothing after it, at most
    :attr:`limit` bytes.

    Not :class:`gzip.GzipFile`, which goes on into any gzip stream appended to the first (a
    signed bundle followed by a gigabyte of gzip was inflated to its end, then accepted), and
    not tarfile's ``r|gz``, which checks neither the CRC nor the length at the end. Here the
    trailer is checked (zlib does), bytes after the stream are refused before any of them is
    decompressed (E340), and decompression stops past :attr:`limit` (E344): what the
    manifest and its signature may take until the manifest is verified (:data:`_HEAD_BYTES`),
    then what its files may take (:meth:`expect`).
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)  # with the gzip header and trailer
        self._pending = b""  # compressed bytes read from the file, not yet decompressed
        self._stream_checked = False
        self._archive_end: int | None = None
        self.limit = _HEAD_BYTES
        #: decompressed bytes handed out so far
        self.offset = 0
        #: the offset just past the last nonzero byte handed out
        self.data_end = 0

    def read(self, size: int) -> bytes:
        """Up to ``size`` decompressed bytes; b"" at the end of the gzip stream."""
        out = b""
        while not out and not self._zlib.eof:
            if not self._pending:
                self._pending = self._stream.read(_READ)
            if not self._pending:  # the file ended: only what zlib still holds
                out = self._zlib.decompress(b"", size)
                if not out and not self._zlib.eof:
                    raise EOFError("the bundle ends inside its gzip stream")
                break
            out = self._zlib.decompress(self._pending, size)
            self._pending = self._zlib.unconsumed_tail
        if self._zlib.eof and not self._stream_checked:
            self._stream_checked = True
            if self._zlib.unused_data or self._stream.read(1):
                _trailing_data("gzip stream")
        self.offset += len(out)
        if self.offset > self.limit:
            if self._archive_end is not None:
                _trailing_data("tar archive")
            refuse_too_large(f"an archive that inflates past {self.limit} bytes")
        if kept := len(out.rstrip(b"\0")):
            self.data_end = self.offset - len(out) + kept
        return out

    def expect(self, manifest: Manifest) -> None:
        """Allow the rest of the archive what the verified ``manifest``'s files need."""
        room = sum(_MEMBER_OVERHEAD + entry.size for entry in manifest.files)
        self.limit = self.offset + room + _END_BYTES

    def finish(self, archive_end: int) -> None:
        """Read to the end of the gzip stream: after ``archive_end`` (where tar found the end
        of its archive) only the archive's zero padding may follow, then nothing."""
        self._archive_end = archive_end
        self.limit = min(self.limit, archive_end + _END_BYTES)
        while self.read(_READ):
            pass
        if self.data_end > archive_end:
            _trailing_data("tar archive")


def _trailing_data(where: str) -> NoReturn:
    fail(
        NOT_A_BUNDLE,
        f"bundle refused: data after the end of its {where} (a bundle never has any: the "
        "file was changed after it was built)",
        "build it again with `bedside-host bundle build`, or copy it again if it came from "
        "elsewhere; never flash a modified bundle",
    )


def _members(archive: _Inflated) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """The members of the tar archive in ``archive``, then a check of what follows it."""
    with tarfile.open(fileobj=archive, mode="r|") as tar:
        for member in tar:
            yield member, tar
        # tar stops at the first zero block, or at a header it cannot read: tar.offset is
        # where its last member ended.
        archive.finish(tar.offset)


def _damaged(exc: BaseException) -> BedsideError:
    return BedsideError(
        NOT_A_BUNDLE,
        f"not a bundle, or a truncated or damaged one ({type(exc).__name__}: "
        f"{str(exc)[:80]}) — build it again, or copy it again if it came from elsewhere",
    )


_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeDecodeError)


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if not member.isreg():
        _unsafe(f"member {member.name[:80]!r} is not a regular file")
    if member.size > limit:
        refuse_too_large(f"member {member.name[:80]} of {member.size} bytes")
    f = tar.extractfile(member)
    data = f.read() if f is not None else b""
    if len(data) != member.size:
        raise EOFError("member cut short")
    return data


def read_manifest(path: str | os.PathLike) -> tuple[bytes, bytes]:
    """The raw manifest and its signature from the start of a bundle file (not verified).

    Raises:
        BedsideError: E340 not a bundle or damaged.
    """
    try:
        with open(path, "rb") as f:
            return _read_head(_members(_Inflated(f)))
    except BedsideError:
        raise
    except _TAR_ERRORS as exc:
        raise _damaged(exc) from None


def _read_head(members: Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]) -> tuple[bytes, bytes]:
    head = []
    for name, limit in ((MANIFEST_NAME, MAX_MANIFEST_BYTES), (SIGNATURE_NAME, _SIGNATURE_BYTES)):
        member, tar = next(members, (None, None))
        if member is None or member.name != name:
            raise tarfile.ReadError(f"{name} is not where a bundle has it")
        head.append(_read_member(tar, member, limit))
    return head[0], head[1]


def unpack(
    bundle: str | os.PathLike | IO[bytes],
    target: str | os.PathLike | None,
    key: PublicKey,
    *,
    check: Callable[[Manifest], None] | None = None,
) -> Manifest:
    """Verify ``bundle`` and unpack it into the folder ``target``, all or nothing.

    The archive is unpacked into ``TARGET.new`` (a fresh folder), every file hashed as it is
    written; only when every file checks out does it replace ``target`` (old contents moved
    to ``TARGET.old`` and removed), with fsyncs so that a power cut leaves either the old
    slot or the complete new one under ``target``. ``manifest.json`` is written beside the
    files, so the slot can be checked again later (:func:`verify_tree`).

    Args:
        bundle: a bundle file's path, or a binary stream of it.
        target: the slot folder; None to verify the whole bundle without writing anything.
        key: the release public key.
        check: called with the verified :class:`Manifest` before anything is written
            (hardware and version rules: :func:`check_install`); raise to refuse.

    Raises:
        BedsideError: E340-E348 (see docs/errors.md); the target is unchanged.
    """
    staging = None
    if target is not None:
        target = Path(target)
        staging = target.with_name(target.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
    try:
        with contextlib.ExitStack() as stack:
            if isinstance(bundle, (str, os.PathLike)):
                bundle = stack.enter_context(open(bundle, "rb"))
            manifest = _walk(bundle, key, check, staging)
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, _TAR_ERRORS) and not isinstance(exc, BedsideError):
            raise _damaged(exc) from None
        raise
    if staging is not None:
        _replace_dir(staging, target)
    return manifest


def _walk(
    stream: IO[bytes],
    key: PublicKey,
    check: Callable[[Manifest], None] | None,
    staging: Path | None,
) -> Manifest:
    """Read a bundle from ``stream``, checking everything; write files under ``staging``."""
    archive = _Inflated(stream)
    members = _members(archive)
    raw, signature = _read_head(members)
    manifest = verify_manifest(raw, signature, key)
    archive.expect(manifest)
    if check is not None:
        check(manifest)
    if staging is not None:
        staging.mkdir(parents=True)
    for entry in manifest.files:
        member, tar = next(members, (None, None))
        if member is None:
            fail(
                CONTENT_MISMATCH,
                f"bundle is missing {entry.path}",
                "build the bundle again; never flash a modified bundle",
            )
        if member.name != PAYLOAD + entry.path:
            _check_member_name(member.name)
            _unsafe(f"member {member.name[:80]!r} is not the manifest's {entry.path}")
        if not member.isreg():
            _unsafe(f"member {member.name[:80]!r} is a link, device or folder")
        if member.size != entry.size:
            _mismatch(entry.path, "size")
        _copy_file(tar.extractfile(member), staging, entry)
    extra, _ = next(members, (None, None))
    if extra is not None:
        _check_member_name(extra.name)
        _unsafe(f"member {extra.name[:80]!r} is not in the manifest")
    if staging is not None:
        (staging / MANIFEST_NAME).write_bytes(raw)
        fsync_tree(staging)
    return manifest


def _check_member_name(name: str) -> None:
    if not name.startswith(PAYLOAD):
        _unsafe(f"member {name[:80]!r} is outside payload/")
    check_path(name[len(PAYLOAD) :])


def _mismatch(path: str, what: str) -> NoReturn:
    fail(
        CONTENT_MISMATCH,
        f"bundle file {path} does not match its manifest ({what} differs): the bundle was "
        "modified or damaged",
        "build the bundle again; never flash a modified bundle",
    )


def _copy_file(source: IO[bytes], root: Path | None, entry: FileEntry) -> None:
    """Hash ``entry``'s bytes from ``source``, writing them under ``root`` unless it is None."""
    digest = hashlib.sha256()
    written = 0
    with contextlib.ExitStack() as stack:
        out = None
        if root is not None:
            dest = root / entry.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL | O_NOFOLLOW: never write through something already there (the folder
            # is new and check_path admits no links, but the rule costs nothing).
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            out = stack.enter_context(os.fdopen(os.open(dest, flags, entry.mode), "wb"))
        while chunk := source.read(_READ):
            written += len(chunk)
            if written > entry.size:
                break
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
    if written != entry.size:
        raise EOFError(f"{entry.path} cut short")
    if digest.hexdigest() != entry.sha256:
        _mismatch(entry.path, "SHA-256")
    if root is not None:
        os.chmod(root / entry.path, entry.mode)


def _replace_dir(new: Path, target: Path) -> None:
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)  # left by a kill during an earlier replace
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    fsync_dir(target.parent)
    # The old contents are garbage now; deleting ~100 files costs ~0.2 s on an SD card, so
    # it happens in the background (a kill leaves them for the next replace to remove).
    threading.Thread(target=shutil.rmtree, args=(old,), kwargs={"ignore_errors": True}).start()


def verify_tree(root: str | os.PathLike) -> Manifest:
    """Check an unpacked slot against its ``manifest.json``: every file, size and hash.

    The signature was checked at unpack; this finds a slot damaged since (a half-written
    unpack cannot be there: it replaces the slot only when complete).

    Raises:
        BedsideError: E342 a file is missing or differs, E340 no manifest.
    """
    root = Path(root)
    try:
        manifest = Manifest.parse((root / MANIFEST_NAME).read_bytes())
    except OSError as exc:
        raise _damaged(exc) from None
    for entry in manifest.files:
        try:
            sha256 = file_sha256(root / entry.path)
        except OSError:
            _mismatch(entry.path, "missing")
        if sha256 != entry.sha256:
            _mismatch(entry.path, "SHA-256")
    return manifest


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, hex (read in 1 MiB pieces)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_bytes(
    *,
    version: str,
    min_version: str,
    hardware: list[str],
    key_fingerprint: str,
    files: list[FileEntry],
    created_utc: str,
) -> bytes:
    """The canonical manifest bytes (what :func:`pack` signs)."""
    doc = {
        "format": FORMAT,
        "product": PRODUCT,
        "version": version,
        "min_version": min_version,
        "hardware": hardware,
        "created_utc": created_utc,
        "key": key_fingerprint,
        "files": [
            {"path": f.path, "size": f.size, "sha256": f.sha256, "mode": f.mode} for f in files
        ],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def pack(
    out: IO[bytes],
    *,
    raw_manifest: bytes,
    signature: bytes,
    files: list[tuple[FileEntry, bytes | Path]],
) -> None:
    """Write a bundle to ``out``: the manifest, its signature, then each file's content.

    ``files`` pairs each manifest entry with its content (bytes, or a file to copy). Members
    get a fixed owner, group and time, so the same inputs give the same archive.
    """
    items: list[tuple[str, bytes | Path, int]] = [
        (MANIFEST_NAME, raw_manifest, 0o644),
        (SIGNATURE_NAME, signature, 0o644),
    ]
    items += [(PAYLOAD + entry.path, content, entry.mode) for entry, content in files]
    with tarfile.open(fileobj=out, mode="w|gz", format=tarfile.PAX_FORMAT) as tar:
        for name, content, mode in items:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime, info.uid, info.gid = mode, 0, 0, 0
            if isinstance(content, Path):
                info.size = content.stat().st_size
                with open(content, "rb") as f:
                    tar.addfile(info, f)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
