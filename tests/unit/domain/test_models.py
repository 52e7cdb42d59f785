"""Documents keep SPEC section 3's shape and survive a round trip through their dict form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from cogmora.domain.enums import (
    CloseReason,
    LedgerKind,
    Market,
    PositionStatus,
    Side,
    Source,
    TriggerOp,
    TriggerStatus,
)
from cogmora.domain.models import (
    LedgerEntry,
    Position,
    PositionDetails,
    PriceQuote,
    Settlement,
    Trigger,
    TriggerAction,
    TriggerCondition,
    User,
)
from cogmora.domain.paths import history_path, ledger_path, position_path, trigger_path, user_path

NOW = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def _position(**kw: object) -> Position:
    base: dict[str, object] = {
        "id": "p1",
        "uid": "alice",
        "symbol": "XBTUSDTM",
        "market": Market.FUTURES,
        "side": Side.SHORT,
        "qty": D("0.5"),
        "entry_price": D("60000.1"),
        "leverage": D(20),
        "margin": D("1500.0025"),
        "fee_open": D("18.00003"),
        "opened_at": NOW,
        "source": Source.API,
        "details": PositionDetails(stop_loss=D(61000), liquidation_price=D("62700.1045")),
    }
    base.update(kw)
    return Position(**base)  # type: ignore[arg-type]


def test_paths_are_firestore_paths() -> None:
    """Documents live under users/{uid}, as in the seed."""
    assert user_path("u") == "users/u"
    assert position_path("u", "p") == "users/u/openPositions/p"
    assert trigger_path("u", "t") == "users/u/tradeTriggers/t"
    assert history_path("u", "p") == "users/u/positionHistory/p"
    assert ledger_path("u", "l") == "users/u/ledger/l"


def test_position_document_shape_has_status_nested_in_details() -> None:
    """Money is decimal strings, times are UTC ISO with Z, status lives under details."""
    doc = _position().to_doc()
    assert doc["qty"] == "0.50000000"
    assert doc["entryPrice"] == "60000.10000000"
    assert doc["openedAt"] == "2026-01-02T03:04:05.000006Z"
    assert doc["details"]["status"] == "open"
    assert doc["details"]["liquidationPrice"] == "62700.10450000"
    assert doc["details"]["takeProfit"] is None
    assert "status" not in doc
    assert "realizedPnl" not in doc
    json.dumps(doc)  # JSON-safe: no Decimal or datetime leaks into a document


def test_position_round_trips_open_and_closed() -> None:
    """A position, open or closed with its settlement, reads back equal to what was written."""
    p = _position()
    assert Position.from_doc("p1", p.to_doc()) == p
    closed = _position(
        details=PositionDetails(
            status=PositionStatus.CLOSED,
            close_reason=CloseReason.STOP_LOSS,
            close_price=D(61000),
            close_requested_at=NOW,
        ),
        settlement=Settlement(NOW + timedelta(seconds=1), D("18.3"), D("-536.30303"), D("981.7")),
    )
    doc = closed.to_doc()
    assert doc["realizedPnl"] == "-536.30303000"
    assert doc["closeReason"] == "stop_loss"
    assert doc["closePrice"] == "61000.00000000"
    assert doc["feeClose"] == "18.30000000"
    assert Position.from_doc("p1", doc) == closed


def test_user_and_ledger_round_trip() -> None:
    """Users and ledger entries keep balance, sequence and balanceAfter exactly."""
    user = User("alice", D("1234.5"), NOW, ledger_seq=7)
    assert user.to_doc()["balance"] == "1234.50000000"
    assert user.to_doc()["currency"] == "USDT"
    assert User.from_doc(user.to_doc()) == user
    entry = LedgerEntry("l1", "alice", 8, LedgerKind.FEE, D("-0.06"), D("1234.44"), NOW, "p1")
    doc = entry.to_doc()
    assert (doc["kind"], doc["amount"], doc["balanceAfter"]) == (
        "fee", "-0.06000000", "1234.44000000"
    )
    assert LedgerEntry.from_doc("l1", doc) == entry


def test_trigger_round_trips() -> None:
    """A trigger keeps its condition, action and details through its document."""
    t = Trigger(
        "t1", "bob", "ETH-USDT", Market.SPOT,
        TriggerCondition(TriggerOp.ABOVE, D(4000)),
        TriggerAction(Side.LONG, notional=D(100), take_profit=D(4500)),
        NOW, expires_at=NOW + timedelta(days=1),
    )
    doc = t.to_doc()
    assert doc["condition"] == {"op": "above", "price": "4000.00000000"}
    assert doc["details"]["status"] == "active"
    assert Trigger.from_doc("t1", doc) == t
    fired = t.with_details(status=TriggerStatus.TRIGGERED, fired_price=D(4001), position_id="p")
    assert Trigger.from_doc("t1", fired.to_doc()) == fired


def test_price_quote_round_trips() -> None:
    """A price quote keeps its price, time and optional mark price."""
    q = PriceQuote("XBTUSDTM", D("60000.5"), NOW, D("60001"))
    assert PriceQuote.from_doc(q.to_doc()) == q
    assert PriceQuote.from_doc(PriceQuote("BTC-USDT", D(1), NOW).to_doc()).mark_price is None
