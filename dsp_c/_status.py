"""C status codes -> Python exceptions: the one place where ``bcg_status`` is checked."""

from __future__ import annotations

from ._bcg_dsp import ffi, lib

__all__ = ["DspError", "check"]


class DspError(RuntimeError):
    """An error reported by the C DSP core that is not a bad parameter.

    ``status`` holds the C status code (``bcg_status``).
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# Codes that mean "the caller passed a bad value": raised as ValueError.
_PARAMETER_CODES = frozenset(
    {
        lib.BCG_ERR_ORDER,
        lib.BCG_ERR_FS,
        lib.BCG_ERR_BAND,
        lib.BCG_ERR_SECTIONS,
        lib.BCG_ERR_COEF,
        lib.BCG_ERR_CAPACITY,
        lib.BCG_ERR_PARAM,
    }
)


def strerror(status: int) -> str:
    """The C core's description of a status code ("unknown status" for any other number)."""
    try:
        text = lib.bcg_strerror(status)
    except OverflowError:  # outside the C enum's range: not a code the core returns
        return "unknown status"
    return ffi.string(text).decode("ascii")


def check(status: int, param: str | None = None) -> None:
    """Raise the exception for a C status code; do nothing for ``BCG_OK``.

    Parameter codes raise ``ValueError`` (naming ``param`` when the caller passes it),
    every other non-zero code raises ``DspError``.
    """
    if status == lib.BCG_OK:
        return
    text = strerror(status)
    if status in _PARAMETER_CODES:
        prefix = f"{param}: " if param else ""
        raise ValueError(f"{prefix}{text} (status {status})")
    raise DspError(f"{text} (status {status})", status)
