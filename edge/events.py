"""Events derived from the vitals stream: bed entry and exit, vitals out of range, sensor gaps.

The watchers report a change once, not every epoch it lasts, so a night's event list reads
like a nurse's notes: "in bed 22:41", "HR 38 bpm, below 40", "out of bed 03:12". Sensor gaps
come in runs on a lossy link (a frame in thirty lost all night): :class:`GapRuns` makes one
event of each run, so the store grows with the runs, not with the frames lost.
"""

from __future__ import annotations

from .records import Epoch, Event

__all__ = ["GAP_MERGE_S", "GAP_RUN_MAX_S", "BedPresence", "GapRuns", "RangeWatch"]

#: Sensor gaps less than this apart (s) are one run, one event ...
GAP_MERGE_S = 60.0
#: ... and a run is written after this long (s) at most, so a night-long loss still shows.
GAP_RUN_MAX_S = 600.0


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


class GapRuns:
    """Sensor gaps merged into runs: one ``sensor_gap`` event per run of gaps less than
    :data:`GAP_MERGE_S` apart, at most :data:`GAP_RUN_MAX_S` long, stamped at its first
    gap. A run of one gap keeps its own detail; a longer run says how many gaps, how many
    samples they lost in all, and how many of them the pipeline bridged.

    Args:
        fs: sampling rate, samples/s (for the seconds missing).
    """

    def __init__(self, fs: float) -> None:
        self.fs = float(fs)
        self._first: Event | None = None  # the run's first gap
        self._last_t = 0.0
        self._gaps = 0
        self._missing = 0  # samples
        self._bridged = 0  # gaps

    def add(self, gap: Event) -> Event | None:
        """A ``sensor_gap`` event from the source; returns the run it ends, if it ends one."""
        done = None
        if self._first is not None and (
            gap.t_utc - self._last_t > GAP_MERGE_S or gap.t_utc - self._first.t_utc > GAP_RUN_MAX_S
        ):
            done = self.flush()
        if self._first is None:
            self._first = gap
        self._gaps += 1
        self._last_t = gap.t_utc
        return done

    @property
    def start_utc(self) -> float | None:
        """When the run so far began (its first gap), or None."""
        return None if self._first is None else self._first.t_utc

    def missing(self, samples: int, *, bridged: bool) -> None:
        """The samples the current run's latest gap lost (seen in the stream's indices)."""
        self._missing += samples
        self._bridged += int(bridged)

    def flush(self) -> Event | None:
        """The run so far as one event (None when there is none); a new run starts."""
        first, gaps = self._first, self._gaps
        if first is None:
            return None
        if gaps == 1:
            event = first
        else:
            span = self._last_t - first.t_utc
            detail = (
                f"{gaps} gaps in {span:.0f} s, {self._missing / self.fs:.1f} s of samples "
                f"missing in all ({self._bridged} bridged)"
            )
            event = Event(first.t_utc, "sensor_gap", detail)
        self._first, self._gaps, self._missing, self._bridged = None, 0, 0, 0
        return event
