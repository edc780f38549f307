"""Named random streams: every part of a night draws from its own generator.

A generator is seeded by ``(seed, stream name, *indices)``, so adding a draw to one part
(the person, say) never shifts the numbers another part (the noise of second 1234) gets,
and any block of noise can be regenerated on its own, in any order.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str, *index: int) -> np.random.Generator:
    """The generator of stream ``name`` (and optional block ``index``) of night ``seed``."""
    # crc32 of the name: a stable small integer, the same on every platform and run.
    return np.random.default_rng([int(seed), zlib.crc32(name.encode()), *map(int, index)])
