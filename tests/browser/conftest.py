"""Browser tests: the dashboard in headless Chromium (Debian's `chromium`) driven by
Playwright, against the real system (simulator -> worker -> SQLite -> close handler ->
API on uvicorn) from tests/integration/worker/conftest.py.

Playwright's own browser download cannot work here, so `executable_path` points at
/usr/bin/chromium; without it (or without Playwright) every test here is skipped, saying
why. Screenshots go to tests/browser/artifacts/ (gitignored).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from worker.conftest import Live, start_live, stop_live

from cogmora.simulator import SimulatorConfig

CHROMIUM = os.environ.get("COGMORA_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright)")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    lv = await start_live(tmp_path / "live.db", SimulatorConfig(tick_rate=0, seed=7))
    yield lv
    await stop_live(lv)


def shot(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / f"{name}.png")
