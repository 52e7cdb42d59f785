"""Firebase sign-in in the page, against firebase-tools' Auth emulator: the page asks the
server where Firebase Auth lives, signs in with email and password over Identity Toolkit's
REST API, and trades with the ID token; a wrong password is a clear message."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cogmora.simulator import SimulatorConfig

from .conftest import WAIT, Live, base, page_of, shot, start_live, stop_live

PROJECT = "demo-cogmora"  # .ci/run starts the Auth emulator for this project
PASSWORD = "correct horse"


@pytest.fixture
async def firebase_live(tmp_path: Path, auth_emulator: str) -> AsyncIterator[Live]:
    lv = await start_live(
        tmp_path / "live.db", SimulatorConfig(tick_rate=0, seed=7), firebase_project=PROJECT
    )
    yield lv
    await stop_live(lv)


async def sign_up(host: str) -> str:
    """A new user of the Auth emulator; returns its email."""
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    url = f"http://{host}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=demo"
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            url, json={"email": email, "password": PASSWORD, "returnSecureToken": True}
        )
    answer.raise_for_status()
    return email


async def test_a_firebase_user_signs_in_from_the_page_and_opens_a_position(
    firebase_live: Live, auth_emulator: str, browser: Any
) -> None:
    from playwright.async_api import expect

    live = firebase_live
    email = await sign_up(auth_emulator)
    await live.sim.set_price("BTC-USDT", "60000")
    page = await page_of(browser)
    await page.goto(base(live) + "/")
    form = page.locator("#firebase-form")
    await expect(form).to_be_visible(timeout=WAIT)

    await page.fill("#email", email)
    await page.fill("#password", "wrong password")
    await form.locator("button").click()
    await expect(page.locator("#firebase-error")).to_contain_text("wrong", timeout=WAIT)

    await page.fill("#password", PASSWORD)
    await form.locator("button").click()
    await expect(page.locator("#trade")).to_be_visible(timeout=WAIT)
    await expect(page.locator("#who")).to_have_text(email, timeout=WAIT)

    opened = page.locator("#open-form")
    await opened.locator("[name=symbol]").fill("BTC-USDT")
    await opened.locator("[name=qty]").fill("0.01")
    await opened.locator("button[type=submit]").click()
    await expect(page.locator("#position-rows tr[data-id]")).to_have_count(1, timeout=WAIT)
    await page.screenshot(path=shot("firebase-signed-in"))
