"""Random sequences of opens (with and without take-profit ladders), partial closes,
ladder fills (replayed), stops, funding and liquidations never create or destroy money,
and every leg fills at most once: the real services on a real SQLite file.

Conservation, exact in Decimal, from the stored documents alone:
    deposits + funding == sum(balances) + sum(margin + feeOpen of open/closing positions)
                          - sum(realizedPnl of every history document, parts included)
because an open moves -(margin + feeOpen), a (partial) settlement moves its payout and
realizedPnl = payout - margin - feeOpen of its share, and funding moves its amount.
The funding rates come from an in-process FundingSource: what KuCoin would say is not
under test here (tests/contract/test_contract_time_funding.py speaks its JSON).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D
from typing import Any

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from system_machine import SystemMachine, machine_settings

from cogmora.domain.enums import CloseReason, LedgerKind, Market, PositionStatus, Side
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Position, PriceQuote
from cogmora.domain.orders import OpenRequest
from cogmora.domain.takeprofits import TakeProfitLeg, leg_key
from cogmora.errors import Conflict, Rejected
from cogmora.services.crossings import PositionHit, apply_crossings
from cogmora.services.funding import Funding, FundingQuote
from cogmora.services.symbols import SymbolCatalog
from cogmora.testing import EPOCH

FEES = FeeSchedule()
USERS = ("u0", "u1")
SYMBOL = "XBTUSDTM"
PRICES = st.decimals(min_value=D(80), max_value=D(120), places=2)


class _Source:
    """The funding rate and time a pass sees (an in-process FundingSource)."""

    def __init__(self) -> None:
        self.current: FundingQuote | None = None

    async def quote(self, symbol: str) -> FundingQuote | None:
        return self.current


class OrdersMachine(SystemMachine):
    catalog = SymbolCatalog(futures=[SYMBOL])

    def __init__(self) -> None:
        super().__init__()
        self.source = _Source()
        self.funding = Funding(self.store, self.source, self.clock)
        self.deposits = D(0)
        self.funded = D(0)
        self.price = D(100)
        self.pids: list[str] = []
        self.funding_time: datetime = EPOCH

    def _positions(self, status: PositionStatus) -> list[Position]:
        out = []
        for uid in USERS:
            out += [p for p in self.run(self.system.positions.list_for_user(uid, status))]
        return sorted(out, key=lambda p: self.pids.index(p.id))

    def _burst(self, hits: list[PositionHit]) -> Any:
        now = self.clock.now()
        return self.run(self.store.transact(lambda tx: apply_crossings(tx, hits, [], FEES, now)))

    # ---------------------------------------------------------------- rules

    @initialize()
    def create_users(self) -> None:
        for uid in USERS:
            self.run(self.system.accounts.create_user(uid, D(100000)))
            self.deposits += D(100000)
        self.move_price(D(100))

    @rule(price=PRICES)
    def move_price(self, price: D) -> None:
        self.price = price
        self.system.live.put(PriceQuote(SYMBOL, price, self.clock.now()))

    @rule(
        uid=st.sampled_from(USERS),
        side=st.sampled_from(Side),
        qty=st.integers(1, 40),
        leverage=st.integers(1, 20),
        legs=st.lists(st.integers(1, 30), min_size=0, max_size=3, unique=True),
        fractions=st.lists(st.sampled_from([D("0.1"), D("0.25"), D("0.3"), D("0.5")]),
                           min_size=3, max_size=3),
        move_after=st.sampled_from([None, 1]),
    )
    def open(self, uid: str, side: Side, qty: int, leverage: int, legs: list[int],
             fractions: list[D], move_after: int | None) -> None:
        sign = 1 if side is Side.LONG else -1
        steps = sorted(legs)
        ladder = tuple(
            TakeProfitLeg(self.price + sign * D(s), f)
            for s, f in zip(steps, fractions, strict=False)
        )
        if sum((leg.fraction for leg in ladder), D(0)) > 1:
            ladder = ladder[:1]
        stop = self.price - sign * D(1)
        request = OpenRequest(
            SYMBOL, Market.FUTURES, side, qty=D(qty), leverage=D(leverage),
            stop_loss=stop if leverage < 50 else None,
            take_profits=ladder,
            move_stop_to_entry_after=move_after if ladder else None,
        )
        try:
            doc = self.run(self.system.positions.open(uid, request))
        except Rejected as exc:  # a stop past liquidation at high leverage
            event(f"open refused: {type(exc).__name__}")
            return
        self.pids.append(doc["id"])
        event(f"opened with {len(ladder)} legs")

    @precondition(lambda self: self.pids)
    @rule(data=st.data(), share=st.sampled_from([D("0.1"), D("0.5"), D("1")]))
    def partial_close(self, data: st.DataObject, share: D) -> None:
        open_ = self._positions(PositionStatus.OPEN)
        if not open_:
            return
        p = data.draw(st.sampled_from(open_))
        qty = (p.qty * share).quantize(D("0.00000001"))
        try:
            self.run(self.system.positions.request_close(p.uid, p.id, qty=qty))
            event("partial close" if qty < p.qty else "full close")
        except (Conflict, Rejected):
            event("close refused")

    @precondition(lambda self: self.pids)
    @rule(data=st.data(), beyond=st.integers(0, 5), replays=st.integers(1, 3))
    def leg_fills(self, data: st.DataObject, beyond: int, replays: int) -> None:
        """The worker crosses every leg up to one (at or past its level), the same hits
        sent `replays` times, as a replica and a restart would."""
        laddered = [p for p in self._positions(PositionStatus.OPEN) if p.details.take_profits]
        if not laddered:
            return
        p = data.draw(st.sampled_from(laddered))
        legs = p.details.take_profits
        upto = data.draw(st.integers(0, len(legs) - 1))
        sign = 1 if p.side is Side.LONG else -1
        price = legs[upto].price + sign * D(beyond)
        hits = [
            PositionHit(p.uid, leg_key(p.id, i), CloseReason.TAKE_PROFIT, price, legs[i].price)
            for i in range(upto + 1)
        ]
        for _ in range(replays):
            self._burst(hits)
        event(f"legs crossed up to {upto}")

    @precondition(lambda self: self.pids)
    @rule(data=st.data(), liquidate=st.booleans())
    def stop_or_liquidation(self, data: st.DataObject, liquidate: bool) -> None:
        open_ = self._positions(PositionStatus.OPEN)
        if not open_:
            return
        p = data.draw(st.sampled_from(open_))
        d = p.details
        if liquidate and d.liquidation_price is not None:
            hit = PositionHit(p.uid, p.id, CloseReason.LIQUIDATION, d.liquidation_price,
                              d.liquidation_price)
        elif d.stop_loss is not None:
            hit = PositionHit(p.uid, p.id, CloseReason.STOP_LOSS, d.stop_loss, d.stop_loss)
        else:
            return
        self._burst([hit])
        event(hit.reason.value)

    @rule(rate=st.sampled_from([D("0.0001"), D("-0.0003"), D("0.003")]), again=st.booleans())
    def funding_time_passes(self, rate: D, again: bool) -> None:
        self.clock.advance(8 * 3600)
        self.funding_time = self.clock.now() - timedelta(seconds=1)
        self.move_price(self.price)
        self.source.current = FundingQuote(SYMBOL, rate, self.funding_time, self.price)
        for _ in range(2 if again else 1):
            self.run(self.funding.run_once())

    @rule()
    def settle(self) -> None:
        self.run(self.system.settler.settle_all())

    # ---------------------------------------------------------------- invariants

    @invariant()
    def money_is_conserved_and_legs_fill_once(self) -> None:
        if not self.deposits:
            return
        balances = locked = realized = funding = D(0)
        for uid in USERS:
            user = self.run(self.system.accounts.get_user(uid))
            entries = self.run(self.system.accounts.ledger(uid))
            assert sum((e.amount for e in entries), D(0)) == user.balance
            assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
            funding += sum((e.amount for e in entries if e.kind is LedgerKind.FUNDING), D(0))
            balances += user.balance
            history = self.run(self.system.positions.history(uid))
            realized += sum((D(h["realizedPnl"]) for h in history), D(0))
            parts: dict[str, int] = {}
            for h in history:
                if h.get("partOf"):
                    parts[h["partOf"]] = parts.get(h["partOf"], 0) + 1
            for p in self.run(self.system.positions.list_for_user(uid)):
                filled = p.details.legs_filled
                assert len(filled) == len(set(filled)), filled
                assert all(0 <= i < len(p.details.take_profits) for i in filled)
                assert parts.get(p.id, 0) == p.details.parts
                if p.status is not PositionStatus.CLOSED:
                    locked += p.margin + p.fee_open
        assert self.deposits + funding == balances + locked - realized


OrdersMachine.TestCase.settings = machine_settings(max_examples=20, steps=25)
TestOrdersConservation = OrdersMachine.TestCase
