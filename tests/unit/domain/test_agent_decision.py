from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from cogmora.domain.agent import (
    AgentDecision,
    Applied,
    ClosePositionAction,
    HoldAction,
    OpenPositionAction,
    Refusal,
    Usage,
)
from cogmora.domain.enums import Market, Side
from cogmora.domain.paths import decision_path

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_a_decision_survives_a_document_round_trip() -> None:
    """Every part of the log entry, typed and untyped, reads back equal."""
    opened = OpenPositionAction("BTC-USDT", Market.SPOT, Side.LONG, notional=Decimal(100))
    refused = OpenPositionAction("BTC-USDT", Market.SPOT, Side.LONG, notional=Decimal(5000))
    decision = AgentDecision(
        id="d1",
        uid="u1",
        created_at=NOW,
        scheduled_for=NOW,
        provider="llm",
        inputs={"account": {"balance": "1000"}},
        actions=(opened, refused, ClosePositionAction("p1"), HoldAction("x")),
        rationale="uptrend",
        applied=(Applied(opened, "p9"), Applied(ClosePositionAction("p1"), "p1")),
        refused=(
            Refusal.of(refused, "notional 5000 exceeds maxPositionNotional 1000"),
            Refusal({"invalid": "'buy'"}, "actions[4] must be an object"),
        ),
        error=None,
        usage=Usage(120, 30, 1),
    )
    doc = decision.to_doc()
    assert doc["usage"] == {"promptTokens": 120, "completionTokens": 30, "calls": 1}
    assert doc["refused"][0]["action"]["notional"] == "5000.00000000"
    assert AgentDecision.from_doc("d1", doc) == decision
    assert decision.path == decision_path("u1", "d1") == "users/u1/agentDecisions/d1"


def test_a_failed_run_is_logged_with_its_error_and_no_actions() -> None:
    """A run that decided nothing still has a complete log entry."""
    decision = AgentDecision("d2", "u1", NOW, "llm", error="daily LLM call budget exhausted")
    doc = decision.to_doc()
    assert doc["actions"] == [] and doc["applied"] == [] and doc["refused"] == []
    assert AgentDecision.from_doc("d2", doc) == decision


def test_usage_adds_up_across_calls() -> None:
    """Token counts and calls sum, and the total is prompt plus completion."""
    total = Usage(10, 5, 1) + Usage(7, 3, 1)
    assert total == Usage(17, 8, 2)
    assert total.total_tokens == 25
