"""The engine's Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric

_FAST = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class TickCount:
    """One market's count of evaluated ticks: a plain int, added to in place."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class TickCounter:
    """`cogmora_engine_ticks_total` by market, kept as plain ints the registry reads when
    scraped.

    The hot path counts every quiet burst: a Prometheus `Counter`'s `inc` takes a lock and
    checks its labels on each call, a third of a quiet burst's fixed cost on a slow host
    (bench/engine_core.py). Only the event loop's thread adds; a scrape from another
    thread reads a whole int. Same `labels(market).inc(n)` shape as a Counter."""

    _NAME = "cogmora_engine_ticks"
    _HELP = "Ticks evaluated against the book"

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counts: dict[str, TickCount] = {}
        registry.register(self)

    def labels(self, market: str) -> TickCount:
        count = self._counts.get(market)
        if count is None:
            count = self._counts[market] = TickCount()
        return count

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self._NAME, self._HELP, labels=["market"])

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for market, count in list(self._counts.items()):
            family.add_metric([market], count.value)
        yield family


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.ticks = TickCounter(registry)
        self.hits = Counter(
            "cogmora_engine_hits_total", "Levels crossed, by reason", ["reason"], registry=registry
        )
        self.commits = Counter(
            "cogmora_engine_commits_total", "Burst transactions committed", registry=registry
        )
        self.commit_errors = Counter(
            "cogmora_engine_commit_errors_total",
            "Burst transactions that failed",
            ["kind"],
            registry=registry,
        )
        self.lost = Counter(
            "cogmora_engine_lost_races_total",
            "Crossings whose compare-and-set found the document already moved on",
            registry=registry,
        )
        self.burst_errors = Counter(
            "cogmora_engine_burst_errors_total",
            "Exceptions while evaluating or committing a burst, by step (what the step had "
            "taken out of the book was put back or committed)",
            ["step"],
            registry=registry,
        )
        self.rejudged = Counter(
            "cogmora_engine_rejudged_total",
            "Crossings judged again because their level changed before the commit, by result",
            ["result"],
            registry=registry,
        )
        self.fires = Counter(
            "cogmora_engine_trigger_fires_total",
            "Trigger fires by result",
            ["result"],
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "cogmora_engine_commit_seconds",
            "Burst transaction duration",
            buckets=_FAST,
            registry=registry,
        )
        self.tick_to_commit = Histogram(
            "cogmora_engine_tick_to_commit_seconds",
            "From a crossing tick's arrival to its closing/triggered commit",
            buckets=_FAST,
            registry=registry,
        )
        self.levels = Gauge(
            "cogmora_engine_book_levels", "Resting levels in the book", registry=registry
        )
        self.keys = Gauge(
            "cogmora_engine_book_entries", "Positions and triggers in the book", registry=registry
        )
        self.recovered = Counter(
            "cogmora_engine_recovered_total",
            "Closes and trigger fires found in a feed gap's candles (details.recovered)",
            ["kind"],
            registry=registry,
        )
        self.gap_replays = Counter(
            "cogmora_engine_gap_replays_total",
            "Gap replays of a symbol, by result",
            ["result"],
            registry=registry,
        )
        self.changes = Counter(
            "cogmora_engine_changes_total", "Store changes applied to the book", registry=registry
        )
        # The trailing-peak writer (SPEC 5.2; engine/trail_writes.py): a big move queues
        # many positions at once, written in slices; these say how far the store lags.
        self.trailing_pending = Gauge(
            "cogmora_engine_trailing_writes_pending",
            "Positions whose moved trailing peak is queued and not yet written",
            registry=registry,
        )
        self.trailing_written = Counter(
            "cogmora_engine_trailing_written_total",
            "Positions whose trailing peak and stop were written",
            registry=registry,
        )
        self.trailing_deferred = Counter(
            "cogmora_engine_trailing_deferred_total",
            "Trailing peak writes put off: written more than one interval after their "
            "round began (late), or handed to the next round by a failed write (failed)",
            ["reason"],
            registry=registry,
        )
        self.trailing_oldest = Gauge(
            "cogmora_engine_trailing_oldest_pending_seconds",
            "Since when the oldest queued trailing peak write has waited (0: none queued)",
            registry=registry,
        )
