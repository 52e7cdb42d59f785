"""The Cloud Functions of deploy/functions/main.py, called with the Firebase SDK's own
event types against the Firestore emulator, beside the services a process would run.

- `functions` -> deploy/functions/main.py, imported as Firebase's runtime imports it.
- `fs` -> `FsWorld`: a fresh emulator project with the environment a deployed function
  has (COGMORA_STORE, GCLOUD_PROJECT), a `System` on it as a long-running process
  would have (`.system`), and `.snapshot(path)`, a real `DocumentSnapshot` of a document.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
from fs_kit import FsWorld
from google.cloud import firestore

from cogmora.cli.compose import build_system
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.firestore import FirestoreStore
from emulators import FirestoreProjects

FUNCTIONS = Path(__file__).resolve().parents[2] / "deploy" / "functions"


@pytest.fixture(scope="session")
def functions() -> ModuleType:
    sys.path.insert(0, str(FUNCTIONS))
    try:
        return importlib.import_module("main")
    finally:
        sys.path.remove(str(FUNCTIONS))


@pytest.fixture
async def fs(
    firestore_projects: FirestoreProjects, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FsWorld]:
    project = firestore_projects.new("demo-functions")
    monkeypatch.setenv("COGMORA_STORE", f"firestore://{project}")
    monkeypatch.setenv("GCLOUD_PROJECT", project)
    monkeypatch.setenv("COGMORA_LOG_LEVEL", "WARNING")
    store = FirestoreStore(project)
    await store.start()
    catalog = SymbolCatalog(spot=("BTC-USDT",), futures=("XBTUSDTM",))
    system = build_system(Settings(store_url=f"firestore://{project}"), store, catalog=catalog)
    client = firestore.Client(project=project)
    try:
        yield FsWorld(project, system, client)
    finally:
        client.close()
        await system.aclose()
        await store.close()
