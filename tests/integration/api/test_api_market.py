"""`GET /v1/candles/{symbol}`: KuCoin's klines through our REST client, validated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cogmora.cli.compose import System, build_system
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from conftest import LiveServer


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    simulator = KucoinSimulator(SimulatorConfig(tick_rate=0, seed=7))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def system(store: SqliteStore, db_path: Path, sim: KucoinSimulator) -> AsyncIterator[System]:
    """Real time (the simulator's candles are stamped with it) and the simulator as KuCoin."""
    settings = Settings(
        store_url=f"sqlite:///{db_path}",
        kucoin_spot_url=sim.spot_url,
        kucoin_futures_url=sim.futures_url,
    )
    built = build_system(
        settings, store, catalog=SymbolCatalog(spot=("BTC-USDT",), futures=("XBTUSDTM",))
    )
    yield built
    await built.aclose()


async def test_candles_carry_the_simulators_trades_oldest_first(
    live_server: LiveServer, make_user: Any, sim: KucoinSimulator
) -> None:
    """A scripted trade shows up in the newest candle of both markets, as decimal strings."""
    _, token = await make_user("alice")
    await sim.set_price("BTC-USDT", "61234.5")
    await sim.set_price("XBTUSDTM", "60111")
    async with live_server.client(token) as alice:
        spot = await alice.get("/v1/candles/btc-usdt", params={"limit": 5})
        futures = await alice.get("/v1/candles/XBTUSDTM", params={"market": "futures"})
    assert spot.status_code == 200, spot.text
    body = spot.json()
    assert (body["symbol"], body["market"], body["interval"]) == ("BTC-USDT", "spot", "1min")
    assert 1 <= len(body["candles"]) <= 5
    assert Decimal(body["candles"][-1]["close"]) == Decimal("61234.5")
    starts = [c["start"] for c in body["candles"]]
    assert starts == sorted(starts)
    assert futures.status_code == 200, futures.text
    assert Decimal(futures.json()["candles"][-1]["close"]) == Decimal("60111")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/v1/candles/NOPE-USDT", "symbol"),
        ("/v1/candles/BTC-USDT?interval=7min", "interval"),
        ("/v1/candles/BTC-USDT?limit=0", "limit"),
        ("/v1/candles/BTC-USDT?limit=501", "limit"),
        ("/v1/candles/BTC-USDT?market=futures", "market"),
        ("/v1/candles/BTC-USDT?market=margin", "market"),
    ],
)
async def test_a_bad_candles_query_is_422_naming_its_field(
    live_server: LiveServer, make_user: Any, query: str, field: str
) -> None:
    """Each bad parameter is refused with 422 and the field it names."""
    _, token = await make_user("alice")
    async with live_server.client(token) as alice:
        r = await alice.get(query)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.text
