"""The watchlist scraper against the KuCoin simulator: one snapshot, every user's symbols."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from jobs_testkit import jobs_for

from cogmora.cli.compose import System, build_system
from cogmora.domain.enums import Market
from cogmora.domain.watchlist import NO_DATA, UNKNOWN_SYMBOL
from cogmora.services.symbols import SymbolCatalog
from cogmora.services.watchlist import Watchlists
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator
from cogmora.store.sqlite import SqliteStore


def by_symbol(entries: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {e["symbol"]: e for e in entries}


async def test_one_run_refreshes_every_users_symbols_from_one_snapshot(
    system: System, sim: KucoinSimulator, make_user
) -> None:
    """Each market's tickers are fetched once per run, and every watched symbol gets that
    snapshot's last price, 24h change, high, low and volume."""
    watchlists: Watchlists = system.watchlists
    await sim.set_price("BTC-USDT", "68000")
    await make_user("ann")
    await make_user("bob")
    await watchlists.put("ann", ["BTC-USDT", "XBTUSDTM", "ETH-USDT"])
    await watchlists.put("bob", ["ETH-USDT", "BTC-USDT"])
    spot_before = sim.hosts[Market.SPOT].limiter.used
    futures_before = sim.hosts[Market.FUTURES].limiter.used

    result = await jobs_for(system).watchlist.run_once()

    assert result is not None and result.users == 2 and result.entries == 5
    assert sim.hosts[Market.SPOT].limiter.used - spot_before == 15  # allTickers, once
    assert sim.hosts[Market.FUTURES].limiter.used - futures_before == 3  # contracts, once
    ann = await watchlists.get("ann")
    assert [e["symbol"] for e in ann] == ["BTC-USDT", "XBTUSDTM", "ETH-USDT"]
    btc = by_symbol(ann)["BTC-USDT"]
    assert btc["lastPrice"] == "68000.00000000" and btc["error"] is None
    assert Decimal(str(btc["high24h"])) >= Decimal(68000)
    for entry in ann:
        assert entry["market"] == ("futures" if entry["symbol"] == "XBTUSDTM" else "spot")
        for name in ("lastPrice", "changeRate24h", "high24h", "low24h", "volume24h"):
            assert entry[name] is not None, (entry["symbol"], name)
        assert entry["updatedAt"] == "2026-01-01T00:00:00.000000Z"
    bob = await watchlists.get("bob")
    assert by_symbol(bob)["BTC-USDT"]["lastPrice"] == "68000.00000000"


async def test_a_symbol_the_exchange_does_not_list_stays_with_an_error(
    system: System, make_user
) -> None:
    """Unknown spot and futures symbols keep their entries, marked unknown or delisted."""
    watchlists: Watchlists = system.watchlists
    await make_user("ann")
    await watchlists.put("ann", ["NOPE-USDT", "BTC-USDT", "NOPEUSDTM"])
    before = by_symbol(await watchlists.get("ann"))
    assert before["NOPE-USDT"]["error"] == NO_DATA

    result = await jobs_for(system).watchlist.run_once()

    assert result is not None and result.unknown == 2
    entries = await watchlists.get("ann")
    assert [e["symbol"] for e in entries] == ["NOPE-USDT", "BTC-USDT", "NOPEUSDTM"]
    after = by_symbol(entries)
    for symbol in ("NOPE-USDT", "NOPEUSDTM"):
        assert after[symbol]["error"] == UNKNOWN_SYMBOL
        assert after[symbol]["lastPrice"] is None
    assert after["BTC-USDT"]["error"] is None


async def test_a_failed_futures_fetch_does_not_call_futures_symbols_delisted(
    store: SqliteStore, sim: KucoinSimulator, clock: object, make_user, tmp_path: Path
) -> None:
    """With the futures host down, futures entries keep what they had; spot ones refresh."""
    settings = Settings(
        store_url=f"sqlite:///{tmp_path / 'x.db'}",
        kucoin_spot_url=sim.spot_url,
        kucoin_futures_url="http://127.0.0.1:9",
    )
    system = build_system(settings, store, catalog=SymbolCatalog(), clock=clock)  # type: ignore[arg-type]
    watchlists: Watchlists = system.watchlists
    await system.accounts.create_user("ann", Decimal(100))
    await watchlists.put("ann", ["XBTUSDTM", "BTC-USDT"])
    try:
        result = await jobs_for(system).watchlist.run_once()
    finally:
        await system.aclose()
    assert result is not None and "futures" in result.errors
    entries = by_symbol(await watchlists.get("ann"))
    assert entries["XBTUSDTM"]["error"] == NO_DATA
    assert entries["BTC-USDT"]["error"] is None
    assert system.catalog.known(Market.SPOT, "BTC-USDT")


async def test_the_next_refresh_waits_for_the_next_slot(system: System, make_user) -> None:
    """A second run in the same minute finds the slot taken; the next minute runs again."""
    watchlists: Watchlists = system.watchlists
    await make_user("ann")
    await watchlists.put("ann", ["BTC-USDT"])
    job = jobs_for(system).watchlist
    assert await job.run_once() is not None
    assert await job.run_once() is None
    system.clock.advance(60)  # type: ignore[attr-defined]
    assert await job.run_once() is not None
    doc = await system.store.read(lambda tx: tx.get("schedules/watchlist"))
    assert doc is not None and doc["nextRunAt"] == "2026-01-01T00:02:00.000000Z"
    assert doc["run"]["lastOutcome"] == "ok"
