"""The money paths besides opens wait in the owner's document lane (store/lanes.py): while
this process holds a user's lane, funding, a time limit, a trigger placement or cancel and
an agent config save for that user commit nothing, and each commits once it is free.

The negative half (nothing committed while the lane is held) is checked after the other
paths have had the loop many times over; it can only pass vacuously on a slow machine,
never fail spuriously.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal as D
from typing import Any

from cogmora.cli.compose import System
from cogmora.domain.enums import CloseReason, LedgerKind, Market, Side, TriggerOp, TriggerStatus
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest
from cogmora.domain.paths import user_path
from cogmora.services.funding import Funding, FundingQuote
from cogmora.services.time_limits import TimeLimits
from cogmora.store.lanes import lanes

CONDITION = TriggerCondition(TriggerOp.BELOW, D("2500"))
ACTION = TriggerAction(Side.LONG, D("0.01"), None, D(10))


class OneQuote:
    """A funding source (KuCoin's side) that always gives one quote."""

    def __init__(self, quote: FundingQuote) -> None:
        self._quote = quote

    async def quote(self, symbol: str) -> FundingQuote | None:
        return self._quote


async def waits_for_the_lane(
    system: System, uid: str, run: Awaitable[Any], committed: Callable[[], Awaitable[bool]]
) -> Any:
    """Run `run` while `uid`'s lane is held: nothing committed until it is released."""
    async with lanes(system.store).hold([user_path(uid)]):
        task = asyncio.ensure_future(run)
        for _ in range(50):
            await asyncio.sleep(0.01)
        assert not task.done()
        assert not await committed()
    return await asyncio.wait_for(task, 60)


def futures(**kw: Any) -> OpenRequest:
    return OpenRequest("XBTUSDTM", Market.FUTURES, Side.LONG, qty=D("1"), leverage=D(10), **kw)


async def test_funding_waits_for_the_owners_lane(
    system: System, make_user: Any, quote: Any
) -> None:
    """Funding due on a position is booked only once the owner's lane is free."""
    await make_user("ada", "100000")
    quote("XBTUSDTM", "3000")
    await system.positions.open("ada", futures())
    at: datetime = system.clock.now() + timedelta(minutes=1)
    system.clock.advance(61)  # type: ignore[attr-defined]
    funding = Funding(
        system.store, OneQuote(FundingQuote("XBTUSDTM", D("0.0001"), at, D("3000"))), system.clock
    )

    async def booked() -> bool:
        entries = await system.accounts.ledger("ada")
        return any(e.kind is LedgerKind.FUNDING for e in entries)

    assert await waits_for_the_lane(system, "ada", funding.run_once(), booked) == 1
    assert await booked()


async def test_a_time_limit_waits_for_the_owners_lane(
    system: System, make_user: Any, quote: Any
) -> None:
    """A position past its time limit is marked closing only once its owner's lane is free."""
    await make_user("bo", "100000")
    quote("XBTUSDTM", "3000")
    expires = system.clock.now() + timedelta(seconds=30)
    pid = (await system.positions.open("bo", futures(expires_at=expires)))["id"]
    system.clock.advance(60)  # type: ignore[attr-defined]
    quote("XBTUSDTM", "3000")
    limits = TimeLimits(system.store, system.prices, system.clock)

    async def closing() -> bool:
        position = await system.positions.get("bo", pid)
        return position.details.close_reason is CloseReason.TIME_LIMIT

    assert await waits_for_the_lane(system, "bo", limits.close_due(), closing) == 1
    assert await closing()


async def test_trigger_placement_and_cancel_wait_for_the_owners_lane(
    system: System, make_user: Any, quote: Any
) -> None:
    """A placement and then a cancel each commit only once the owner's lane is free."""
    await make_user("cy", "100000")
    quote("XBTUSDTM", "3000")

    async def placed() -> bool:
        return bool(await system.triggers.list_for_user("cy"))

    place = system.triggers.create("cy", "XBTUSDTM", Market.FUTURES, CONDITION, ACTION)
    doc = await waits_for_the_lane(system, "cy", place, placed)

    async def cancelled() -> bool:
        return (await system.triggers.get("cy", doc["id"])).status is TriggerStatus.CANCELLED

    await waits_for_the_lane(system, "cy", system.triggers.cancel("cy", doc["id"]), cancelled)
    assert await cancelled()


async def test_an_agent_config_save_waits_for_the_users_lane(
    system: System, make_user: Any
) -> None:
    """Saving an agent config commits only once the user's lane is free."""
    await make_user("di", "100000")
    body = {"enabled": True, "schedule": "*/15 * * * *", "symbols": ["BTC-USDT"]}

    async def saved() -> bool:
        return (await system.agent_configs.get("di")).enabled

    await waits_for_the_lane(system, "di", system.agent_configs.put("di", body), saved)
    assert await saved()
