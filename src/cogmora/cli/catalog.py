"""The one loop that keeps a process's symbol catalog, used by every process shape.

Each process (`cogmora api`, `worker`, `jobs`, `run`, or any mix) loads KuCoin's symbol
lists itself at start and refreshes them every ten minutes, rather than one process
storing them for the others. Why: every process already depends on KuCoin's REST API for
something it cannot do without (the worker for its feed tokens, the jobs for candles,
the API for the fill price of a symbol nobody follows), so a stored copy would remove no
dependency; it would add a second source of truth, a document to keep under Firestore's
size limit, and a process that must run first. Three list calls per ten minutes per
process are far inside KuCoin's public rate limit.

Until the first load succeeds the catalog answers 503 (retry) rather than calling an
existing symbol unknown; a failed refresh keeps the previous lists.
"""

from __future__ import annotations

import asyncio

import structlog

from cogmora.cli.compose import System
from cogmora.domain.enums import Market
from cogmora.errors import CogmoraError
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.services.symbols import SymbolCatalog, SymbolSpec

log = structlog.get_logger("cogmora.catalog")

CATALOG_REFRESH_SECONDS = 600.0


async def spot_specs(rest: KucoinRest) -> dict[str, SymbolSpec]:
    """`/api/v2/symbols` for the ticks, `allTickers` for the last prices (two calls)."""
    symbols, tickers = await asyncio.gather(rest.symbols(), rest.all_tickers())
    last = {t.symbol: t.last for t in tickers.ticker}
    specs = {
        s.symbol: SymbolSpec(s.price_increment, s.base_min_size, last.get(s.symbol))
        for s in symbols
    }
    # A ticker KuCoin lists without a symbol entry is still a symbol one can trade.
    for name, price in last.items():
        specs.setdefault(name, SymbolSpec(last_price=price))
    return specs


async def futures_specs(rest: KucoinRest) -> dict[str, SymbolSpec]:
    specs: dict[str, SymbolSpec] = {}
    for c in await rest.contracts_active():
        min_size = None
        if c.lot_size is not None and c.multiplier is not None:
            min_size = abs(c.lot_size * c.multiplier)
        specs[c.symbol] = SymbolSpec(c.tick_size, min_size, c.last_trade_price)
    return specs


async def refresh_catalog(catalog: SymbolCatalog, rests: dict[Market, KucoinRest]) -> None:
    """Both markets, each on its own: a failed market keeps its previous list."""
    loaders = {Market.SPOT: spot_specs, Market.FUTURES: futures_specs}
    results = await asyncio.gather(
        *(loaders[m](rests[m]) for m in loaders), return_exceptions=True
    )
    failed: list[BaseException] = []
    for market, result in zip(loaders, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, CogmoraError):
                raise result
            failed.append(result)
        elif result:  # an empty answer must not empty the catalog
            catalog.load(market, result)
    log.info(
        "symbol catalog loaded",
        spot=len(catalog.symbols(Market.SPOT)),
        futures=len(catalog.symbols(Market.FUTURES)),
        failed=[str(e) for e in failed],
    )
    if failed:
        raise failed[0]


async def keep_catalog(
    catalog: SymbolCatalog, rests: dict[Market, KucoinRest], period: float, delay: float = 0.0
) -> None:
    """Refresh every `period` (the first after `delay`); after a failure retry with
    backoff (1 s doubling to 60 s)."""
    await asyncio.sleep(delay)
    backoff = 1.0
    while True:
        try:
            await refresh_catalog(catalog, rests)
        except CogmoraError as exc:
            log.warning("symbol catalog refresh failed", error=str(exc), retry_in=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)
            continue
        backoff = 1.0
        await asyncio.sleep(period)


def kucoin_rests(system: System) -> dict[Market, KucoinRest]:
    """A REST client per market at the configured hosts, closed with the system."""
    settings = system.settings
    rests = {
        Market.SPOT: KucoinRest(settings.kucoin_spot_url, Market.SPOT),
        Market.FUTURES: KucoinRest(settings.kucoin_futures_url, Market.FUTURES),
    }
    for rest in rests.values():
        system.closers.append(rest.aclose)
    return rests


async def start_catalog(system: System, period: float = CATALOG_REFRESH_SECONDS) -> None:
    """Load the catalog now (so the first order and the worker's book have it) and keep it
    fresh under the supervisor. Once per process: the second caller finds it running."""
    if system.catalog_kept:
        return
    system.catalog_kept = True
    rests = kucoin_rests(system)
    delay = period
    try:
        await refresh_catalog(system.catalog, rests)
    except CogmoraError as exc:
        log.warning("symbol catalog not loaded yet; retrying in the background", error=str(exc))
        delay = 0.0
    catalog = system.catalog
    system.supervisor.start("catalog", lambda: keep_catalog(catalog, rests, period, delay))
