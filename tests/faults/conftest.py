"""Seeded race runs against a real engine and a real store.

Tests marked `faults` run their long version only when selected (`-m faults`); otherwise
they run a small seeded version, so the default suite still exercises every race.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def tries(request: pytest.FixtureRequest) -> int:
    """How many times a race is run: 1,000 under `-m faults`, a few dozen otherwise."""
    selected = "faults" in (request.config.option.markexpr or "")
    return 1000 if selected else 25
