"""A storm tick's crossings recorded in bulk (`Engine._record_plain`) carry what the per-hit
path would: owner, reason, tick price and kind, and the level each position's book held."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from cogmora.domain.enums import CloseReason, PositionStatus, Side
from cogmora.domain.ticks import PriceKind
from cogmora.services.crossings import PositionHit

from .conftest import book_matches_store, close_rig, make_rig
from .test_engine_crossings import open_position

D = Decimal


async def test_a_storm_tick_records_each_crossing_with_its_own_level_and_owner(
    tmp_path: Path,
) -> None:
    """Long stops at two levels crossed by one tick, one below it not: each queued crossing
    names its owner and the level its own position held, committing them closes each once
    with that reason, and the uncrossed one stays open in the book."""
    rig = await make_rig(tmp_path / "storm_record.db")
    try:
        for uid in ("a", "b"):
            await rig.system.accounts.create_user(uid, D("1000000"))
        rig.price("BTC-USDT", "60000")
        opened = [
            (uid, sl, await open_position(rig, uid, "BTC-USDT", Side.LONG, stop_loss=sl))
            for uid, sl in (("a", "59000"), ("b", "59500"), ("a", "59500"), ("b", "59000"))
        ]
        below = await open_position(rig, "b", "BTC-USDT", Side.LONG, stop_loss="58000")
        commits = rig.tasks.pop(0)  # hold the commits: the queued crossings stay readable
        commits.cancel()
        rig.ticks("BTC-USDT", "58999")
        queued = rig.engine._pending.positions
        expected = [
            PositionHit(uid, pid, CloseReason.STOP_LOSS, D("58999"), D(sl), PriceKind.TRADE)
            for uid, sl, pid in opened
        ]
        assert sorted(queued, key=lambda h: h.position_id) == sorted(
            expected, key=lambda h: h.position_id
        )
        rig.tasks.insert(0, asyncio.create_task(rig.engine.run_commits()))
        rig.engine._wake.set()
        await asyncio.sleep(0)
        await rig.engine.drained()
        positions = {
            p.id: p for u in ("a", "b") for p in await rig.system.positions.list_for_user(u)
        }
        assert {pid: positions[pid].details.close_reason for _, _, pid in opened} == {
            pid: CloseReason.STOP_LOSS for _, _, pid in opened
        }
        assert {p.details.status for p in positions.values() if p.id != below} == {
            PositionStatus.CLOSING
        }
        assert positions[below].details.status is PositionStatus.OPEN
        assert below in rig.engine.book
        assert rig.engine.index.inflight == {}
        await rig.synced()
        await book_matches_store(rig)
    finally:
        await close_rig(rig)
