"""The agent's actions offer a trailing stop (SPEC 5.2): read strictly, written back, in the
model's schema, and carried into the order."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from cogmora.domain.agent.actions import (
    OpenPositionAction,
    PlaceTriggerAction,
    action_from_doc,
)
from cogmora.domain.agent.schema import action_list_schema
from cogmora.domain.enums import Market, Side
from cogmora.domain.trailing import TrailingStop
from cogmora.errors import ValidationError

OPEN = {"type": "open_position", "symbol": "BTC-USDT", "market": "spot", "side": "long",
        "qty": "0.1"}


def test_an_open_with_a_trailing_stop_reads_and_writes_back() -> None:
    """The document's trailingStop becomes the order's, and the same document comes back."""
    doc = {**OPEN, "trailingStop": {"callbackRate": "0.02", "activationPrice": None}}
    action = action_from_doc(doc)
    assert isinstance(action, OpenPositionAction)
    assert action.trailing_stop == TrailingStop(D("0.02"))
    assert action.to_request().trailing_stop == TrailingStop(D("0.02"))
    assert action.to_doc()["trailingStop"] == {
        "callbackRate": "0.02000000",
        "activationPrice": None,
    }


@pytest.mark.parametrize(
    ("trailing", "field"),
    [
        ({"callbackRate": "0.9"}, "actions[0].trailingStop.callbackRate"),
        ({"callbackRate": 0.1}, "actions[0].trailingStop.callbackRate"),
        ({"callbackRate": "0.1", "rate": "1"}, "actions[0].trailingStop.rate"),
        ("0.1", "actions[0].trailingStop"),
    ],
)
def test_a_bad_trailing_stop_is_refused_naming_its_path(trailing: object, field: str) -> None:
    """Out of (0, 0.5], a number instead of a string, an unknown key, not an object."""
    with pytest.raises(ValidationError) as caught:
        action_from_doc({**OPEN, "trailingStop": trailing}, "actions[0]")
    assert caught.value.field == field


def test_a_trigger_action_passes_its_trailing_stop_to_the_position_it_opens() -> None:
    action = PlaceTriggerAction(
        "BTC-USDT", Market.SPOT, action_from_doc(
            {**OPEN, "type": "place_trigger", "op": "below", "price": "50000"}
        ).op, D("50000"), Side.LONG, qty=D("0.1"),
        trailing_stop=TrailingStop(D("0.05"), D("52000")),
    )
    assert action.action.trailing_stop == TrailingStop(D("0.05"), D("52000"))


def test_the_model_schema_offers_a_nullable_trailing_stop_on_every_opening_action() -> None:
    """Strict structured outputs: listed in `required`, nullable, no extra keys."""
    variants = action_list_schema()["properties"]["actions"]["items"]["anyOf"]
    opening = [v for v in variants if v["properties"]["type"]["enum"][0] in
               ("open_position", "place_trigger")]
    assert len(opening) == 2
    for variant in opening:
        prop = variant["properties"]["trailingStop"]
        assert "trailingStop" in variant["required"]
        assert prop["type"] == ["object", "null"] and prop["additionalProperties"] is False
        assert prop["required"] == ["callbackRate", "activationPrice"]


def test_the_guard_refuses_an_activation_price_already_passed() -> None:
    """The risk guard applies the API's rule: a long's activation above the current price."""
    from cogmora.domain.agent import GuardFacts, RiskLimits, check_actions

    limits = RiskLimits(
        max_leverage=D(10), max_position_notional=D(1000), max_open_positions=3,
        max_daily_loss=D(100),
    )
    facts = GuardFacts(
        now=datetime(2024, 5, 1, tzinfo=UTC),
        symbols=frozenset({"BTC-USDT"}),
        prices={"BTC-USDT": D(50000)},
        open_position_ids=frozenset(),
        active_trigger_ids=frozenset(),
    )
    good = OpenPositionAction("BTC-USDT", Market.SPOT, Side.LONG, notional=D(500),
                              trailing_stop=TrailingStop(D("0.02"), D("51000")))
    bad = OpenPositionAction("BTC-USDT", Market.SPOT, Side.LONG, notional=D(500),
                             trailing_stop=TrailingStop(D("0.02"), D("49000")))
    accepted, refused = check_actions([good, bad], limits, facts)
    assert accepted == [good]
    assert [reason for _, reason in refused] == [
        "trailingStop.activationPrice must be above the current price for a long"
    ]
