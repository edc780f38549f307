"""The unit software's version, in one place: ``bedside --version``, each session's record,
the agent's ``identify`` and the factory slot's version all read it from here."""

from __future__ import annotations

from importlib import metadata

__all__ = ["software_version"]


def software_version() -> str:
    """The installed package's version ("unknown" when run from a bare source tree)."""
    try:
        return metadata.version("bedside-bcg")
    except metadata.PackageNotFoundError:
        return "unknown"
