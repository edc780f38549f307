"""The records the unit keeps, declared once: an :class:`Epoch` of vitals and an :class:`Event`.

Each record is a frozen dataclass whose fields carry their documentation and checks
(:func:`column`); the field list (:data:`EPOCH_SCHEMA`, :data:`EVENT_SCHEMA`: a
:class:`Field` per field, in column order) is read off the dataclass, and every consumer
derives its columns from it:

- :mod:`edge.store`: the ``epochs``/``events`` columns of its CREATE TABLE, the INSERT and
  SELECT column lists, the checks of what is written, row -> record;
- :mod:`edge.log_pages`: the columns of a pulled-logs page and their kinds;
- :mod:`host_tools.archive`: its ``epochs``/``events`` tables and column lists;
- :mod:`host_tools.export`: the exported ``epochs``/``events`` columns.

Adding a vitals field is one line in :class:`Epoch`, e.g.
``spo2: float | None = column("oxygen saturation (%)", reason="hr_reason")``. What it
does not do by itself: stores and archives made before do not have the new column (bump
the schema versions and migrate them), and a host and a unit that disagree on the columns
refuse each other's pages (E362).

The types of a field give its kind: ``float`` is ``"real"``, ``int`` ``"int"`` (a count:
whole, >= 0), ``str`` ``"text"``; ``X | None`` makes it nullable. No database code here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHECKS",
    "EPOCH_FIELDS",
    "EPOCH_SCHEMA",
    "EVENT_FIELDS",
    "EVENT_KINDS",
    "EVENT_SCHEMA",
    "GAP_REASON",
    "KINDS",
    "MAX_EPOCH_S",
    "SQL_TYPES",
    "STATES",
    "Epoch",
    "Event",
    "Field",
    "column",
    "record_fields",
    "sql_columns",
]

#: Bed states of an epoch, in the order of ``edge.sim.State`` and of the quality model's
#: classes (``edge.quality`` re-exports it).
STATES = ("empty", "motion", "poor", "good")
#: What an event can be. The unit's software (noted by the boot manager and the agent,
#: :mod:`edge.maint.slots`): ``update`` a release passed its trial boot and runs from the
#: next start; ``update_failed`` a trial boot failed and the unit stays on its release;
#: ``rollback`` back to an earlier release (the operator, or a damaged slot).
EVENT_KINDS = (
    "bed_entry",
    "bed_exit",
    "hr_out_of_range",
    "rr_out_of_range",
    "sensor_gap",
    "sensor_disconnect",
    "sensor_reconnect",
    "sensor_error",
    "clock_step",
    "restart",
    "shutdown",
    "update",
    "rollback",
    "store_recovered",
    "update_failed",
)
#: Epoch lengths accepted (s); the last epoch of a session may be shorter than the rest.
MAX_EPOCH_S = 300.0

#: Field kinds (also the kinds of a log page's columns) and their SQL types.
SQL_TYPES = {"int": "INTEGER", "real": "REAL", "text": "TEXT"}
KINDS = tuple(SQL_TYPES)
#: Checks a field can ask the store for, beyond its kind: ``time`` Unix seconds UTC (>= 0),
#: ``duration`` 0 < s <= :data:`MAX_EPOCH_S`, ``probability`` 0..1.
CHECKS = ("time", "duration", "probability")
_PY_KINDS = {float: "real", int: "int", str: "text"}
_META = "edge.records"


#: The reason of a value lost to a sensor gap.
GAP_REASON = "sensor gap"


@dataclass(frozen=True)
class Field:
    """One field of a record as the consumers see it.

    Attributes:
        name: the field's (and column's) name.
        kind: ``"int"``, ``"real"`` or ``"text"`` (:data:`KINDS`).
        nullable: ``None`` is a valid value (a NULL column).
        doc: what it holds.
        check: one of :data:`CHECKS`, or ``None`` for the kind's own check.
        choices: the only values allowed (text), or empty for any.
        reason: the text field that must say why this one is ``None``.
    """

    name: str
    kind: str
    nullable: bool
    doc: str
    check: str | None = None
    choices: tuple[str, ...] = ()
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.check is not None and self.check not in CHECKS:
            raise ValueError(f"field {self.name}: check {self.check!r} is not one of {CHECKS}")

    @property
    def sql_type(self) -> str:
        """``INTEGER``, ``REAL`` or ``TEXT``."""
        return SQL_TYPES[self.kind]

    @property
    def sql(self) -> str:
        """The column's definition in a CREATE TABLE: ``name TYPE`` [``NOT NULL``]."""
        return f"{self.name} {self.sql_type}" + ("" if self.nullable else " NOT NULL")


@dataclass(frozen=True)
class _Spec:
    doc: str
    check: str | None
    choices: tuple[str, ...]
    reason: str | None


def column(
    doc: str,
    *,
    check: str | None = None,
    choices: tuple[str, ...] = (),
    reason: str | None = None,
    default: Any = dataclasses.MISSING,
) -> Any:
    """A record field with its documentation and checks (see :class:`Field`)."""
    return dataclasses.field(
        default=default, metadata={_META: _Spec(doc, check, tuple(choices), reason)}
    )


def record_fields(record: type) -> tuple[Field, ...]:
    """The :class:`Field` of each field of the record dataclass ``record``, in order."""
    hints = typing.get_type_hints(record)
    out = []
    for f in dataclasses.fields(record):
        spec = f.metadata.get(_META)
        if spec is None:
            raise TypeError(f"{record.__name__}.{f.name}: declare it with records.column()")
        kind, nullable = _kind(hints[f.name], f"{record.__name__}.{f.name}")
        out.append(Field(f.name, kind, nullable, spec.doc, spec.check, spec.choices, spec.reason))
    return tuple(out)


def sql_columns(fields: tuple[Field, ...]) -> str:
    """The fields' column definitions in a CREATE TABLE, one an indented line, comma-separated."""
    return ",\n".join(f"    {f.sql}" for f in fields)


def _kind(hint: Any, where: str) -> tuple[str, bool]:
    args = typing.get_args(hint)
    nullable = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if nullable:
        rest = [a for a in args if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else None
    if hint not in _PY_KINDS:
        raise TypeError(f"{where}: type {hint!r} is not float, int or str (or X | None)")
    return _PY_KINDS[hint], nullable


def _document(record: type) -> type:
    """Append the fields' docs to the record's docstring (for ``help()`` and the API docs)."""
    lines = [f"        {f.name}: {f.doc}" for f in record_fields(record)]
    record.__doc__ = f"{record.__doc__.rstrip()}\n\n    Attributes:\n" + "\n".join(lines) + "\n"
    return record


@_document
@dataclass(frozen=True)
class Epoch:
    """One epoch of vitals. ``None`` means no trustworthy value; the reason says why."""

    t_utc: float = column("start of the epoch, Unix seconds UTC.", check="time")
    duration_s: float = column(
        "its length (s), 0 < d <= 300 (default epochs are 30 s).", check="duration"
    )
    state: str = column(
        '``"empty"``, ``"motion"``, ``"poor"`` or ``"good"`` (:data:`STATES`).', choices=STATES
    )
    quality: float = column(
        '0..1, mean probability of "good" over the epoch\'s gate windows.', check="probability"
    )
    hr_bpm: float | None = column("heart rate, beats per minute.", reason="hr_reason")
    hrv_rmssd_ms: float | None = column("heart rate variability (RMSSD), ms.")
    rr_bpm: float | None = column("breaths per minute.", reason="rr_reason")
    motion: float | None = column(
        "motion energy (``dsp_c.MotionMeter`` units), ``None`` without samples."
    )
    beats: int = column("heartbeats detected in the epoch.")
    hr_reason: str | None = column(
        'why ``hr_bpm``/``hrv_rmssd_ms`` are None ("empty bed", "motion", ...).'
    )
    rr_reason: str | None = column("why ``rr_bpm`` is None.")

    @property
    def unjudged(self) -> bool:
        """No signal judged in the epoch: it lies in a sensor gap (stored ``poor`` with
        quality 0 and the reason "sensor gap" for both rates, so that it exists)."""
        return (
            self.quality == 0.0
            and self.beats == 0
            and self.hr_reason == GAP_REASON
            and self.rr_reason == GAP_REASON
        )

    @property
    def in_bed(self) -> bool:
        """Someone is in bed: any state but ``"empty"``, in an epoch that was judged (a sensor
        gap says nothing of the bed)."""
        return self.state != "empty" and not self.unjudged

    def values(self) -> tuple:
        """The fields in declaration order: the order of the store's epoch columns."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))


@_document
@dataclass(frozen=True)
class Event:
    """Something that happened at ``t_utc``: ``kind`` from :data:`EVENT_KINDS`."""

    t_utc: float = column("when, Unix seconds UTC.", check="time")
    kind: str = column("what (:data:`EVENT_KINDS`).", choices=EVENT_KINDS)
    detail: str = column("free text for the reader, ``''`` for none.", default="")

    def values(self) -> tuple:
        """The fields in declaration order: the order of the store's event columns."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))


#: The fields of each record, in the order of the store's columns after ``id, session_id``.
EPOCH_SCHEMA = record_fields(Epoch)
EVENT_SCHEMA = record_fields(Event)
#: Their names.
EPOCH_FIELDS = tuple(f.name for f in EPOCH_SCHEMA)
EVENT_FIELDS = tuple(f.name for f in EVENT_SCHEMA)
