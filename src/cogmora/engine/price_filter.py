"""The gate between the feeds and the engine: an implausible price never reaches the book.

SPEC 5.1's rules are `domain.plausibility.judge`; this is the hot-path wrapper the worker
puts in front of `Engine.on_ticks`. Almost every real tick is accepted, so the accepted
path is kept to a dict lookup, two Decimal comparisons and one exponent check:

- per symbol it caches a *fast region* `[anchor / sqrt(band), anchor * sqrt(band)]`
  (rounded inwards); since the last accepted price is kept inside that region, any price
  inside it is within `band` of the last accepted one, and no Decimal arithmetic is
  needed (comparing two Decimals costs about 50 ns; converting one to a float for a float
  comparison costs more than that);
- a price already on the tick's exponent (`same_quantum`), or with fewer places, needs no
  rounding;
- anything else (outside the region, finer than the tick, not finite, no reference yet)
  goes to `judge`, exactly; an accepted price there re-anchors the region on itself.

The band's reference before the feed has given a symbol any price (the first tick after
a start, a symbol newly followed) is KuCoin's own last price from the symbol catalog
(`SymbolSpec.last_price`, loaded from REST at start and every refresh). With no catalog
price either (the catalog could not be loaded), only the absolute rules apply to the
first tick. At every catalog reload a last accepted price that is more than `band` away
from KuCoin's REST price is replaced by it: REST is a second channel, and this way one
bad price accepted as a reference cannot lock a symbol's real prices out for good.

Dropped ticks are counted per symbol and reason (`cogmora_prices_dropped_total`) and
logged at most once a minute per symbol and reason; they are not evaluated and do not
update the live prices.

The verdict on a tick does not depend on which burst it arrives in: the fast path accepts
only a price that `judge` would return numerically unchanged (a multiple of the coarser of
the tick and 1e-8, inside the region, hence inside the band), and when `judge` rounds a
price to the very same value the tick keeps its own text. So a caller may hand ticks over
one by one or in any split and get the same ticks out, the same drops and the same band
references.

The spot hot path (`engine.prefilter.HotPath`) accepts most prices before a `Decimal`
exists, with the same region as floats (`regions()`): a price whose float lies strictly
inside `(flo, fhi)` lies strictly inside the exact region (both conversions round
correctly, hence monotonically), and a text with at most `width - 1` digits after its
point and no minus sign (no negative exponent) is a multiple of the fast quantum, so the
fast path would have accepted it unchanged. Such a price is noted as the symbol's last as
its text (`_Symbol.text`), made a Decimal only when the band needs it.

Finding the point costs a method call per frame, so `HotPath` reads the text's length
instead: `limit` is `width` plus `m = max(1, digits before the point of low)`, and the
float `pivot` is 10^m. Take a text with no minus sign whose first character is "0" or
above (no leading point), whose value is above `low`, and let `n` be m, or m + 1 when its
float is above `pivot` (then so is its value: the conversion is monotonic). Written
plainly it has at least `n` characters before its point (a value of at least 10^(n-1)
needs n integer digits; for n = 1, the rule on the first character), so
`len(text) <= limit + (n - m)` leaves at most `width - 1` after it. With an exponent (no
minus sign: E >= 0) the `a` characters before the point and E satisfy `a + E >= n` (the
mantissa is below 10^a), and the point, the "e" and at least one exponent digit take three
characters, so the places `digits after the point - E` are at most `width - 3`. Either
way the Decimal's exponent is at least `-(width - 1)`: on the fast quantum.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal

import structlog
from prometheus_client import CollectorRegistry, Counter

from cogmora.domain.plausibility import (
    DEFAULT_BAND,
    EIGHT_PLACES,
    PLACES,
    Drop,
    exponent,
    judge,
    quantum_of,
)
from cogmora.domain.ticks import Tick
from cogmora.services.symbols import SymbolCatalog

log = structlog.get_logger("cogmora.price_filter")

Sink = Callable[[list[Tick]], None]

_CTX = Context(prec=40, rounding=ROUND_HALF_EVEN)
_UP = Context(prec=40, rounding=ROUND_CEILING)  # the region's bounds round inwards
_DOWN = Context(prec=40, rounding=ROUND_FLOOR)
_NOTHING = Decimal(0)  # bounds of an empty region: nothing is fast-accepted
_INF = float("inf")
_LOG_EVERY_S = 60.0
_NO_REGIONS: Mapping[str, _Symbol] = {}


class PriceFilterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.dropped = Counter(
            "cogmora_prices_dropped_total",
            "Feed prices dropped as implausible before evaluation (SPEC 5.1), by reason",
            ["symbol", "reason"],
            registry=registry,
        )
        self.reanchored = Counter(
            "cogmora_price_band_reanchored_total",
            "Band references replaced by KuCoin's REST price at a catalog reload",
            registry=registry,
        )


class _Symbol:
    """One symbol's cached rule inputs. `quantum` is the fast path's: the tick's, or 1e-8
    for a tick finer than that (a price with more places is judged exactly). `flo`/`fhi`
    are the region as floats, `width` the longest `.digits` tail a text may have and
    `limit` the longest text that is surely on the quantum inside the region (see the
    module docstring), for `HotPath`. `text`, when set, is a later last price than `last`,
    as the feed's text; `reference()` makes it the Decimal."""

    __slots__ = (
        "fhi", "flo", "high", "last", "limit", "low", "pivot", "quantum", "text", "tick", "width"
    )

    def __init__(self, tick: Decimal | None, last: Decimal | None, root: Decimal) -> None:
        self.tick = tick
        quantum = quantum_of(tick)
        if exponent(quantum) < -PLACES:
            quantum = EIGHT_PLACES
        self.quantum = quantum
        self.width = 1 - min(0, exponent(quantum))  # "." plus the places allowed
        self.last = last
        self.text: str | None = None
        self.low = self.high = _NOTHING  # nothing is fast-accepted without a reference
        self.flo = self.fhi = 0.0
        self.limit = 0
        self.pivot = _INF
        if last is not None:
            self.anchor(last, root)

    def anchor(self, price: Decimal, root: Decimal) -> None:
        """`root` is sqrt(band) rounded down, so the region lies inside the band."""
        self.last = price
        self.text = None
        self.low = _UP.divide(price, root)
        self.high = _DOWN.multiply(price, root)
        self.flo, self.fhi = float(self.low), float(self.high)
        # A price above `low` has at least `m` characters before its point, one above
        # `pivot` (10^m) at least m + 1 (see the module docstring).
        m = max(1, self.low.adjusted() + 1)
        self.limit = self.width + m
        self.pivot = float(10**m) if m <= 22 else _INF  # 10^22 is the last exact float

    def reference(self) -> Decimal | None:
        """The last accepted price."""
        if self.text is not None:
            self.last = Decimal(self.text)
            self.text = None
        return self.last


class PriceFilter:
    """Call it with a burst of ticks; it calls `sink` with the plausible ones, rounded to
    their tick (the very list when all pass unchanged; nothing when none pass)."""

    def __init__(
        self,
        catalog: SymbolCatalog,
        sink: Sink,
        metrics: PriceFilterMetrics | None = None,
        band: Decimal = DEFAULT_BAND,
    ) -> None:
        if not band.is_finite() or band <= 1:
            raise ValueError(f"the price band must be a factor above 1, got {band}")
        self._catalog = catalog
        self._sink = sink
        self._metrics = metrics
        self.band = band
        self._root = band.sqrt(_DOWN)
        self._symbols: dict[str, _Symbol] = {}
        self._generation = catalog.generation
        self._logged: dict[tuple[str, Drop], float] = {}
        self.dropped = 0

    def __call__(self, ticks: list[Tick]) -> None:
        if self._generation != self._catalog.generation:
            self._reload()
        if self._all_fast(ticks):
            self._sink(ticks)  # outside any `try`: the sink's errors are the sink's own
            return
        kept = self._sift(ticks)
        if kept:
            self._sink(kept)

    def _all_fast(self, ticks: list[Tick]) -> bool:
        """Whether every tick is inside its symbol's fast region and on its tick (noting
        each as the symbol's last accepted price); False at the first that is not."""
        symbols = self._symbols
        try:
            for tick in ticks:
                state = symbols.get(tick.symbol)
                if state is None:
                    return False
                price = tick.price
                quantum = state.quantum
                if state.low < price < state.high and (
                    price.same_quantum(quantum) or price.quantize(quantum, context=_CTX) == price
                ):
                    state.last = price
                    state.text = None
                    continue
                return False
        except ArithmeticError:  # comparing a NaN; judged exactly by the caller
            return False
        return True

    def last_accepted(self, symbol: str) -> Decimal | None:
        """The band's reference for the symbol's next tick (after a catalog reload)."""
        if self._generation != self._catalog.generation:
            self._reload()
        state = self._symbols.get(symbol)
        return None if state is None else state.reference()

    def regions(self) -> Mapping[str, _Symbol]:
        """The live map of symbols seen so far to their state, for a `HotPath`: it reads
        `flo`, `fhi`, `width` and `limit`, and notes a price it accepted as `text` (the
        only attribute it may write). Fetch it again per burst: a reload replaces it (a
        map only ever gains symbols, and a symbol's state object stays the same, so a
        caller may keep the states it looked up for as long as the map is the same
        object). While a catalog reload is due the map is empty (every price goes the
        exact way, and the first tick that reaches the filter reloads it, as it would
        without a HotPath)."""
        if self._generation != self._catalog.generation:
            return _NO_REGIONS
        return self._symbols

    # ---- the exact path ----------------------------------------------------------------

    def _sift(self, ticks: list[Tick]) -> list[Tick]:
        kept: list[Tick] = []
        for tick in ticks:
            state = self._symbols.get(tick.symbol) or self._new_state(tick.symbol)
            reference = state.reference()
            verdict = judge(tick.price, state.tick, reference, self.band)
            if isinstance(verdict, Drop):
                self._drop(tick, verdict, reference)
                continue
            if verdict is not tick.price:
                if verdict == tick.price:  # rounded to itself: keep the feed's text
                    verdict = tick.price
                else:
                    tick = tick._replace(price=verdict)
            if state.low < verdict < state.high:
                state.last = verdict
                state.text = None
            else:
                state.anchor(verdict, self._root)
            kept.append(tick)
        return kept

    def _new_state(self, symbol: str) -> _Symbol:
        spec = self._catalog.spec(symbol)
        reference = self._catalog_price(symbol)
        state = self._symbols[symbol] = _Symbol(spec.tick, reference, self._root)
        return state

    def _catalog_price(self, symbol: str) -> Decimal | None:
        """KuCoin's REST last price from the catalog, if it passes the absolute rules."""
        spec = self._catalog.spec(symbol)
        if spec.last_price is None:
            return None
        verdict = judge(spec.last_price, spec.tick, None, self.band)
        return None if isinstance(verdict, Drop) else verdict

    def _reload(self) -> None:
        """New ticks from the catalog; a last price out of band of KuCoin's REST price is
        replaced by it (see the module docstring)."""
        self._generation = self._catalog.generation
        old, self._symbols = self._symbols, {}
        for symbol, state in old.items():
            last = state.reference()
            rest = self._catalog_price(symbol)
            if rest is not None and last is not None:
                if isinstance(judge(last, None, rest, self.band), Drop):
                    log.warning(
                        "price band reference replaced by KuCoin's REST price",
                        symbol=symbol,
                        last_accepted=str(last),
                        rest_price=str(rest),
                    )
                    if self._metrics is not None:
                        self._metrics.reanchored.inc()
                    last = rest
            elif last is None:
                last = rest
            self._symbols[symbol] = _Symbol(self._catalog.tick(symbol), last, self._root)

    def _drop(self, tick: Tick, reason: Drop, reference: Decimal | None) -> None:
        self.dropped += 1
        if self._metrics is not None:
            self._metrics.dropped.labels(tick.symbol, reason.value).inc()
        key = (tick.symbol, reason)
        now = time.monotonic()
        if now - self._logged.get(key, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            self._logged[key] = now
            log.warning(
                "implausible price dropped",
                symbol=tick.symbol,
                price=str(tick.price)[:40],
                reason=reason.value,
                reference=None if reference is None else str(reference),
            )
