"""The dashboard in a real browser against the whole system over real sockets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from .conftest import WAIT, Live, base, page_of, shot, sign_in, token_of

pytest.importorskip("playwright", reason="Playwright for Python is not installed")
from playwright.async_api import expect


async def test_a_wrong_token_says_invalid_token_and_the_right_one_signs_in(
    live: Live, browser: Any
) -> None:
    """A wrong token shows "invalid token"; the right one shows the balance; sign out returns."""
    token = await token_of(live, "alice", "10000")
    page = await page_of(browser)
    await page.goto(base(live) + "/")
    await page.fill("#token", "not-a-token")
    await page.click("#signin-form button")
    await expect(page.locator("#signin-error")).to_have_text("invalid token", timeout=WAIT)
    await page.screenshot(path=shot("signin-invalid"))
    await sign_in(page, live, token)
    await expect(page.locator("#balance")).to_have_text("10000.00", timeout=WAIT)
    await expect(page.locator("#who")).to_have_text("alice")
    await page.click("#signout")
    await expect(page.locator("#signin")).to_be_visible()


async def test_a_sign_in_link_signs_in_and_leaves_the_url(live: Live, browser: Any) -> None:
    """`/#token=...` (what `cogmora demo` prints) signs in and removes the token from the URL."""
    token = await token_of(live, "alice")
    page = await page_of(browser)
    await page.goto(f"{base(live)}/#token={token}")
    await expect(page.locator("#who")).to_have_text("alice", timeout=WAIT)
    assert "token" not in page.url


async def test_a_stop_opened_from_the_page_fires_and_the_page_shows_it_closed(
    live: Live, browser: Any
) -> None:
    """A futures position opened with a stop closes when the price crosses it; the page
    shows the history row, its P&L and the new balance without a reload."""
    token = await token_of(live, "alice", "10000")
    bob = await token_of(live, "bob", "5000")
    await live.sim.set_price("XBTUSDTM", "60000")
    page = await page_of(browser)
    await sign_in(page, live, token)
    form = page.locator("#open-form")
    await form.locator("[name=symbol]").fill("XBTUSDTM")
    await form.locator("[name=market]").select_option("futures")
    await form.locator("[name=qty]").fill("0.1")
    await form.locator("[name=leverage]").fill("5")
    await form.locator("[name=stopLoss]").fill("59000")
    await form.locator("button").click()
    row = page.locator("#position-rows tr")
    await expect(row).to_have_count(1, timeout=WAIT)
    await expect(row.locator("[name=stopLoss]")).to_have_value("59000", timeout=WAIT)
    await expect(row.locator(".price")).to_have_text("60000", timeout=WAIT)
    await expect(row.locator(".to-stop")).to_have_text("-1.67%", timeout=WAIT)
    await page.screenshot(path=shot("trade-open"), full_page=True)
    pid = await row.get_attribute("data-id")
    assert pid is not None

    async def in_book() -> bool:
        return pid in live.worker.engine.book

    await live.until(in_book, within=60)
    await live.sim.publish_burst("XBTUSDTM", ["59500", "58900"])

    closed = page.locator(f"#history-rows tr[data-id='{pid}']")
    await expect(closed.locator(".reason")).to_have_text("stop_loss", timeout=WAIT)
    await expect(page.locator("#position-rows tr")).to_have_count(0, timeout=WAIT)
    auth = {"Authorization": f"Bearer {token}"}
    doc = (await live.http.get(f"/v1/positions/{pid}", headers=auth)).json()
    account = (await live.http.get("/v1/account", headers=auth)).json()
    assert Decimal(doc["realizedPnl"]) < 0
    await expect(closed.locator(".realized")).to_have_text(
        f"{Decimal(doc['realizedPnl']):.2f}", timeout=WAIT
    )
    await expect(page.locator("#balance")).to_have_text(
        f"{Decimal(account['balance']):.2f}", timeout=WAIT
    )
    await page.screenshot(path=shot("trade-closed"), full_page=True)

    other = await page_of(browser)
    await sign_in(other, live, bob)
    await expect(other.locator("#balance")).to_have_text("5000.00", timeout=WAIT)
    await expect(other.locator("#history-rows tr")).to_have_count(0)
    await expect(other.locator(f"[data-id='{pid}']")).to_have_count(0)


async def test_a_validation_error_appears_at_its_field(live: Live, browser: Any) -> None:
    """The API's 422 detail is shown next to the field its `field` names."""
    token = await token_of(live, "alice")
    page = await page_of(browser)
    await sign_in(page, live, token)
    form = page.locator("#open-form")
    await form.locator("[name=qty]").fill("lots")
    await form.locator("button").click()
    qty_label = form.locator("label", has=page.locator("[name=qty]"))
    await expect(qty_label.locator(".field-error")).to_contain_text("qty", timeout=WAIT)
    await expect(form.locator("[name=qty]")).to_have_attribute("aria-invalid", "true")
    await page.screenshot(path=shot("validation-error"), full_page=True)

    await live.sim.set_price("BTC-USDT", "60000")
    opened = await live.http.post(
        "/v1/positions",
        json={"symbol": "BTC-USDT", "market": "spot", "side": "long", "qty": "0.1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert opened.status_code == 201, opened.text
    cell = page.locator("#position-rows tr td[data-field=stopLoss]")
    await expect(cell).to_have_count(1, timeout=WAIT)
    await cell.locator("input").fill("61000")
    await cell.locator("input").press("Enter")
    await expect(cell.locator(".field-error")).to_contain_text("stop", timeout=WAIT)
    await page.screenshot(path=shot("amend-error"), full_page=True)


async def test_a_refused_level_keeps_its_text_and_error_when_a_live_update_redraws_the_row(
    live: Live, browser: Any
) -> None:
    """A stop the API refused stays typed, with its error, after another position arrives."""
    token = await token_of(live, "alice")
    auth = {"Authorization": f"Bearer {token}"}
    page = await page_of(browser)
    await sign_in(page, live, token)
    await live.sim.set_price("BTC-USDT", "60000")
    body = {"symbol": "BTC-USDT", "market": "spot", "side": "long", "qty": "0.05"}
    first = await live.http.post("/v1/positions", json=body, headers=auth)
    assert first.status_code == 201, first.text
    row = page.locator(f"#position-rows tr[data-id='{first.json()['id']}']")
    cell = row.locator("td[data-field=stopLoss]")
    stop = cell.locator("input")
    await expect(stop).to_have_count(1, timeout=WAIT)
    await stop.fill("61000")
    await stop.press("Enter")
    await expect(cell.locator(".field-error")).to_contain_text("stop", timeout=WAIT)
    await page.locator("#balance").click()  # the cursor leaves the row: it may be redrawn

    second = await live.http.post("/v1/positions", json=body, headers=auth)
    assert second.status_code == 201, second.text
    await expect(page.locator("#position-rows tr")).to_have_count(2, timeout=WAIT)
    await expect(stop).to_have_value("61000", timeout=WAIT)
    await expect(cell.locator(".field-error")).to_contain_text("stop", timeout=WAIT)
    await expect(stop).to_have_attribute("aria-invalid", "true")


async def test_the_page_works_390_px_wide(live: Live, browser: Any) -> None:
    """At 390 px the page signs in, shows the account, and no page scrolls sideways."""
    token = await token_of(live, "alice")
    page = await page_of(browser, 390, 844)
    await sign_in(page, live, token)
    await expect(page.locator("#balance")).to_have_text("10000.00", timeout=WAIT)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    await page.screenshot(path=shot("mobile-390"), full_page=True)
    await page.click("a[data-page=operator]")
    await expect(page.locator("#health-status")).not_to_have_text("-", timeout=WAIT)
    await page.screenshot(path=shot("operator-390"), full_page=True)
    for name in ("ledger", "agent", "operator"):
        await page.click(f"a[data-page={name}]")
        await expect(page.locator(f"#{name}")).to_be_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (name, width)
