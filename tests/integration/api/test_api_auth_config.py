"""/v1/auth/config hands the page the web API key of the one Settings object
(COGMORA_FIREBASE_API_KEY, read and checked at start-up), not the process environment's
value at request time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cogmora.cli.compose import System, build_system
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from conftest import LiveServer, ManualClock

KEY = "AIzaSyFromSettings_0123456789abcdefgh"


@pytest.fixture
def system(
    store: SqliteStore, db_path: Path, catalog: SymbolCatalog, clock: ManualClock
) -> System:
    settings = Settings(
        store_url=f"sqlite:///{db_path}", firebase_project="demo-key", firebase_api_key=KEY
    )
    return build_system(settings, store, catalog=catalog, clock=clock)


async def test_auth_config_serves_the_settings_web_api_key(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COGMORA_FIREBASE_API_KEY", "AIzaSyChangedAfterStartUp")
    async with live_server.client() as c:
        r = await c.get("/v1/auth/config")
    assert r.status_code == 200, r.text
    fb = r.json()["firebase"]
    assert (fb["projectId"], fb["apiKey"]) == ("demo-key", KEY)
