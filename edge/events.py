"""Events derived from the vitals stream: bed entry and exit, vitals out of range.

Both watchers report a change once, not every epoch it lasts, so a night's event list reads
like a nurse's notes: "in bed 22:41", "HR 38 bpm, below 40", "out of bed 03:12".
"""

from __future__ import annotations

from .records import Epoch, Event

__all__ = ["BedPresence", "RangeWatch"]


class BedPresence:
    """Bed entry and exit with hysteresis over the gate's windows.

    The bed counts as occupied after ``entry_s`` of windows judged anything but empty, and
    as left after ``exit_s`` of windows judged empty; a brief empty-looking spell (lying
    very still on a poor spot) or a visitor sitting down for a moment is no event. The
    first settled state of a stream gives a ``bed_entry`` if someone is in bed, and no
    event for an empty bed.

    Args:
        entry_s: seconds of occupied windows before ``bed_entry``.
        exit_s: seconds of empty windows before ``bed_exit``.
        hop_s: the time between two windows' starts (the gate's hop).
    """

    def __init__(self, entry_s: float, exit_s: float, hop_s: float) -> None:
        self._need = {True: max(entry_s, hop_s), False: max(exit_s, hop_s)}
        self._hop_s = hop_s
        self._occupied: bool | None = None  # the settled state; None before the first
        self._run_state: bool | None = None
        self._run_s = 0.0
        self._run_start_utc = 0.0

    @property
    def occupied(self) -> bool | None:
        """The settled state: True in bed, False empty, None not yet known."""
        return self._occupied

    def update(self, state: str, t_utc: float) -> Event | None:
        """Feed one window's state (its start at ``t_utc``); the event it completes, if any."""
        occupied = state != "empty"
        if occupied != self._run_state:
            self._run_state, self._run_s, self._run_start_utc = occupied, 0.0, t_utc
        self._run_s += self._hop_s
        if occupied == self._occupied or self._run_s < self._need[occupied]:
            return None
        first = self._occupied is None
        self._occupied = occupied
        if first and not occupied:
            return None
        return Event(self._run_start_utc, "bed_entry" if occupied else "bed_exit")

    def gap(self) -> None:
        """A sensor gap: the runs before it do not continue after it."""
        self._run_state, self._run_s = None, 0.0


class RangeWatch:
    """``hr_out_of_range`` / ``rr_out_of_range`` events when a vital stays out of its range.

    A vital must be out of range on the same side in every epoch that has a value for at
    least ``hold_s`` (a lone odd epoch raises nothing: a false alarm wakes a ward for
    nothing); the event carries the first such epoch's time and value. One event per
    excursion: none while it stays out, and it re-arms once a value is back in range. Epochs
    without a value neither count nor break the run. Heart rates reach here only when the
    rhythm check confirmed them (:mod:`edge.vitals`).
    """

    def __init__(
        self, hr_bpm: tuple[float, float], rr_bpm: tuple[float, float], hold_s: float = 0.0
    ) -> None:
        self._limits = {"hr": hr_bpm, "rr": rr_bpm}
        self._hold_s = float(hold_s)
        self._side: dict[str, str | None] = {"hr": None, "rr": None}
        # The current run out of range not yet reported: (first epoch's time, its detail,
        # seconds so far); None in range and once the run's event is out.
        self._run: dict[str, tuple[float, str, float] | None] = {"hr": None, "rr": None}

    def update(self, epoch: Epoch) -> list[Event]:
        """The events the epoch completes."""
        out = []
        for vital, value, unit in (("hr", epoch.hr_bpm, "bpm"), ("rr", epoch.rr_bpm, "/min")):
            if value is None:
                continue
            low, high = self._limits[vital]
            side = "below" if value < low else "above" if value > high else None
            if side != self._side[vital]:
                self._side[vital], self._run[vital] = side, None
                if side is not None:
                    limit = low if side == "below" else high
                    detail = f"{vital.upper()} {value:.1f} {unit}, {side} {limit:g}"
                    self._run[vital] = (epoch.t_utc, detail, 0.0)
            run = self._run[vital]
            if run is None:
                continue
            t0, detail, held = run
            held += epoch.duration_s
            self._run[vital] = (t0, detail, held)
            if held >= self._hold_s:
                out.append(Event(t0, f"{vital}_out_of_range", detail))
                self._run[vital] = None
        return out
