"""The fuzz targets (tests/fuzz/targets.py) in `make test`, without atheris: every committed
seed and past finding replayed, then hypothesis feeding random bytes and damaged seeds.
A failure here is a parser that raised something other than its documented error, or broke
an invariant the target checks (chunking, bounded buffers, error codes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from targets import TARGETS  # noqa: E402

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _inputs(folder: str) -> list[tuple[str, Path]]:
    return [
        (target, path)
        for target in TARGETS
        for path in sorted((HERE / folder / target).glob("*"))
        if path.is_file()
    ]


@pytest.mark.parametrize(
    ("target", "path"), _inputs("corpus"), ids=lambda v: v.name if isinstance(v, Path) else v
)
def test_seed(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


@pytest.mark.parametrize(
    ("target", "path"), _inputs("findings"), ids=lambda v: v.name if isinstance(v, Path) else v
)
def test_past_finding(target: str, path: Path) -> None:
    """Inputs that once made a target fail (tests/fuzz/findings/<target>/): fixed for good."""
    TARGETS[target](path.read_bytes())


def test_every_target_has_seeds() -> None:
    have = {target for target, _ in _inputs("corpus")}
    assert have == set(TARGETS)
    size = sum(p.stat().st_size for p in (HERE / "corpus").rglob("*") if p.is_file())
    assert size < 200_000, f"seed corpora are {size} bytes; keep them under 200 KB"


@pytest.mark.parametrize("target", sorted(TARGETS))
@FUZZ
@given(data=st.binary(max_size=3000))
def test_random_bytes(target: str, data: bytes) -> None:
    TARGETS[target](data)


@pytest.mark.parametrize("target", sorted(TARGETS))
@FUZZ
@given(draw=st.data())
def test_damaged_seeds(target: str, draw) -> None:
    """A seed with bytes overwritten, a stretch cut out or a run of bytes put in: the
    structure-aware counterpart of random bytes (most of the file still parses)."""
    seeds = [p for t, p in _inputs("corpus") if t == target]
    data = bytearray(draw.draw(st.sampled_from(seeds)).read_bytes())
    for _ in range(draw.draw(st.integers(1, 4))):
        at = draw.draw(st.integers(0, len(data)))
        action = draw.draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "set" and at < len(data):
            data[at] = draw.draw(st.integers(0, 255))
        elif action == "cut":
            del data[at : at + draw.draw(st.integers(1, 64))]
        else:
            data[at:at] = draw.draw(st.binary(min_size=1, max_size=64))
    TARGETS[target](bytes(data))
