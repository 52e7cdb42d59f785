"""The simulator's pure parts: the random walk, topic parsing, tokens and the rate limiter."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from cogmora.domain.enums import Market
from cogmora.simulator.config import SimulatorConfig
from cogmora.simulator.market import Instrument, increment_for, market_of
from cogmora.simulator.state import Host, RestLimiter, TokenBook
from cogmora.simulator.ws import TopicError, parse_topic


def walk(seed: int, symbol: str = "BTC-USDT", steps: int = 50) -> list[Decimal]:
    inst = Instrument.create(symbol, Decimal("67000.0"), seed)
    return [inst.step(Decimal("0.001")) for _ in range(steps)]


def test_same_seed_gives_the_same_prices() -> None:
    """Two walks with one seed and symbol are identical."""
    assert walk(7) == walk(7)


def test_other_seed_or_symbol_gives_other_prices() -> None:
    """The path depends on the seed and on the symbol."""
    assert walk(7) != walk(8)
    assert walk(7) != walk(7, "ETH-USDT")


def test_walk_prices_stay_positive_and_on_the_increment() -> None:
    """Every step is a positive multiple of the symbol's price increment."""
    inst = Instrument.create("PEPE-USDT", Decimal("0.0000105"), 1)
    for _ in range(500):
        price = inst.step(Decimal("0.05"))
        assert price > 0
        assert price % inst.increment == 0


def test_increment_keeps_about_six_significant_digits() -> None:
    """BTC ticks in 0.1, ETH in 0.01, a sub-cent coin in tiny steps."""
    assert increment_for(Decimal("67000")) == Decimal("0.1")
    assert increment_for(Decimal("3500")) == Decimal("0.01")
    assert increment_for(Decimal("0.0000105")) == Decimal("1E-10")


def test_market_follows_kucoin_spelling() -> None:
    """Hyphenated symbols are spot, the others futures."""
    assert market_of("BTC-USDT") is Market.SPOT
    assert market_of("XBTUSDTM") is Market.FUTURES


def test_candles_end_at_the_current_price_oldest_first() -> None:
    """Synthetic candles are contiguous, oldest first, and close at the current price."""
    inst = Instrument.create("BTC-USDT", Decimal("67000.0"), 0)
    rows = inst.candles(0, 6000, 60, limit=10)
    assert [c.start_s for c in rows] == list(range(5460, 6001, 60))
    assert rows[-1].close == inst.price
    assert all(a.close == b.open for a, b in itertools.pairwise(rows))
    assert all(c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close) for c in rows)


def spot_host() -> Host:
    config = SimulatorConfig()
    inst = {"BTC-USDT": Instrument.create("BTC-USDT", Decimal(1), 0),
            "ETH-USDT": Instrument.create("ETH-USDT", Decimal(1), 0)}
    return Host.create(Market.SPOT, config, inst)


def test_topic_splits_into_single_symbol_topics() -> None:
    """A comma-joined topic becomes one topic per symbol, duplicates dropped."""
    _, topics = parse_topic(spot_host(), "/market/ticker:BTC-USDT,ETH-USDT,BTC-USDT",
                            subscribing=True)
    assert topics == ["/market/ticker:BTC-USDT", "/market/ticker:ETH-USDT"]


@pytest.mark.parametrize(
    ("topic", "code"),
    [
        (None, 406),
        ("", 406),
        ("/market/ticker", 400),
        ("/market/ticker:", 400),
        ("/market/ticker:BTC-USDT,,ETH-USDT", 400),
        ("/market/level9:BTC-USDT", 404),
        ("/market/ticker:NOPE-USDT", 404),
        ("/market/ticker:" + ",".join(["BTC-USDT"] * 101), 509),
    ],
)
def test_bad_topics_get_kucoins_error_codes(topic: str | None, code: int) -> None:
    """Missing, invalid, unknown and oversized topics get 406, 400, 404 and 509."""
    with pytest.raises(TopicError) as info:
        parse_topic(spot_host(), topic, subscribing=True)
    assert info.value.code == code


def test_tokens_are_invalid_until_issued_and_expire_on_demand() -> None:
    """Unknown tokens are invalid; issued ones are good until expired."""
    book = TokenBook(ttl_s=3600)
    assert book.check("nope") == "token is invalid"
    token = book.issue()
    assert book.check(token) is None
    book.expire_all()
    assert book.check(token) == "token is expired"


def test_rate_limiter_refuses_over_budget_and_forced_requests() -> None:
    """Weights add up to the limit within a window; forced refusals come first."""
    limiter = RestLimiter(limit=20, window_ms=1000)
    assert limiter.take(15, 0)[0]
    assert not limiter.take(15, 10)[0]
    assert limiter.take(15, 1000)[0]  # a new window
    limiter.forced = 1
    assert limiter.take(1, 1001) == (False, 0, 1000)
    assert limiter.take(1, 1002)[0]


def test_candles_since_creation_are_the_instruments_own_trades() -> None:
    """After creation each minute's candle is exactly its trades: open, high, low, close."""
    inst = Instrument.create("BTC-USDT", Decimal("60000"), 0)
    minute = inst.born_s // 60 * 60 + 120
    for offset, price in ((1, "60100"), (20, "58000"), (40, "61000"), (59, "60500")):
        inst.trade(Decimal(price), at_ms=(minute + offset) * 1000)
    rows = inst.candles(minute, minute + 59, 60)
    assert [(c.start_s, c.open, c.high, c.low, c.close) for c in rows] == [
        (minute, Decimal("60100"), Decimal("61000"), Decimal("58000"), Decimal("60500"))
    ]


def test_minutes_without_a_trade_have_no_candle_and_wider_candles_aggregate() -> None:
    """A quiet minute is absent, as on KuCoin; a 5-minute candle spans its minutes."""
    inst = Instrument.create("BTC-USDT", Decimal("60000"), 0)
    base = (inst.born_s // 300 + 1) * 300
    inst.trade(Decimal("60100"), at_ms=base * 1000)
    inst.trade(Decimal("59000"), at_ms=(base + 180) * 1000)
    ones = inst.candles(base, base + 299, 60)
    assert [c.start_s for c in ones] == [base, base + 180]
    [five] = inst.candles(base, base + 299, 300)
    assert (five.open, five.low, five.close) == (Decimal("60100"), Decimal("59000"),
                                                 Decimal("59000"))
