"""KuCoin's futures funding endpoints as a small fake speaking their exact JSON on a real
socket (the simulator serves the same shape), and the funding passes that read it: what
the funding contract tests (time limits and funding, missed funding times) share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal as D
from typing import Any

from aiohttp import web

from cogmora.cli.compose import System
from cogmora.domain.enums import Market, Side
from cogmora.domain.orders import OpenRequest
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.jobs.orders import KucoinFunding
from cogmora.services.funding import Funding

PERIOD_MS = 8 * 3600 * 1000


class FakeFundingHost:
    """KuCoin's futures funding-rate and mark-price endpoints, envelope and all."""

    def __init__(self) -> None:
        self.rate = "0.0001"
        self.time_point = 0
        self.mark = "3000"

    def app(self) -> web.Application:
        app = web.Application()

        async def funding(request: web.Request) -> web.Response:
            symbol = request.match_info["symbol"]
            data = {
                "symbol": f".{symbol}FPI8H",
                "granularity": PERIOD_MS,
                "timePoint": self.time_point,
                "value": float(self.rate),
                "predictedValue": float(self.rate),
            }
            return web.json_response({"code": "200000", "data": data})

        async def mark(request: web.Request) -> web.Response:
            symbol = request.match_info["symbol"]
            data = {
                "symbol": symbol,
                "granularity": 1000,
                "timePoint": self.time_point,
                "value": float(self.mark),
                "indexPrice": float(self.mark),
            }
            return web.json_response({"code": "200000", "data": data})

        app.router.add_get("/api/v1/funding-rate/{symbol}/current", funding)
        app.router.add_get("/api/v1/mark-price/{symbol}/current", mark)
        return app


@asynccontextmanager
async def serving() -> AsyncIterator[tuple[FakeFundingHost, str]]:
    """A fake host on a free loopback port, and its base URL."""
    fake = FakeFundingHost()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def replicas(system: System, url: str, n: int = 2) -> AsyncIterator[list[Funding]]:
    """`n` funding passes on the system's store, each with a KuCoin client of its own, as
    `n` jobs replicas would run them."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(KucoinRest(url, Market.FUTURES)) for _ in range(n)
        ]
        yield [Funding(system.store, KucoinFunding(rest), system.clock) for rest in clients]


async def ledger_sums(system: System, uid: str) -> list[Any]:
    """The user's ledger, asserted to sum to the balance."""
    balance = (await system.accounts.get_user(uid)).balance
    entries = await system.accounts.ledger(uid)
    assert sum((e.amount for e in entries), D(0)) == balance
    return entries


def futures(side: Side, **kw: Any) -> OpenRequest:
    return OpenRequest("XBTUSDTM", Market.FUTURES, side, qty=D("2"), leverage=D("10"), **kw)
