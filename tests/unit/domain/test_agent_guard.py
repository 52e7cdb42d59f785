from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cogmora.domain.agent import (
    Action,
    CancelTriggerAction,
    ClosePositionAction,
    GuardFacts,
    HoldAction,
    OpenPositionAction,
    PlaceTriggerAction,
    RiskLimits,
    check_actions,
)
from cogmora.domain.enums import Market, Side, TriggerOp

D = Decimal
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LIMITS = RiskLimits(
    max_leverage=D(10),
    max_position_notional=D(1000),
    max_open_positions=3,
    max_daily_loss=D(100),
)
FACTS = GuardFacts(
    now=NOW,
    symbols=frozenset({"BTC-USDT", "XBTUSDTM"}),
    prices={"BTC-USDT": D(50000), "XBTUSDTM": D(50000)},
    open_position_ids=frozenset({"p1"}),
    active_trigger_ids=frozenset({"t1"}),
)


def fut(**kw: object) -> OpenPositionAction:
    base: dict[str, object] = {"notional": D(500), "leverage": D(5)}
    base.update(kw)
    return OpenPositionAction("XBTUSDTM", Market.FUTURES, Side.LONG, **base)  # type: ignore[arg-type]


def reasons(
    actions: list[Action], limits: RiskLimits = LIMITS, facts: GuardFacts = FACTS
) -> list[str]:
    _, refused = check_actions(actions, limits, facts)
    return [reason for _, reason in refused]


def test_an_action_within_every_limit_is_accepted() -> None:
    """An open inside all limits passes unchanged."""
    action = fut(stop_loss=D(48000), take_profit=D(55000))
    accepted, refused = check_actions([action], LIMITS, FACTS)
    assert accepted == [action]
    assert refused == []


def test_leverage_above_the_limit_is_refused_with_both_numbers() -> None:
    """The reason states the leverage asked for and the limit."""
    assert reasons([fut(leverage=D(20))]) == ["leverage 20 exceeds maxLeverage 10"]


def test_notional_above_the_limit_is_refused() -> None:
    """A notional larger than maxPositionNotional is refused."""
    assert reasons([fut(notional=D(1500))]) == ["notional 1500 exceeds maxPositionNotional 1000"]


def test_a_qty_is_valued_at_the_latest_price() -> None:
    """0.03 BTC at 50000 is 1500 USDT of notional."""
    action = fut(notional=None, qty=D("0.03"))
    assert reasons([action]) == ["notional 1500 exceeds maxPositionNotional 1000"]
    assert reasons([fut(notional=None, qty=D("0.02"))]) == []


def test_an_open_without_a_price_is_refused() -> None:
    """With no latest price the notional cannot be valued, so the open is refused."""
    facts = replace(FACTS, prices={})
    assert reasons([fut()], facts=facts) == ["no price for XBTUSDTM"]


def test_a_symbol_outside_the_agents_list_is_refused() -> None:
    """The agent trades only the symbols its config names."""
    action = OpenPositionAction("ETH-USDT", Market.SPOT, Side.LONG, notional=D(10))
    assert reasons([action]) == ["symbol ETH-USDT is not one of the agent's symbols"]


def test_stop_loss_on_the_wrong_side_of_the_price_is_refused() -> None:
    """The guard applies the positions service's SL/TP rule against the latest price."""
    assert reasons([fut(stop_loss=D(51000))]) == [
        "stopLoss must be below the current price for a long"
    ]


def test_stop_loss_past_liquidation_is_refused() -> None:
    """A 10x long liquidates near -9.5%, so a stop 20% below could never fire."""
    assert reasons([fut(leverage=D(10), stop_loss=D(40000))])[0].startswith(
        "stopLoss must be above the liquidation price"
    )


def test_opens_count_toward_max_open_positions_within_one_run() -> None:
    """With one position open and a limit of 3, the third open of a run is refused."""
    accepted, refused = check_actions([fut(), fut(), fut()], LIMITS, FACTS)
    assert len(accepted) == 2
    assert [r for _, r in refused] == [
        "maxOpenPositions 3 reached: 1 open, 0 pending agent triggers, 2 accepted in this run"
    ]


def test_active_agent_triggers_take_position_slots() -> None:
    """A pending agent trigger is a position waiting to happen and uses a slot."""
    facts = replace(FACTS, pending_agent_triggers=2)
    assert reasons([fut()], facts=facts) == [
        "maxOpenPositions 3 reached: 1 open, 2 pending agent triggers, 0 accepted in this run"
    ]


def test_a_refused_open_does_not_take_a_slot() -> None:
    """Only accepted opens count toward the limit."""
    accepted, _ = check_actions([fut(leverage=D(50)), fut(), fut()], LIMITS, FACTS)
    assert len(accepted) == 2


def test_closes_in_the_same_run_do_not_free_slots() -> None:
    """A close is asynchronous and may lose a race, so its slot stays used during the run."""
    facts = replace(FACTS, open_position_ids=frozenset({"p1", "p2", "p3"}))
    accepted, refused = check_actions([ClosePositionAction("p1"), fut()], LIMITS, facts)
    assert accepted == [ClosePositionAction("p1")]
    assert len(refused) == 1


def test_opening_is_refused_once_the_daily_loss_limit_is_reached() -> None:
    """At or past maxDailyLoss, opens and trigger placements are refused."""
    facts = replace(FACTS, realized_loss_today=D(100))
    trigger = PlaceTriggerAction(
        "BTC-USDT", Market.SPOT, TriggerOp.BELOW, D(45000), Side.LONG, notional=D(10)
    )
    assert (
        reasons([fut(), trigger], facts=facts)
        == ["daily realized loss 100 reached maxDailyLoss 100"] * 2
    )


def test_closes_cancels_and_holds_pass_even_past_the_daily_loss() -> None:
    """Risk-reducing actions are never blocked by the limits."""
    facts = replace(FACTS, realized_loss_today=D(500))
    actions: list[Action] = [ClosePositionAction("p1"), CancelTriggerAction("t1"), HoldAction()]
    accepted, refused = check_actions(actions, RiskLimits(max_open_positions=0), facts)
    assert accepted == actions
    assert refused == []


def test_closing_an_unknown_or_repeated_position_is_refused() -> None:
    """A close must name an open position, once per run."""
    assert reasons([ClosePositionAction("p1"), ClosePositionAction("p1")]) == [
        "position p1 is already closed by this run"
    ]
    assert reasons([ClosePositionAction("zz")]) == ["position zz is not open"]


def test_cancelling_an_unknown_or_repeated_trigger_is_refused() -> None:
    """A cancel must name an active trigger, once per run."""
    assert reasons([CancelTriggerAction("t1"), CancelTriggerAction("t1")]) == [
        "trigger t1 is already cancelled by this run"
    ]
    assert reasons([CancelTriggerAction("t9")]) == ["trigger t9 is not active"]


def test_a_trigger_is_valued_and_checked_at_its_own_level() -> None:
    """A trigger's notional and SL/TP are judged against its trigger price, not the market."""
    ok = PlaceTriggerAction(
        "BTC-USDT",
        Market.SPOT,
        TriggerOp.BELOW,
        D(40000),
        Side.LONG,
        qty=D("0.02"),
        stop_loss=D(39000),
    )
    too_big = replace(ok, qty=D("0.03"))
    bad_stop = replace(ok, stop_loss=D(41000))
    assert reasons([ok]) == []
    assert reasons([too_big]) == ["notional 1200 exceeds maxPositionNotional 1000"]
    assert reasons([bad_stop]) == ["stopLoss must be below the trigger price for a long"]


def test_an_already_expired_trigger_is_refused() -> None:
    """A trigger whose expiry is not after now could never fire."""
    action = PlaceTriggerAction(
        "BTC-USDT",
        Market.SPOT,
        TriggerOp.BELOW,
        D(40000),
        Side.LONG,
        qty=D("0.01"),
        expires_at=NOW - timedelta(seconds=1),
    )
    assert reasons([action]) == ["expiresAt must be in the future"]


def test_refusals_keep_the_order_and_identity_of_actions() -> None:
    """Accepted and refused lists each keep proposal order and the original objects."""
    a, b, c = fut(leverage=D(50)), HoldAction("wait"), fut(notional=D(5000))
    accepted, refused = check_actions([a, b, c], LIMITS, FACTS)
    assert accepted == [b]
    assert [act for act, _ in refused] == [a, c]


def test_something_that_is_not_an_action_is_refused() -> None:
    """A provider bug that smuggles in another object is refused, not applied."""
    _, refused = check_actions(["open everything"], LIMITS, FACTS)  # type: ignore[list-item]
    assert refused == [("open everything", "not an action: str")]
