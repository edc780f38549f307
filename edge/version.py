"""The unit software's version, in one place: ``bedside --version``, each session's record,
the agent's ``identify`` and the factory slot's version all read it from here.

It is the release of the code that runs: code run from a flashed slot (``DIR/slots/b``,
which the boot manager puts first on ``PYTHONPATH``) is the release named by that slot's
``manifest.json``, the version ``bedside-host status`` shows for the slot; the installed
package (the factory slot) is the package's own version. The installed package's metadata
alone would name the factory release for every slot.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

__all__ = ["slot_release", "software_version"]

#: The bundle manifest an unpacked slot holds beside its packages (edge.maint.bundle).
_SLOT_MANIFEST = "manifest.json"
_PRODUCT = "bedside-bcg"


def software_version() -> str:
    """The release of the running code: its slot's when it runs from a flashed slot, else
    the installed package's version ("unknown" when run from a bare source tree)."""
    release = slot_release(Path(__file__).resolve().parent.parent)
    if release is not None:
        return release
    try:
        return metadata.version(_PRODUCT)
    except metadata.PackageNotFoundError:
        return "unknown"


def slot_release(root: Path) -> str | None:
    """The version in ``root/manifest.json`` when ``root`` is an unpacked bundle of this
    product (a slot), else None. The boot manager checked the slot against this manifest
    (signature at install, every file's hash at each boot)."""
    try:
        doc = json.loads((root / _SLOT_MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("product") != _PRODUCT:
        return None
    version = doc.get("version")
    return version if isinstance(version, str) and version else None
