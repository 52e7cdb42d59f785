"""The price filter in front of the engine: plausible ticks pass, rounded to their tick;
implausible ones are counted and never reach the sink."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from prometheus_client import CollectorRegistry

from cogmora.domain.enums import Market
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.engine.price_filter import PriceFilter, PriceFilterMetrics
from cogmora.services.symbols import SymbolCatalog, SymbolSpec

SYM = "XBTUSDTM"


def catalog(last: D | None = D("60000")) -> SymbolCatalog:
    c = SymbolCatalog()
    c.load(Market.FUTURES, {SYM: SymbolSpec(D("0.1"), D("0.001"), last)})
    return c


def tick(price: str, kind: PriceKind = PriceKind.TRADE) -> Tick:
    return Tick(SYM, Market.FUTURES, D(price), kind)


class Sink:
    def __init__(self) -> None:
        self.bursts: list[list[Tick]] = []

    def __call__(self, ticks: list[Tick]) -> None:
        self.bursts.append(ticks)

    @property
    def prices(self) -> list[D]:
        return [t.price for b in self.bursts for t in b]


def test_plausible_bursts_pass_untouched_as_the_same_list() -> None:
    """A burst where every price is plausible and on its tick reaches the sink as is."""
    sink = Sink()
    f = PriceFilter(catalog(), sink)
    first = [tick("60000.1")]
    f(first)  # builds the symbol's state
    burst = [tick("60000.2"), tick("59999.9"), tick("60000")]
    f(burst)
    assert sink.bursts[-1] is burst
    assert f.dropped == 0


def test_absurd_prices_are_dropped_counted_and_the_rest_kept_in_order() -> None:
    """1e-400, 1e400, 1E+35, NaN, -1, 0 and a 10x jump are dropped; the others pass."""
    sink = Sink()
    registry = CollectorRegistry()
    f = PriceFilter(catalog(), sink, PriceFilterMetrics(registry))
    absurd = ["1e-400", "1e400", "1E+35", "NaN", "-1", "0", "600002", "5999.9", "sNaN"]
    f([tick("60000.1"), *(tick(p) for p in absurd), tick("59000.1")])
    assert sink.prices == [D("60000.1"), D("59000.1")]
    assert f.dropped == len(absurd)
    assert f.last_accepted(SYM) == D("59000.1")

    def count(reason: str) -> float:
        got = registry.get_sample_value(
            "cogmora_prices_dropped_total", {"symbol": SYM, "reason": reason}
        )
        return got or 0.0

    assert count("not_positive") == 3  # 1e-400 rounds to zero, -1, 0
    assert count("too_large") == 2
    assert count("not_finite") == 2
    assert count("out_of_band") == 2


def test_a_price_finer_than_the_tick_is_rounded_before_the_engine_sees_it() -> None:
    """60000.15 on a 0.1 tick reaches the sink as 60000.2 (half even)."""
    sink = Sink()
    f = PriceFilter(catalog(), sink)
    f([tick("60000.15"), tick("60000.25")])
    assert sink.prices == [D("60000.2"), D("60000.2")]


def test_a_burst_with_nothing_plausible_reaches_no_one() -> None:
    """The engine is not called with an empty burst."""
    sink = Sink()
    PriceFilter(catalog(), sink)([tick("0"), tick("1e400")])
    assert sink.bursts == []


def test_the_band_follows_accepted_prices_step_by_step() -> None:
    """A steady walk far from the first reference is fine: each step is within the band."""
    sink = Sink()
    f = PriceFilter(catalog(), sink, band=D(2))
    walk = ["60000", "100000", "190000", "350000", "30000000"]
    f([tick(p) for p in walk])
    assert sink.prices == [D(p) for p in walk[:4]]
    assert f.dropped == 1


def test_without_a_catalog_price_the_first_tick_sets_the_reference() -> None:
    """No REST price: the first plausible tick is the reference for the next."""
    sink = Sink()
    f = PriceFilter(catalog(last=None), sink)
    f([tick("100"), tick("5000")])
    assert sink.prices == [D("100")]


def test_a_reload_replaces_a_reference_far_from_kucoins_rest_price() -> None:
    """A bad reference accepted while nothing was known gives way to the REST price at the
    next catalog load, so real prices are not locked out for good."""
    sink = Sink()
    c = catalog(last=None)
    f = PriceFilter(c, sink)
    f([tick("1000000")])  # accepted: nothing to compare with
    f([tick("60000")])
    assert sink.prices == [D("1000000")]
    c.load(Market.FUTURES, {SYM: SymbolSpec(D("0.1"), None, D("60010"))})
    f([tick("60000")])
    assert sink.prices == [D("1000000"), D("60000")]


def test_mark_prices_obey_the_same_rules() -> None:
    """An absurd mark price cannot liquidate anyone either."""
    sink = Sink()
    f = PriceFilter(catalog(), sink)
    f([tick("1e-400", PriceKind.MARK), tick("60000.05", PriceKind.MARK)])
    assert sink.prices == [D("60000.0")]


def test_a_failing_sink_sees_each_burst_once() -> None:
    """An ArithmeticError raised by the engine reaches its caller, and the burst is not
    handed over a second time."""
    calls: list[list[Tick]] = []

    def failing(ticks: list[Tick]) -> None:
        calls.append(ticks)
        raise ArithmeticError("the engine's own failure")

    f = PriceFilter(catalog(), failing)
    for burst in ([tick("60000.1")], [tick("60000.2")]):
        with pytest.raises(ArithmeticError):
            f(burst)
    assert [t.price for b in calls for t in b] == [D("60000.1"), D("60000.2")]
