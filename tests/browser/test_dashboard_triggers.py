"""The trigger form against the live system: a trigger's action carries the same SPEC 5.2
orders as the open form (the same inputs, orders.js), its 422s show at their inputs, and
an OCO group placed from the page is seen resolved when one member fires."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
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


async def place(page: Page, **fields: str) -> Locator:
    """Fill the trigger form by the inputs' names and submit it."""
    return await submit_form(page, "trigger-form", **fields)



async def ready_to_fire(live: Live, symbol: str) -> None:
    """Every stored trigger is in the worker's book and its symbol's feed is subscribed:
    a tick sent now is judged against them."""
    await live.synced()
    await asyncio.wait_for(live.sim.wait_subscribed([symbol]), 60)


async def test_a_trigger_with_a_trailing_stop_and_a_ladder_is_listed_and_opens_them(
    live: Live, browser: Any
) -> None:
    """Placed from the page with a 2% trail and two legs (stop to entry after the first),
    the trigger's row lists them; when 59000 is crossed, the position it opens has them."""
    token = await token_of(live, "alice")
    await live.sim.set_price("BTC-USDT", "60000")
    page = await page_of(browser, 1280, 900)
    await sign_in(page, live, token)
    await place(
        page,
        op="below",
        price="59000",
        qty="0.1",
        **{
            "trailingStop.callbackRate": "0.02",
            "takeProfits[0].price": "61000",
            "takeProfits[0].fraction": "0.5",
            "takeProfits[1].price": "62000",
            "takeProfits[1].fraction": "0.5",
            "moveStopToEntryAfter": "1",
            "expiresAt": "2099-06-30T12:30",
        },
    )
    row = page.locator("#trigger-rows tr")
    await expect(row).to_have_count(1, timeout=WAIT)
    await expect(row.locator(".trail")).to_have_text("trail 2.00%")
    await expect(row.locator(".tp-leg")).to_have_text(["TP1 61000 × 50%", "TP2 62000 × 50%"])
    await expect(row.locator(".move-after")).to_have_text("stop → entry after TP1")
    await expect(row.locator(".expires")).to_have_text("2099-06-30 12:30:00")
    await expect(row.locator(".status")).to_have_text("active")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.locator("#triggers").screenshot(path=str(SCREENSHOTS / "trigger-orders-1280.png"))

    await ready_to_fire(live, "BTC-USDT")
    await live.sim.publish_burst("BTC-USDT", ["58900"])
    await expect(row.locator(".status")).to_have_text("triggered", timeout=WAIT)
    position = page.locator("#position-rows tr")
    await expect(position).to_have_count(1, timeout=WAIT)
    await expect(position.locator("td.trailing .rate")).to_have_text("2.00%")
    await expect(position.locator("td[data-field=takeProfits] div.tp-leg")).to_have_count(2)
    await expect(position.locator(".move-after")).to_have_text("stop → entry after TP1")


async def test_a_triggers_order_errors_show_at_their_inputs(live: Live, browser: Any) -> None:
    """The domain's `trailingStop.callbackRate` and the schema's
    `action.takeProfits.0.fraction` each land at the input of that name in the trigger
    form, not at the condition's price; a good trigger then clears them."""
    token = await token_of(live, "alice")
    await live.sim.set_price("BTC-USDT", "60000")
    page = await page_of(browser)
    await sign_in(page, live, token)
    form = await place(
        page, op="below", price="59000", qty="0.1", **{"trailingStop.callbackRate": "0.9"}
    )
    rate = form.locator('[name="trailingStop.callbackRate"]')
    await expect(error_at(form, page, "trailingStop.callbackRate")).to_have_text(
        "trailingStop.callbackRate must be > 0 and <= 0.5", timeout=WAIT
    )
    await expect(rate).to_have_attribute("aria-invalid", "true")
    await page.locator("#triggers").screenshot(path=shot("trigger-error"))

    await rate.fill("")
    await place(page, **{"takeProfits[0].price": "61000", "takeProfits[0].fraction": "half"})
    await expect(error_at(form, page, "takeProfits[0].fraction")).to_contain_text(
        "must be a decimal number", timeout=WAIT
    )
    await expect(error_at(form, page, "price")).to_have_count(0)
    await expect(form.locator(".field-error")).to_have_count(1)
    await place(page, **{"takeProfits[0].fraction": "1"})
    await expect(page.locator("#trigger-rows tr")).to_have_count(1, timeout=WAIT)
    await expect(form.locator(".field-error")).to_have_count(0)


async def test_an_oco_pair_placed_from_the_page_shows_both_done_when_one_fires(
    live: Live, browser: Any
) -> None:
    """A breakout above 61000 and a dip buy below 59000 in one group: the dip fires, and
    the page shows it triggered, its partner cancelled, and neither can be cancelled."""
    token = await token_of(live, "alice")
    await live.sim.set_price("BTC-USDT", "60000")
    page = await page_of(browser)
    await sign_in(page, live, token)
    await place(page, op="above", price="61000", qty="0.01", ocoGroup="btc-range")
    rows = page.locator("#trigger-rows tr")
    await expect(rows).to_have_count(1, timeout=WAIT)
    await place(page, op="below", price="59000", qty="0.01", ocoGroup="btc-range")
    await expect(rows).to_have_count(2, timeout=WAIT)
    await expect(rows.locator(".oco")).to_have_text(["btc-range", "btc-range"])
    await expect(page.locator("#trigger-rows button.cancel")).to_have_count(2)

    await ready_to_fire(live, "BTC-USDT")
    await live.sim.publish_burst("BTC-USDT", ["58900"])
    dip = page.locator("#trigger-rows tr", has_text="≤ 59000")
    breakout = page.locator("#trigger-rows tr", has_text="≥ 61000")
    await expect(dip.locator(".status")).to_have_text("triggered", timeout=WAIT)
    await expect(breakout.locator(".status")).to_have_text("cancelled", timeout=WAIT)
    await expect(page.locator("#trigger-rows button.cancel")).to_have_count(0)
    await expect(page.locator("#position-rows tr")).to_have_count(1, timeout=WAIT)
    await page.locator("#triggers").screenshot(path=shot("trigger-oco"))


async def test_the_trigger_form_fits_390_px(live: Live, browser: Any) -> None:
    """At 390 px the trigger form's new inputs stack and nothing scrolls sideways."""
    token = await token_of(live, "alice")
    page = await page_of(browser, 390, 844)
    await sign_in(page, live, token)
    await expect(page.locator("#trigger-form [name='trailingStop.callbackRate']")).to_be_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    await page.locator("#triggers").screenshot(path=shot("trigger-form-390"))
    await page.locator("#open").screenshot(path=shot("open-form-390"))


ALIASES = {"Asia/Kolkata": "Asia/Calcutta"}


@pytest.mark.parametrize(
    ("zone", "typed", "hint", "stored"),
    [
        (
            "Asia/Kolkata",
            "2099-06-30T12:30",
            "(UTC+05:30) = 2099-06-30 07:00 UTC",
            datetime(2099, 6, 30, 7, 0, tzinfo=UTC),
        ),
        # The offset is the typed day's: winter time, whatever the date is now.
        (
            "America/New_York",
            "2099-01-15T09:00",
            "(UTC-05:00) = 2099-01-15 14:00 UTC",
            datetime(2099, 1, 15, 14, 0, tzinfo=UTC),
        ),
    ],
)
async def test_an_expiry_typed_in_the_browsers_zone_is_stored_as_that_instant(
    live: Live, browser: Any, zone: str, typed: str, hint: str, stored: datetime
) -> None:
    """The open form's and the trigger form's expiresAt are read in the browser's time zone,
    named next to the input with the UTC instant; the API stores that instant and the
    tables show it in UTC."""
    token = await token_of(live, "alice")
    auth = {"Authorization": f"Bearer {token}"}
    await live.sim.set_price("BTC-USDT", "60000")
    page = await page_of(browser, timezone=zone)
    await sign_in(page, live, token)
    utc = stored.strftime("%Y-%m-%d %H:%M:%S")
    # The zone as the browser names it: Chromium's ICU still says Asia/Calcutta.
    named = await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert named in (zone, ALIASES.get(zone))
    hint = f"{named} {hint}"

    trigger = page.locator("#trigger-form")
    await trigger.locator("[name=expiresAt]").fill(typed)
    await expect(trigger.locator(".tz")).to_have_text(hint)
    await place(page, op="below", price="59000", qty="0.01")
    await expect(page.locator("#trigger-rows tr .expires")).to_have_text(utc, timeout=WAIT)
    [doc] = (await live.http.get("/v1/triggers", headers=auth)).json()
    assert datetime.fromisoformat(doc["expiresAt"]) == stored

    opened = page.locator("#open-form")
    await opened.locator("[name=qty]").fill("0.01")
    await opened.locator("[name=expiresAt]").fill(typed)
    await expect(opened.locator(".tz")).to_have_text(hint)
    await page.locator("#open").screenshot(path=shot(f"expires-{zone.replace('/', '-').lower()}"))
    await opened.locator("button[type=submit]").click()
    await expect(page.locator("#position-rows tr td.expires")).to_have_text(utc, timeout=WAIT)
    [position] = (await live.http.get("/v1/positions?status=open", headers=auth)).json()
    assert datetime.fromisoformat(position["expiresAt"]) == stored
