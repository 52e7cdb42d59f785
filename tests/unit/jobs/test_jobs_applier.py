"""ServiceApplier: the agent's actions through the API's services, idempotent per slot."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cogmora.cli.compose import System, build_system
from cogmora.domain.agent import (
    CancelTriggerAction,
    ClosePositionAction,
    OpenPositionAction,
    PlaceTriggerAction,
)
from cogmora.domain.enums import Market, PositionStatus, Side, Source, TriggerOp, TriggerStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import PriceQuote
from cogmora.errors import Conflict, InsufficientBalance, ValidationError
from cogmora.jobs.agent.applier import ServiceApplier
from cogmora.settings import Settings

D = Decimal
SLOT = "2026-01-01T00:15:00.000000Z"


def open_btc(notional: str = "500", rationale: str = "up") -> OpenPositionAction:
    return OpenPositionAction(
        "BTC-USDT",
        Market.SPOT,
        Side.LONG,
        notional=D(notional),
        stop_loss=D(60000),
        take_profit=D(70000),
        rationale=rationale,
    )


def applier(system: System, run_key: str = SLOT) -> ServiceApplier:
    return ServiceApplier(system.positions, system.triggers, run_key)


async def test_a_retried_run_gets_the_first_open_back(system: System, make_user, quote) -> None:
    """The same slot's open, even reworded, returns the first position instead of a new one."""
    await make_user("ann")
    quote("BTC-USDT", "65000")
    first = await applier(system).open_position("ann", open_btc(rationale="up"))
    again = await applier(system).open_position("ann", open_btc(rationale="still up"))
    assert again == first
    positions = await system.positions.list_for_user("ann")
    assert [p.id for p in positions] == [first]
    assert positions[0].source is Source.AGENT


async def test_two_opens_in_one_run_and_a_new_slot_are_distinct(
    system: System, make_user, quote
) -> None:
    """A run may open a symbol twice; the next slot opens afresh."""
    await make_user("ann")
    quote("BTC-USDT", "65000")
    run = applier(system)
    a = await run.open_position("ann", open_btc())
    b = await run.open_position("ann", open_btc())
    c = await applier(system, "2026-01-01T00:30:00.000000Z").open_position("ann", open_btc())
    assert len({a, b, c}) == 3
    assert [x.result_id for x in run.applied] == [a, b]


async def test_a_different_order_on_a_retry_is_refused_not_opened(
    system: System, make_user, quote
) -> None:
    """A retry asking for a bigger order under the same slot is a conflict, not a second open."""
    await make_user("ann")
    quote("BTC-USDT", "65000")
    await applier(system).open_position("ann", open_btc("500"))
    with pytest.raises(Conflict, match="earlier attempt of this run"):
        await applier(system).open_position("ann", open_btc("900"))
    assert len(await system.positions.list_for_user("ann")) == 1


async def test_money_rules_hold_for_the_agent(system: System, make_user, quote) -> None:
    """An open beyond the balance is refused by the same check as the API's."""
    await make_user("ann", "100")
    quote("BTC-USDT", "65000")
    with pytest.raises(InsufficientBalance):
        await applier(system).open_position("ann", open_btc("500"))


async def test_triggers_and_closes_go_through_their_services(
    system: System, make_user, quote
) -> None:
    """Place, cancel and close all land in the store as the API would leave them."""
    await make_user("ann")
    quote("BTC-USDT", "65000")
    run = applier(system)
    pid = await run.open_position("ann", open_btc())
    tid = await run.place_trigger(
        "ann",
        PlaceTriggerAction(
            "BTC-USDT", Market.SPOT, TriggerOp.BELOW, D(60000), Side.LONG, notional=D(100)
        ),
    )
    trigger = await system.triggers.get("ann", tid)
    assert trigger.source is Source.AGENT and trigger.status is TriggerStatus.ACTIVE
    assert await run.cancel_trigger("ann", CancelTriggerAction(tid)) == tid
    assert (await system.triggers.get("ann", tid)).status is TriggerStatus.CANCELLED
    assert await run.close_position("ann", ClosePositionAction(pid)) == pid
    closing = await system.positions.get("ann", pid)
    assert closing.status is PositionStatus.CLOSING
    assert closing.details.close_reason is not None
    assert closing.details.close_reason.value == "agent"


async def test_an_action_is_held_to_the_configured_leverage_ceiling(
    store: Any, db_path: Any, catalog: Any, clock: Any
) -> None:
    """With a configured maximum of 20x, the agent's 50x open is refused naming that
    ceiling, not the exchange's 125x."""
    settings = Settings(store_url=f"sqlite:///{db_path}", fees=FeeSchedule(max_leverage=D(20)))
    system = build_system(settings, store, catalog=catalog, clock=clock)
    await system.accounts.create_user("ann", D(10000))
    system.live.put(PriceQuote("XBTUSDTM", D(65000), clock.now()))
    action = OpenPositionAction(
        "XBTUSDTM", Market.FUTURES, Side.LONG, qty=D("0.01"), leverage=D(50)
    )
    with pytest.raises(ValidationError, match="from 1 to 20") as caught:
        await applier(system).open_position("ann", action)
    assert caught.value.field == "leverage"
