"""Simulated recordings made like real ones: a file's worth of samples and its reference.

:func:`heldout_like` makes a stretch like the real bed recording the project has never
seen (issue 15): 500 Hz, raw 12-bit ADC counts on an offset near 2000, a bed that rings
and several waves of similar height per beat about 180 ms apart, a person lying still for
5 minutes apart from two movements, with ECG-like beat times and still/moving labels:

    from edge.sim.recordings import heldout_like
    samples, fs, r_peaks, labels = heldout_like(seed=3)

Everything comes from the seed (numpy only), so tests and ``edge/eval`` can use it alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ._random import stream
from .night import Night
from .person import Person
from .scenario import POSTURES, Scenario, State
from .sensor import Sensor
from .sensor_model import Resonance, SensorModel

__all__ = [
    "HELDOUT_DURATION_S",
    "HELDOUT_FS",
    "RINGING_WAVES_Q",
    "SimRecording",
    "Stretch",
    "heldout_like",
    "heldout_like_night",
    "stretches",
]

#: The held-out-like recording's rate (samples/s) and length (s).
HELDOUT_FS = 500.0
HELDOUT_DURATION_S = 300.0
#: Its beat's waves: this far apart (s), as on the real recording.
HELDOUT_WAVE_SPACING_S = 0.18
#: The quality of the bed mode whose cycles are the waves (``ringing_waves``): each wave
#: exp(-pi / Q) of the one before, from 0.46 (Q 4) to 0.73 (Q 10).
RINGING_WAVES_Q = (4.0, 10.0)


@dataclass(frozen=True)
class Stretch:
    """A labelled stretch of a recording: ``still`` or ``moving`` from ``start_s`` to
    ``stop_s`` (seconds from the first sample)."""

    start_s: float
    stop_s: float
    label: str


class SimRecording(NamedTuple):
    """A simulated recording and its reference, as a real one is committed with its own."""

    samples: np.ndarray  #: int32 ADC counts
    fs: float  #: samples/s
    beats: np.ndarray  #: ECG R-peak sample indices (the reference beats)
    labels: tuple[Stretch, ...]  #: still / moving stretches, end to end


def heldout_like_night(seed: int, ringing_waves: bool = False) -> Night:
    """The :class:`Night` behind :func:`heldout_like` (all of its truth: J-peaks, breaths,
    states, the sensor model and ``beat_lag_s``).

    ``ringing_waves``: the beat's waves are the cycles of one bed mode instead, ringing at
    the waves' spacing (about 5.5 Hz) with a Q of :data:`RINGING_WAVES_Q`: the other way a
    bed gives several waves of similar height 180 ms apart. Its echo two cycles on lands
    near half a beat at 80 bpm, where a picker taking both reads twice the rate. The same
    person, night and converter as without it."""
    rng = stream(seed, "heldout like")
    posture = str(rng.choice(["supine", "left", "right"]))
    first = rng.uniform(70.0, 130.0)  # the first movement starts here (s)
    second = rng.uniform(180.0, 240.0)
    lengths = rng.uniform(3.0, 8.0, 2)
    turns = [str(rng.choice(POSTURES[:3])) if rng.random() < 0.5 else posture for _ in "ab"]
    steps = [
        (round(first, 1), "good", posture),
        (round(lengths[0], 1), "motion", turns[0]),
        (round(second - first - lengths[0], 1), "good", turns[0]),
        (round(lengths[1], 1), "motion", turns[1]),
    ]
    steps.append((round(HELDOUT_DURATION_S - sum(s[0] for s in steps), 1), "good", turns[1]))
    heart_bpm = float(rng.uniform(70.0, 90.0))  # the real one: about 80 bpm by its ECG
    snr_db = float(rng.uniform(20.0, 28.0))
    # A small gain: the J-wave is 20 to 60 counts of the 12-bit converter.
    person = Person.random(seed, heart_bpm)
    sensor = Sensor.random(seed, HELDOUT_FS, HELDOUT_DURATION_S)
    j_counts = person.j_amplitude * sensor.gain
    n_waves = int(rng.choice([2, 3]))
    heights = rng.uniform(0.75, 1.0, n_waves)
    spacing = HELDOUT_WAVE_SPACING_S * rng.uniform(0.95, 1.05)
    model = SensorModel(
        kind="heldout_like",
        fs=HELDOUT_FS,
        # A bed mode well above 1 / spacing: near it, the waves would pump the ringing up
        # and the later ones would outgrow the first.
        resonances=(Resonance(float(rng.uniform(8.0, 12.0)), float(rng.uniform(3.0, 6.0))),),
        wave_delays_s=tuple(spacing * k for k in range(1, n_waves)),
        wave_heights=tuple(float(h) for h in heights / heights.max()),
        wave_jitter=0.08,
        adc_bits=12,
        adc_offset=int(rng.integers(1900, 2101)),
        adc_gain=float(rng.uniform(20.0, 60.0) / j_counts),
        polarity=1 if rng.random() < 0.5 else -1,
    )
    if ringing_waves:
        ring = stream(seed, "heldout ringing waves")
        mode = Resonance(1.0 / spacing, float(ring.uniform(*RINGING_WAVES_Q)))
        model = replace(
            model,
            kind="heldout_ringing",
            resonances=(mode,),
            wave_delays_s=(),
            wave_heights=(1.0,),
        )
    return Night(
        seed=seed,
        scenario=Scenario.chain(steps),
        heart_bpm=heart_bpm,
        snr_db=snr_db,
        sensor_model=model,
    )


def heldout_like(seed: int) -> SimRecording:
    """A recording like the unseen real one (see the module doc), drawn from ``seed``.

    ``beats`` are the ECG R-peaks: each mechanical beat (``Night.beats``) minus the
    person's R-to-J delay (0.20-0.28 s); the sensor's first comparable wave peaks
    ``rj_delay_s + beat_lag_s`` after its R-peak. ``labels``: ``still`` for the lying
    still stretches, ``moving`` for the two movements.
    """
    night = heldout_like_night(seed)
    r_s = night.beat_times_s - night.person.rj_delay_s
    r = np.rint(r_s * night.fs).astype(np.int64)
    return SimRecording(
        samples=night.samples(),
        fs=night.fs,
        beats=r[r >= 0],
        labels=stretches(night),
    )


def stretches(night: Night) -> tuple[Stretch, ...]:
    """The night's segments as ``still`` (GOOD, POOR), ``moving`` (MOTION) and ``empty``
    stretches, with neighbours of the same label merged."""
    names = {State.MOTION: "moving", State.EMPTY: "empty"}
    out: list[Stretch] = []
    for seg in night.segments:
        label = names.get(seg.state, "still")
        if out and out[-1].label == label:
            out[-1] = Stretch(out[-1].start_s, seg.stop_s, label)
        else:
            out.append(Stretch(seg.start_s, seg.stop_s, label))
    return tuple(out)
