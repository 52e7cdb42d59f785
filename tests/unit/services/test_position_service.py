"""Opening, amending, closing and summarising positions through `Positions`, on real SQLite."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest

from cogmora.cli.compose import System
from cogmora.domain.enums import CloseReason, LedgerKind, Market, PositionStatus, Side
from cogmora.domain.models import PriceQuote
from cogmora.domain.orders import OpenRequest
from cogmora.errors import Conflict, InsufficientBalance, NotFound, ValidationError
from cogmora.services.idempotency import IdempotencyKey
from cogmora.services.prices import StorePrices

Quote = Callable[..., PriceQuote]


def spot(qty: str | None = None, **kw: Any) -> OpenRequest:
    return OpenRequest(
        "BTC-USDT", Market.SPOT, Side.LONG, qty=None if qty is None else D(qty), **kw
    )


def fut(side: Side, qty: str, leverage: int, **kw: Any) -> OpenRequest:
    return OpenRequest("XBTUSDTM", Market.FUTURES, side, qty=D(qty), leverage=D(leverage), **kw)


async def balance(system: System, uid: str) -> D:
    return (await system.accounts.get_user(uid)).balance


async def snapshot(system: System, uid: str) -> tuple[D, int, int]:
    """What a refused request must not change: balance, ledger length, position count."""
    return (
        await balance(system, uid),
        len(await system.accounts.ledger(uid)),
        len(await system.positions.list_for_user(uid)),
    )


# ---------------------------------------------------------------- open


async def test_spot_open_fills_at_the_latest_price_and_books_margin_and_fee(
    system: System, make_user: Any, quote: Quote
) -> None:
    """Spot 0.1 at 50000 debits 5000 + 5 with two ledger entries naming the position."""
    await make_user("alice", "10000")
    quote("BTC-USDT", "49000", age=3)
    quote("BTC-USDT", "50000")
    doc = await system.positions.open("alice", spot("0.1"))
    assert doc["entryPrice"] == "50000.00000000"
    assert doc["margin"] == "5000.00000000"
    assert doc["feeOpen"] == "5.00000000"
    assert doc["details"]["status"] == "open"
    assert doc["source"] == "api"
    assert await balance(system, "alice") == D("4995")
    entries = await system.accounts.ledger("alice")
    assert [(e.kind, e.amount, e.position_id) for e in entries[1:]] == [
        (LedgerKind.OPEN, D(-5000), doc["id"]),
        (LedgerKind.FEE, D(-5), doc["id"]),
    ]
    assert entries[-1].balance_after == D("4995")


async def test_futures_open_by_notional_locks_margin_at_leverage(
    system: System, make_user: Any, quote: Quote
) -> None:
    """Short notional 6000 at 60000 x10: qty 0.1, margin 600, fee 3.6, liq 65700."""
    await make_user("alice", "1000")
    quote("XBTUSDTM", "60000")
    request = OpenRequest(
        "XBTUSDTM", Market.FUTURES, Side.SHORT, notional=D(6000), leverage=D(10)
    )
    doc = await system.positions.open("alice", request)
    assert (doc["qty"], doc["margin"], doc["feeOpen"]) == (
        "0.10000000", "600.00000000", "3.60000000"
    )
    assert doc["details"]["liquidationPrice"] == "65700.00000000"  # 60000*(1+0.1-0.005)
    assert await balance(system, "alice") == D("396.4")


async def test_insufficient_balance_is_refused_and_moves_nothing(
    system: System, make_user: Any, quote: Quote
) -> None:
    """Needing 5005 with 5000 is 422 `insufficient balance: need 5005, have 5000`, no writes."""
    await make_user("alice", "5000")
    quote("BTC-USDT", "50000")
    before = await snapshot(system, "alice")
    with pytest.raises(InsufficientBalance) as info:
        await system.positions.open("alice", spot("0.1"))
    assert str(info.value) == "insufficient balance: need 5005.00000000, have 5000.00000000"
    assert await snapshot(system, "alice") == before


async def test_exactly_enough_balance_opens(system: System, make_user: Any, quote: Quote) -> None:
    """A balance equal to margin plus fee is enough, and leaves exactly zero."""
    await make_user("alice", "5005")
    quote("BTC-USDT", "50000")
    await system.positions.open("alice", spot("0.1"))
    assert await balance(system, "alice") == 0


@pytest.mark.parametrize("age", [5.5, None])
async def test_open_without_a_fresh_price_is_a_conflict_and_moves_nothing(
    system: System, make_user: Any, quote: Quote, age: float | None
) -> None:
    """No price within 5 s is 409 `no fresh price for BTC-USDT`, and nothing is written."""
    await make_user("alice")
    if age is not None:
        quote("BTC-USDT", "50000", age=age)
    before = await snapshot(system, "alice")
    with pytest.raises(Conflict, match="no fresh price for BTC-USDT"):
        await system.positions.open("alice", spot("0.1"))
    assert await snapshot(system, "alice") == before


async def test_a_fresh_price_from_the_store_is_used_when_there_is_no_live_one(
    system: System, make_user: Any, clock: Any
) -> None:
    """An API process without a feed fills at the worker's prices/{symbol} document."""
    await make_user("alice")
    await StorePrices(system.store).put([PriceQuote("BTC-USDT", D("123.45"), clock.now())])
    doc = await system.positions.open("alice", spot("1"))
    assert doc["entryPrice"] == "123.45000000"


async def test_unknown_symbol_and_wrong_market_are_validation_errors(
    system: System, make_user: Any, quote: Quote
) -> None:
    """A typo or a futures contract ordered as spot is 422 naming `symbol`."""
    await make_user("alice")
    for request in (
        OpenRequest("BTC-USDX", Market.SPOT, Side.LONG, qty=D(1)),
        OpenRequest("XBTUSDTM", Market.SPOT, Side.LONG, qty=D(1)),
    ):
        with pytest.raises(ValidationError) as info:
            await system.positions.open("alice", request)
        assert info.value.field == "symbol"


async def test_levels_are_checked_against_the_fill_price(
    system: System, make_user: Any, quote: Quote
) -> None:
    """A long's stop loss above the fill price is refused and nothing moves."""
    await make_user("alice")
    quote("BTC-USDT", "100")
    before = await snapshot(system, "alice")
    with pytest.raises(ValidationError, match="stopLoss must be below the entry price for a long"):
        await system.positions.open("alice", spot("1", stop_loss=D(101)))
    assert await snapshot(system, "alice") == before


async def test_idempotency_key_replays_the_first_open(
    system: System, make_user: Any, quote: Quote
) -> None:
    """The same key and body twice opens once and answers the same position twice."""
    await make_user("alice", "1000")
    quote("BTC-USDT", "100")
    key = IdempotencyKey.of("alice", "k1", "POST /v1/positions", {"qty": "1"})
    first = await system.positions.open("alice", spot("1"), key)
    quote("BTC-USDT", "200")  # the retry must not re-fill at the new price
    again = await system.positions.open("alice", spot("1"), key)
    assert again == first
    assert len(await system.positions.list_for_user("alice")) == 1
    assert await balance(system, "alice") == D("899.9")


async def test_idempotency_key_of_a_refused_open_does_not_stick(
    system: System, make_user: Any, quote: Quote
) -> None:
    """A refused open records nothing, so the same key may succeed after a deposit."""
    await make_user("alice", "50")
    quote("BTC-USDT", "100")
    key = IdempotencyKey.of("alice", "k1", "POST /v1/positions", {"qty": "1"})
    with pytest.raises(InsufficientBalance):
        await system.positions.open("alice", spot("1"), key)
    await system.accounts.deposit("alice", D(100))
    await system.positions.open("alice", spot("1"), key)
    assert len(await system.positions.list_for_user("alice")) == 1


# ---------------------------------------------------------------- close and amend


async def test_request_close_marks_closing_at_the_latest_price(
    system: System, make_user: Any, quote: Quote
) -> None:
    """A manual close is `closing`, reason manual, at the latest price; no money moves yet."""
    await make_user("alice", "1000")
    quote("BTC-USDT", "100")
    pid = (await system.positions.open("alice", spot("1")))["id"]
    quote("BTC-USDT", "110")
    bal = await balance(system, "alice")
    doc = await system.positions.request_close("alice", pid)
    assert doc["details"]["status"] == "closing"
    assert doc["details"]["closeReason"] == "manual"
    assert doc["details"]["closePrice"] == "110.00000000"
    assert doc["details"]["closeRequestedAt"] is not None
    assert await balance(system, "alice") == bal
    with pytest.raises(Conflict, match=f"position {pid} is closing, not open"):
        await system.positions.request_close("alice", pid)


async def test_close_without_a_fresh_price_is_refused_and_leaves_it_open(
    system: System, make_user: Any, quote: Quote, clock: Any
) -> None:
    """A close needs a fresh price too; a refused close leaves the position open."""
    await make_user("alice", "1000")
    quote("BTC-USDT", "100")
    pid = (await system.positions.open("alice", spot("1")))["id"]
    clock.advance(6)
    with pytest.raises(Conflict, match="no fresh price for BTC-USDT"):
        await system.positions.request_close("alice", pid)
    assert (await system.positions.get("alice", pid)).status is PositionStatus.OPEN


async def test_another_users_position_is_not_found(
    system: System, make_user: Any, quote: Quote
) -> None:
    """Bob cannot read, amend or close Alice's position: it does not exist for him."""
    await make_user("alice", "1000")
    await make_user("bob", "1000")
    quote("BTC-USDT", "100")
    pid = (await system.positions.open("alice", spot("1")))["id"]
    with pytest.raises(NotFound):
        await system.positions.get("bob", pid)
    with pytest.raises(NotFound):
        await system.positions.request_close("bob", pid)
    with pytest.raises(NotFound):
        await system.positions.amend("bob", pid, {"stopLoss": D(90)})
    assert (await system.positions.get("alice", pid)).status is PositionStatus.OPEN


async def test_amend_sets_and_clears_levels_against_the_current_price(
    system: System, make_user: Any, quote: Quote
) -> None:
    """SL/TP are checked against the current price; None clears; omitted keeps."""
    await make_user("alice", "1000")
    quote("BTC-USDT", "100")
    pid = (await system.positions.open("alice", spot("1", stop_loss=D(90))))["id"]
    quote("BTC-USDT", "120")
    doc = await system.positions.amend("alice", pid, {"stopLoss": D(110), "takeProfit": D(150)})
    assert (doc["details"]["stopLoss"], doc["details"]["takeProfit"]) == (
        "110.00000000", "150.00000000"
    )
    with pytest.raises(ValidationError, match="stopLoss must be below the current price"):
        await system.positions.amend("alice", pid, {"stopLoss": D(125)})
    doc = await system.positions.amend("alice", pid, {"takeProfit": None})
    assert doc["details"]["takeProfit"] is None
    assert doc["details"]["stopLoss"] == "110.00000000"


async def test_amend_refuses_a_stop_beyond_liquidation(
    system: System, make_user: Any, quote: Quote
) -> None:
    """A x10 long at 60000 liquidates at 54300; a stop at 54000 is refused."""
    await make_user("alice", "1000")
    quote("XBTUSDTM", "60000")
    pid = (await system.positions.open("alice", fut(Side.LONG, "0.1", 10)))["id"]
    with pytest.raises(ValidationError, match="above the liquidation price 54300"):
        await system.positions.amend("alice", pid, {"stopLoss": D(54000)})


async def test_amend_of_a_closing_position_is_a_conflict(
    system: System, make_user: Any, quote: Quote
) -> None:
    """Levels of a position already closing cannot change."""
    await make_user("alice", "1000")
    quote("BTC-USDT", "100")
    pid = (await system.positions.open("alice", spot("1")))["id"]
    await system.positions.request_close("alice", pid)
    with pytest.raises(Conflict):
        await system.positions.amend("alice", pid, {"stopLoss": D(50)})


# ---------------------------------------------------------------- account view


async def test_account_view_hand_computed(
    system: System, make_user: Any, quote: Quote
) -> None:
    """20000; spot 0.1@50000 (5005) and x10 long 1@60000 (6036); marks 51000/61000:
    balance 8959, equity 8959 + 5100 + 7000 = 21059, margin 6000, uPnL 100 + 1000."""
    await make_user("alice", "20000")
    quote("BTC-USDT", "50000")
    quote("XBTUSDTM", "60000")
    await system.positions.open("alice", spot("0.1"))
    await system.positions.open("alice", fut(Side.LONG, "1", 10))
    quote("BTC-USDT", "51000")
    quote("XBTUSDTM", "61000")
    view = await system.positions.account("alice")
    assert view.balance == D("8959")
    assert view.equity == D("21059")
    assert view.margin_used == D("6000")
    assert view.unrealized_pnl == D("1100")


async def test_unrealized_loss_of_isolated_margin_is_capped_at_the_margin(
    system: System, make_user: Any, quote: Quote
) -> None:
    """A x10 long of 1 at 60000 marked at 50000 can lose its 6000 margin, not 10000:
    unrealizedPnl agrees with equity (balance + what the position is worth)."""
    await make_user("alice", "7000")
    quote("XBTUSDTM", "60000")
    await system.positions.open("alice", fut(Side.LONG, "1", 10))
    quote("XBTUSDTM", "50000")
    view = await system.positions.account("alice")
    assert view.equity == view.balance == D("964")
    assert view.unrealized_pnl == D("-6000")


async def test_list_filters_by_status(system: System, make_user: Any, quote: Quote) -> None:
    """Listing by status returns only that status, newest first."""
    await make_user("alice", "1000")
    quote("BTC-USDT", "100")
    first = (await system.positions.open("alice", spot("1")))["id"]
    system.clock.advance(1)  # type: ignore[attr-defined]
    quote("BTC-USDT", "100")
    second = (await system.positions.open("alice", spot("1")))["id"]
    await system.positions.request_close("alice", first)
    assert [p.id for p in await system.positions.list_for_user("alice")] == [second, first]
    open_ = await system.positions.list_for_user("alice", PositionStatus.OPEN)
    closing = await system.positions.list_for_user("alice", PositionStatus.CLOSING)
    assert [p.id for p in open_] == [second]
    assert [p.id for p in closing] == [first]
    assert closing[0].details.close_reason is CloseReason.MANUAL
