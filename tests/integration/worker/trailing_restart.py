"""The scenario the trailing tests across a restart share (SPEC 5.1, 5.2): a long trailing 2%
whose peak reached 61000 and was stored, a worker that stopped three minutes ago, and a
market that climbed to 62000 meanwhile, which only the gap's candles tell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from cogmora.domain.paths import position_path, price_path
from cogmora.domain.timeutil import to_iso
from cogmora.simulator import KucoinSimulator
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore
from conditions import until

from .conftest import start_live, stop_live
from .test_gap_replay import SIM, SYM, followed, open_long

PEAK, STOP = "61000.00000000", "59780.00000000"  # the live peak and its 2% stop


async def trailed_then_stopped(db: Path, uid: str, now: datetime) -> tuple[dict[str, str], str]:
    """Live on `db`: `uid` opens a long trailing 2% at 60000, the price reaches 61000 and
    the writer stores that peak (stop 59780); then the worker stops, and the store is dated
    as if that were minutes before `now` (`backdate`). Returns (auth headers, position id)."""
    lv = await start_live(db, SIM)
    try:
        auth = await lv.user(uid)
        await lv.sim.set_price(SYM, "60000")
        pid = await open_long(lv, auth, trailingStop={"callbackRate": "0.02"})  # type: ignore[arg-type]
        await followed(lv)
        await lv.synced()
        await lv.sim.set_price(SYM, "61000")

        async def stored() -> bool:
            doc = await lv.system.store.read(lambda tx: tx.get(position_path(uid, pid)))
            assert doc is not None
            return (doc["details"]["trailingPeak"], doc["details"]["trailingStop"]) == (PEAK, STOP)

        await until(stored, what="the live peak stored")
    finally:
        await stop_live(lv)
    store = SqliteStore(db)
    await store.start()
    await store.transact(backdate(uid, pid, now, last_price=True))
    await store.close()
    return auth, pid


def backdate(uid: str, pid: str, now: datetime, last_price: bool) -> Callable[[Tx], None]:
    """A transaction dating the position as opened four minutes before `now` and, with
    `last_price`, the stored last price (61000) three minutes before: the gap a restart
    replays from the candles starts there."""

    def body(tx: Tx) -> None:
        path = position_path(uid, pid)
        doc = tx.get(path)
        assert doc is not None
        tx.set(path, {**doc, "openedAt": to_iso(now - timedelta(minutes=4))})
        if last_price:
            at = to_iso(now - timedelta(minutes=3))
            tx.set(price_path(SYM), {"symbol": SYM, "price": "61000", "at": at})

    return body


async def market_after_gap(now: datetime, then: str) -> KucoinSimulator:
    """A started simulator whose candles show the gap: a trade at 62000 two minutes before
    `now` (plus 4 s), then one at `then` a second later. Created at 61000, the stored price:
    its synthetic candles before the first scripted trade wander around the creation
    price, which must not be near the stop."""
    sim = KucoinSimulator(replace(SIM, spot={**SIM.spot, SYM: "61000"}))
    await sim.start()
    high_ms = int((now - timedelta(minutes=2)).timestamp() * 1000) + 4000
    await sim.set_price(SYM, "62000", at_ms=high_ms)
    await sim.set_price(SYM, then, at_ms=high_ms + 1000)
    return sim
