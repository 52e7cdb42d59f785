"""The hot path's two quiet loops (C and Python), for tests that must hold for both."""

from __future__ import annotations

import os

import pytest

from cogmora.engine.prefilter import NATIVE


@pytest.fixture(scope="module", params=[True, False], ids=["c-loop", "python-loop"])
def native(request: pytest.FixtureRequest) -> bool:
    """Whether the HotPath under test runs its quiet test in C. Where the extension is
    not built the C runs skip, except in CI (`CI` set, as .ci/run runs), where they fail:
    CI must measure and test the loop the worker runs."""
    if request.param and not NATIVE:
        message = "cogmora.engine._quiet is not built (setup.py build_ext --inplace)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return bool(request.param)
