"""The real System on a fresh SQLite file under a hypothesis state machine, whose rules
are synchronous: the services' coroutines run to completion on the machine's own event
loop (`run`), so one example's store, clock and loop never leak into the next."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine

from cogmora.cli.compose import build_system
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.sqlite import SqliteStore
from cogmora.testing import EPOCH, ManualClock

T = TypeVar("T")


class SystemMachine(RuleBasedStateMachine):
    """`self.system` built by the production composition root on `self.store` (SQLite in
    a temporary directory), with a `ManualClock` at EPOCH; a subclass names its symbols."""

    catalog: ClassVar[SymbolCatalog]

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix=f"cogmora-{type(self).__name__.lower()}-"))
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock(EPOCH)
        db = self.dir / "machine.db"
        self.store = SqliteStore(db)
        self.run(self.store.start())
        settings = Settings(store_url=f"sqlite:///{db}")
        self.system = build_system(settings, self.store, catalog=self.catalog, clock=self.clock)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def machine_settings(max_examples: int, steps: int) -> settings:
    """A machine's run: no per-example deadline (the store does real I/O on a shared
    machine), and a slow example is not an error."""
    return settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
