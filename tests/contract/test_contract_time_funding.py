"""Time limits and funding on every backend (SPEC 5.2): each happens once per position
(per funding time), however many passes or replicas run, and the ledger sums to the
balance. KuCoin's funding endpoints are the small fake of kucoin_funding.py, on a real
socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from kucoin_funding import PERIOD_MS, FakeFundingHost, futures, ledger_sums, replicas, serving

from cogmora.cli.compose import System
from cogmora.domain.enums import CloseReason, LedgerKind, PositionStatus, Side
from cogmora.services.time_limits import TimeLimits


@pytest.fixture
async def funding_host() -> AsyncIterator[tuple[FakeFundingHost, str]]:
    async with serving() as host:
        yield host


async def test_a_time_limit_closes_once_at_market_across_racing_passes(
    system: System, make_user: Any, quote: Any
) -> None:
    """Past expiresAt, two passes at once mark it closing once, reason time_limit, at the
    fresh price; a later pass finds nothing; settled, the ledger sums."""
    await make_user("tina", "100000")
    quote("XBTUSDTM", "3000")
    expires = system.clock.now() + timedelta(minutes=5)
    pid = (await system.positions.open("tina", futures(Side.LONG, expires_at=expires)))["id"]
    other = (await system.positions.open("tina", futures(Side.LONG)))["id"]
    limits = [TimeLimits(system.store, system.prices, system.clock) for _ in range(2)]
    assert await limits[0].close_due() == 0
    system.clock.advance(301)  # type: ignore[attr-defined]
    quote("XBTUSDTM", "3100")
    assert sum(await asyncio.gather(*(t.close_due() for t in limits))) == 1
    assert await limits[0].close_due() == 0
    await system.settler.settle_all()
    position = await system.positions.get("tina", pid)
    assert (position.status, position.details.close_reason, position.details.close_price) == (
        PositionStatus.CLOSED, CloseReason.TIME_LIMIT, D("3100")
    )
    assert (await system.positions.get("tina", other)).status is PositionStatus.OPEN
    await ledger_sums(system, "tina")


async def test_a_time_limit_without_a_fresh_price_waits_for_one(
    system: System, make_user: Any, quote: Any
) -> None:
    """No fresh price: the position stays open until a pass finds one."""
    await make_user("tom", "100000")
    quote("XBTUSDTM", "3000")
    expires = system.clock.now() + timedelta(seconds=30)
    pid = (await system.positions.open("tom", futures(Side.SHORT, expires_at=expires)))["id"]
    system.clock.advance(60)  # type: ignore[attr-defined]
    limits = TimeLimits(system.store, system.prices, system.clock)
    assert await limits.close_due() == 0
    quote("XBTUSDTM", "2990")
    assert await limits.close_due() == 1
    assert (await system.positions.get("tom", pid)).details.close_reason is CloseReason.TIME_LIMIT


async def test_funding_books_once_per_position_per_funding_time_across_replicas(
    system: System, make_user: Any, quote: Any, funding_host: tuple[FakeFundingHost, str]
) -> None:
    """A long pays and a short receives qty*mark*rate at the funding time; two replicas
    and a repeated pass book it once; a position opened after it pays nothing; the next
    funding time books again."""
    host, url = funding_host
    await make_user("fay", "100000")
    quote("XBTUSDTM", "3000")
    long_id = (await system.positions.open("fay", futures(Side.LONG)))["id"]
    short_id = (await system.positions.open("fay", futures(Side.SHORT)))["id"]
    funding_time = system.clock.now() + timedelta(minutes=1)
    host.time_point = int(funding_time.timestamp() * 1000)
    host.mark, host.rate = "3050", "0.0002"
    system.clock.advance(61)  # type: ignore[attr-defined]
    quote("XBTUSDTM", "3000")
    late_id = (await system.positions.open("fay", futures(Side.LONG)))["id"]
    async with replicas(system, url) as passes:
        booked = await asyncio.gather(*(f.run_once() for f in passes))
        assert sum(booked) == 2
        assert await passes[0].run_once() == 0
        entries = [e for e in await ledger_sums(system, "fay") if e.kind is LedgerKind.FUNDING]
        assert sorted((e.position_id, e.amount) for e in entries) == sorted(
            [(long_id, D("-1.22")), (short_id, D("1.22"))]
        )
        assert late_id not in {e.position_id for e in entries}
        host.time_point += PERIOD_MS
        system.clock.advance(PERIOD_MS // 1000)  # type: ignore[attr-defined]
        quote("XBTUSDTM", "3000")
        assert await passes[1].run_once() == 3
    await ledger_sums(system, "fay")
