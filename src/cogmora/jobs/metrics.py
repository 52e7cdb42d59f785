"""Prometheus metrics of the scheduled jobs."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class JobsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.claims = Counter(
            "cogmora_jobs_claims",
            "slots claimed, by job and kind",
            ["job", "kind"],
            registry=registry,
        )
        self.runs = Counter(
            "cogmora_jobs_runs",
            "runs finished, by job and outcome",
            ["job", "outcome"],
            registry=registry,
        )
        self.lost_leases = Counter(
            "cogmora_jobs_lost_leases",
            "runs that finished after their lease had passed to another claim",
            ["job"],
            registry=registry,
        )
        self.seconds = Histogram(
            "cogmora_jobs_run_seconds", "run duration, by job", ["job"], registry=registry
        )
        self.in_flight = Gauge(
            "cogmora_jobs_in_flight", "agent runs in progress in this process", registry=registry
        )
        self.watchlist_entries = Counter(
            "cogmora_jobs_watchlist_entries",
            "watchlist entries written, by result",
            ["result"],
            registry=registry,
        )
