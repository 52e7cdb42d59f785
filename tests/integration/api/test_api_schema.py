"""Schemathesis against the app's own OpenAPI document: every route, generated requests
(valid and invalid), a real server on a real SQLite file, a real user's bearer token.

No answer may be a 5xx, and every answer (status code, content type, body) must be one the
document promises. The server runs in a thread with its own event loop, because
Schemathesis drives its requests synchronously."""

from __future__ import annotations

import asyncio
import os
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis import checks

from cogmora.api.app import create_app
from cogmora.cli.compose import build_system
from cogmora.cli.serve import api_server
from cogmora.domain.models import PriceQuote
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore

AT = datetime(2026, 1, 1, tzinfo=UTC)
# per operation; bounded so the default suite stays quick (COGMORA_SCHEMA_EXAMPLES for more)
EXAMPLES = int(os.environ.get("COGMORA_SCHEMA_EXAMPLES", "30"))
# The event stream never ends by design (tests/integration/api/test_api_events.py covers it).
ENDLESS = "/v1/events"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


class StillClock:
    """Time stands still, so the seeded prices stay fresh for the whole run."""

    def now(self) -> datetime:
        return AT


@dataclass
class Served:
    url: str
    token: str
    position_id: str


def _serve(db: Path, ready: dict[str, object], stop: threading.Event) -> None:
    async def main() -> None:
        store = SqliteStore(db)
        await store.start()
        sim = KucoinSimulator(SimulatorConfig(tick_rate=0, seed=7))  # the candles' KuCoin
        await sim.start()
        system = build_system(
            Settings(
                store_url=f"sqlite:///{db}",
                kucoin_spot_url=sim.spot_url,
                kucoin_futures_url=sim.futures_url,
            ),
            store,
            catalog=SymbolCatalog(spot=("BTC-USDT", "ETH-USDT"), futures=("XBTUSDTM",)),
            clock=StillClock(),
        )
        for symbol, price in (("BTC-USDT", "60000"), ("ETH-USDT", "3000"), ("XBTUSDTM", "60000")):
            system.live.put(PriceQuote(symbol, Decimal(price), AT))
        _, token = await system.accounts.create_user("schema", Decimal("1000000"))
        from cogmora.domain.enums import Market, Side
        from cogmora.domain.orders import OpenRequest

        opened = await system.positions.open(
            "schema", OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=Decimal("0.01"))
        )
        server = api_server(system, "127.0.0.1", 0)
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn has no event)
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        ready["served"] = Served(f"http://127.0.0.1:{port}", token, str(opened["id"]))
        ready["event"].set()  # type: ignore[attr-defined]
        await asyncio.to_thread(stop.wait)
        server.should_exit = True
        await task
        await system.aclose()
        await sim.stop()
        await store.close()

    try:
        asyncio.run(main())
    except BaseException as exc:
        ready["error"] = exc
        ready["event"].set()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    ready: dict[str, object] = {"event": threading.Event()}
    stop = threading.Event()
    thread = threading.Thread(
        target=_serve, args=(tmp_path_factory.mktemp("schema") / "api.db", ready, stop)
    )
    thread.start()
    ready["event"].wait(60)  # type: ignore[attr-defined]
    if "error" in ready or "served" not in ready:
        stop.set()
        thread.join(30)
        raise RuntimeError(f"the API server did not start: {ready.get('error')!r}")
    yield ready["served"]  # type: ignore[misc]
    stop.set()
    thread.join(30)


def _document() -> dict[str, object]:
    """The OpenAPI document of the app as `cogmora api` builds it (no I/O: the store is
    never started), so the cases exist at collection time."""
    db = Path("unused.db")
    system = build_system(Settings(store_url=f"sqlite:///{db}"), SqliteStore(db))
    return create_app(system.api_deps()).openapi()


schema = schemathesis.openapi.from_dict(_document()).exclude(path=ENDLESS)


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_route_answers_as_documented_and_never_5xx(
    case: schemathesis.Case, served: Served
) -> None:
    """Each generated request gets a documented status, content type and body, never a 5xx."""
    params = case.path_parameters or {}
    # Half the time, a position that exists, so the routes past the 404 are reached too.
    if "position_id" in params and zlib.crc32(str(params["position_id"]).encode()) % 2 == 0:
        params["position_id"] = served.position_id
    case.call_and_validate(
        base_url=served.url,
        headers={"Authorization": f"Bearer {served.token}"},
        checks=CHECKS,
        timeout=30,
    )
