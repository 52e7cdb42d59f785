"""Every process's symbol catalog, loaded from the (simulated) exchange over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cogmora.cli.catalog import refresh_catalog
from cogmora.domain.enums import Market
from cogmora.errors import Temporary
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.services.symbols import SymbolCatalog
from cogmora.simulator import KucoinSimulator, SimulatorConfig


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    async with KucoinSimulator(SimulatorConfig(tick_rate=0, seed=3)) as simulator:
        yield simulator


async def test_the_catalog_learns_ticks_sizes_and_last_prices(sim: KucoinSimulator) -> None:
    """Spot `priceIncrement` and futures `tickSize` become each symbol's tick, and the last
    trade price is kept as the price band's first reference."""
    catalog = SymbolCatalog()
    async with (
        KucoinRest(sim.spot_url, Market.SPOT) as spot,
        KucoinRest(sim.futures_url, Market.FUTURES) as futures,
    ):
        await refresh_catalog(catalog, {Market.SPOT: spot, Market.FUTURES: futures})
    for market in Market:
        assert catalog.symbols(market) == set(sim.symbols(market))
        for symbol in sim.symbols(market):
            spec = catalog.spec(symbol)
            assert spec.tick == sim.host(symbol).instruments[symbol].increment
            assert spec.last_price == sim.price(symbol)
            assert spec.min_size is not None and spec.min_size > 0


async def test_a_market_that_fails_keeps_its_previous_list(sim: KucoinSimulator) -> None:
    """An unreachable futures host leaves the futures list as it was and says so; spot loads."""
    catalog = SymbolCatalog(futures=["XBTUSDTM"])
    async with (
        KucoinRest(sim.spot_url, Market.SPOT) as spot,
        KucoinRest("http://127.0.0.1:9", Market.FUTURES, timeout=2) as futures,
    ):
        with pytest.raises(Temporary):
            await refresh_catalog(catalog, {Market.SPOT: spot, Market.FUTURES: futures})
    assert catalog.symbols(Market.FUTURES) == {"XBTUSDTM"}
    assert catalog.symbols(Market.SPOT) == set(sim.symbols(Market.SPOT))
