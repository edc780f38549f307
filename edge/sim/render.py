"""Turning a night's plan into ADC samples, a run of fixed blocks at a time.

Block ``b`` covers samples ``[b * size, (b + 1) * size)``. Its value is defined block by
block, from the plan and generators seeded by ``(seed, b)``: a sample therefore has one
value whatever chunks it is asked for in, bit for bit, and a block costs the same
wherever it lies in the night. Only the beats, movement pulses and vibration bursts that
reach a block are evaluated for it.

:func:`render_blocks` renders many consecutive blocks in one pass of array arithmetic
(per-block Python work made an 8 h night take seconds) and gives exactly the values each
block has alone: every sample goes through the same floating-point operations in the same
order, and a sum over beats holds, for each block, the beats that reach that block and no
others (``test_sim`` pins this with golden hashes).

A sensor model (``edge.sim.sensor_model``) may add two things. A bed that rings: the beats
and movement go through its resonances, a linear filter with a memory of seconds, so they
are rendered a frame of :data:`FRAME_BLOCKS` blocks at a time with the seconds before it as
history and filtered with an FFT; a sample's value then depends on its frame (fixed by its
index), still not on the range it is asked for in. And a :class:`Converter` that maps the
default sensor's counts to its own bits, offset, gain, polarity, dropouts and units. Without
a sensor model neither runs, and the samples are those of before, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._random import normals
from .motion import SUPPORT_WIDTHS, Pulses
from .physiology import Breathing
from .sensor import ADC_MAX, PINK_STEP_S, Sensor, band_fraction

__all__ = ["Beats", "Converter", "Levels", "Plan", "render_block", "render_blocks", "to_adc"]

#: Vibration bursts fade in and out over this long (raised cosine), s.
VIBRATION_TAPER_S = 1.0
#: np.exp(x) is exactly 0.0 for every x below this (the smallest subnormal is exp(-744.4)
#: and exp(-745.14) already rounds to 0); ``test_sim`` checks it on this numpy.
EXP_ZERO_BELOW = -746.0
#: Body noise (mattress, small movements) has little power above this (Hz); the front
#: end's own noise is white up to fs/2.
BODY_NOISE_TOP_HZ = 40.0
#: A ringing bed is filtered this many blocks at a time (``Night`` reads runs of as many).
FRAME_BLOCKS = 128


def lowpass_taps(fs: float) -> np.ndarray:
    """FIR low-pass (Hann-windowed sinc) at BODY_NOISE_TOP_HZ, unit DC gain.

    A single tap (no filtering) when fs is too low for the cut-off to matter.
    """
    cutoff = BODY_NOISE_TOP_HZ / fs
    if cutoff >= 0.45:
        return np.ones(1)
    half = int(np.ceil(2.0 / cutoff))  # ~4 periods of the cut-off: a clean transition
    k = np.arange(-half, half + 1)
    taps = np.sinc(2 * cutoff * k) * (0.5 + 0.5 * np.cos(np.pi * k / (half + 1)))
    return taps / taps.sum()


@dataclass(frozen=True)
class Levels:
    """Piecewise-linear levels over the night (knots in seconds, one value per knot)."""

    knots_s: np.ndarray
    resp: np.ndarray  #: breathing amplitude, sensor units
    dc: np.ndarray  #: baseline, sensor units
    body_noise: np.ndarray  #: RMS per sample of the body noise's white input, counts
    drift: np.ndarray  #: 1/f drift RMS, counts


@dataclass(frozen=True)
class Beats:
    """Every beat's waves: centre times and per-wave offsets, widths, amplitudes (units)."""

    centre_s: np.ndarray  #: (n,) J-peak times
    offsets_s: np.ndarray  #: (n, waves) relative to the J-peak
    widths_s: np.ndarray  #: (n, waves)
    amplitudes: np.ndarray  #: (n, waves)

    def reach(self) -> tuple[float, float]:
        """How far before and after its J-peak a beat is non-negligible (s)."""
        if self.centre_s.size == 0:
            return 0.0, 0.0
        lo = self.offsets_s - SUPPORT_WIDTHS * self.widths_s
        hi = self.offsets_s + SUPPORT_WIDTHS * self.widths_s
        return float(max(0.0, -lo.min())), float(max(0.0, hi.max()))

    def render(self, blocks: _Blocks, before: float, after: float) -> np.ndarray:
        """The sum over each block of the beats reaching it, ``blocks.t`` padded shape.

        Per sample: ``sum_k sum_w a[k, w] exp(-z^2 / 2)`` accumulated beat by beat, wave by
        wave, from zero (the order, and so the rounding, of one block on its own).
        """
        out = np.zeros(blocks.t.shape)
        if self.centre_s.size == 0:
            return out
        lo = np.searchsorted(self.centre_s, blocks.first_s - after)
        hi = np.searchsorted(self.centre_s, blocks.last_s + before, side="right")
        count = hi - lo
        z, q, e = np.empty(blocks.t.shape), np.empty(blocks.t.shape), np.empty(blocks.t.shape)
        for m in range(int(count.max(initial=0))):
            rows = np.flatnonzero(count > m)  # the blocks that have an m-th beat
            k = lo[rows] + m
            centres = (self.centre_s[k, None] + self.offsets_s[k])[:, :, None]
            widths = self.widths_s[k, :, None]
            amplitudes = self.amplitudes[k, :, None]
            t = blocks.t[rows]
            acc = out[rows]
            zm, qm, em = z[: rows.size], q[: rows.size], e[: rows.size]
            # One wave at a time, in place: (rows, n) arrays stay in cache. The same
            # operations as exp(-0.5 * z * z) * a summed over waves, so the same rounding.
            for w in range(centres.shape[1]):
                np.subtract(t, centres[:, w], out=zm)
                zm /= widths[:, w]
                np.multiply(zm, -0.5, out=qm)
                qm *= zm
                # exp() is exactly 0 below EXP_ZERO_BELOW; skipping those (a fifth of
                # them) avoids its slow underflow path.
                em.fill(0.0)
                np.exp(qm, out=em, where=qm >= EXP_ZERO_BELOW)
                em *= amplitudes[:, w]
                acc += em
            out[rows] = acc
        return out


@dataclass(frozen=True)
class Converter:
    """A sensor model's converter: from the default sensor's counts to its own samples.

    ``out = offset + polarity * gain * (counts - bias)``, then dropouts read 0, then
    rounded and clipped to ``0 .. adc_max``, then times ``scale`` (float64 samples) unless
    ``scale`` is 1 (int32 counts).
    """

    bias: float  #: the default sensor's counts at zero input
    offset: float  #: this converter's counts at zero input
    gain: float
    polarity: int
    adc_max: int
    scale: float
    dropout_start: np.ndarray  #: sample indices, sorted
    dropout_stop: np.ndarray  #: exclusive

    def convert(self, counts: np.ndarray, first: int) -> np.ndarray:
        """Samples from default-sensor ``counts`` whose first sample has index ``first``."""
        out = counts - self.bias
        out *= self.polarity * self.gain
        out += self.offset
        stop = first + out.size
        k0 = np.searchsorted(self.dropout_stop, first, side="right")
        k1 = np.searchsorted(self.dropout_start, stop)
        for a, b in zip(self.dropout_start[k0:k1], self.dropout_stop[k0:k1], strict=True):
            out[max(a, first) - first : min(b, stop) - first] = 0.0
        out = np.clip(np.rint(out), 0, self.adc_max)
        if self.scale == 1.0:
            return out.astype(np.int32)
        return out * self.scale


@dataclass(frozen=True)
class Plan:
    """Everything a block needs, decided when the night is made.

    ``ring`` (the bed's impulse response, taps at fs) and ``converter`` come from a sensor
    model; None for the default sensor.
    """

    seed: int
    fs: float
    n_samples: int
    block: int  #: samples per block
    sensor: Sensor
    levels: Levels
    breathing: Breathing
    beats: Beats
    shifts: Pulses
    jerks: Pulses
    ring: np.ndarray | None = None
    converter: Converter | None = None
    beat_reach: tuple[float, float] = field(init=False)  #: from Beats.reach()
    body_taps: np.ndarray = field(init=False)  #: from lowpass_taps(fs)

    def __post_init__(self) -> None:
        object.__setattr__(self, "beat_reach", self.beats.reach())
        taps = lowpass_taps(self.fs)
        if taps.size - 1 > self.block:
            raise ValueError(f"block: {self.block} samples is shorter than the noise filter")
        object.__setattr__(self, "body_taps", taps)

    @property
    def n_blocks(self) -> int:
        """Blocks in the night (the last one may be short)."""
        return -(-self.n_samples // self.block)


@dataclass(frozen=True)
class _Blocks:
    """Times of a run of blocks: ``t`` is (blocks, size), the last row padded past the
    night's end; ``first_s``/``last_s`` are each block's first and last real sample."""

    t: np.ndarray
    first_s: np.ndarray
    last_s: np.ndarray
    n: int  #: real samples

    def rows(self, flat: np.ndarray) -> np.ndarray:
        """A flat per-sample array of the padded run as (blocks, size)."""
        return flat.reshape(self.t.shape)


def to_adc(counts: np.ndarray) -> np.ndarray:
    """Round to whole counts and clip to the converter's range 0..ADC_MAX (int32)."""
    return np.clip(np.rint(counts), 0, ADC_MAX).astype(np.int32)


def render_block(plan: Plan, b: int) -> np.ndarray:
    """ADC counts (int32) of block ``b``."""
    return render_blocks(plan, b, b + 1)


def render_blocks(plan: Plan, first: int, stop: int) -> np.ndarray:
    """ADC counts (int32) of blocks ``first .. stop - 1`` one after another.

    Bit for bit the concatenation of each block rendered alone.
    """
    if not 0 <= first < stop <= plan.n_blocks:
        raise ValueError(f"blocks: need 0 <= first < stop <= {plan.n_blocks}, got {first}, {stop}")
    size = plan.block
    index = np.arange(first * size, stop * size, dtype=np.int64)
    t = index / plan.fs  # the padded run; samples from n_samples on are dropped at the end
    n = min(stop * size, plan.n_samples) - first * size
    real_last = np.minimum(np.arange(1, stop - first + 1) * size, n) - 1
    blocks = _Blocks(t.reshape(-1, size), t[::size], t[real_last], n)
    lv = plan.levels
    sensor = plan.sensor
    # The body, in sensor units: breathing, baseline, heartbeats, movement.
    body = np.interp(t, lv.knots_s, lv.resp) * plan.breathing.volume(t)
    body += np.interp(t, lv.knots_s, lv.dc)
    if plan.ring is None:
        body += plan.beats.render(blocks, *plan.beat_reach).ravel()
        for pulses in (plan.shifts, plan.jerks):
            _add_pulses(body, pulses, blocks)
    else:
        body += _rung(plan, first, stop)
    counts = sensor.offset + sensor.gain * body
    # Noise, in counts, from generators of each block (and the one before: the body
    # noise is filtered across the block boundary).
    counts += np.interp(t, lv.knots_s, lv.body_noise) * _body_noise(plan, first, stop)
    white = normals(plan.seed, "sensor noise", first, stop, size).ravel()
    counts += sensor.noise_counts / np.sqrt(band_fraction(plan.fs)) * white
    # Linear interpolation on the uniform drift grid (t >= 0, so floor is the knot before).
    pos = t / PINK_STEP_S
    knot = np.minimum(pos.astype(np.int64), sensor.drift_grid.size - 2)
    frac = pos - knot
    drift = sensor.drift_grid[knot] * (1.0 - frac) + sensor.drift_grid[knot + 1] * frac
    counts += np.interp(t, lv.knots_s, lv.drift) * drift
    for freq, amp in sensor.hum_tones:
        # Phase from the integer sample index: exact however far into the night.
        # In place, the operations of amp * sin(2 pi ((index * freq / fs) % 1) + phase).
        hum = np.multiply(index, freq)
        hum /= plan.fs
        hum %= 1.0
        hum *= 2 * np.pi
        hum += sensor.hum_phase
        np.sin(hum, out=hum)
        hum *= amp
        counts += hum
    counts += _vibration(sensor, blocks)
    if plan.converter is not None:
        return plan.converter.convert(counts[:n], first * size)
    return to_adc(counts[:n])


def _mechanics(plan: Plan, first: int, stop: int) -> np.ndarray:
    """Beats plus movement (sensor units) of blocks ``first .. stop - 1``, flat; blocks
    before the night (negative) are rendered too: nothing happens there."""
    size = plan.block
    index = np.arange(first * size, stop * size, dtype=np.int64)
    t = index / plan.fs
    n = min(stop * size, plan.n_samples) - first * size
    real_last = np.minimum(np.arange(1, stop - first + 1) * size, n) - 1
    blocks = _Blocks(t.reshape(-1, size), t[::size], t[real_last], n)
    out = plan.beats.render(blocks, *plan.beat_reach).ravel()
    for pulses in (plan.shifts, plan.jerks):
        _add_pulses(out, pulses, blocks)
    return out


def _rung(plan: Plan, first: int, stop: int) -> np.ndarray:
    """Beats and movement through the bed's resonances, for blocks ``first .. stop - 1``.

    Each frame of FRAME_BLOCKS blocks is rendered with enough blocks before it for the
    ringing to have died out (history), then filtered (FFT convolution), so a block's
    values depend only on its frame, not on which blocks were asked for.
    """
    ring = plan.ring
    assert ring is not None
    size = plan.block
    history = -(-(ring.size - 1) // size)
    parts = []
    for frame in range(first // FRAME_BLOCKS, -(-stop // FRAME_BLOCKS)):
        a = frame * FRAME_BLOCKS
        b = min(a + FRAME_BLOCKS, plan.n_blocks)
        x = _mechanics(plan, a - history, b)
        length = 1 << int(np.ceil(np.log2(x.size + ring.size - 1)))
        y = np.fft.irfft(np.fft.rfft(x, length) * np.fft.rfft(ring, length), length)
        lo, hi = max(first, a), min(stop, b)
        parts.append(y[(lo - a + history) * size : (hi - a + history) * size])
    return np.concatenate(parts)


def _add_pulses(body: np.ndarray, pulses: Pulses, blocks: _Blocks) -> None:
    """Add the movement pulses, block by block (only blocks that pulses reach: few)."""
    if pulses.centre_s.size == 0:
        return
    reach = SUPPORT_WIDTHS * pulses.max_width_s
    lo = np.searchsorted(pulses.centre_s, blocks.first_s - reach)
    hi = np.searchsorted(pulses.centre_s, blocks.last_s + reach, side="right")
    size = blocks.t.shape[1]
    rows = blocks.rows(body)
    for j in np.flatnonzero(hi > lo):
        real = min(size, blocks.n - j * size)
        # Per block, as the block alone: the matrix product's rounding depends on the shape.
        rows[j, :real] += pulses.render(blocks.t[j, :real])


def _body_noise(plan: Plan, first: int, stop: int) -> np.ndarray:
    """Low-passed white noise (unit RMS input) of blocks ``first .. stop - 1``.

    Block ``b``'s own white noise is stream ``b + 1`` (stream 0 only feeds block 0's
    filter history); the filter runs over the tail of the stream before, so a block
    needs no state and the noise is continuous across blocks.
    """
    taps = plan.body_taps
    white = normals(plan.seed, "body noise", first, stop + 1, plan.block)
    if taps.size == 1:
        return white[1:].ravel()
    history = white[0, plan.block - (taps.size - 1) :]
    return np.convolve(np.concatenate([history, white[1:].ravel()]), taps, mode="valid")


def _vibration(sensor: Sensor, blocks: _Blocks) -> np.ndarray:
    """Building vibration bursts, each evaluated over the blocks it overlaps (elsewhere
    its envelope is exactly 0, so leaving those blocks out changes no sum)."""
    vib = sensor.vibration
    size = blocks.t.shape[1]
    out = np.zeros(blocks.t.size)
    near = np.flatnonzero((vib.start_s < blocks.last_s[-1]) & (vib.stop_s > blocks.first_s[0]))
    for k in near:
        s, e = vib.start_s[k], vib.stop_s[k]
        overlap = np.flatnonzero((s < blocks.last_s) & (e > blocks.first_s))  # consecutive
        if overlap.size == 0:
            continue
        part = slice(overlap[0] * size, (overlap[-1] + 1) * size)
        t = blocks.t.ravel()[part]
        taper = min(VIBRATION_TAPER_S, (e - s) / 2)
        env = np.clip(np.minimum(t - s, e - t) / taper, 0.0, 1.0)
        env = 0.5 - 0.5 * np.cos(np.pi * env)
        wave = np.sin(2 * np.pi * vib.freq_hz[k] * (t - s) + vib.phase[k])
        out[part] += vib.amplitude[k] * env * wave
    return out
