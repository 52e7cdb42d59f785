"""Where the latest price comes from, and the 5-second freshness rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from cogmora.api.errors import status_of
from cogmora.domain.enums import Market
from cogmora.domain.models import PriceQuote
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.errors import Conflict
from cogmora.services.prices import ChainedPrices, LivePrices, StorePrices, fresh_price
from cogmora.store.sqlite import SqliteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_live_prices_keep_the_last_trade_and_the_mark_apart() -> None:
    """A mark tick updates only the mark price; a trade tick keeps the last mark."""
    live = LivePrices()
    live.update(Tick("XBTUSDTM", Market.FUTURES, D(100), PriceKind.MARK), T0)
    assert live.get("XBTUSDTM") is None  # a mark alone is no trade price
    live.update(Tick("XBTUSDTM", Market.FUTURES, D(101)), T0)
    live.update(Tick("XBTUSDTM", Market.FUTURES, D(99), PriceKind.MARK), T0 + timedelta(1))
    q = await live.latest("XBTUSDTM", Market.FUTURES)
    assert q == PriceQuote("XBTUSDTM", D(101), T0, D(99))
    live.update(Tick("XBTUSDTM", Market.FUTURES, D(102)), T0 + timedelta(2))
    assert live.get("XBTUSDTM") == PriceQuote("XBTUSDTM", D(102), T0 + timedelta(2), D(99))
    assert set(live.snapshot()) == {"XBTUSDTM"}


async def test_store_prices_round_trip(store: SqliteStore) -> None:
    """Quotes written to prices/{symbol} are read back exactly."""
    prices = StorePrices(store)
    assert await prices.latest("BTC-USDT", Market.SPOT) is None
    q = PriceQuote("BTC-USDT", D("60000.12"), T0)
    await prices.put([q])
    assert await prices.latest("BTC-USDT", Market.SPOT) == q


async def test_chained_prices_prefer_the_newest_quote(store: SqliteStore) -> None:
    """Whichever source saw the symbol last wins, whatever the order of the sources."""
    live, stored = LivePrices(), StorePrices(store)
    live.put(PriceQuote("BTC-USDT", D(1), T0))
    await stored.put([PriceQuote("BTC-USDT", D(2), T0 + timedelta(seconds=1))])
    assert (await ChainedPrices(live, stored).latest("BTC-USDT", Market.SPOT)).price == D(2)
    assert (await ChainedPrices(stored, live).latest("BTC-USDT", Market.SPOT)).price == D(2)
    assert await ChainedPrices(live, stored).latest("ETH-USDT", Market.SPOT) is None


@pytest.mark.parametrize("age", [0.0, 4.999, 5.0])
async def test_a_price_at_most_five_seconds_old_is_fresh(age: float) -> None:
    """A quote up to 5 s old fills."""
    live = LivePrices()
    live.put(PriceQuote("BTC-USDT", D(7), T0 - timedelta(seconds=age)))
    assert (await fresh_price(live, "BTC-USDT", Market.SPOT, T0, 5.0)).price == D(7)


@pytest.mark.parametrize("age", [5.001, 60.0])
async def test_an_older_or_missing_price_is_a_conflict(age: float) -> None:
    """Older than 5 s, or no quote at all, is 409 `no fresh price for SYMBOL`."""
    live = LivePrices()
    with pytest.raises(Conflict, match=r"^no fresh price for BTC-USDT$"):
        await fresh_price(live, "BTC-USDT", Market.SPOT, T0, 5.0)
    live.put(PriceQuote("BTC-USDT", D(7), T0 - timedelta(seconds=age)))
    with pytest.raises(Conflict) as info:
        await fresh_price(live, "BTC-USDT", Market.SPOT, T0, 5.0)
    assert status_of(info.value) == 409
