"""The batched settlement writes what the per-position maths and models say, in our context."""

from __future__ import annotations

import decimal
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side, Source
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Doc, LedgerEntry, Position, PositionDetails, Settlement, User
from cogmora.domain.money import to_str
from cogmora.domain.positions import close_fill
from cogmora.services.settlement import settle_in

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
FEES = FeeSchedule()


class _Clock:
    def now(self) -> datetime:
        return NOW


class _Tx:
    """Just what settle_in calls: the users it reads, the writes it makes."""

    def __init__(self, users: dict[str, Doc]) -> None:
        self.users = users
        self.writes: dict[str, tuple[str, Doc]] = {}

    def get_many(self, paths: list[str]) -> list[Doc | None]:
        return [self.users.get(p) for p in paths]

    def set(self, path: str, doc: Doc) -> None:
        self.writes[path] = ("set", doc)

    def create(self, path: str, doc: Doc) -> None:
        self.writes[path] = ("create", doc)


def _amount(low: str, high: str) -> st.SearchStrategy[Decimal]:
    return st.decimals(Decimal(low), Decimal(high), places=8, allow_nan=False)


closes = st.builds(
    lambda market, side, qty, entry, lev, price, reason: (
        market,
        Side.LONG if market is Market.SPOT else side,
        qty,
        entry,
        Decimal(1) if market is Market.SPOT else Decimal(lev),
        price,
        CloseReason.MANUAL
        if market is Market.SPOT and reason is CloseReason.LIQUIDATION
        else reason,
    ),
    st.sampled_from(Market),
    st.sampled_from(Side),
    _amount("0.00000001", "50"),
    _amount("0.00000001", "100000"),
    st.integers(1, 125),
    _amount("0.00000001", "200000"),
    st.sampled_from(CloseReason),
)


def _position(i: int, close: tuple[Any, ...]) -> Position:
    market, side, qty, entry, lev, price, reason = close
    notional = qty * entry
    return Position(
        id=f"p{i}",
        uid="ann",
        symbol="BTC-USDT" if market is Market.SPOT else "XBTUSDTM",
        market=market,
        side=side,
        qty=qty,
        entry_price=entry,
        leverage=lev,
        margin=Decimal(to_str(notional / lev)),
        fee_open=Decimal(to_str(notional * FEES.taker(market))),
        opened_at=NOW,
        source=Source.API,
        details=PositionDetails(
            status=PositionStatus.CLOSING,
            close_reason=reason,
            close_price=price,
            close_requested_at=NOW,
        ),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(closes, min_size=1, max_size=6), st.sampled_from([3, 6, 28]))
def test_a_batch_settles_each_position_as_close_fill_and_position_to_doc_say(
    batch: list[tuple[Any, ...]], prec: int
) -> None:
    """Whatever the thread's context, each closed document is Position.to_doc of the settled
    value, each history document the same, and the ledger runs from the balance in order."""
    positions = [_position(i, c) for i, c in enumerate(batch)]
    user = User("ann", Decimal(1_000_000), NOW, ledger_seq=3)
    tx = _Tx({"users/ann": user.to_doc()})
    with decimal.localcontext() as ctx:
        ctx.prec, ctx.rounding = prec, decimal.ROUND_UP
        assert settle_in(tx, [(p.path, p.to_doc()) for p in positions], FEES, _Clock()) == len(
            positions
        )
    balance, seq = user.balance, user.ledger_seq
    ledger = sorted(
        (
            LedgerEntry.from_doc(path.rsplit("/", 1)[1], doc)
            for path, (_, doc) in tx.writes.items()
            if "/ledger/" in path
        ),
        key=lambda e: e.seq,
    )
    lines = iter(ledger)
    for p in positions:
        fill = close_fill(
            p.market,
            p.side,
            p.qty,
            p.entry_price,
            p.margin,
            p.fee_open,
            p.details.close_price,
            p.details.close_reason,
            FEES,  # type: ignore[arg-type]
        )
        settled = replace(
            p,
            details=replace(p.details, status=PositionStatus.CLOSED),
            settlement=Settlement(NOW, fill.fee_close, fill.realized_pnl, fill.payout),
        )
        assert tx.writes[p.path] == ("set", settled.to_doc())
        assert tx.writes[f"users/ann/positionHistory/{p.id}"] == ("create", settled.to_doc())
        for kind, amount in fill.ledger:
            entry = next(lines)
            balance, seq = balance + amount, seq + 1
            assert (entry.kind, entry.amount, entry.balance_after, entry.seq) == (
                kind,
                amount,
                balance,
                seq,
            )
            assert (entry.position_id, entry.at) == (p.id, NOW)
    assert next(lines, None) is None
    assert tx.writes["users/ann"][1]["balance"] == to_str(balance)
    assert tx.writes["users/ann"][1]["ledgerSeq"] == seq
