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
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from worker.conftest import Live, start_live, stop_live

__all__ = ["Live"]

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
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"  # the README's


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


def drop_http_connections(live: Live) -> int:
    """Cut every open connection to the API, as a network drop would (the event streams
    included); the server itself keeps listening."""
    import gc

    import uvicorn

    del live  # start_live keeps no handle on its uvicorn server: find it among the objects
    dropped = 0
    for server in [o for o in gc.get_objects() if isinstance(o, uvicorn.Server)]:
        for connection in list(server.server_state.connections):
            connection.transport.close()
            dropped += 1
    return dropped


if TYPE_CHECKING:
    from playwright.async_api import Locator, Page


def shot(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / f"{name}.png")


WAIT = 60_000  # ms: a busy shared machine, never a fixed sleep


def base(live: Live) -> str:
    return str(live.http.base_url).rstrip("/")


async def token_of(live: Live, uid: str, balance: str = "10000") -> str:
    _, token = await live.system.accounts.create_user(uid, Decimal(balance))
    return str(token)


async def page_of(
    browser: Any, width: int = 1200, height: int = 900, timezone: str = "UTC"
) -> Page:
    """A page in its own context; its browser's time zone is `timezone` (IANA), never
    the machine's, so a test of typed times means the same on every machine."""
    context = await browser.new_context(
        viewport={"width": width, "height": height}, timezone_id=timezone
    )
    page: Page = await context.new_page()
    page.on("dialog", lambda d: d.accept())
    return page


async def sign_in(page: Page, live: Live, token: str) -> None:
    from playwright.async_api import expect

    await page.goto(base(live) + "/")
    await page.fill("#token", token)
    await page.click("#signin-form button")
    await expect(page.locator("#trade")).to_be_visible(timeout=WAIT)


async def submit_form(page: Page, form_id: str, **fields: str) -> Locator:
    """Fill the form `#form_id` by its inputs' names (the API's field paths) and submit it."""
    form = page.locator(f"#{form_id}")
    for name, value in fields.items():
        field = form.locator(f'[name="{name}"]')
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await form.locator("button[type=submit]").click()
    return form


def error_at(scope: Locator, page: Page, name: str) -> Locator:
    """The message showFieldError put in the label of the input named `name`."""
    return scope.locator("label", has=page.locator(f'[name="{name}"]')).locator(".field-error")
