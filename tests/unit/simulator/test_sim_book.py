"""The simulated book and funding: pure functions of the trades and the clock."""

from __future__ import annotations

import random
from decimal import Decimal

from cogmora.simulator import book
from cogmora.simulator.funding import PERIOD_MS, Funding, current_funding_rate, period_start
from cogmora.simulator.market import Instrument


def trades(seed: int) -> Instrument:
    inst = Instrument.create("BTC-USDT", Decimal("67000.0"), 0)
    rng = random.Random(seed)
    for _ in range(200):
        if rng.random() < 0.3:
            inst.trade(Decimal(67000) + rng.randint(-40, 40) * inst.increment)
        else:
            inst.step(Decimal("0.0004"))
        check_after_trade(inst)
    return inst


def check_after_trade(inst: Instrument) -> None:
    bids, asks = book.ladder(inst.symbol, inst.top, lots=False)
    assert bids[0][0] < asks[0][0]
    # The trade printed at the best level of the side the taker traded against.
    assert inst.price == (asks[0][0] if inst.side == "buy" else bids[0][0])
    assert inst.book_before is not None
    changed = book.diff(inst.symbol, inst.book_before, inst.top, lots=False)
    assert sum(map(len, changed)) == inst.book_sequence - inst.book_sequence_before


def test_every_trade_prints_at_the_top_and_the_sequence_counts_changed_levels() -> None:
    """After any trade, walked or scripted, the book's best level on the maker side is
    the trade's price, bid < ask, and the sequence advanced by one per changed level."""
    trades(1)


def test_a_level_keeps_its_size_while_it_stays_in_the_book() -> None:
    """Sizes depend on (symbol, price) only, so a small move changes only the edge levels."""
    before = book.Top(Decimal("100.0"), "sell", Decimal("0.1"))
    after = book.Top(Decimal("100.2"), "sell", Decimal("0.1"))
    bids, asks = book.diff("X-USDT", before, after, lots=False)
    assert len(bids) == 4 and len(asks) == 4  # two levels leave and two come, each side
    assert book.changed_levels(before, after) == 8


def test_bids_stop_before_zero() -> None:
    """A price three increments above zero has three bid levels."""
    top = book.Top(Decimal("0.0003"), "sell", Decimal("0.0001"))
    bids, _ = book.ladder("X-USDT", top, lots=True)
    assert [p for p, _ in bids] == [Decimal("0.0003"), Decimal("0.0002"), Decimal("0.0001")]


def test_funding_rate_moves_within_the_cap_and_reports_kucoins_period() -> None:
    """The rate changes over the hours, stays within +-0.3 %, and the payload names the
    8-hour period that is running."""
    funding = Funding(seed=3)
    at = 1_796_170_000_000
    rates = {funding.rate("XBTUSDTM", at + h * 3_600_000) for h in range(8)}
    assert len(rates) > 1
    assert all(abs(r) <= Decimal("0.003") for r in rates)
    body = current_funding_rate(funding, "XBTUSDTM", at)
    assert set(body) == {"symbol", "granularity", "timePoint", "value", "predictedValue",
                         "fundingRateCap", "fundingRateFloor", "period", "fundingTime"}
    assert body["symbol"] == ".XBTUSDTMFPI8H" and body["granularity"] == PERIOD_MS
    assert body["timePoint"] <= at < body["fundingTime"] == body["timePoint"] + PERIOD_MS


def test_a_pinned_funding_rate_is_reported_until_unpinned() -> None:
    """pin fixes the rate for scripted settlement tests; None releases it."""
    funding = Funding(seed=0)
    free = funding.rate("XBTUSDTM", 0)
    funding.pin("XBTUSDTM", Decimal("-0.001"))
    assert funding.rate("XBTUSDTM", 0) == Decimal("-0.001")
    funding.pin("XBTUSDTM", None)
    assert funding.rate("XBTUSDTM", 0) == free


def test_funding_periods_settle_at_kucoins_hours() -> None:
    """Periods run 04:00-12:00-20:00 UTC, as KuCoin's (its example: timePoint
    1748462400000, 20:00 UTC, settles at 1748491200000, 04:00 UTC)."""
    assert period_start(1748462400000 + 123_456) == 1748462400000
    assert period_start(1748491200000) == 1748491200000
    assert period_start(1748491200000 - 1) == 1748462400000


def test_hub_knows_which_symbols_are_watched_by_any_topic() -> None:
    """Candle, book and snapshot topics count as watching their symbol; market-wide
    topics (ticker:all, snapshot:USDS) watch every symbol."""
    from typing import Any, cast

    from cogmora.domain.enums import Market
    from cogmora.simulator.hub import Hub, Session, symbol_of

    assert symbol_of("/market/candles:BTC-USDT_1hour") == "BTC-USDT"
    assert symbol_of("/contractMarket/limitCandle:XBTUSDTM_1min") == "XBTUSDTM"
    assert symbol_of("/contractMarket/level2:XBTUSDTM") == "XBTUSDTM"
    assert symbol_of("/market/snapshot:USDS") == "*"
    assert symbol_of("/market/ticker:all") == "*"
    hub = Hub(Market.SPOT)
    session = Session(ws=cast(Any, None), market=Market.SPOT, connect_id="c")
    hub.subscribe(session, ["/market/candles:BTC-USDT_1hour"])
    assert hub.watches("BTC-USDT") and not hub.watches("ETH-USDT")
    hub.unsubscribe(session, ["/market/candles:BTC-USDT_1hour"])
    assert not hub.watches("BTC-USDT")
    hub.subscribe(session, ["/market/ticker:all"])
    assert hub.watches("ETH-USDT")
    hub.remove(session)
    assert not hub.watches("ETH-USDT")
