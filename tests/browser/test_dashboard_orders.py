"""SPEC 5.2 orders from the dashboard against the live system: a trailing stop, a
take-profit ladder with moveStopToEntryAfter and expiresAt sent from the open form and the
amend editors of a position's row, the API's 422 shown at its input, and a partial close."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import (
    SCREENSHOTS,
    WAIT,
    Live,
    error_at,
    page_of,
    shot,
    sign_in,
    submit_form,
    token_of,
)

pytest.importorskip("playwright", reason="Playwright for Python is not installed")
from playwright.async_api import Locator, Page, expect


async def fill_open(page: Page, **fields: str) -> Locator:
    """Fill the open form by the inputs' names and submit it."""
    return await submit_form(page, "open-form", **fields)



async def in_book(live: Live, pid: str) -> None:
    async def there() -> bool:
        return pid in live.worker.engine.book

    await live.until(there, within=60)


async def test_a_trailing_stop_opened_from_the_form_shows_its_stop_and_then_its_peak(
    live: Live, browser: Any
) -> None:
    """callbackRate 0.02 on a long at 60000: the row shows 2%, the stop at 58800, and after
    a tick at 61000 the peak 61000 and the stop 59780, without a reload."""
    token = await token_of(live, "alice")
    await live.sim.set_price("XBTUSDTM", "60000")
    page = await page_of(browser)
    await sign_in(page, live, token)
    await fill_open(
        page,
        symbol="XBTUSDTM",
        market="futures",
        qty="0.1",
        leverage="5",
        **{"trailingStop.callbackRate": "0.02"},
    )
    row = page.locator("#position-rows tr")
    await expect(row).to_have_count(1, timeout=WAIT)
    trailing = row.locator("td.trailing")
    await expect(trailing.locator(".rate")).to_have_text("2.00%", timeout=WAIT)
    await expect(trailing.locator(".trail-stop")).to_have_text("stop 58800", timeout=WAIT)
    pid = await row.get_attribute("data-id")
    assert pid is not None
    await in_book(live, pid)
    await live.sim.publish_burst("XBTUSDTM", ["61000"])
    await expect(trailing.locator(".trail-peak")).to_have_text("peak 61000", timeout=WAIT)
    await expect(trailing.locator(".trail-stop")).to_have_text("stop 59780", timeout=WAIT)


async def test_a_trailing_stop_is_added_to_an_open_position_in_place_and_its_422_shown(
    live: Live, browser: Any
) -> None:
    """The row's trailing editor PATCHes `trailingStop`; a rate over 0.5 is refused with
    the API's message at the callback-rate input, a good one then shows in the row."""
    token = await token_of(live, "alice")
    await live.sim.set_price("BTC-USDT", "60000")
    page = await page_of(browser)
    await sign_in(page, live, token)
    await fill_open(page, qty="0.1")
    cell = page.locator("#position-rows tr td.trailing")
    await expect(cell).to_have_count(1, timeout=WAIT)
    await cell.locator("summary").click()
    rate = cell.locator('[name="trailingStop.callbackRate"]')
    await rate.fill("0.9")
    await cell.locator("button[type=submit]").click()
    await expect(error_at(cell, page, "trailingStop.callbackRate")).to_contain_text(
        "trailingStop.callbackRate", timeout=WAIT
    )
    await expect(rate).to_have_attribute("aria-invalid", "true")
    await rate.fill("0.05")
    await cell.locator("button[type=submit]").click()
    await expect(cell.locator(".rate")).to_have_text("5.00%", timeout=WAIT)
    await expect(cell.locator(".trail-stop")).to_have_text("stop 57000", timeout=WAIT)


async def test_a_two_leg_ladder_opened_from_the_form_shows_its_legs(
    live: Live, browser: Any
) -> None:
    """Two legs and moveStopToEntryAfter 1 reach the position; the row lists both legs."""
    token = await token_of(live, "alice")
    await live.sim.set_price("BTC-USDT", "60000")
    page = await page_of(browser, 1280, 900)
    await sign_in(page, live, token)
    await page.locator("#open-form [name=qty]").fill("0.1")
    await fill_open(
        page,
        **{
            "takeProfits[0].price": "61000",
            "takeProfits[0].fraction": "0.5",
            "takeProfits[1].price": "62000",
            "takeProfits[1].fraction": "0.5",
            "moveStopToEntryAfter": "1",
            "trailingStop.callbackRate": "0.03",
            "stopLoss": "58000",
        },
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.locator("#open").screenshot(path=str(SCREENSHOTS / "open-form-orders-1280.png"))
    legs = page.locator("#position-rows tr td[data-field=takeProfits] div.tp-leg")
    await expect(legs).to_have_count(2, timeout=WAIT)
    await expect(legs.nth(0)).to_have_text("TP1 61000 × 50%")
    await expect(legs.nth(1)).to_have_text("TP2 62000 × 50%")
    await expect(page.locator("#position-rows .move-after")).to_have_text("stop → entry after TP1")


async def test_a_ladder_whose_second_leg_is_below_the_first_shows_the_apis_message_at_it(
    live: Live, browser: Any
) -> None:
    """For a long, TP2 below TP1 is a 422 naming `takeProfits[1].price`: the open form shows
    it at that input, and so does the row's ladder editor on an open position."""
    token = await token_of(live, "alice")
    await live.sim.set_price("BTC-USDT", "60000")
    page = await page_of(browser)
    await sign_in(page, live, token)
    form = await fill_open(
        page,
        qty="0.1",
        **{
            "takeProfits[0].price": "62000",
            "takeProfits[0].fraction": "0.5",
            "takeProfits[1].price": "61000",
            "takeProfits[1].fraction": "0.5",
        },
    )
    second = form.locator('[name="takeProfits[1].price"]')
    message = "takeProfits[1].price must be above takeProfits[0].price for a long"
    await expect(error_at(form, page, "takeProfits[1].price")).to_have_text(message, timeout=WAIT)
    await expect(second).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#position-rows tr")).to_have_count(0)

    await second.fill("63000")
    await form.locator("button[type=submit]").click()
    cell = page.locator("#position-rows tr td[data-field=takeProfits]")
    await expect(cell.locator("div.tp-leg")).to_have_count(2, timeout=WAIT)
    await expect(form.locator(".field-error")).to_have_count(0)
    await cell.locator("summary").click()
    edit = cell.locator("form.amend")
    await edit.locator('[name="takeProfits[1].price"]').fill("61500")
    await edit.locator("button[type=submit]").click()
    await expect(error_at(edit, page, "takeProfits[1].price")).to_have_text(message, timeout=WAIT)
    await page.locator("#positions").screenshot(path=shot("amend-ladder-error"))


async def test_a_partial_close_shrinks_the_row_and_history_shows_the_part(
    live: Live, browser: Any
) -> None:
    """Closing 0.04 of 0.1 leaves 0.06 in the row and a `part` of 0.04 in history."""
    token = await token_of(live, "alice")
    await live.sim.set_price("BTC-USDT", "60000")
    page = await page_of(browser)
    await sign_in(page, live, token)
    await fill_open(page, qty="0.1")
    row = page.locator("#position-rows tr")
    await expect(row).to_have_count(1, timeout=WAIT)
    await expect(row.locator("td").nth(2)).to_have_text("0.1")
    await row.locator("[name=closeQty]").fill("0.04")
    await row.locator("button.close").click()  # page_of accepts the confirmation
    await expect(row.locator("td").nth(2)).to_have_text("0.06", timeout=WAIT)
    part = page.locator("#history-rows tr")
    await expect(part).to_have_count(1, timeout=WAIT)
    await expect(part.locator("td").nth(3)).to_have_text("0.04 part")
    await expect(part.locator(".reason")).to_have_text("manual")


async def test_expires_at_from_the_form_shows_in_the_row_and_a_past_one_at_the_field(
    live: Live, browser: Any
) -> None:
    """A datetime typed in the form is read in the browser's zone (UTC here: page_of); the
    row shows it; a past one is the API's 422 at the input."""
    token = await token_of(live, "alice")
    await live.sim.set_price("BTC-USDT", "60000")
    page = await page_of(browser)
    await sign_in(page, live, token)
    form = await fill_open(page, qty="0.1", expiresAt="2020-01-01T00:00")
    await expect(error_at(form, page, "expiresAt")).to_have_text(
        "expiresAt must be in the future", timeout=WAIT
    )
    await fill_open(page, expiresAt="2099-06-30T12:30")
    await expect(page.locator("#position-rows tr td.expires")).to_have_text(
        "2099-06-30 12:30:00", timeout=WAIT
    )
