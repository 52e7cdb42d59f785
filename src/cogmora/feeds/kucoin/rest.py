"""KuCoin's public REST API (spot or futures host), async, typed, with KuCoin's envelope.

Errors are translated at this boundary: a timeout or a network failure is `Temporary`
(the caller retries with backoff), an error envelope or a 4xx is `Rejected` (retrying the
same request cannot help), and HTTP 429 / code 429000 is retried here after the
`gw-ratelimit-reset` the gateway asks for, a bounded number of times, then `Temporary`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import msgspec

from cogmora.domain.enums import Market
from cogmora.errors import NotFound, Rejected, Temporary, ValidationError
from cogmora.feeds.kucoin.funding import FundingRate, MarkPrice
from cogmora.feeds.kucoin.schemas import (
    AllTickers,
    BulletToken,
    Contract,
    FuturesTicker,
    Level1,
    RestEnvelope,
    SpotStats,
    SpotSymbol,
)

T = TypeVar("T")

# Spot candle types and their futures granularity (minutes).
INTERVALS: dict[str, int] = {
    "1min": 1,
    "5min": 5,
    "15min": 15,
    "30min": 30,
    "1hour": 60,
    "2hour": 120,
    "4hour": 240,
    "8hour": 480,
    "12hour": 720,
    "1day": 1440,
    "1week": 10080,
}
SPOT_ONLY_INTERVALS = {"3min": 3, "6hour": 360}

_envelope = msgspec.json.Decoder(RestEnvelope)


class Candle(msgspec.Struct, frozen=True):
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    turnover: Decimal | None = None


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class KucoinRest:
    """One KuCoin host. `base_url` is COGMORA_KUCOIN_SPOT_URL or ..._FUTURES_URL."""

    def __init__(
        self,
        base_url: str,
        market: Market,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        max_rate_limit_retries: int = 5,
        max_backoff_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.market = market
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout
        self._retries = max_rate_limit_retries
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        self.rate_limited = 0  # 429s seen, for tests and metrics

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> KucoinRest:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # ---- endpoints -------------------------------------------------------------------

    async def bullet_public(self) -> BulletToken:
        """A fresh public websocket token and the servers it is good for."""
        token = await self._call("POST", "/api/v1/bullet-public", None, BulletToken)
        if token is None or not token.instance_servers:
            raise Temporary(f"{self.base_url}: bullet-public returned no instance server")
        return token

    async def all_tickers(self) -> AllTickers:
        self._need(Market.SPOT, "all_tickers")
        got = await self._call("GET", "/api/v1/market/allTickers", None, AllTickers)
        return got if got is not None else AllTickers(time=0, ticker=[])

    async def stats(self, symbol: str) -> SpotStats:
        """24 h stats; for an unknown symbol KuCoin answers success with null fields
        (`SpotStats.known` is False), it does not error."""
        self._need(Market.SPOT, "stats")
        got = await self._call("GET", "/api/v1/market/stats", {"symbol": symbol}, SpotStats)
        return got if got is not None else SpotStats(time=0, symbol=symbol)

    async def level1(self, symbol: str) -> Level1 | None:
        """Best bid/ask and last trade (spot); None for an unknown symbol."""
        self._need(Market.SPOT, "level1")
        params = {"symbol": symbol}
        return await self._call("GET", "/api/v1/market/orderbook/level1", params, Level1)

    async def ticker(self, symbol: str) -> FuturesTicker | None:
        """Last trade and best bid/ask of a contract; None for an unknown contract."""
        self._need(Market.FUTURES, "ticker")
        return await self._call("GET", "/api/v1/ticker", {"symbol": symbol}, FuturesTicker)

    async def funding_rate(self, symbol: str) -> FundingRate | None:
        """The current funding rate of a contract; None for an unknown one."""
        self._need(Market.FUTURES, "funding_rate")
        return await self._call("GET", f"/api/v1/funding-rate/{symbol}/current", None, FundingRate)

    async def mark_price(self, symbol: str) -> MarkPrice | None:
        self._need(Market.FUTURES, "mark_price")
        return await self._call("GET", f"/api/v1/mark-price/{symbol}/current", None, MarkPrice)

    async def symbols(self) -> list[SpotSymbol]:
        self._need(Market.SPOT, "symbols")
        return await self._call("GET", "/api/v2/symbols", None, list[SpotSymbol]) or []

    async def contracts_active(self) -> list[Contract]:
        self._need(Market.FUTURES, "contracts_active")
        return await self._call("GET", "/api/v1/contracts/active", None, list[Contract]) or []

    async def candles(
        self,
        symbol: str,
        interval: str = "1min",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Candle]:
        """Candles oldest first, whichever order and shape the host sends them in."""
        minutes = INTERVALS.get(interval)
        if self.market is Market.SPOT:
            minutes = minutes or SPOT_ONLY_INTERVALS.get(interval)
        if minutes is None:
            raise ValidationError("interval", f"interval {interval!r} is not a KuCoin candle type")
        if self.market is Market.SPOT:
            params: dict[str, Any] = {"symbol": symbol, "type": interval}
            if start is not None:
                params["startAt"] = int(start.timestamp())
            if end is not None:
                params["endAt"] = int(end.timestamp())
            rows = await self._call("GET", "/api/v1/market/candles", params, list[list[str]])
            # [time s, open, close, high, low, volume, turnover], newest first.
            out = [
                Candle(
                    start=datetime.fromtimestamp(int(r[0]), tz=UTC),
                    open=Decimal(r[1]),
                    close=Decimal(r[2]),
                    high=Decimal(r[3]),
                    low=Decimal(r[4]),
                    volume=Decimal(r[5]),
                    turnover=Decimal(r[6]) if len(r) > 6 else None,
                )
                for r in rows or []
            ]
        else:
            params = {"symbol": symbol, "granularity": minutes}
            if start is not None:
                params["from"] = int(start.timestamp() * 1000)
            if end is not None:
                params["to"] = int(end.timestamp() * 1000)
            data = await self._call("GET", "/api/v1/kline/query", params, list[list[Decimal]])
            # [time ms, open, high, low, close, volume, turnover], oldest first.
            out = [
                Candle(
                    start=_from_ms(int(r[0])),
                    open=r[1],
                    high=r[2],
                    low=r[3],
                    close=r[4],
                    volume=r[5],
                    turnover=r[6] if len(r) > 6 else None,
                )
                for r in data or []
            ]
        out.sort(key=lambda c: c.start)
        return out

    async def last_price(self, symbol: str) -> tuple[Decimal, datetime]:
        """The last trade price and its time, fresh from REST; NotFound for an unknown symbol."""
        if self.market is Market.SPOT:
            l1 = await self.level1(symbol)
            if l1 is None:
                raise NotFound(f"unknown symbol {symbol}")
            return l1.price, _from_ms(l1.time)
        ticker = await self.ticker(symbol)
        if ticker is None:
            raise NotFound(f"unknown symbol {symbol}")
        return ticker.price, datetime.fromtimestamp(ticker.ts / 1e9, tz=UTC)

    # ---- transport -------------------------------------------------------------------

    def _need(self, market: Market, what: str) -> None:
        if self.market is not market:
            raise Rejected(f"{what} is a {market.value} endpoint; this client is {self.market}")

    async def _call(
        self, method: str, path: str, params: dict[str, Any] | None, kind: type[T]
    ) -> T | None:
        """The decoded `data` of a successful envelope (None when KuCoin sends null)."""
        url = f"{self.base_url}{path}"
        for attempt in range(self._retries + 1):
            try:
                if method == "POST":
                    response = await self._client.post(url, json={}, timeout=self._timeout)
                else:
                    response = await self._client.get(url, params=params, timeout=self._timeout)
            except httpx.TimeoutException as exc:
                raise Temporary(f"KuCoin {path}: timed out ({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                raise Temporary(f"KuCoin {path}: network error: {exc!r}") from exc
            envelope = self._envelope(path, response)
            code = str(envelope.code)
            if response.status_code == 429 or code == "429000":
                self.rate_limited += 1
                if attempt >= self._retries:
                    break
                await self._sleep(self._rate_limit_delay(response, attempt))
                continue
            if response.status_code >= 500:
                raise Temporary(f"KuCoin {path}: HTTP {response.status_code} code {code}")
            if response.status_code >= 400 or code != "200000":
                raise Rejected(
                    f"KuCoin {path} refused {params or {}}: code {code}: {envelope.msg or ''}"
                )
            if not envelope.has_data:
                return None
            try:
                return msgspec.json.decode(envelope.data, type=kind)
            except msgspec.DecodeError as exc:
                raise Temporary(f"KuCoin {path}: unexpected data: {exc}") from None
        raise Temporary(f"KuCoin {path}: still rate limited after {self._retries} retries")

    def _envelope(self, path: str, response: httpx.Response) -> RestEnvelope:
        try:
            return _envelope.decode(response.content)
        except msgspec.DecodeError:
            text = response.text[:200]
            if response.status_code == 429:
                return RestEnvelope(code="429000", msg=text)
            if response.status_code >= 500 or response.status_code == 200:
                raise Temporary(
                    f"KuCoin {path}: HTTP {response.status_code}, not a KuCoin reply: {text!r}"
                ) from None
            raise Rejected(f"KuCoin {path}: HTTP {response.status_code}: {text!r}") from None

    def _rate_limit_delay(self, response: httpx.Response, attempt: int) -> float:
        """Wait what gw-ratelimit-reset says (ms), else exponential; jittered, capped."""
        reset = response.headers.get("gw-ratelimit-reset")
        try:
            base = int(reset) / 1000.0 if reset is not None else 0.5 * 2**attempt
        except ValueError:
            base = 0.5 * 2**attempt
        base = min(max(base, 0.05), self._max_backoff_s)
        return base * random.uniform(1.0, 1.2)
