"""Helpers for the jobs' integration tests: fixed candles, agent configs, store lookups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cogmora.cli.compose import System
from cogmora.cli.jobs import Jobs, JobsOptions, build_jobs
from cogmora.domain.models import Doc
from cogmora.domain.paths import agent_config_path, user_path
from cogmora.jobs.agent.context import Candle
from cogmora.jobs.market import WIDTH
from cogmora.services.agent import AgentConfigs
from cogmora.store import queries as q
from cogmora.store.port import Store
from cogmora.store.sqlite import SqliteStore
from cogmora.testing import FixedCandles

D = Decimal


def rising(
    price: Decimal | str, now: datetime, interval: str = "15min", n: int = 40
) -> tuple[Candle, ...]:
    """Closed candles climbing 0.3% each to `price`: the builtin strategy reads an uptrend."""
    width = timedelta(minutes=WIDTH[interval])
    end = datetime.fromtimestamp(
        int(now.timestamp()) // int(width.total_seconds()) * int(width.total_seconds()), tz=UTC
    )
    last = D(price)
    out = []
    for i in range(n):
        close = (last * (1 - D("0.003") * (n - 1 - i))).quantize(D("0.01"))
        high, low = close * D("1.001"), close * D("0.999")
        out.append(Candle(end - width * (n - i), close, high, low, close, D(5)))
    return tuple(out)


def fast_options(**changes: Any) -> JobsOptions:
    base: dict[str, Any] = {"poll_seconds": 0.05, "concurrency": 8, "lease_seconds": 300.0}
    base.update(changes)
    return JobsOptions(**base)


def jobs_for(system: System, candles: FixedCandles | None = None, **options: Any) -> Jobs:
    return build_jobs(system, fast_options(**options), candles=candles)


async def save_config(system: System, uid: str, **body: Any) -> Doc:
    configs: AgentConfigs = system.agent_configs
    doc = {"enabled": True, "schedule": "every 15m", "symbols": ["BTC-USDT"], **body}
    return (await configs.put(uid, doc)).to_doc()


async def config_doc(store: Store, uid: str) -> Doc:
    doc = await store.read(lambda tx: tx.get(agent_config_path(uid)))
    assert doc is not None
    return doc


async def decisions(store: Store, uid: str) -> list[Doc]:
    query = q.Query("agentDecisions", parent=user_path(uid)).order_by("createdAt", "desc")
    rows = await store.read(lambda tx: tx.query(query))
    return [{"id": p.rsplit("/", 1)[1], **d} for p, d in rows]


async def agent_positions(store: Store, uid: str) -> list[Doc]:
    query = q.Query("openPositions", parent=user_path(uid)).order_by("openedAt", "desc")
    rows = await store.read(lambda tx: tx.query(query))
    return [d for _, d in rows if d["source"] == "agent"]


class TwoStores:
    """Two store instances on the same data, as two replicas (processes) would have."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self.schema: str | None = None
        if kind == "sqlite":
            self.where = str(tmp_path / "replicas.db")
        else:
            url = request.getfixturevalue("pg_url")
            self.schema = f"jobs_{uuid.uuid4().hex[:12]}"
            self.base = url
            self.where = f"{url}?schema={self.schema}"
        self.opened: list[Store] = []

    async def open(self) -> Store:
        store: Store
        if self.kind == "sqlite":
            store = SqliteStore(self.where)
        else:
            from cogmora.store.postgres import PostgresStore

            store = PostgresStore(self.where, pool_size=4)
        await store.start()
        self.opened.append(store)
        return store

    async def close(self) -> None:
        for store in reversed(self.opened):
            await store.close()
        if self.schema is not None:
            with psycopg.connect(self.base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
