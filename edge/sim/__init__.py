"""The night simulator: realistic under-mattress BCG with ground truth (numpy only).

    from edge.sim import Night, Scenario, State
    night = Night(seed=42)                      # 8 h at 250 Hz, everything drawn from the seed
    for chunk in night.chunks(1.0):             # int32 ADC counts, rendered on demand
        ...
    night.beats, night.breaths, night.state_at(0, night.n_samples), night.segments

    Night(seed=1, duration_s=300, scenario=Scenario.constant(300, State.GOOD, "supine"),
          heart_bpm=60, snr_db=25)              # a controlled stretch for a test

    Night(seed=1, sensor_model="ringing")      # another kind of sensor (see sensor_model)
    Night(seed=1, sensor_model=random_sensor_model(1))

Modules: ``scenario`` (the timeline and its labels), ``person`` (physiology and beat
morphology), ``physiology`` (breath and beat timing), ``motion`` (movement artifacts),
``sensor`` (noise, hum, vibration, ADC), ``sensor_model`` (kinds of sensor: ringing beds,
several waves per beat, fiber mats, other converters), ``render`` (samples, block by
block), ``night`` (the :class:`Night`), ``recordings`` (recordings made like real ones:
:func:`~edge.sim.recordings.heldout_like`), ``spec`` (the ``sim[:SEED]`` CLI source).
"""

from .night import FS_RANGE, MAX_DURATION_S, Night, SegmentTruth
from .person import BREATHS_PER_MIN_RANGE, HEART_BPM_RANGE, WAVES, Morphology, Person
from .scenario import GOOD_MIN_SNR_DB, POOR_MAX_SNR_DB, POSTURES, Scenario, Segment, State
from .sensor import ADC_MAX, Sensor
from .sensor_model import KINDS, Resonance, SensorModel, random_sensor_model
from .spec import DEFAULT_SEED, parse_sim_spec

__all__ = [
    "ADC_MAX",
    "BREATHS_PER_MIN_RANGE",
    "DEFAULT_SEED",
    "FS_RANGE",
    "GOOD_MIN_SNR_DB",
    "HEART_BPM_RANGE",
    "KINDS",
    "MAX_DURATION_S",
    "POOR_MAX_SNR_DB",
    "POSTURES",
    "Resonance",
    "WAVES",
    "Morphology",
    "Night",
    "Person",
    "Scenario",
    "Segment",
    "SegmentTruth",
    "Sensor",
    "SensorModel",
    "State",
    "parse_sim_spec",
    "random_sensor_model",
]
