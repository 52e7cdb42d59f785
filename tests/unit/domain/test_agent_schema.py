from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cogmora.domain.agent import (
    ClosePositionAction,
    OpenPositionAction,
    action_from_doc,
    action_list_schema,
    check_reply,
    response_format,
)
from cogmora.domain.agent.schema import MAX_ACTIONS


def valid_open() -> dict[str, Any]:
    return {
        "type": "open_position",
        "symbol": "BTC-USDT",
        "market": "spot",
        "side": "long",
        "qty": None,
        "notional": "100",
        "leverage": None,
        "stopLoss": "60000",
        "takeProfit": None,
        "rationale": "breakout",
    }


def test_a_valid_reply_gives_typed_actions_and_the_rationale() -> None:
    """Every action in a valid reply is returned, in order, with no error."""
    reply = {
        "rationale": "trend up",
        "actions": [valid_open(), {"type": "close_position", "positionId": "p1", "rationale": ""}],
    }
    checked = check_reply(reply)
    assert checked.error is None
    assert checked.rationale == "trend up"
    assert isinstance(checked.actions[0], OpenPositionAction)
    assert checked.actions[0].notional == Decimal(100)
    assert checked.actions[1] == ClosePositionAction("p1")
    assert checked.refused == ()


def test_one_invalid_action_refuses_the_whole_reply() -> None:
    """No action of a reply with an invalid one is returned; each is refused with a reason."""
    bad = valid_open() | {"leverage": "20"}
    reply = {"rationale": "x", "actions": [{"type": "hold", "rationale": "wait"}, bad]}
    checked = check_reply(reply)
    assert checked.actions == ()
    assert checked.error is not None
    assert "actions[1]" in checked.error
    assert "leverage must be 1 for spot" in checked.error
    assert [r.reason for r in checked.refused] == [
        "not applied: another action in the reply is invalid",
        "actions[1]: leverage must be 1 for spot",
    ]
    assert checked.refused[1].action["leverage"] == "20"


@pytest.mark.parametrize(
    ("reply", "fragment"),
    [
        ([], "JSON object"),
        ("actions", "JSON object"),
        ({"rationale": "x"}, "actions must be a list"),
        ({"rationale": "x", "actions": {}}, "actions must be a list"),
        ({"rationale": 3, "actions": []}, "rationale must be a string"),
        ({"rationale": "x", "actions": [], "extra": 1}, "unknown fields: extra"),
        ({"rationale": "x", "actions": [{"type": "hold"}] * (MAX_ACTIONS + 1)}, "at most"),
    ],
)
def test_a_reply_of_the_wrong_shape_is_reported_not_raised(reply: object, fragment: str) -> None:
    """A reply that is not `{rationale, actions: [...]}` yields an error and no actions."""
    checked = check_reply(reply)
    assert checked.actions == ()
    assert checked.error is not None
    assert fragment in checked.error


def test_a_non_object_action_is_kept_in_the_refusals() -> None:
    """Whatever the model sent stays visible in the log, even a bare string."""
    checked = check_reply({"rationale": "", "actions": ["buy bitcoin"]})
    assert checked.refused[0].action == {"invalid": "'buy bitcoin'"}
    assert "actions[0] must be an object" in checked.refused[0].reason


def test_the_schema_is_strict_mode_compatible() -> None:
    """Every object lists all its properties as required and forbids extra ones."""
    schema = action_list_schema()

    def objects(node: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        if isinstance(node, dict):
            if node.get("type") == "object":
                found.append(node)
            for value in node.values():
                found.extend(objects(value))
        elif isinstance(node, list):
            for value in node:
                found.extend(objects(value))
        return found

    all_objects = objects(schema)
    assert len(all_objects) == 7  # the reply, five actions, a take-profit leg
    for obj in all_objects:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
    json.dumps(schema)


def test_the_schema_names_every_action_type() -> None:
    """The variants offered to the model are exactly the five action types."""
    variants = action_list_schema()["properties"]["actions"]["items"]["anyOf"]
    kinds = [v["properties"]["type"]["enum"] for v in variants]
    assert kinds == [
        ["open_position"],
        ["place_trigger"],
        ["cancel_trigger"],
        ["close_position"],
        ["hold"],
    ]


def test_a_schema_example_built_from_the_schema_passes_the_check() -> None:
    """A reply that fills every property of a variant as the schema says is accepted."""
    variant = action_list_schema()["properties"]["actions"]["items"]["anyOf"][1]
    values = {
        "type": "place_trigger",
        "symbol": "ETHUSDTM",
        "market": "futures",
        "op": "above",
        "price": "4000",
        "side": "long",
        "qty": "0.5",
        "notional": None,
        "leverage": "2",
        "stopLoss": "3900",
        "takeProfit": None,
        "trailingStop": {"callbackRate": "0.02", "activationPrice": None},
        "expiresAt": None,
        "rationale": "breakout",
    }
    assert sorted(values) == sorted(variant["properties"])
    checked = check_reply({"rationale": "r", "actions": [values]})
    assert checked.error is None


def test_response_format_wraps_the_schema_for_chat_completions() -> None:
    """The response_format asks for strict json_schema output named agent_actions."""
    fmt = response_format()
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "agent_actions"
    assert fmt["json_schema"]["schema"] == action_list_schema()


def test_changing_a_returned_schema_does_not_change_the_next_one() -> None:
    """Each call returns its own copy, so one caller's edit cannot leak into another's."""
    first = action_list_schema()
    first["properties"]["actions"]["items"]["anyOf"][0]["properties"]["qty"]["type"] = "x"
    assert action_list_schema() != first


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
FIELD_VALUES = (
    st.none()
    | st.text(max_size=12)
    | st.integers()
    | st.sampled_from(
        [
            "BTC-USDT",
            "XBTUSDTM",
            "spot",
            "futures",
            "long",
            "short",
            "above",
            "1",
            "0",
            "-1",
            "0.5",
            "1e999",
            "NaN",
            "2024-01-01T00:00:00Z",
            "open_position",
            "place_trigger",
            "hold",
        ]
    )
)
NEAR_ACTIONS = st.dictionaries(
    st.sampled_from(
        [
            "type",
            "symbol",
            "market",
            "side",
            "qty",
            "notional",
            "leverage",
            "stopLoss",
            "takeProfit",
            "op",
            "price",
            "expiresAt",
            "positionId",
            "triggerId",
            "rationale",
        ]
    ),
    FIELD_VALUES,
)


@settings(max_examples=300)
@given(reply=JSON | st.fixed_dictionaries({"rationale": JSON, "actions": st.lists(NEAR_ACTIONS)}))
def test_any_reply_is_checked_without_raising(reply: object) -> None:
    """Arbitrary JSON never raises; actions come back only when there is no error."""
    checked = check_reply(reply)
    if checked.error is None:
        assert isinstance(reply, dict)
        assert len(checked.actions) == len(reply["actions"])
        for action in checked.actions:
            assert action_from_doc(action.to_doc()) == action
    else:
        assert checked.actions == ()
        json.dumps([r.to_doc() for r in checked.refused])
