"""Prometheus metrics of the market-data feeds, labelled by market.

Counters are bumped once per burst of frames, not once per frame: a prometheus_client
increment takes a lock, and the per-frame path must stay lean.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from cogmora.domain.enums import Market


class FeedMetrics:
    """Create once per registry and share between the spot and futures feeds."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["market"]
        self.frames = Counter(
            "cogmora_feed_frames", "Websocket frames received", labels, registry=registry
        )
        self.ticks = Counter(
            "cogmora_feed_ticks", "Price ticks delivered to the engine", labels, registry=registry
        )
        self.bursts = Counter(
            "cogmora_feed_bursts", "Tick bursts delivered (one per socket read)", labels,
            registry=registry,
        )
        self.malformed = Counter(
            "cogmora_feed_malformed_frames", "Frames that could not be decoded (skipped)",
            labels, registry=registry,
        )
        self.errors = Counter(
            "cogmora_feed_errors", "Feed errors by kind (subscribe_404, ack_timeout, connect...)",
            ["market", "kind"], registry=registry,
        )
        self.reconnects = Counter(
            "cogmora_feed_reconnects", "Websocket reconnections", labels, registry=registry
        )
        self.topics = Gauge(
            "cogmora_feed_subscribed_topics", "Topics acknowledged by the exchange", labels,
            registry=registry,
        )
        self.connections = Gauge(
            "cogmora_feed_connections", "Open websocket connections", labels, registry=registry
        )
        self.connected = Gauge(
            "cogmora_feed_connected", "1 when every connection the feed needs is up", labels,
            registry=registry,
        )
        self.lag = Gauge(
            "cogmora_feed_lag_seconds", "Arrival time minus exchange time of the latest tick",
            labels, registry=registry,
        )

    def bind(self, market: Market) -> MarketFeedMetrics:
        m = market.value
        return MarketFeedMetrics(
            frames=self.frames.labels(m),
            ticks=self.ticks.labels(m),
            bursts=self.bursts.labels(m),
            malformed=self.malformed.labels(m),
            reconnects=self.reconnects.labels(m),
            topics=self.topics.labels(m),
            connections=self.connections.labels(m),
            connected=self.connected.labels(m),
            lag=self.lag.labels(m),
            _errors=self.errors,
            _market=m,
        )


@dataclass(frozen=True, slots=True)
class MarketFeedMetrics:
    """The children of FeedMetrics for one market, resolved once."""

    frames: Counter
    ticks: Counter
    bursts: Counter
    malformed: Counter
    reconnects: Counter
    topics: Gauge
    connections: Gauge
    connected: Gauge
    lag: Gauge
    _errors: Counter
    _market: str

    def error(self, kind: str) -> None:
        self._errors.labels(self._market, kind).inc()
