"""Random sequences of deposits, opens, closes, liquidations and settlements never create
or destroy money: the real services on a real SQLite file, checked against a model that
books SPEC section 4 independently.

Conservation, exact in Decimal, from the stored documents alone:
    deposits == sum(balances) + sum(margin + feeOpen of open/closing positions)
                - sum(realizedPnl of closed positions)
because an open moves -(margin + feeOpen) and a settlement moves payout, and
realizedPnl = payout - margin - feeOpen (SPEC section 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal as D

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    invariant,
    precondition,
    rule,
)
from system_machine import SystemMachine, machine_settings

from cogmora.domain.enums import CloseReason, LedgerKind, Market, PositionStatus, Side
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import PriceQuote
from cogmora.domain.money import quantize, quantize_down
from cogmora.domain.orders import OpenRequest
from cogmora.errors import Conflict, InsufficientBalance
from cogmora.services.crossings import PositionHit, apply_crossings
from cogmora.services.symbols import SymbolCatalog

FEES = FeeSchedule()
USERS = ("u0", "u1", "u2")
SYMBOLS = {"BTC-USDT": Market.SPOT, "XBTUSDTM": Market.FUTURES}
PRICES = st.decimals(min_value=D(50), max_value=D(150), places=4)
QTYS = st.decimals(min_value=D("0.001"), max_value=D(120), places=3)
ONE_CENT = D("0.01")
# each stored leg is quantized on its own: up to half a unit per leg, four legs
QUANT_SLACK = D("0.00000004")


@dataclass
class ModelPosition:
    uid: str
    market: Market
    side: Side
    qty: D
    entry: D
    leverage: D
    margin: D
    fee_open: D
    status: PositionStatus = PositionStatus.OPEN
    reason: CloseReason | None = None
    close_price: D | None = None


def expected_payout(p: ModelPosition) -> D:
    """SPEC section 4, booked as the stored ledger legs (credit, then fee) are quantized."""
    assert p.reason is not None and p.close_price is not None
    x = p.close_price
    if p.reason is CloseReason.LIQUIDATION:
        return D(0)
    if p.market is Market.SPOT:
        credit = quantize(p.qty * x)
    else:
        g = p.qty * (x - p.entry) if p.side is Side.LONG else p.qty * (p.entry - x)
        credit = max(D(0), quantize(p.margin + g))
    return credit - min(credit, quantize(p.qty * x * FEES.taker(p.market)))


def spec_realized(p: ModelPosition) -> D:
    """realizedPnl straight from the SPEC formulas, unquantized."""
    assert p.reason is not None and p.close_price is not None
    x, e, q, f = p.close_price, p.entry, p.qty, FEES.taker(p.market)
    if p.reason is CloseReason.LIQUIDATION:
        return -p.margin - p.fee_open
    if p.market is Market.SPOT:
        return q * (x - e) - q * e * f - q * x * f
    g = q * (x - e) if p.side is Side.LONG else q * (e - x)
    return max(D(0), p.margin + g - q * x * f) - p.margin - p.fee_open


class LedgerMachine(SystemMachine):
    catalog = SymbolCatalog(spot=["BTC-USDT"], futures=["XBTUSDTM"])

    def __init__(self) -> None:
        super().__init__()
        self.balances: dict[str, D] = {}
        self.deposits = D(0)
        self.prices: dict[str, tuple[D, datetime]] = {}
        self.positions: dict[str, ModelPosition] = {}

    def _ids(self, status: PositionStatus, market: Market | None = None) -> list[str]:
        # creation order, not the random ids' order, so a replayed example picks the same one
        return [
            pid
            for pid, p in self.positions.items()
            if p.status is status and (market is None or p.market is market)
        ]

    def _fresh(self, symbol: str) -> bool:
        seen = self.prices.get(symbol)
        return seen is not None and self.clock.at - seen[1] <= timedelta(seconds=5)

    # ---------------------------------------------------------------- rules

    @initialize(
        balances=st.lists(st.integers(0, 20_000), min_size=3, max_size=3),
        spot_price=PRICES,
        futures_price=PRICES,
    )
    def create_users(self, balances: list[int], spot_price: D, futures_price: D) -> None:
        for uid, amount in zip(USERS, balances, strict=True):
            self.run(self.system.accounts.create_user(uid, D(amount)))
            self.balances[uid] = D(amount)
            self.deposits += D(amount)
        self.move_price("BTC-USDT", spot_price)
        self.move_price("XBTUSDTM", futures_price)

    @rule(uid=st.sampled_from(USERS), amount=st.decimals(ONE_CENT, D(5000), places=2))
    def deposit(self, uid: str, amount: D) -> None:
        self.run(self.system.accounts.deposit(uid, amount))
        self.balances[uid] += amount
        self.deposits += amount

    @rule(symbol=st.sampled_from(sorted(SYMBOLS)), price=PRICES)
    def move_price(self, symbol: str, price: D) -> None:
        self.system.live.put(PriceQuote(symbol, price, self.clock.at))
        self.prices[symbol] = (price, self.clock.at)

    @rule(seconds=st.sampled_from([1, 2, 6]))
    def time_passes(self, seconds: int) -> None:
        self.clock.at += timedelta(seconds=seconds)

    @rule(
        uid=st.sampled_from(USERS),
        symbol=st.sampled_from(sorted(SYMBOLS)),
        side=st.sampled_from(Side),
        qty=QTYS,
        leverage=st.integers(1, 50),
        by_notional=st.booleans(),
    )
    def open(
        self, uid: str, symbol: str, side: Side, qty: D, leverage: int, by_notional: bool
    ) -> None:
        market = SYMBOLS[symbol]
        if market is Market.SPOT:
            side, lev = Side.LONG, D(1)
        else:
            lev = D(leverage)
        notional = None
        if by_notional and symbol in self.prices:
            notional = (qty * self.prices[symbol][0]).quantize(ONE_CENT)
        request = OpenRequest(
            symbol, market, side,
            qty=None if notional is not None else qty,
            notional=notional,
            leverage=None if market is Market.SPOT else lev,
        )
        before = self._snapshot(uid)
        if not self._fresh(symbol):
            try:
                self.run(self.system.positions.open(uid, request))
            except Conflict as exc:
                assert str(exc) == f"no fresh price for {symbol}"
                assert self._snapshot(uid) == before
                event("open refused: no fresh price")
                return
            raise AssertionError("opened without a fresh price")
        price = self.prices[symbol][0]
        fill_qty = quantize_down(notional / price) if notional is not None else qty
        margin = quantize(fill_qty * price / lev)
        fee = quantize(fill_qty * price * FEES.taker(market))
        if margin + fee > self.balances[uid]:
            try:
                self.run(self.system.positions.open(uid, request))
            except InsufficientBalance as exc:
                assert str(exc) == (
                    f"insufficient balance: need {quantize(margin + fee)}, "
                    f"have {quantize(self.balances[uid])}"
                )
                assert self._snapshot(uid) == before
                event("open refused: insufficient balance")
                return
            raise AssertionError("opened without the balance for it")
        doc = self.run(self.system.positions.open(uid, request))
        event(f"opened {market.value} {side.value}")
        assert (D(doc["qty"]), D(doc["margin"]), D(doc["feeOpen"])) == (fill_qty, margin, fee)
        assert D(doc["entryPrice"]) == price
        self.balances[uid] -= margin + fee
        self.positions[doc["id"]] = ModelPosition(
            uid, market, side, fill_qty, price, lev, margin, fee
        )

    @precondition(lambda self: self._ids(PositionStatus.OPEN))
    @rule(data=st.data())
    def request_close(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(self._ids(PositionStatus.OPEN)))
        p = self.positions[pid]
        symbol = "BTC-USDT" if p.market is Market.SPOT else "XBTUSDTM"
        if not self._fresh(symbol):
            try:
                self.run(self.system.positions.request_close(p.uid, pid))
            except Conflict:
                return
            raise AssertionError("closed without a fresh price")
        doc = self.run(self.system.positions.request_close(p.uid, pid))
        assert doc["details"]["status"] == "closing"
        p.status, p.reason, p.close_price = (
            PositionStatus.CLOSING, CloseReason.MANUAL, self.prices[symbol][0]
        )

    @precondition(lambda self: self._ids(PositionStatus.OPEN, Market.FUTURES))
    @rule(data=st.data())
    def liquidate(self, data: st.DataObject) -> None:
        """The worker's compare-and-set at the liquidation price."""
        pid = data.draw(st.sampled_from(self._ids(PositionStatus.OPEN, Market.FUTURES)))
        p = self.positions[pid]
        doc = self.run(self.system.positions.get(p.uid, pid))
        liq = doc.details.liquidation_price
        assert liq is not None
        self._cross(pid, CloseReason.LIQUIDATION, liq)

    @precondition(lambda self: self._ids(PositionStatus.OPEN))
    @rule(data=st.data(), price=PRICES, reason=st.sampled_from(
        [CloseReason.STOP_LOSS, CloseReason.TAKE_PROFIT, CloseReason.AGENT]
    ))
    def worker_close(self, data: st.DataObject, price: D, reason: CloseReason) -> None:
        """A crossing at any price, even one past liquidation (a gap)."""
        pid = data.draw(st.sampled_from(self._ids(PositionStatus.OPEN)))
        self._cross(pid, reason, price)

    def _cross(self, pid: str, reason: CloseReason, price: D) -> None:
        p = self.positions[pid]
        hit = PositionHit(p.uid, pid, reason, price)
        now = self.clock.at
        self.run(self.store.transact(lambda tx: apply_crossings(tx, [hit], [], FEES, now)))
        stored = self.run(self.system.positions.get(p.uid, pid))
        assert stored.status is PositionStatus.CLOSING
        assert (stored.details.close_reason, stored.details.close_price) == (reason, price)
        p.status, p.reason, p.close_price = PositionStatus.CLOSING, reason, price

    @rule()
    def settle(self) -> None:
        closing = self._ids(PositionStatus.CLOSING)
        assert self.run(self.system.settler.settle_all()) == len(closing)
        for pid in closing:
            p = self.positions[pid]
            payout = expected_payout(p)
            self.balances[p.uid] += payout
            p.status = PositionStatus.CLOSED
            stored = self.run(self.system.positions.get(p.uid, pid))
            assert stored.settlement is not None
            assert stored.settlement.payout == payout
            realized = stored.settlement.realized_pnl
            assert realized == payout - p.margin - p.fee_open
            assert abs(realized - spec_realized(p)) <= QUANT_SLACK
            event(f"settled {p.market.value} {p.reason}" + (" at 0" if payout == 0 else ""))
        assert self.run(self.system.settler.settle_all()) == 0

    # ---------------------------------------------------------------- invariants

    def _snapshot(self, uid: str) -> tuple[D, int, int]:
        user = self.run(self.system.accounts.get_user(uid))
        return (
            user.balance,
            len(self.run(self.system.accounts.ledger(uid))),
            len(self.run(self.system.positions.list_for_user(uid))),
        )

    @invariant()
    def books_balance(self) -> None:
        if not self.balances:
            return
        total_balance, locked, realized = D(0), D(0), D(0)
        for uid in USERS:
            user = self.run(self.system.accounts.get_user(uid))
            entries = self.run(self.system.accounts.ledger(uid))
            running = D(0)
            for seq, entry in enumerate(entries, start=1):
                running += entry.amount
                assert entry.seq == seq
                assert entry.balance_after == running, (uid, seq)
            assert user.balance == running == self.balances[uid], uid
            assert user.balance >= 0
            assert user.ledger_seq == len(entries)
            total_balance += user.balance
            by_position: dict[str, list[LedgerKind]] = {}
            for entry in entries:
                if entry.position_id is not None:
                    by_position.setdefault(entry.position_id, []).append(entry.kind)
            history = {h["id"] for h in self.run(self.system.positions.history(uid))}
            for p in self.run(self.system.positions.list_for_user(uid)):
                assert p.status is self.positions[p.id].status
                kinds = by_position[p.id]
                if p.status is PositionStatus.CLOSED:
                    assert p.settlement is not None
                    assert p.id in history
                    realized += p.settlement.realized_pnl
                    assert kinds in (
                        [LedgerKind.OPEN, LedgerKind.FEE, LedgerKind.CLOSE, LedgerKind.FEE],
                        [LedgerKind.OPEN, LedgerKind.FEE, LedgerKind.LIQUIDATION],
                    )
                else:
                    assert p.id not in history
                    locked += p.margin + p.fee_open
                    assert kinds == [LedgerKind.OPEN, LedgerKind.FEE]
        assert self.deposits == total_balance + locked - realized


LedgerMachine.TestCase.settings = machine_settings(max_examples=25, steps=30)
TestLedgerConservation = LedgerMachine.TestCase
