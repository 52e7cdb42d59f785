"""KucoinRest against the simulator's REST hosts over real sockets."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cogmora.domain.enums import Market
from cogmora.errors import NotFound, Rejected, Temporary, ValidationError
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.simulator import KucoinSimulator, SimulatorConfig


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    async with KucoinSimulator(SimulatorConfig(tick_rate=0, mark_rate=0)) as simulator:
        yield simulator


@pytest.fixture
async def spot(sim: KucoinSimulator) -> AsyncIterator[KucoinRest]:
    async with KucoinRest(sim.spot_url, Market.SPOT, timeout=5) as rest:
        yield rest


@pytest.fixture
async def futures(sim: KucoinSimulator) -> AsyncIterator[KucoinRest]:
    async with KucoinRest(sim.futures_url, Market.FUTURES, timeout=5) as rest:
        yield rest


async def test_bullet_public_returns_a_token_and_servers(spot: KucoinRest) -> None:
    """The token call is parsed into a token and typed instance servers."""
    token = await spot.bullet_public()
    assert token.token
    assert token.instance_servers[0].endpoint.startswith("ws://")
    assert token.instance_servers[0].ping_interval == 18_000


async def test_all_tickers_have_decimal_prices(spot: KucoinRest, sim: KucoinSimulator) -> None:
    """allTickers lists every symbol with Decimal last prices."""
    await sim.set_price("BTC-USDT", "61234.5")
    tickers = await spot.all_tickers()
    by_symbol = {t.symbol: t for t in tickers.ticker}
    assert by_symbol["BTC-USDT"].last == Decimal("61234.5")
    assert set(by_symbol) == set(sim.symbols(Market.SPOT))


async def test_stats_of_a_known_and_an_unknown_symbol(spot: KucoinRest) -> None:
    """Stats of a known symbol are filled; an unknown symbol gives null fields, not an error."""
    known = await spot.stats("ETH-USDT")
    assert known.known and known.last is not None and known.high is not None
    unknown = await spot.stats("NOPE-USDT")
    assert unknown.symbol == "NOPE-USDT"
    assert not unknown.known and unknown.buy is None and unknown.vol is None


async def test_level1_and_last_price_of_spot(spot: KucoinRest, sim: KucoinSimulator) -> None:
    """Level-1 gives the last trade; last_price returns it with its UTC time."""
    await sim.set_price("SOL-USDT", "151.125")
    level1 = await spot.level1("SOL-USDT")
    assert level1 is not None and level1.price == Decimal("151.125")
    price, at = await spot.last_price("SOL-USDT")
    assert price == Decimal("151.125")
    assert at.tzinfo is UTC and abs((datetime.now(UTC) - at).total_seconds()) < 60


async def test_last_price_of_an_unknown_symbol_is_not_found(
    spot: KucoinRest, futures: KucoinRest
) -> None:
    """An unknown symbol has no fresh price: NotFound names it."""
    with pytest.raises(NotFound, match="NOPE-USDT"):
        await spot.last_price("NOPE-USDT")
    with pytest.raises(NotFound, match="NOPEUSDTM"):
        await futures.last_price("NOPEUSDTM")


async def test_futures_ticker_and_last_price(futures: KucoinRest, sim: KucoinSimulator) -> None:
    """The futures ticker gives the last trade with its nanosecond time."""
    await sim.set_price("XBTUSDTM", "65000.1")
    ticker = await futures.ticker("XBTUSDTM")
    assert ticker is not None and ticker.price == Decimal("65000.1")
    price, _ = await futures.last_price("XBTUSDTM")
    assert price == Decimal("65000.1")


async def test_contracts_active_have_exact_multipliers(futures: KucoinRest) -> None:
    """Contract numbers (JSON numbers on the wire) become exact Decimals."""
    contracts = {c.symbol: c for c in await futures.contracts_active()}
    assert contracts["XBTUSDTM"].multiplier == Decimal("0.001")
    assert contracts["ETHUSDTM"].multiplier == Decimal("0.01")
    assert contracts["XBTUSDTM"].max_leverage == 125


async def test_spot_symbols_list(spot: KucoinRest) -> None:
    """The v2 symbols list names base and quote currencies."""
    symbols = {s.symbol: s for s in await spot.symbols()}
    assert (symbols["BTC-USDT"].base_currency, symbols["BTC-USDT"].quote_currency) == (
        "BTC", "USDT")


@pytest.mark.parametrize("market", [Market.SPOT, Market.FUTURES])
async def test_candles_come_back_oldest_first_for_both_hosts(
    sim: KucoinSimulator, market: Market
) -> None:
    """Spot (newest first, strings) and futures (oldest first, numbers) candles normalise alike."""
    symbol = "BTC-USDT" if market is Market.SPOT else "XBTUSDTM"
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
    async with KucoinRest(sim.url(market), market) as rest:
        candles = await rest.candles(symbol, "1min", start, end)
    assert len(candles) == 31
    assert candles[0].start == start and candles[-1].start == end
    assert all(c.low <= c.open <= c.high and c.low <= c.close <= c.high for c in candles)


async def test_unknown_interval_is_a_validation_error(spot: KucoinRest) -> None:
    """An interval KuCoin does not know is refused before any request."""
    with pytest.raises(ValidationError):
        await spot.candles("BTC-USDT", "7min")


async def test_rate_limit_is_retried_after_the_reset(
    spot: KucoinRest, sim: KucoinSimulator
) -> None:
    """429/429000 answers are waited out (gw-ratelimit-reset) and the call then succeeds."""
    sim.force_rate_limit(2, reset_ms=20)
    stats = await spot.stats("BTC-USDT")
    assert stats.known
    assert spot.rate_limited == 2


async def test_persistent_rate_limit_becomes_temporary(sim: KucoinSimulator) -> None:
    """When the limit does not lift within the retries, the caller gets Temporary."""
    sim.force_rate_limit(10, reset_ms=10)
    async with KucoinRest(sim.spot_url, Market.SPOT, max_rate_limit_retries=2) as rest:
        with pytest.raises(Temporary, match="rate limited"):
            await rest.all_tickers()


async def test_error_envelope_is_rejected_with_kucoins_code(sim: KucoinSimulator) -> None:
    """A KuCoin error envelope becomes Rejected carrying its code and message."""
    async with KucoinRest(sim.futures_url, Market.FUTURES) as rest:
        with pytest.raises(Rejected, match="400100"):
            await rest._call("GET", "/api/v1/kline/query",
                             {"symbol": "XBTUSDTM", "granularity": 7}, list[list[Decimal]])


async def test_spot_endpoint_on_a_futures_client_is_rejected(futures: KucoinRest) -> None:
    """Asking the futures host for a spot-only endpoint is a programming error: Rejected."""
    with pytest.raises(Rejected, match="spot endpoint"):
        await futures.stats("BTC-USDT")


async def test_unreachable_host_is_temporary() -> None:
    """A refused connection is a network error: Temporary."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with KucoinRest(f"http://127.0.0.1:{port}", Market.SPOT, timeout=2) as rest:
        with pytest.raises(Temporary, match="network error"):
            await rest.bullet_public()


async def test_non_kucoin_404_page_is_rejected(sim: KucoinSimulator) -> None:
    """A 404 page that is not a KuCoin envelope is refused with its status."""
    async with KucoinRest(sim.spot_url + "/nowhere", Market.SPOT) as rest:
        with pytest.raises(Rejected, match="404"):
            await rest.bullet_public()
