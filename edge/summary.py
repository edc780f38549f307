"""The night summary: hours in bed, heart and breathing rate, coverage, events.

    summary = summarize(epochs, events)          # or summary_of_session(store)
    print(summary.format_text())                 # for the terminal
    json.dumps(summary.as_dict())                # for --json

Means are weighted by epoch length; minimum and maximum are over epochs with a value.
Coverage is the share of the time in bed (any state but ``empty``) whose epochs have a
value: the part of the night the numbers speak for. No value is made up: a night without
any heart rate has ``hr_mean_bpm = None``, not 0.

Two heart rates describe the calm part of the night, both over in-bed epochs only:

- *lowest* (``hr_lowest_bpm``): the lowest sustained rate, the lowest median over
  consecutive 5 min blocks from the night's first epoch, counting only blocks with a heart
  rate in at least half their time (one odd epoch never sets it);
- *resting* (``hr_resting_bpm``): the 10th percentile of the epochs' heart rates.

Breathing slower than :data:`PAUSE_BELOW_BPM` (breaths 10 s or more apart on average) is
a pause in breathing, not a rate: such epochs count as ``rr_pauses`` and stay out of the
breathing mean, lowest and highest (they do count as covered: the unit measured them).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import fail
from .records import Epoch, Event
from .store import Store

__all__ = [
    "LOWEST_BLOCK_S",
    "PAUSE_BELOW_BPM",
    "RESTING_PERCENTILE",
    "NightSummary",
    "pick_session",
    "summarize",
    "summary_of_session",
]

#: The block over which the lowest sustained heart rate is a median (s).
LOWEST_BLOCK_S = 300.0
#: The resting heart rate is this percentile of the in-bed epochs' heart rates.
RESTING_PERCENTILE = 10.0
#: An epoch breathing slower than this (breaths/min) holds a pause in breathing.
PAUSE_BELOW_BPM = 6.0
#: A rate covering less than this share of the time in bed is shown with the commonest
#: reasons of its missing epochs.
WHY_BELOW = 0.5


@dataclass(frozen=True)
class NightSummary:
    """What a night (a session) comes to. Times are Unix seconds UTC; None = no value."""

    start_utc: float | None  #: start of the first epoch
    end_utc: float | None  #: end of the last epoch
    hours_recorded: float  #: sum of epoch lengths (gaps excluded)
    hours_in_bed: float  #: sum of the lengths of epochs not "empty"
    hr_mean_bpm: float | None
    hr_min_bpm: float | None
    hr_max_bpm: float | None
    hrv_rmssd_median_ms: float | None  #: median over epochs with a value
    rr_mean_bpm: float | None  #: breaths per minute
    rr_min_bpm: float | None
    rr_max_bpm: float | None
    hr_coverage: float | None  #: share of in-bed time with a heart rate (None: never in bed)
    rr_coverage: float | None  #: share of in-bed time with a breathing rate
    n_epochs: int
    events: dict[str, int] = field(default_factory=dict)  #: count per kind
    session_id: int | None = None
    hr_lowest_bpm: float | None = None  #: lowest 5 min median in bed (module docstring)
    hr_resting_bpm: float | None = None  #: 10th percentile of in-bed epoch heart rates
    rr_pauses: int = 0  #: epochs breathing slower than PAUSE_BELOW_BPM: pauses, not rates
    #: in-bed epochs without a heart (breathing) rate, per reason ("motion": 13, ...)
    hr_missing: dict[str, int] = field(default_factory=dict)
    rr_missing: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain JSON-ready values (``--json``); times also as ISO 8601 UTC text."""
        out = asdict(self)
        for key in ("start_utc", "end_utc"):
            out[key.replace("_utc", "_iso")] = None if out[key] is None else _iso(out[key])
        return out

    def format_text(self) -> str:
        """A few lines for the terminal, the same numbers as :meth:`as_dict`."""
        head = "Night" if self.session_id is None else f"Session {self.session_id}"
        if self.start_utc is None:
            return f"{head}: no epochs recorded"
        lines = [
            f"{head}: {_clock(self.start_utc)} to {_clock(self.end_utc)}, "
            f"{self.hours_recorded:.1f} h recorded",
            f"  in bed        {self.hours_in_bed:.1f} h",
            "  heart rate    "
            + _rate(self.hr_mean_bpm, self.hr_min_bpm, self.hr_max_bpm, "bpm", self.hr_coverage)
            + _why(self.hr_coverage, self.hr_missing),
            *_calm_hr(self.hr_lowest_bpm, self.hr_resting_bpm),
            "  breathing     "
            + _rate(self.rr_mean_bpm, self.rr_min_bpm, self.rr_max_bpm, "/min", self.rr_coverage)
            + _why(self.rr_coverage, self.rr_missing)
            + _pauses(self.rr_pauses),
            "  HRV (RMSSD)   "
            + (
                "-  no trustworthy value"
                if self.hrv_rmssd_median_ms is None
                else f"{self.hrv_rmssd_median_ms:.0f} ms median"
            ),
        ]
        if self.events:
            counts = ", ".join(f"{kind} {n}" for kind, n in sorted(self.events.items()))
            lines.append(f"  events        {counts}")
        return "\n".join(lines)


def summarize(
    epochs: Sequence[Epoch], events: Sequence[Event] = (), *, session_id: int | None = None
) -> NightSummary:
    """Summarise a night from its epochs (in time order) and, for the counts, its events."""
    recorded = sum(e.duration_s for e in epochs)
    in_bed = [e for e in epochs if e.in_bed]
    bed_s = sum(e.duration_s for e in in_bed)
    hr = _stats(epochs, "hr_bpm")
    steady = [e for e in epochs if e.rr_bpm is None or e.rr_bpm >= PAUSE_BELOW_BPM]
    rr = _stats(steady, "rr_bpm")
    hrv = sorted(e.hrv_rmssd_ms for e in epochs if e.hrv_rmssd_ms is not None)
    return NightSummary(
        start_utc=epochs[0].t_utc if epochs else None,
        end_utc=max(e.t_utc + e.duration_s for e in epochs) if epochs else None,
        hours_recorded=recorded / 3600.0,
        hours_in_bed=bed_s / 3600.0,
        hr_mean_bpm=hr[0],
        hr_min_bpm=hr[1],
        hr_max_bpm=hr[2],
        hrv_rmssd_median_ms=_median(hrv),
        rr_mean_bpm=rr[0],
        rr_min_bpm=rr[1],
        rr_max_bpm=rr[2],
        hr_coverage=_coverage(in_bed, "hr_bpm", bed_s),
        rr_coverage=_coverage(in_bed, "rr_bpm", bed_s),
        n_epochs=len(epochs),
        events=dict(Counter(e.kind for e in events)),
        session_id=session_id,
        hr_lowest_bpm=_lowest_sustained_hr(in_bed),
        hr_resting_bpm=_resting_hr(in_bed),
        rr_pauses=len(epochs) - len(steady),
        hr_missing=_missing(in_bed, "hr_bpm", "hr_reason"),
        rr_missing=_missing(in_bed, "rr_bpm", "rr_reason"),
    )


def summary_of_session(store: Store, session_id: int | None = None) -> NightSummary:
    """The summary of a stored session (default: the last one); E264 if there is none."""
    sid = pick_session(store, session_id)
    epochs = [e for _, e in store.epochs(session_id=sid)]
    events = [e for _, e in store.events(session_id=sid)]
    return summarize(epochs, events, session_id=sid)


def pick_session(store: Store, session_id: int | None = None) -> int:
    """``session_id`` if the store has it, else (None) its last session with epochs; E264."""
    sessions = store.sessions()
    if session_id is not None:
        if any(s.id == session_id for s in sessions):
            return session_id
        have = ", ".join(str(s.id) for s in sessions) or "none"
        fail("E264", f"{store.path.name}: no session {session_id}", f"sessions: {have}")
    with_data = [s.id for s in sessions if s.n_epochs]
    if not with_data:
        fail("E264", f"{store.path.name}: no session with epochs yet", "record a night first")
    return with_data[-1]


def _stats(epochs: Sequence[Epoch], name: str) -> tuple[float | None, float | None, float | None]:
    pairs = [(getattr(e, name), e.duration_s) for e in epochs if getattr(e, name) is not None]
    if not pairs:
        return None, None, None
    values = [v for v, _ in pairs]
    mean = sum(v * d for v, d in pairs) / sum(d for _, d in pairs)
    return mean, min(values), max(values)


def _lowest_sustained_hr(in_bed: Sequence[Epoch]) -> float | None:
    """The lowest median heart rate of a 5 min block with a rate in half its time or more."""
    pairs = [(e.t_utc, e.duration_s, e.hr_bpm) for e in in_bed if e.hr_bpm is not None]
    if not pairs:
        return None
    t, dur, hr = (np.array(column) for column in zip(*pairs, strict=True))
    block = ((t - t.min()) // LOWEST_BLOCK_S).astype(int)
    medians = [
        float(np.median(hr[block == b]))
        for b in np.unique(block)
        if dur[block == b].sum() >= LOWEST_BLOCK_S / 2
    ]
    return min(medians) if medians else None


def _resting_hr(in_bed: Sequence[Epoch]) -> float | None:
    values = [e.hr_bpm for e in in_bed if e.hr_bpm is not None]
    return float(np.percentile(values, RESTING_PERCENTILE)) if values else None


def _missing(in_bed: Sequence[Epoch], name: str, reason: str) -> dict[str, int]:
    counts = Counter(getattr(e, reason) or "?" for e in in_bed if getattr(e, name) is None)
    return dict(counts.most_common())


def _why(coverage: float | None, missing: dict[str, int]) -> str:
    """The commonest reasons for the missing values, on a night mostly without any: what to
    check (the sensor's place, a movement, the sampling rate of a file)."""
    if coverage is None or coverage >= WHY_BELOW or not missing:
        return ""
    return " (" + ", ".join(f"{why} {n}" for why, n in list(missing.items())[:3]) + ")"


def _pauses(n: int) -> str:
    if not n:
        return ""
    return f", {n} pause{'s' if n > 1 else ''} in breathing (epochs under {PAUSE_BELOW_BPM:g} /min)"


def _calm_hr(lowest: float | None, resting: float | None) -> list[str]:
    if lowest is None and resting is None:
        return []
    shown = ["-" if v is None else f"{v:.1f} bpm" for v in (lowest, resting)]
    return [f"  lowest HR     {shown[0]} (5 min), resting {shown[1]}"]


def _coverage(in_bed: Sequence[Epoch], name: str, bed_s: float) -> float | None:
    if bed_s <= 0:
        return None
    return sum(e.duration_s for e in in_bed if getattr(e, name) is not None) / bed_s


def _median(values: list[float]) -> float | None:
    n = len(values)
    if n == 0:
        return None
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def _rate(mean, low, high, unit: str, coverage: float | None) -> str:
    share = "" if coverage is None else f", in {100 * coverage:.0f}% of the time in bed"
    if mean is None:
        return f"-  no trustworthy value{share}"
    return f"{mean:.1f} {unit} mean ({low:.1f} to {high:.1f}){share}"


def _clock(t_utc: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(t_utc))  # the unit's time zone


def _iso(t_utc: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_utc))
