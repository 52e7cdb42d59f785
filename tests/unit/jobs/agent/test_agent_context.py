from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

from agent_testkit import NOW, UP, context, position, trigger, watch

from cogmora.domain.enums import PositionStatus, Side, Source, TriggerStatus
from cogmora.jobs.agent.context import compact

D = Decimal


def test_the_price_is_the_last_trade_else_the_last_close() -> None:
    """The watchlist's last price wins; without it the last candle's close stands in."""
    ctx = context({"BTC-USDT": UP}, watch={"BTC-USDT": watch("BTC-USDT", "131.5")})
    assert ctx.price("BTC-USDT") == D("131.5")
    assert context({"BTC-USDT": UP}).price("BTC-USDT") == D(130)
    assert context({"BTC-USDT": UP}).price("ETH-USDT") is None


def test_a_watch_entry_with_an_error_is_not_a_price() -> None:
    """A delisted symbol's stale stats are not used as its price."""
    broken = replace(watch("BTC-USDT", "999"), error="unknown or delisted symbol on KuCoin")
    assert context({"BTC-USDT": UP}, watch={"BTC-USDT": broken}).price("BTC-USDT") == D(130)


def test_guard_facts_count_only_live_positions_and_triggers() -> None:
    """Closing positions and fired triggers are not open/active; only agent triggers are pending."""
    closing = position("p2", "BTC-USDT", Side.LONG).with_details(status=PositionStatus.CLOSING)
    fired = trigger("t3", "BTC-USDT").with_details(status=TriggerStatus.TRIGGERED)
    ctx = context(
        {"BTC-USDT": UP},
        positions=(position("p1", "BTC-USDT", Side.LONG), closing),
        triggers=(trigger("t1", "BTC-USDT"), trigger("t2", "BTC-USDT", Source.API), fired),
        realized_loss_today=D(-50),
    )
    facts = ctx.guard_facts()
    assert facts.open_position_ids == {"p1"}
    assert facts.active_trigger_ids == {"t1", "t2"}
    assert facts.pending_agent_triggers == 1
    assert facts.realized_loss_today == 0
    assert facts.prices == {"BTC-USDT": D(130)}
    assert facts.symbols == {"BTC-USDT"}
    assert facts.now == NOW


def test_the_prompt_summary_holds_recent_candles_as_compact_rows() -> None:
    """Only the last N candles go to the model, each as a row of short decimal strings."""
    ctx = context({"BTC-USDT": UP}, positions=(position("p1", "BTC-USDT", Side.LONG),))
    summary = ctx.prompt_summary(max_candles=3)
    rows = summary["candles"]["BTC-USDT"]["rows"]
    assert len(rows) == 3
    assert rows[-1][1:] == ["130", "131", "129", "130", "10"]
    assert summary["account"] == {"balance": "5000", "equity": "5000"}
    assert summary["positions"][0]["unrealizedPnl"] == "30"
    assert summary["limits"]["maxOpenPositions"] == 3
    json.dumps(summary)


def test_the_log_summary_drops_candle_rows_but_keeps_their_span() -> None:
    """The decision log gets counts and the last close, not every candle."""
    summary = context({"BTC-USDT": UP}).log_summary()
    assert summary["candles"]["BTC-USDT"] == {
        "interval": "1hour",
        "count": 31,
        "first": "2024-04-30T05:00:00.000000Z",
        "last": "2024-05-01T11:00:00.000000Z",
        "lastClose": "130",
    }
    assert "rows" not in json.dumps(summary)


def test_market_stats_appear_per_agent_symbol() -> None:
    """Each agent symbol shows its price and 24h stats when the watchlist has them."""
    ctx = context({"BTC-USDT": UP, "XBTUSDTM": UP}, watch={"BTC-USDT": watch("BTC-USDT", "131")})
    markets = ctx.prompt_summary()["markets"]
    assert markets["BTC-USDT"]["high24h"] == "136"
    assert markets["XBTUSDTM"] == {"price": "130"}


def test_compact_writes_decimals_exactly_without_exponents() -> None:
    """Trailing zeros go, small values stay positional."""
    assert compact(D("130.00000000")) == "130"
    assert compact(D("0.00001234")) == "0.00001234"
    assert compact(D("1E+3")) == "1000"
    assert compact(None) is None
