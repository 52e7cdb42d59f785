"""`cogmora jobs` as Cloud Run runs it, stopped with SIGTERM while an agent run waits on a
slow LLM (a fake OpenAI server on a real socket): the run finishes inside the drain,
its decision is logged and its slot completed, and the process exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from cogmora_cli import COGMORA

from cogmora.cli.compose import build_system
from cogmora.domain.paths import agent_config_path, user_path
from cogmora.domain.timeutil import to_iso
from cogmora.jobs.scheduler import leased
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store import queries as q
from cogmora.store.port import Doc, Tx
from cogmora.store.sqlite import SqliteStore
from conditions import until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "agent"))
from fake_openai_server import FakeOpenAI

HOLD = {"rationale": "late but sure",
        "actions": [{"type": "hold", "symbol": "ETH-USDT", "rationale": "flat"}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed_due_agent(db: Path) -> None:
    """A user whose LLM agent is due now."""
    store = SqliteStore(db)
    await store.start()
    try:
        settings = Settings(store_url=f"sqlite:///{db}", llm_url="http://127.0.0.1:9/v1",
                            llm_model="fake-model")  # the seeding process needs an LLM set
        system = build_system(settings, store)
        await system.accounts.create_user("ann", Decimal(10000))
        await system.agent_configs.put(
            "ann", {"enabled": True, "schedule": "every 15m", "symbols": ["ETH-USDT"],
                    "provider": "llm"},
        )
        due = to_iso(datetime.now(UTC) - timedelta(seconds=1))

        def make_due(tx: Tx) -> None:
            path = agent_config_path("ann")
            doc = tx.get(path)
            assert doc is not None
            tx.set(path, {**doc, "nextRunAt": due})

        await store.transact(make_due)
    finally:
        await store.close()


async def stored(db: Path) -> tuple[list[Doc], Doc | None]:
    """The user's decisions and agent config, read as another process would."""
    store = SqliteStore(db)
    await store.start()
    try:
        query = q.Query("agentDecisions", parent=user_path("ann")).order_by("createdAt", "desc")

        def body(tx: Tx) -> tuple[list[Doc], Doc | None]:
            return [d for _, d in tx.query(query)], tx.get(agent_config_path("ann"))

        return await store.read(body)
    finally:
        await store.close()


async def test_sigterm_lets_an_agent_run_waiting_on_a_slow_llm_finish(tmp_path: Path) -> None:
    """The model answers after SIGTERM: the run is applied and logged, its slot completed,
    and `cogmora jobs` exits 0."""
    db = tmp_path / "jobs.db"
    await seed_due_agent(db)
    sim = await KucoinSimulator(SimulatorConfig(tick_rate=0, seed=13)).start()
    llm = FakeOpenAI()
    await llm.start()
    llm.slow(120, HOLD)  # held until answer_now (or two minutes, past any drain)
    env = {
        **os.environ,
        "PORT": str(free_port()),
        "COGMORA_STORE": f"sqlite:///{db}",
        "COGMORA_KUCOIN_SPOT_URL": sim.spot_url,
        "COGMORA_KUCOIN_FUTURES_URL": sim.futures_url,
        "COGMORA_LLM_URL": llm.url,
        "COGMORA_LLM_MODEL": "fake-model",
        "COGMORA_LLM_API_KEY": "sk-test",
        "COGMORA_LOG_LEVEL": "INFO",
    }
    log_path = tmp_path / "jobs.log"
    log = log_path.open("w")
    proc = await asyncio.create_subprocess_exec(COGMORA, "jobs", env=env, stdout=log, stderr=log)
    try:
        await until(lambda: llm.requests, what="the agent run asking the LLM")
        proc.send_signal(signal.SIGTERM)
        await until(lambda: "draining" in log_path.read_text(), what="the drain beginning")
        assert proc.returncode is None  # still waiting for the run
        llm.answer_now()
        code = await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
        await llm.stop()
        await sim.stop()
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    decisions, config = await stored(db)
    assert [(d["provider"], d["error"], d["rationale"]) for d in decisions] == [
        ("llm", None, "late but sure")
    ], output[-3000:]
    assert config is not None and not leased(config)
    assert len(llm.requests) == 1
