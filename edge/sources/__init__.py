"""Sample sources of the unit, opened from a spec: ``sim[:SEED]``, ``replay:PATH``,
``serial:PORT``.

    >>> source = open_source("sim:42", speed=None)     # an 8 h simulated night, max speed
    >>> chunk = source.read(timeout_s=1.0)             # a Chunk, empty if nothing yet, None at end

Every source follows :class:`edge.sources.base.Source`. The serial source (pyserial) is
imported only when asked for, so a simulation or a replay needs no serial library.
"""

from __future__ import annotations

from ..errors import BedsideError, fail
from ..sim import parse_sim_spec
from .base import Chunk, Source, SourceEvent

__all__ = ["BAD_SOURCE", "Chunk", "Source", "SourceEvent", "open_source"]

#: A source spec that names no source (docs/errors.md).
BAD_SOURCE = "E281"

_FORMS = "sim[:SEED], replay:PATH or serial:PORT"


def open_source(
    spec: str,
    *,
    fs: float | None = None,
    channel: str | None = None,
    speed: float | None = None,
    duration_s: float | None = None,
) -> Source:
    """Open the source a spec names.

    Args:
        spec: ``sim`` or ``sim:SEED``; ``replay:PATH`` (a recording file); ``serial:PORT``
            (a device path or a pyserial URL such as ``socket://host:port``).
        fs: sampling rate: the simulated night's (default 250 Hz), the serial sensor's
            (default 250 Hz); for a replay, only for files that do not state it.
        channel: replay only: the channel to read (default the file's raw sensor signal).
        speed: sim and replay: None for as fast as possible, else a factor of real time.
            A serial sensor always runs in real time.
        duration_s: sim: the night's length (default 8 h); replay: play at most this much.

    Raises:
        BedsideError: E281 for a spec that names no source or an option the source does
            not take; the source's own errors (E201-E212 for a recording file, E24x for
            the serial link).
    """
    if not isinstance(spec, str) or not spec:
        fail(BAD_SOURCE, f"source: empty or not text: {spec!r}", f"give {_FORMS}")
    kind, _, rest = spec.partition(":")
    if kind == "sim":
        try:
            seed = parse_sim_spec(spec)
        except ValueError as exc:
            raise BedsideError(BAD_SOURCE, f"{exc} — give {_FORMS}") from None
        _refuse(spec, channel=channel)
        from .sim import SimSource

        try:
            return SimSource(seed, fs=fs or 250.0, duration_s=duration_s, speed=speed)
        except ValueError as exc:  # fs or duration out of the simulator's range
            raise BedsideError(BAD_SOURCE, f"{spec}: {exc} — change the option") from None
    if kind == "replay" and rest:
        from .replay import ReplaySource

        return ReplaySource.open(rest, channel=channel, fs=fs, speed=speed, duration_s=duration_s)
    if kind == "serial" and rest:
        _refuse(spec, channel=channel)
        if speed is not None and speed != 1.0:
            fail(BAD_SOURCE, f"{spec}: a sensor cannot be sped up", "leave --speed out")
        from .serial import SerialSource  # pyserial only when a cable is used

        return SerialSource(rest, fs=fs or 250.0)
    fail(BAD_SOURCE, f"source: {spec!r} names no source", f"give {_FORMS}")


def _refuse(spec: str, **options: object) -> None:
    for name, value in options.items():
        if value:
            fail(BAD_SOURCE, f"{spec}: --{name} is for replay:PATH only", f"leave --{name} out")
