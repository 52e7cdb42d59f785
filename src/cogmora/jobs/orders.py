"""The jobs' order passes: time limits every poll, funding every minute (SPEC 5.2).

Every jobs replica runs this loop; neither pass needs a slot claim, because each of their
writes is a compare-and-set (`services.time_limits`) or a transaction that re-checks the
position (`services.funding`), so replicas that overlap do the work once between them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import structlog

from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.services.funding import Funding, FundingQuote
from cogmora.services.time_limits import TimeLimits

log = structlog.get_logger("cogmora.orders")


class KucoinFunding:
    """A FundingSource over KuCoin's futures REST: the rate's `value` and `timePoint`,
    and the mark price's `value`."""

    def __init__(self, rest: KucoinRest) -> None:
        self._rest = rest

    async def quote(self, symbol: str) -> FundingQuote | None:
        rate = await self._rest.funding_rate(symbol)
        mark = await self._rest.mark_price(symbol)
        if rate is None or mark is None:
            return None
        at = datetime.fromtimestamp(rate.time_point / 1000, tz=UTC)
        period = timedelta(milliseconds=rate.granularity or 8 * 3600 * 1000)
        return FundingQuote(symbol, rate.value, at, mark.value, period)


class OrderJobs:
    def __init__(
        self,
        time_limits: TimeLimits,
        funding: Funding,
        poll_seconds: float = 1.0,
        funding_every: float = 60.0,
    ) -> None:
        self.time_limits = time_limits
        self.funding = funding
        self._poll = poll_seconds
        self._funding_every = funding_every

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_funding = loop.time()
        while True:
            closed = await self.time_limits.close_due()
            if closed:
                log.info("time limits reached", closed=closed)
            if loop.time() >= next_funding:
                booked = await self.funding.run_once()
                if booked:
                    log.info("funding booked", entries=booked)
                next_funding = loop.time() + self._funding_every
            await asyncio.sleep(self._poll)
