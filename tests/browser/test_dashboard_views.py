"""The dashboard's other views in a real browser: ledger and CSV, charts, watchlist, the
agent, the operator page, SPEC 5.2 fields, and a lost event stream that resumes."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from .conftest import WAIT, Live, drop_http_connections, page_of, shot, sign_in, token_of

pytest.importorskip("playwright", reason="Playwright for Python is not installed")
from playwright.async_api import Page, expect


async def open_and_stop_out(live: Live, token: str) -> str:
    """A futures long opened at 60000 with a stop at 59000, closed by a 58900 tick."""
    auth = {"Authorization": f"Bearer {token}"}
    await live.sim.set_price("XBTUSDTM", "60000")
    body = {
        "symbol": "XBTUSDTM",
        "market": "futures",
        "side": "long",
        "qty": "0.1",
        "leverage": "5",
        "stopLoss": "59000",
    }
    opened = await live.http.post("/v1/positions", json=body, headers=auth)
    assert opened.status_code == 201, opened.text
    pid = str(opened.json()["id"])

    async def in_book() -> bool:
        return pid in live.worker.engine.book

    await live.until(in_book, within=60)
    await live.sim.publish_burst("XBTUSDTM", ["58900"])

    async def closed() -> bool:
        doc = (await live.http.get(f"/v1/positions/{pid}", headers=auth)).json()
        return bool(doc["details"]["status"] == "closed")

    await live.until(closed, within=60)
    return pid


async def csv_of(page: Page, button: str) -> list[dict[str, str]]:
    async with page.expect_download() as info:
        await page.click(button)
    download = await info.value
    path = await download.path()
    text = await asyncio.to_thread(Path(path).read_text)
    return list(csv.DictReader(io.StringIO(text)))


async def test_the_ledger_filters_by_kind_and_date_and_exports_what_it_shows(
    live: Live, browser: Any
) -> None:
    """Kind and date filters narrow the ledger; its CSV holds the filtered rows as the API
    gave them, and the history's CSV holds the closed position."""
    token = await token_of(live, "alice", "10000")
    pid = await open_and_stop_out(live, token)
    auth = {"Authorization": f"Bearer {token}"}
    ledger = (await live.http.get("/v1/ledger", headers=auth)).json()
    page = await page_of(browser)
    await sign_in(page, live, token)
    await page.click("a[data-page=ledger]")
    rows = page.locator("#ledger-rows tr")
    await expect(rows).to_have_count(len(ledger), timeout=WAIT)
    await page.select_option("#ledger-filter [name=kind]", "fee")
    fees = [e for e in ledger if e["kind"] == "fee"]
    await expect(rows).to_have_count(len(fees), timeout=WAIT)
    await expect(page.locator("#ledger-rows tr:not([data-kind=fee])")).to_have_count(0)
    await page.screenshot(path=shot("ledger"), full_page=True)
    exported = await csv_of(page, "#ledger-csv")
    assert [r["id"] for r in exported] == [e["id"] for e in fees]
    assert [r["amount"] for r in exported] == [e["amount"] for e in fees]

    await page.fill("#ledger-filter [name=until]", "2000-01-01")
    await expect(rows).to_have_count(0, timeout=WAIT)
    await page.fill("#ledger-filter [name=until]", "")
    await page.select_option("#ledger-filter [name=kind]", "")
    await expect(rows).to_have_count(len(ledger), timeout=WAIT)

    await page.click("a[data-page=trade]")
    await expect(page.locator(f"#history-rows tr[data-id='{pid}']")).to_have_count(1)
    history = await csv_of(page, "#history-csv")
    assert [(r["id"], r["closeReason"]) for r in history] == [(pid, "stop_loss")]
    doc = (await live.http.get(f"/v1/positions/{pid}", headers=auth)).json()
    assert Decimal(history[0]["realizedPnl"]) == Decimal(doc["realizedPnl"])


async def test_the_chart_draws_the_positions_entry_stop_target_and_liquidation(
    live: Live, browser: Any
) -> None:
    """The price chart of an open position's symbol carries a line at each of its levels,
    and the equity curve is drawn from the ledger."""
    token = await token_of(live, "alice", "10000")
    await live.sim.set_price("XBTUSDTM", "60000")
    body = {
        "symbol": "XBTUSDTM",
        "market": "futures",
        "side": "long",
        "qty": "0.1",
        "leverage": "5",
        "stopLoss": "59000",
        "takeProfit": "62000",
    }
    opened = await live.http.post(
        "/v1/positions", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert opened.status_code == 201, opened.text
    page = await page_of(browser)
    await sign_in(page, live, token)
    chart = page.locator("#price-chart")
    await expect(chart).to_have_attribute("data-symbol", "XBTUSDTM", timeout=WAIT)
    for kind, value in (
        ("entry", 60000),
        ("stop", 59000),
        ("target", 62000),
        ("liq", 48300),
    ):
        level = chart.locator(f"g.level[data-kind={kind}]")
        await expect(level).to_have_count(1, timeout=WAIT)
        assert float(await level.get_attribute("data-value") or "nan") == value
    await expect(chart.locator("path.series")).to_have_count(1, timeout=WAIT)
    await expect(page.locator("#equity-chart path.series")).to_have_count(1, timeout=WAIT)
    await expect(page.locator("#price-rows tr[data-symbol=XBTUSDTM] .change")).to_have_text(
        re.compile(r"^[+-]\d+\.\d\d%$"), timeout=WAIT
    )
    await page.locator("#chart").screenshot(path=shot("chart"))


async def test_the_watchlist_is_saved_from_the_page_and_its_errors_shown_at_the_field(
    live: Live, browser: Any
) -> None:
    """A saved watchlist lists its symbols with prices; a refused one says why at the field."""
    token = await token_of(live, "alice")
    page = await page_of(browser)
    await sign_in(page, live, token)
    form = page.locator("#watchlist-form")
    await form.locator("[name=symbols]").fill("BTC-USDT, ETH-USDT")
    await form.locator("button").click()
    await expect(page.locator("#price-rows tr[data-symbol=ETH-USDT]")).to_have_count(
        1, timeout=WAIT
    )
    auth = {"Authorization": f"Bearer {token}"}
    saved = (await live.http.get("/v1/watchlist", headers=auth)).json()
    assert saved["symbols"] == ["BTC-USDT", "ETH-USDT"]
    await form.locator("[name=symbols]").fill("BTC-USDT, not a symbol!")
    await form.locator("button").click()
    await expect(form.locator(".field-error")).to_contain_text("symbols", timeout=WAIT)
    await expect(form.locator("[name=symbols]")).to_have_attribute("aria-invalid", "true")


async def test_the_agent_is_configured_from_the_page_and_its_decisions_listed_with_reasons(
    live: Live, browser: Any
) -> None:
    """A bad limit is refused at its field; a good config is saved; a run of the agent
    appears with its rationale without a reload."""
    from cogmora.cli.jobs import build_jobs, run_agent_now

    token = await token_of(live, "alice", "10000")
    page = await page_of(browser)
    await sign_in(page, live, token)
    await page.click("a[data-page=agent]")
    form = page.locator("#agent-form")
    await form.locator("[name=symbols]").fill("BTC-USDT")
    await form.locator("[name='risk.maxLeverage']").fill("lots")
    await form.locator("button").click()
    bad = form.locator("label", has=page.locator("[name='risk.maxLeverage']"))
    await expect(bad.locator(".field-error")).to_contain_text("maxLeverage", timeout=WAIT)
    await page.screenshot(path=shot("agent-error"), full_page=True)
    await form.locator("[name='risk.maxLeverage']").fill("2")
    await form.locator("[name=schedule]").fill("every 15m")
    await form.locator("button").click()
    await expect(page.locator("#agent-saved")).to_have_text("Saved.", timeout=WAIT)
    auth = {"Authorization": f"Bearer {token}"}
    config = (await live.http.get("/v1/agent", headers=auth)).json()
    assert (config["symbols"], config["schedule"]) == (["BTC-USDT"], "every 15m")
    assert Decimal(config["risk"]["maxLeverage"]) == 2

    await live.sim.set_price("BTC-USDT", "60000")
    decision = await run_agent_now(build_jobs(live.system), "alice")
    item = page.locator(f"#decision-list article[data-id='{decision.id}']")
    await expect(item).to_have_count(1, timeout=WAIT)
    await expect(item.locator(".rationale")).to_have_text(
        decision.rationale or "(no reason given)", timeout=WAIT
    )
    await page.screenshot(path=shot("agent"), full_page=True)


async def test_the_operator_page_shows_the_feeds_and_the_crossing_latency_from_metrics(
    live: Live, browser: Any
) -> None:
    """After a stop fires, the operator page shows both feeds connected and one crossing in
    the tick-to-closing histogram: the numbers of /metrics."""
    token = await token_of(live, "alice", "10000")
    await open_and_stop_out(live, token)
    page = await page_of(browser)
    await sign_in(page, live, token)
    await page.click("a[data-page=operator]")
    await expect(page.locator("#health-status")).to_have_text("ok", timeout=WAIT)
    for market in ("spot", "futures"):
        feed = page.locator(f"#feed-rows tr[data-feed={market}]")
        await expect(feed.locator("td").nth(1)).to_have_text("connected", timeout=WAIT)
    await expect(page.locator("#latency-summary")).to_contain_text("1 crossings", timeout=WAIT)
    await expect(page.locator("#latency-chart rect.bar")).not_to_have_count(0, timeout=WAIT)
    await expect(page.locator("#m-commit-errors")).to_have_text("0", timeout=WAIT)
    await page.screenshot(path=shot("operator"), full_page=True)


async def test_a_lost_event_stream_is_shown_and_resumes_with_what_was_missed(
    live: Live, browser: Any
) -> None:
    """With the stream cut and reconnects refused, the page says live updates are lost; a
    position opened meanwhile appears once the stream is back, without a reload."""
    token = await token_of(live, "alice", "10000")
    page = await page_of(browser)
    await sign_in(page, live, token)
    await expect(page.locator("#live")).to_have_attribute("data-state", "connected", timeout=WAIT)
    await page.route("**/v1/events", lambda route: route.abort("connectionreset"))
    assert drop_http_connections(live) >= 1  # at least the event stream
    await expect(page.locator("#banner")).to_contain_text("Live updates lost", timeout=WAIT)
    await expect(page.locator("#live")).to_have_attribute("data-state", "lost")
    await page.screenshot(path=shot("reconnecting"))
    await live.sim.set_price("BTC-USDT", "60000")
    body = {"symbol": "BTC-USDT", "market": "spot", "side": "long", "qty": "0.01"}
    opened = await live.http.post(
        "/v1/positions", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert opened.status_code == 201, opened.text
    await page.unroute("**/v1/events")
    await expect(page.locator("#banner")).to_be_hidden(timeout=WAIT)
    await expect(page.locator("#live")).to_have_attribute("data-state", "connected")
    await expect(page.locator(f"#position-rows tr[data-id='{opened.json()['id']}']")).to_have_count(
        1, timeout=WAIT
    )


async def test_spec_5_2_fields_show_when_the_documents_carry_them(live: Live, browser: Any) -> None:
    """A trailing stop, a take-profit ladder and an OCO group in the documents are shown;
    the partial-close and OCO inputs are there (the API's side is tested with the API)."""
    token = await token_of(live, "alice", "10000")
    page = await page_of(browser)
    # The documents come as the API's answers, to every refresh the page makes (put into
    # the page's state by hand, a refresh from the event stream could wipe them first).
    position = {
        "id": "p1", "symbol": "XBTUSDTM", "market": "futures", "side": "long", "qty": "0.1",
        "entryPrice": "60000", "leverage": "5",
        "trailingStop": {"callbackRate": "0.02"},
        "takeProfits": [{"price": "62000", "fraction": "0.5", "filled": True},
                        {"price": "64000", "fraction": "0.5"}],
        "details": {"status": "open", "stopLoss": None, "liquidationPrice": "48300",
                    "trailingStop": "60760", "trailingPeak": "62000"},
    }
    trigger = {
        "id": "t1", "symbol": "BTC-USDT", "market": "spot", "ocoGroup": "g1",
        "condition": {"op": "above", "price": "70000"}, "action": {"side": "long", "qty": "0.1"},
        "details": {"status": "active"},
    }
    await page.route("**/v1/positions?status=open", lambda route: route.fulfill(json=[position]))
    await page.route("**/v1/triggers", lambda route: route.fulfill(json=[trigger]))
    await sign_in(page, live, token)
    await expect(page.locator("#trigger-form [name=ocoGroup]")).to_be_visible()
    await expect(page.locator("#position-rows tr[data-id=p1]")).to_have_count(1)
    await page.evaluate(
        """() => import('./trade.js').then(async (t) => {
          const { state } = await import('./state.js');
          state.chartSymbol = 'XBTUSDTM';
          await t.renderChart(true);
        })"""
    )
    row = page.locator("#position-rows tr[data-id=p1]")
    await expect(row.locator(".trailing")).to_contain_text("2.00%")
    await expect(row.locator(".trailing")).to_contain_text("stop 60760")
    await expect(row.locator("td[data-field=takeProfits] div")).to_have_count(2)
    await expect(row.locator("[name=closeQty]")).to_be_visible()
    await expect(page.locator("#trigger-rows tr[data-id=t1] .oco")).to_have_text("g1")
    await expect(page.locator("#price-chart g.level[data-kind=trail]")).to_have_count(1)
    await expect(page.locator("#price-chart g.level[data-kind=target]")).to_have_count(2)
    await page.locator("#positions").screenshot(path=shot("spec-5-2-fields"))
