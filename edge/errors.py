"""The one error family of the unit's runtime.

Every failure that reaches a user is a :class:`BedsideError` with a stable ``code``
(``"E2xx"``, listed in docs/errors.md) and a one-line message ``what happened — what to do``.
A command-line tool prints ``error {code}: {message}`` and exits non-zero; library callers can
catch one class. Parts of the runtime subclass it where a caller may want to tell them apart
(:class:`edge.readers.RecordingError` for recording files).

Code ranges (docs/errors.md): E201-E219 recording files, E220-E239 the quality model,
E240-E259 the sensor link and firmware, E260-E279 the vitals store and the night report,
E280-E299 ``bedside run`` and its configuration.
"""

from __future__ import annotations

from typing import NoReturn

__all__ = ["BedsideError", "fail"]


class BedsideError(Exception):
    """A failure with a stable error code; ``str(error)`` is ``what — what to do``.

    Messages never carry secrets or personal data, and name files by their name only.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self):  # keep code and message across pickling (multiprocessing)
        return (type(self), (self.code, str(self)))


def fail(code: str, what: str, todo: str, *, error: type[BedsideError] = BedsideError) -> NoReturn:
    """Raise ``error(code, "what — todo")``."""
    raise error(code, f"{what} — {todo}")
