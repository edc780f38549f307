"""The simulator's source spec on the command line: ``sim`` or ``sim:SEED``."""

from __future__ import annotations

import re

__all__ = ["DEFAULT_SEED", "parse_sim_spec"]

#: The seed of a bare ``sim``: a night is reproducible even when no seed is named.
DEFAULT_SEED = 0

_SPEC = re.compile(r"sim(?::([0-9]+))?")


def parse_sim_spec(spec: str) -> int:
    """The seed named by a ``sim[:SEED]`` source spec (``sim`` alone: :data:`DEFAULT_SEED`).

    >>> parse_sim_spec("sim:42")
    42

    Raises ValueError for anything else, e.g. ``sim:abc``, ``sim:``, ``sim:-1``.
    """
    match = _SPEC.fullmatch(spec) if isinstance(spec, str) else None
    if match is None:
        raise ValueError(
            f"source: expected 'sim' or 'sim:SEED' with SEED a whole number >= 0 "
            f"(e.g. sim:42), got {spec!r}"
        )
    if match.group(1) is None:
        return DEFAULT_SEED
    seed = int(match.group(1))
    if seed >= 2**63:
        raise ValueError(f"source: the seed must be below 2**63, got {spec!r}")
    return seed
