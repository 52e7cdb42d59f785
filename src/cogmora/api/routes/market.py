"""Market data for charts: KuCoin's candles of a symbol, through our own REST client.

The dashboard draws a price chart per symbol and cannot call KuCoin itself (no CORS, and
`cogmora demo` points at the simulator, which the browser does not know about), so the
API proxies the klines of the host it is configured with. Read-only, the same for every
user; it still needs a bearer token, like every `/v1` route. Answers are cached for a few
seconds per (symbol, interval, limit) and concurrent askers share one request, so a room
full of dashboards is one call to KuCoin, not one each.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from cogmora.api.auth import Deps, Uid
from cogmora.api.schemas import canonical_symbol
from cogmora.domain.enums import Market
from cogmora.domain.money import to_str
from cogmora.domain.timeutil import to_iso
from cogmora.errors import Temporary, ValidationError
from cogmora.feeds.kucoin.rest import INTERVALS, Candle, KucoinRest
from cogmora.jobs.market import SingleFlight

router = APIRouter(tags=["market"])

# KuCoin futures answer at most 500 klines per request; spot 1500. One limit for both.
MAX_CANDLES = 500
CACHE_SECONDS = 2.0


class KucoinHosts:
    """KuCoin's spot and futures REST hosts, connected on first use (an app that never
    draws a chart opens no HTTP client), with a short cache of candle answers."""

    def __init__(self, spot_url: str, futures_url: str) -> None:
        self._urls = {Market.SPOT: spot_url, Market.FUTURES: futures_url}
        self._rests: dict[Market, KucoinRest] = {}
        self._flight = SingleFlight()
        self._cache: dict[tuple[str, str, int], tuple[float, list[Candle]]] = {}

    def rest(self, market: Market) -> KucoinRest:
        rest = self._rests.get(market)
        if rest is None:
            rest = self._rests[market] = KucoinRest(self._urls[market], market)
        return rest

    async def candles(
        self, symbol: str, market: Market, interval: str, limit: int, now: datetime
    ) -> list[Candle]:
        key = (symbol, interval, limit)
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]

        async def fetch() -> list[Candle]:
            width = timedelta(minutes=INTERVALS[interval])
            rows = await self.rest(market).candles(
                symbol, interval, start=now - width * limit, end=now
            )
            rows = rows[-limit:]
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = (time.monotonic(), rows)
            return rows

        return await self._flight.run(key, fetch)

    async def aclose(self) -> None:
        for rest in self._rests.values():
            await rest.aclose()
        self._rests.clear()


class CandleOut(BaseModel):
    start: str = Field(description="the candle's open time, UTC ISO-8601")
    open: str
    high: str
    low: str
    close: str
    volume: str


class CandlesOut(BaseModel):
    symbol: str
    market: str
    interval: str
    candles: list[CandleOut] = Field(description="oldest first; the last may still be open")


@router.get(
    "/v1/candles/{symbol}",
    summary="KuCoin's candles of a symbol (for charts), oldest first",
    description=(
        "Proxied from the KuCoin host the server is configured with (or `cogmora "
        "simulator`). `market` is optional (it follows from the symbol) and, when given, "
        "must be the symbol's market. Intervals are those both KuCoin hosts serve: "
        + ", ".join(f"`{i}`" for i in INTERVALS)
        + "."
    ),
    response_model=CandlesOut,
    responses={503: {"description": "KuCoin did not answer (or is not configured): retry"}},
)
async def candles(
    symbol: str,
    uid: Uid,
    deps: Deps,
    market: Annotated[Market | None, Query(description="spot or futures")] = None,
    interval: Annotated[str, Query(description="the candle width, KuCoin's name")] = "1min",
    limit: Annotated[
        int, Query(ge=1, le=MAX_CANDLES, description="at most this many, the newest")
    ] = 120,
) -> CandlesOut:
    symbol = canonical_symbol(symbol)
    if interval not in INTERVALS:
        raise ValidationError(
            "interval", f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}"
        )
    known = deps.catalog.market_of(symbol)
    if known is None:
        raise ValidationError("symbol", f"symbol {symbol} is not a known symbol on KuCoin")
    if market is not None and market is not known:
        raise ValidationError("market", f"market: {symbol} is a {known.value} symbol")
    if deps.kucoin is None:
        raise Temporary("market data is not configured in this process")
    rows = await deps.kucoin.candles(symbol, known, interval, limit, deps.clock.now())
    return CandlesOut(
        symbol=symbol,
        market=known.value,
        interval=interval,
        candles=[
            CandleOut(
                start=to_iso(c.start.astimezone(UTC)),
                open=to_str(c.open),
                high=to_str(c.high),
                low=to_str(c.low),
                close=to_str(c.close),
                volume=to_str(c.volume),
            )
            for c in rows
        ],
    )
