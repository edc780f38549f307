"""Fixtures shared by every pytest suite."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator: tests are reproducible run to run."""
    return np.random.default_rng(20240611)
