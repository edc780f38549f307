"""``bedside-host bundle build``: pack the unit software into a signed bundle.

    bedside-host bundle build --version 0.2.0 --out build/bedside-0.2.0.bundle

Packs, from the project tree (``--root``, default the tree this package runs from): the
unit runtime ``edge`` (with the sensor firmware, ``edge/firmware``), ``dsp_c`` as source
(the unit compiles it during the trial boot), and ``models`` (the quality model, its digest
and golden vectors). Caches, compiled objects and tests are left out. The manifest
(:mod:`edge.maint.bundle`) lists every file with its SHA-256 and is signed with the release
key (``bedside-host keys init --release``); the unit checks it against its ``release.pub``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import click

from edge.errors import fail
from edge.maint import bundle as bundles

from .keys import ReleaseKey, default_keys_dir
from .ui import emit, json_option, keys_option

__all__ = ["BuildResult", "build_bundle", "bundle_files", "cli"]

BAD_BUILD = "E356"
DEFAULT_HARDWARE = ("bedside-pi-v1",)
DEFAULT_MIN_VERSION = "0.0.0"

#: Top-level packages of the unit software, and the file types each contributes.
PACKAGES = {
    "edge": {".py"},
    "dsp_c": {".py", ".c", ".h"},
    "models": {".py", ".tflite", ".sha256", ".npz", ".json", ".md"},
}
#: Never packed: caches, build products, the C test programs, the generated cffi source.
SKIP_DIRS = {"__pycache__", "tests", "build", ".pytest_cache"}
SKIP_FILES = {"_bcg_dsp.c"}


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_bundle` wrote."""

    path: Path
    version: str
    files: int
    unpacked_bytes: int
    bundle_bytes: int
    sha256: str
    key: str


def default_root() -> Path:
    """The project tree this ``host_tools`` runs from."""
    return Path(bundles.__file__).resolve().parents[2]  # edge/maint/bundle.py


def bundle_files(root: Path) -> list[Path]:
    """The files of the unit software under ``root``, sorted, relative to it.

    Raises:
        BedsideError: E356 when a package is missing from ``root``.
    """
    found = []
    for package, suffixes in PACKAGES.items():
        top = root / package
        if not (top / "__init__.py").is_file():
            fail(BAD_BUILD, f"{package}/ is missing under {root}", "pass the project's --root")
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(files):
                path = Path(folder, name)
                if path.suffix in suffixes and name not in SKIP_FILES and not path.is_symlink():
                    found.append(path.relative_to(root))
    return sorted(found, key=lambda p: p.as_posix())


def build_bundle(
    out: Path,
    *,
    version: str,
    key: ReleaseKey,
    root: Path | None = None,
    hardware: tuple[str, ...] = DEFAULT_HARDWARE,
    min_version: str = DEFAULT_MIN_VERSION,
) -> BuildResult:
    """Write a signed bundle of the unit software under ``root`` to ``out`` (atomically).

    Raises:
        BedsideError: E356 a bad version, hardware id or tree.
    """
    root = Path(root or default_root())
    for text, what in ((version, "--version"), (min_version, "--min-version")):
        try:
            bundles.parse_version(text)
        except ValueError as exc:
            fail(BAD_BUILD, f"{what}: {exc}", "use numbers like 1.2.3")
    if bundles.parse_version(min_version) > bundles.parse_version(version):
        fail(BAD_BUILD, f"--min-version {min_version} is above --version {version}", "lower it")
    if not hardware or not all(h and h.strip() == h for h in hardware):
        fail(BAD_BUILD, "--hardware: give the unit's hardware id", "e.g. --hardware bedside-pi-v1")
    entries = []
    for rel in bundle_files(root):
        path = root / rel
        entries.append(
            (
                bundles.FileEntry(
                    path=bundles.check_path(rel.as_posix()),
                    size=path.stat().st_size,
                    sha256=bundles.file_sha256(path),
                    mode=0o755 if os.access(path, os.X_OK) else 0o644,
                ),
                path,
            )
        )
    raw = bundles.manifest_bytes(
        version=version,
        min_version=min_version,
        hardware=list(hardware),
        key_fingerprint=key.public.fingerprint,
        files=[entry for entry, _ in entries],
        created_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    bundles.Manifest.parse(raw)  # the unit's own checks, before anything is written
    out = Path(out)
    if out.is_dir():
        fail(BAD_BUILD, f"--out {out} is a folder", "give a file name, e.g. bedside.bundle")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # e.g. build/ in a fresh checkout
        with open(tmp, "wb") as f:
            bundles.pack(f, raw_manifest=raw, signature=key.sign(raw), files=entries)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(BAD_BUILD, f"cannot write {out.name}: {exc.strerror}", "check --out's folder")
    return BuildResult(
        path=out,
        version=version,
        files=len(entries),
        unpacked_bytes=sum(e.size for e, _ in entries),
        bundle_bytes=out.stat().st_size,
        sha256=bundles.file_sha256(out),
        key=key.public.fingerprint,
    )


@click.group("bundle")
def cli() -> None:
    """Unit software bundles."""


@cli.command(
    "build",
    epilog="example: bedside-host bundle build --version 0.2.0 --out build/bedside-0.2.0.bundle",
)
@click.option("--version", "version", required=True, help="the bundle's version, e.g. 0.2.0")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="the bundle file")
@click.option(
    "--hardware",
    multiple=True,
    default=DEFAULT_HARDWARE,
    show_default=True,
    help="a compatible hardware id (repeat for several; 'sim' is the virtual unit)",
)
@click.option(
    "--min-version",
    default=DEFAULT_MIN_VERSION,
    show_default=True,
    help="the oldest unit software this bundle may be installed over",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="the project tree to pack (default: the one bedside-host runs from)",
)
@keys_option
@json_option
def build(
    version: str,
    out: Path,
    hardware: tuple[str, ...],
    min_version: str,
    root: Path | None,
    keys: Path | None,
    as_json: bool,
) -> None:
    """Pack edge, dsp_c (source), models and the sensor firmware; sign with the release key."""
    key = ReleaseKey.load(keys or default_keys_dir())
    result = build_bundle(
        out, version=version, key=key, root=root, hardware=hardware, min_version=min_version
    )
    emit(
        {**result.__dict__, "path": str(result.path)},
        as_json,
        text=(
            f"{result.path}: bundle {result.version}, {result.files} files, "
            f"{result.unpacked_bytes / 1e6:.2f} MB unpacked, {result.bundle_bytes / 1e6:.2f} MB "
            f"packed, signed by {result.key}\nsha256 {result.sha256}"
        ),
    )
