"""The REST price fallback never undoes a feed tick that arrived while it was asking."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from cogmora.cli.worker import RestPrices
from cogmora.domain.enums import Market
from cogmora.domain.models import PriceQuote

from .conftest import Live


async def test_a_tick_during_the_rest_call_wins_over_the_older_rest_answer(live: Live) -> None:
    """REST is held back by a rate limit; a live price arrives meanwhile; the answer and
    the live cache are that live price, not the simulator's REST price."""
    rest = live.worker.rests[Market.SPOT]
    prices = RestPrices(live.worker)
    await prices.latest("BTC-USDT", Market.SPOT)  # follows it: the feed's start is done first

    async def followed() -> bool:
        feed = live.worker.health()["feeds"]["spot"]
        gaps = live.worker.gaps
        return bool(feed["subscribed"] >= 1 and "BTC-USDT" not in gaps.held | gaps.recovering)

    await live.until(followed)
    live.sim.force_rate_limit(1, 500, Market.SPOT)
    asking = asyncio.create_task(prices.latest("BTC-USDT", Market.SPOT))

    async def held_back() -> bool:
        return rest.rate_limited >= 1

    await live.until(held_back)
    tick = PriceQuote("BTC-USDT", Decimal("12345"), datetime.now(UTC))
    live.system.live.put(tick)  # what the engine does with a feed tick
    answer = await asyncio.wait_for(asking, 60)
    assert answer is not None and answer.price == Decimal("12345")
    cached = live.system.live.get("BTC-USDT")
    assert cached is not None and cached.price == Decimal("12345")
