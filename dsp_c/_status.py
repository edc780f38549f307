"""C status codes -> Python exceptions: the one place where ``bcg_status`` is checked.

Every exception raised for a status carries ``.status`` (the C code) and ``.code``, its
stable error code from docs/errors.md (``"E101"`` .. ``"E108"`` for status 1 .. 8), so a
command-line tool prints ``error {exc.code}: {exc}``.
"""

from __future__ import annotations

from ._bcg_dsp import ffi, lib

__all__ = ["DspError", "DspValueError", "check", "error_code", "strerror"]

#: ``.code`` of a status the core does not define (binding and C core out of step).
UNKNOWN_CODE = "E100"


def error_code(status: int) -> str:
    """The docs/errors.md code of a C status: ``"E1xx"`` with xx = status (1..8)."""
    if lib.BCG_ERR_NULL <= status <= lib.BCG_ERR_PARAM:
        return f"E{100 + status}"
    return UNKNOWN_CODE


class DspError(RuntimeError):
    """An error of the C DSP core that is not a bad value: a bug in the caller.

    Raised for ``BCG_ERR_NULL`` (E101), ``BCG_ERR_CAPACITY`` (E107) and unknown codes
    (E100). ``status`` holds the C status code, ``code`` its ``"E1xx"`` error code.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.code = error_code(status)


class DspValueError(ValueError):
    """A bad parameter or bad samples (E102..E106, E108): the message names the argument.

    ``status`` holds the C status code, ``code`` its ``"E1xx"`` error code. Raised both
    for a status returned by the C core and for the same checks done in Python first.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.code = error_code(status)


# Codes that mean "the caller passed a bad value": raised as DspValueError.
_PARAMETER_CODES = frozenset(
    {
        lib.BCG_ERR_ORDER,
        lib.BCG_ERR_FS,
        lib.BCG_ERR_BAND,
        lib.BCG_ERR_SECTIONS,
        lib.BCG_ERR_COEF,
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

    Parameter codes raise :class:`DspValueError` (a ``ValueError``, naming ``param`` when
    the caller passes it); ``BCG_ERR_NULL``, ``BCG_ERR_CAPACITY`` and unknown codes, which
    are bugs in the caller rather than bad values, raise :class:`DspError`.
    """
    if status == lib.BCG_OK:
        return
    text = strerror(status)
    if status in _PARAMETER_CODES:
        prefix = f"{param}: " if param else ""
        raise DspValueError(f"{prefix}{text} (status {status})", status)
    raise DspError(f"{text} (status {status})", status)
