"""Helpers for the bundle, flash and boot tests: keys, honest and hostile bundles, tree digests.

A hostile bundle is written with :mod:`tarfile` directly, so a test can put anything in it
(links, devices, paths that climb out, wrong sizes), and signed with a real release key when
the point is that a valid signature must not be enough.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path

from edge.maint import bundle as bundles
from host_tools.bundle import PACKAGES, build_bundle, default_root
from host_tools.keys import ReleaseKey

SIM_HARDWARE = ("sim",)  # the virtual unit's hardware id


def release_key(keys_dir: Path) -> ReleaseKey:
    """A release key in ``keys_dir`` (made once)."""
    if (keys_dir / ReleaseKey.FILE).exists():
        return ReleaseKey.load(keys_dir)
    return ReleaseKey.generate(keys_dir, name="test-release")


def install_release_key(state: Path, key: ReleaseKey) -> None:
    """Put ``key``'s public line where the unit looks for it."""
    (state / "keys").mkdir(parents=True, exist_ok=True)
    (state / "keys" / "release.pub").write_text(key.public.line() + "\n")


def build(out: Path, key: ReleaseKey, version: str = "0.2.0", **kw) -> Path:
    """An honest bundle of the project tree (or ``root=``) for the virtual unit."""
    kw.setdefault("hardware", SIM_HARDWARE)
    return build_bundle(out, version=version, key=key, **kw).path


def copy_tree(dest: Path) -> Path:
    """A copy of the unit software's packages (to build a bundle of modified software)."""
    for package in PACKAGES:
        shutil.copytree(
            default_root() / package,
            dest / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.o", "tests"),
        )
    return dest


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **attrs) -> tuple:
    """A raw tar member: (TarInfo, content)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for attr, value in attrs.items():
        setattr(info, attr, value)
    return info, data


def craft(
    out: Path,
    key: ReleaseKey,
    files: dict[str, bytes],
    *,
    payload: list[tuple] | None = None,
    version: str = "0.2.0",
    min_version: str = "0.0.0",
    hardware: tuple[str, ...] = SIM_HARDWARE,
    signature: bytes | None = None,
    manifest_edit=None,
) -> Path:
    """A bundle whose manifest lists ``files`` (signed by ``key``) and whose payload is
    ``payload`` (raw members; default: the honest members for ``files``)."""
    entries = [
        bundles.FileEntry(path, len(data), hashlib.sha256(data).hexdigest(), 0o644)
        for path, data in files.items()
    ]
    raw = bundles.manifest_bytes(
        version=version,
        min_version=min_version,
        hardware=list(hardware),
        key_fingerprint=key.public.fingerprint,
        files=entries,
        created_utc="2026-11-25T00:00:00Z",
    )
    if manifest_edit is not None:
        raw = manifest_edit(raw)
    if payload is None:
        payload = [member(bundles.PAYLOAD + path, data) for path, data in files.items()]
    head = [
        member(bundles.MANIFEST_NAME, raw),
        member(bundles.SIGNATURE_NAME, signature if signature is not None else key.sign(raw)),
    ]
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in head + payload:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return out


def tree_digest(root: Path) -> dict[str, str]:
    """Every file and link under ``root`` with its content hash (or link target)."""
    out = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "link:" + str(path.readlink())
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out
