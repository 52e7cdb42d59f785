"""The jobs' KuCoin REST client: the feeds' client plus 24h stats of futures contracts.

`/api/v1/contracts/active` carries each contract's 24h change, high, low and volume, but
the feeds' `Contract` struct only decodes what the worker needs. The watchlist reads the
same endpoint into a struct of its own, through the same transport (envelope, 429
back-off, timeouts, typed errors), so it still costs one call per refresh.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from cogmora.domain.enums import Market
from cogmora.feeds.kucoin.rest import KucoinRest


class ContractStats(msgspec.Struct, frozen=True, rename="camel"):
    symbol: str
    status: str | None = None
    last_trade_price: Decimal | None = None
    price_chg_pct: Decimal | None = None
    high_price: Decimal | None = None
    low_price: Decimal | None = None
    volume_of24h: Decimal | None = None


class JobsKucoinRest(KucoinRest):
    async def contract_stats(self) -> list[ContractStats]:
        """Every active contract with its 24h stats, in one call."""
        self._need(Market.FUTURES, "contract_stats")
        path = "/api/v1/contracts/active"
        return await self._call("GET", path, None, list[ContractStats]) or []
