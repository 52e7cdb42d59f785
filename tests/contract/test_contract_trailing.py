"""Trailing stops on every backend (SPEC 5.2): the peak is stored and survives a restart,
and a crossing commits only while the trailing parameters that crossed are stored."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D
from typing import Any

from prometheus_client import CollectorRegistry

from cogmora.cli.compose import System
from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side
from cogmora.domain.orders import OpenRequest
from cogmora.domain.ticks import Tick
from cogmora.domain.trailing import TrailingStop
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.services.crossings import PositionHit, apply_crossings, rejudge_positions
from cogmora.store.port import Store

S = "BTC-USDT"


def engine_on(store: Store, system: System) -> Engine:
    return Engine(
        store, system.settings.fees, system.clock, system.live, EngineMetrics(CollectorRegistry())
    )


def ticks(engine: Engine, *prices: str) -> None:
    engine.on_ticks([Tick(S, Market.SPOT, D(p), received_ns=time.time_ns()) for p in prices])


async def open_trailing(system: System, make_user: Any, quote: Any, rate: str = "0.1") -> str:
    await make_user("ann", "100000")
    quote(S, "60000")
    request = OpenRequest(
        S, Market.SPOT, Side.LONG, qty=D("0.1"), trailing_stop=TrailingStop(D(rate))
    )
    doc = await system.positions.open("ann", request)
    assert (doc["details"]["trailingPeak"], doc["details"]["trailingStop"]) == (
        "60000.00000000",
        "54000.00000000",
    )
    return str(doc["id"])


async def test_the_peak_is_stored_and_a_restarted_engine_fires_from_it(
    system: System, make_user: Any, quote: Any, backend: Any
) -> None:
    """Ticks move the peak in memory; one flush stores peak and stop; an engine on a fresh
    store instance loads that peak and fires at its stop."""
    pid = await open_trailing(system, make_user, quote)
    first = engine_on(system.store, system)
    await first.load()
    ticks(first, "61000", "62500", "62000")
    assert await first.trailing.flush() == 1
    assert await first.trailing.flush() == 0  # nothing moved since
    stored = (await system.positions.get("ann", pid)).details
    assert (stored.trailing_peak, stored.trailing_stop) == (D("62500"), D("56250"))

    again = engine_on(await backend.open(), system)
    await again.load()
    state = again.book.trailing_state(pid)
    assert state is not None and state.peak_price() == D("62500")
    commits = asyncio.create_task(again.run_commits())
    try:
        ticks(again, "56250.00000001")
        assert pid in again.book
        ticks(again, "56250")
        await asyncio.sleep(0)
        await again.drained()
    finally:
        commits.cancel()
        await asyncio.gather(commits, return_exceptions=True)
    closing = (await system.positions.get("ann", pid)).details
    assert (closing.status, closing.close_reason, closing.close_price) == (
        PositionStatus.CLOSING,
        CloseReason.TRAILING_STOP,
        D("56250"),
    )


async def test_a_patch_of_the_trailing_stop_that_won_is_honoured_and_judged_again(
    system: System, make_user: Any, quote: Any
) -> None:
    """The crossing expects the rate it crossed; after a PATCH to a wider rate the same tick
    misses, is judged again against the stored rate and stays open; at the new stop it closes."""
    pid = await open_trailing(system, make_user, quote)
    quote(S, "60000")
    await system.positions.amend("ann", pid, {"trailingStop": TrailingStop(D("0.2"))})
    fees, now = system.settings.fees, system.clock.now()
    crossed = TrailingStop(D("0.1"))
    results = []
    for price in ("53000", "48000"):
        hit = PositionHit(
            "ann",
            pid,
            CloseReason.TRAILING_STOP,
            D(price),
            trailing=crossed,
            trailing_peak=D("60000"),
        )
        out = await system.store.transact(lambda tx, h=hit: apply_crossings(tx, [h], [], fees, now))
        assert (out.closing, out.missed) == ([], [hit])
        again = await system.store.transact(lambda tx, o=out: rejudge_positions(tx, o.missed, now))
        results.append(again)
    kept, closed = results
    assert [p.id for p in kept.kept] == [pid] and kept.closing == []
    [hit] = closed.closing
    assert (hit.reason, hit.trailing) == (CloseReason.TRAILING_STOP, TrailingStop(D("0.2")))
    position = await system.positions.get("ann", pid)
    assert position.details.close_reason is CloseReason.TRAILING_STOP


async def test_a_peak_write_never_overwrites_a_patched_trailing_stop(
    system: System, make_user: Any, quote: Any
) -> None:
    """The engine's batched write expects the parameters it trailed: after a PATCH it writes
    nothing, and the stored peak is the PATCH's."""
    pid = await open_trailing(system, make_user, quote)
    engine = engine_on(system.store, system)
    await engine.load()
    ticks(engine, "65000")
    quote(S, "64000")
    await system.positions.amend("ann", pid, {"trailingStop": TrailingStop(D("0.05"))})
    assert await engine.trailing.flush() == 0
    details = (await system.positions.get("ann", pid)).details
    assert (details.trailing, details.trailing_peak, details.trailing_stop) == (
        TrailingStop(D("0.05")),
        D("64000"),
        D("60800"),
    )


async def test_a_position_kept_by_judging_again_stores_the_crossings_further_peak(
    system: System, make_user: Any, quote: Any
) -> None:
    """Two stop-loss crossings lose to PATCHes; judged again in one transaction, one still
    crosses its new stop and closes, the other is kept open and stores the peak its crossing
    had seen (62000, stop 55800) instead of the stored 60000: the book, set from it, does
    not fall back to a stop behind the highs it saw."""
    await make_user("ann", "100000")
    quote(S, "60000")
    spec = TrailingStop(D("0.1"))
    ids = []
    for _ in range(2):
        request = OpenRequest(S, Market.SPOT, Side.LONG, qty=D("0.1"), stop_loss=D("59000"),
                              trailing_stop=spec)
        ids.append(str((await system.positions.open("ann", request))["id"]))
    kept_id, closed_id = ids
    await system.positions.amend("ann", kept_id, {"stopLoss": None})
    await system.positions.amend("ann", closed_id, {"stopLoss": D("58990")})
    fees, now = system.settings.fees, system.clock.now()
    hits = [
        PositionHit("ann", pid, CloseReason.STOP_LOSS, D("58950"), D("59000"),
                    trailing=spec, trailing_peak=D("62000"))
        for pid in ids
    ]
    out = await system.store.transact(lambda tx: apply_crossings(tx, hits, [], fees, now))
    assert out.closing == [] and len(out.missed) == 2
    again = await system.store.transact(lambda tx: rejudge_positions(tx, out.missed, now))
    [kept] = again.kept
    [closing] = again.closing
    assert (kept.id, closing.position_id, closing.level) == (kept_id, closed_id, D("58990"))
    assert (kept.details.trailing_peak, kept.details.trailing_stop) == (D("62000"), D("55800"))
    stored = (await system.positions.get("ann", kept_id)).details
    assert (stored.status, stored.stop_loss) == (PositionStatus.OPEN, None)
    assert (stored.trailing_peak, stored.trailing_stop) == (D("62000"), D("55800"))
    assert (await system.positions.get("ann", closed_id)).status is PositionStatus.CLOSING
