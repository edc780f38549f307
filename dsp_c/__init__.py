"""dsp_c: the signal-processing core of the bedside BCG unit (C via cffi).

    sos = dsp_c.butter_bandpass(order, low_hz, high_hz, fs)   # scipy's SOS layout
    f = dsp_c.SosFilter(sos); y = f.process(x); f.reset()      # chunked == one-shot
    sos = dsp_c.with_mains_notches(sos, fs)                     # then 50/60 Hz hum out
    d = dsp_c.Despiker(fs); y = d.process(x); tail = d.flush()  # 1-sample glitches out
    det = dsp_c.JPeakDetector(fs)                               # causal streaming J-peaks
    idx = det.process(y_chunk); idx = det.flush()               # absolute sample indices
    idx = dsp_c.detect_beats(x, fs)                             # raw signal -> J-peaks
    resp = dsp_c.RespirationExtractor(fs); sig, breaths = resp.process(x)  # breathing
    motion = dsp_c.MotionMeter(fs, window_s=1.0); energy, moving = motion.process(x)

Bad parameters, arrays or samples raise TypeError or DspValueError (a ValueError) naming the
parameter; errors of the C core that are bugs in the caller raise DspError. Both carry
``.code``, the "E1xx" code of docs/errors.md (a CLI prints ``error {exc.code}: {exc}``).
"""

from ._status import DspError, DspValueError
from .beats import JPeakDetector, detect_beats
from .despike import Despiker
from .filters import SosFilter, butter_bandpass, iir_notch, priming_level, with_mains_notches
from .motion import MotionMeter, motion_energy
from .respiration import RespirationExtractor, respiration_rate

__all__ = [
    "DspError",
    "DspValueError",
    "Despiker",
    "SosFilter",
    "butter_bandpass",
    "iir_notch",
    "priming_level",
    "with_mains_notches",
    "JPeakDetector",
    "detect_beats",
    "MotionMeter",
    "motion_energy",
    "RespirationExtractor",
    "respiration_rate",
]
