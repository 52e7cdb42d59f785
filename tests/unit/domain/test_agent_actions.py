from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from cogmora.domain.agent import (
    CancelTriggerAction,
    ClosePositionAction,
    HoldAction,
    OpenPositionAction,
    PlaceTriggerAction,
    action_from_doc,
)
from cogmora.domain.enums import Market, Side, Source, TriggerOp
from cogmora.errors import ValidationError

D = Decimal


def open_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "open_position",
        "symbol": "XBTUSDTM",
        "market": "futures",
        "side": "short",
        "qty": None,
        "notional": "250",
        "leverage": "5",
        "stopLoss": "70000",
        "takeProfit": "60000",
        "rationale": "momentum is fading",
    }
    doc.update(changes)
    return doc


ACTIONS = [
    OpenPositionAction("BTC-USDT", Market.SPOT, Side.LONG, qty=D("0.01"), rationale="r"),
    OpenPositionAction(
        "XBTUSDTM",
        Market.FUTURES,
        Side.SHORT,
        notional=D("100"),
        leverage=D("3"),
        stop_loss=D("70000"),
        take_profit=D("60000"),
    ),
    PlaceTriggerAction(
        "ETH-USDT",
        Market.SPOT,
        TriggerOp.BELOW,
        D("3000"),
        Side.LONG,
        notional=D("50"),
        take_profit=D("3300"),
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        rationale="buy the dip",
    ),
    CancelTriggerAction("t1", "stale"),
    ClosePositionAction("p1", "trend reversed"),
    HoldAction("nothing to do"),
    HoldAction("flat", symbol="BTC-USDT"),
]


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: type(a).__name__)
def test_every_action_survives_a_document_round_trip(action: Any) -> None:
    """to_doc then action_from_doc gives back an equal action."""
    assert action_from_doc(action.to_doc()) == action


def test_an_open_document_reads_into_typed_decimal_fields() -> None:
    """Decimal strings become Decimals and enums their members."""
    action = action_from_doc(open_doc())
    assert action == OpenPositionAction(
        "XBTUSDTM",
        Market.FUTURES,
        Side.SHORT,
        notional=D("250"),
        leverage=D("5"),
        stop_loss=D("70000"),
        take_profit=D("60000"),
        rationale="momentum is fading",
    )


def test_the_open_action_becomes_an_agent_order() -> None:
    """The positions service receives the same order, marked with source agent."""
    action = action_from_doc(open_doc())
    assert isinstance(action, OpenPositionAction)
    request = action.to_request()
    assert request.source is Source.AGENT
    assert (request.symbol, request.notional, request.leverage) == ("XBTUSDTM", D(250), D(5))


def test_a_trigger_action_exposes_the_stored_condition_and_action() -> None:
    """A placed trigger maps onto the trigger document's condition and action."""
    action = ACTIONS[2]
    assert isinstance(action, PlaceTriggerAction)
    assert action.condition.op is TriggerOp.BELOW
    assert action.condition.price == D(3000)
    assert action.action.notional == D(50)
    assert action.action.take_profit == D(3300)


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"qty": "1"}, "actions[3].qty", "exactly one of qty and notional"),
        ({"notional": None}, "actions[3].qty", "exactly one of qty and notional"),
        ({"notional": 250}, "actions[3].notional", "decimal string"),
        ({"notional": 2.5}, "actions[3].notional", "decimal string"),
        ({"notional": "-5"}, "actions[3].notional", "greater than 0"),
        ({"notional": "abc"}, "actions[3].notional", "decimal number"),
        ({"notional": "0.000000001"}, "actions[3].notional", "at most 8 decimal places"),
        ({"notional": "NaN"}, "actions[3].notional", "finite"),
        ({"leverage": "2.5"}, "actions[3].leverage", "whole number"),
        ({"leverage": "500"}, "actions[3].leverage", "whole number"),
        ({"side": "sideways"}, "actions[3].side", "'long', 'short'"),
        ({"market": "spot"}, "actions[3].market", "does not match symbol XBTUSDTM"),
        ({"symbol": "BTC-USDT", "market": "spot"}, "actions[3].side", "long for spot"),
        ({"symbol": "not a symbol"}, "actions[3].symbol", "KuCoin symbol"),
        ({"symbol": None}, "actions[3].symbol", "must be a string"),
        ({"stopLos": "1"}, "actions[3].stopLos", "not a known field"),
        ({"type": "buy"}, "actions[3].type", "must be one of"),
        ({"rationale": 7}, "actions[3].rationale", "must be a string"),
        ({"rationale": "x" * 2001}, "actions[3].rationale", "at most 2000"),
    ],
)
def test_an_invalid_action_document_is_refused_naming_its_path(
    changes: dict[str, Any], field: str, fragment: str
) -> None:
    """Each broken rule raises a ValidationError whose field is the action's path."""
    with pytest.raises(ValidationError, match=fragment) as caught:
        action_from_doc(open_doc(**changes), "actions[3]")
    assert caught.value.field == field
    assert "actions[3]" in str(caught.value)


def test_a_spot_action_may_not_carry_leverage() -> None:
    """Spot is unlevered, so any leverage but 1 is refused at construction."""
    with pytest.raises(ValidationError, match="leverage must be 1 for spot"):
        OpenPositionAction("BTC-USDT", Market.SPOT, Side.LONG, qty=D(1), leverage=D(2))


def test_a_trigger_needs_a_positive_price_and_an_aware_expiry() -> None:
    """A trigger level of 0 or an expiry without a time zone cannot be built."""
    with pytest.raises(ValidationError, match="price must be greater than 0"):
        PlaceTriggerAction("BTC-USDT", Market.SPOT, TriggerOp.ABOVE, D(0), Side.LONG, qty=D(1))
    with pytest.raises(ValidationError, match="time zone"):
        PlaceTriggerAction(
            "BTC-USDT",
            Market.SPOT,
            TriggerOp.ABOVE,
            D(1),
            Side.LONG,
            qty=D(1),
            expires_at=datetime(2030, 1, 1),
        )


def test_a_trigger_document_reads_its_expiry_as_utc() -> None:
    """expiresAt is read as an ISO time and kept UTC-aware."""
    doc = ACTIONS[2].to_doc() | {"expiresAt": "2030-01-01T02:00:00+02:00"}
    action = action_from_doc(doc)
    assert isinstance(action, PlaceTriggerAction)
    assert action.expires_at == datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ("close everything", "action"),
        ({"type": "close_position"}, "positionId"),
        ({"type": "close_position", "positionId": ""}, "positionId"),
        ({"type": "cancel_trigger", "triggerId": 5}, "triggerId"),
        ({"type": "hold", "symbol": "??"}, "symbol"),
    ],
)
def test_malformed_non_opening_actions_are_refused(doc: object, field: str) -> None:
    """Closes, cancels and holds are read just as strictly as opens."""
    with pytest.raises(ValidationError) as caught:
        action_from_doc(doc)
    assert caught.value.field == field


def test_an_open_action_carries_a_take_profit_ladder_and_names_a_bad_leg() -> None:
    """`takeProfits` reads as legs into the order it opens; a leg breaking the ladder's
    rules is refused naming it."""
    from decimal import Decimal

    from cogmora.domain.agent.actions import OpenPositionAction
    from cogmora.domain.takeprofits import TakeProfitLeg
    from cogmora.errors import ValidationError

    doc = {
        "type": "open_position", "symbol": "BTC-USDT", "market": "spot", "side": "long",
        "qty": "1", "rationale": "scale out",
        "takeProfits": [
            {"price": "61000", "fraction": "0.5"},
            {"price": "62000", "fraction": "0.5"},
        ],
    }
    action = OpenPositionAction.from_doc(doc)
    assert action.to_request().take_profits == (
        TakeProfitLeg(Decimal(61000), Decimal("0.5")), TakeProfitLeg(Decimal(62000), Decimal("0.5"))
    )
    assert action.to_doc()["takeProfits"] == [
        {"price": "61000.00000000", "fraction": "0.50000000"},
        {"price": "62000.00000000", "fraction": "0.50000000"},
    ]
    legs = [{"price": "62000", "fraction": "0.5"}, {"price": "61000", "fraction": "0.5"}]
    bad = {**doc, "takeProfits": legs}
    try:
        OpenPositionAction.from_doc(bad)
    except ValidationError as exc:
        assert str(exc) == "takeProfits[1].price must be above takeProfits[0].price for a long"
    else:
        raise AssertionError("a falling ladder for a long was accepted")
