"""One end of the link, the same code on the unit and on the laptop: frames in and out.

:class:`edge.link.client.Client` (the host) and :class:`edge.maint.agent.Agent` (the unit)
both run their port through an :class:`Endpoint`:

- in: :meth:`Endpoint.receive` splits what the port gave into frames; a frame that does not
  decode is dropped and counted (``stats["bad_frames"]``; E305 in the debug log);
- sealed frames: :meth:`Endpoint.open` opens one with the first of the session's seals that
  takes it. A frame that none opens, or one that comes unsealed where a seal is due, is
  *refused* (:meth:`Endpoint.refuse`): dropped, counted in ``stats["refused"]``, and logged
  once per link (E312), so a flood of them does not flood the log too;
- out: :meth:`Endpoint.wire` gives a frame's bytes, sealed when the session has its seals
  (sealed afresh on every call: a resent frame gets a new counter), plain before login;
- ``--trace``: every frame both ways, as :func:`edge.link.frame.trace_frame` prints it.

What each side does with the frames it gets (requests and retries on the host; handlers, the
reply cache and which plain frames still count after login on the unit) is its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TextIO

from .codes import BAD_SEAL
from .frame import Frame, FrameDecoder, FrameError, Sealed, encode_frame, trace_frame
from .session import SealError, SessionCipher

__all__ = ["Endpoint"]

log = logging.getLogger(__name__)


class Endpoint:
    """The frame path of one side of the link (see the module doc).

    Args:
        max_frame: the largest frame body taken in (what this side offers in ``hello``).
        trace: where ``--trace`` prints every frame (None: nowhere).
        stats: the dict to count in (the unit's agent shares one among its connections);
            a new one by default.
    """

    def __init__(
        self, *, max_frame: int, trace: TextIO | None = None, stats: dict | None = None
    ) -> None:
        self.max_frame = max_frame
        self.trace = trace
        #: Frames dropped as damaged, and frames refused (their seal failed, or unsealed
        #: after login), since the start; a side adds counters of its own.
        self.stats = {} if stats is None else stats
        for counter in ("bad_frames", "refused"):
            self.stats.setdefault(counter, 0)
        self._decoder = FrameDecoder(max_frame)
        self._warned = False

    def restart(self) -> None:
        """A new peer or connection on the port: forget a partial frame, warn again."""
        self._decoder = FrameDecoder(self.max_frame)
        self._warned = False

    def new_session(self) -> None:
        """A new session on the same connection (``hello``): refusals are logged again."""
        self._warned = False

    # --- in ------------------------------------------------------------------------------

    def receive(self, chunk: bytes) -> Iterator[tuple[Frame | Sealed, bytes]]:
        """Each frame ``chunk`` completes, plain or still sealed, with its wire bytes."""
        decoder = self._decoder
        for item in decoder.feed(chunk):
            if isinstance(item, FrameError):
                self.stats["bad_frames"] += 1
                log.debug("dropped a frame: %s", item)
                continue
            yield item, decoder.last_wire

    def open(
        self, sealed: Sealed, *seals: SessionCipher | None, unsealed: str
    ) -> tuple[Frame, SessionCipher] | None:
        """The frame in ``sealed`` and the seals that opened it, the first of ``seals`` (None
        skipped) that does; None when none does: then it is refused, for the first seal's
        reason, or for ``unsealed`` when there are no seals (the link is not logged in)."""
        problem = None
        for seal in seals:
            if seal is None:
                continue
            try:
                return seal.open(sealed), seal
            except SealError as exc:
                problem = problem or str(exc)
        self.refuse(problem or unsealed)
        return None

    def refuse(self, problem: str) -> None:
        """Drop a frame for ``problem``: counted, and logged once per link."""
        self.stats["refused"] += 1
        if not self._warned:  # once per link: a flood must not flood the log too
            self._warned = True
            log.warning("%s: refused %s; further ones on this link are counted", BAD_SEAL, problem)

    def traced(self, frame: Frame, wire: bytes, *, sealed: bool) -> None:
        """Print a frame that came in, for ``--trace``."""
        if self.trace is not None:
            trace_frame(self.trace, "<", frame, wire, sealed=sealed)

    # --- out -----------------------------------------------------------------------------

    def wire(self, frame: Frame, seal: SessionCipher | None) -> bytes:
        """The bytes to write for ``frame``: sealed with ``seal``, plain without it."""
        wire = encode_frame(frame) if seal is None else seal.seal(frame)
        if self.trace is not None:
            trace_frame(self.trace, ">", frame, wire, sealed=seal is not None)
        return wire
