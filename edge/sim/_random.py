"""Named random streams: every part of a night draws from its own generator.

A generator is seeded by ``(seed, stream name, *indices)``, so adding a draw to one part
(the person, say) never shifts the numbers another part (the noise of second 1234) gets,
and any block of noise can be regenerated on its own, in any order.

:func:`normals` draws from many indexed streams at once. numpy's ``SeedSequence`` costs
about 10 us per stream in Python-level bookkeeping, which for the 57 600 noise streams of
an 8 h night is most of the rendering time; here its hash is computed for all the streams
in one go with array arithmetic (the same algorithm, word for word), and only the cheap
generator construction stays per stream. ``test_sim`` checks the two agree.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np
from numpy.random import PCG64, Generator
from numpy.random.bit_generator import ISeedSequence

__all__ = ["normals", "stream"]

# numpy's SeedSequence constants (numpy/random/bit_generator.pyx, stable since numpy 1.17).
_POOL_SIZE = 4
_INIT_A = 0x43B0D7E5
_MULT_A = 0x931E8875
_INIT_B = 0x8B51F9DD
_MULT_B = 0x58F38DED
_MIX_MULT_L = 0xCA01F9DD
_MIX_MULT_R = 0x4973F715
_XSHIFT = 16
_MASK32 = 0xFFFFFFFF
#: Streams whose seeds are hashed together (and cached) by normals().
_STATE_RUN = 4096


def stream(seed: int, name: str, *index: int) -> np.random.Generator:
    """The generator of stream ``name`` (and optional block ``index``) of night ``seed``."""
    return np.random.default_rng([int(seed), _name_key(name), *map(int, index)])


def normals(seed: int, name: str, first: int, stop: int, size: int) -> np.ndarray:
    """Standard normal draws of streams ``first .. stop - 1``, one row of ``size`` each.

    Row ``i`` equals ``stream(seed, name, first + i).standard_normal(size)`` bit for bit.
    """
    first, stop, size = int(first), int(stop), int(size)
    out = np.empty((max(stop - first, 0), size))
    if stop <= first:
        return out
    if first < 0 or stop - 1 > _MASK32:  # outside one entropy word: the plain path
        for row, i in enumerate(range(first, stop)):
            stream(seed, name, i).standard_normal(size, out=out[row])
        return out
    key = (int(seed), _name_key(name))
    for row, i in enumerate(range(first, stop)):
        state = _seed_states(*key, i // _STATE_RUN)[i % _STATE_RUN]
        Generator(PCG64(_Seeded(state))).standard_normal(size, out=out[row])
    return out


@functools.lru_cache(maxsize=8)
def _seed_states(seed: int, key: int, run: int) -> np.ndarray:
    """PCG64 seeds of streams ``run * _STATE_RUN`` on (a couple of hours of blocks)."""
    stop = min((run + 1) * _STATE_RUN, _MASK32 + 1)  # one entropy word: below 2**32
    indices = np.arange(run * _STATE_RUN, stop, dtype=np.uint64)
    states = _pcg64_seeds(_words(seed) + _words(key), indices)
    states.flags.writeable = False
    return states


def _name_key(name: str) -> int:
    # crc32 of the name: a stable small integer, the same on every platform and run.
    return zlib.crc32(name.encode())


def _words(value: int) -> list[int]:
    """A non-negative integer as SeedSequence's little-endian 32-bit words ([0] for 0)."""
    if value < 0:
        raise ValueError(f"seed: must be >= 0, got {value}")
    out = [value & _MASK32]
    value >>= 32
    while value:
        out.append(value & _MASK32)
        value >>= 32
    return out


class _Seeded(ISeedSequence):
    """A seed sequence whose 4-word uint64 state is already known (what PCG64 asks for)."""

    def __init__(self, state: np.ndarray) -> None:
        self._state = state

    def generate_state(self, n_words: int, dtype: type = np.uint32) -> np.ndarray:
        if n_words != _POOL_SIZE or np.dtype(dtype) != np.uint64:
            raise ValueError("_Seeded only serves PCG64's 4-word uint64 state")
        return self._state


def _pcg64_seeds(prefix: list[int], last: np.ndarray) -> np.ndarray:
    """``SeedSequence(prefix + [i]).generate_state(4, uint64)`` for each ``i`` in ``last``.

    ``last`` holds values below 2**32 (one entropy word each); the result is (n, 4) uint64.
    """
    n = last.size
    entropy = [np.full(n, w, dtype=np.uint32) for w in prefix] + [last.astype(np.uint32)]
    hash_const = [_INIT_A]

    def hashmix(value: np.ndarray) -> np.ndarray:
        value = value ^ np.uint32(hash_const[0])
        hash_const[0] = (hash_const[0] * _MULT_A) & _MASK32
        value = value * np.uint32(hash_const[0])
        return value ^ (value >> np.uint32(_XSHIFT))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = np.uint32(_MIX_MULT_L) * x - np.uint32(_MIX_MULT_R) * y
        return result ^ (result >> np.uint32(_XSHIFT))

    zero = np.zeros(n, dtype=np.uint32)
    pool = [hashmix(entropy[i] if i < len(entropy) else zero) for i in range(_POOL_SIZE)]
    for src in range(_POOL_SIZE):
        for dst in range(_POOL_SIZE):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for src in range(_POOL_SIZE, len(entropy)):
        for dst in range(_POOL_SIZE):
            pool[dst] = mix(pool[dst], hashmix(entropy[src]))
    # generate_state(4, uint64): 8 words cycling over the pool, paired little-endian.
    words = []
    const = _INIT_B
    for i in range(2 * _POOL_SIZE):
        value = pool[i % _POOL_SIZE] ^ np.uint32(const)
        const = (const * _MULT_B) & _MASK32
        value = value * np.uint32(const)
        words.append((value ^ (value >> np.uint32(_XSHIFT))).astype(np.uint64))
    lo, hi = np.stack(words[0::2], axis=1), np.stack(words[1::2], axis=1)
    return np.ascontiguousarray(lo | (hi << np.uint64(32)))
