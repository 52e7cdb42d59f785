"""Funding times missed while no jobs process ran (SPEC 5.2, README "Behaviour where the
spec is silent"): each is booked once when one comes back, with the rate and mark price
KuCoin reports then, however many replicas race, on every backend. KuCoin's endpoints
are the small fake of kucoin_funding.py on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from kucoin_funding import PERIOD_MS, FakeFundingHost, futures, ledger_sums, replicas, serving

from cogmora.cli.compose import System
from cogmora.domain.enums import LedgerKind, Side
from cogmora.domain.timeutil import to_iso
from cogmora.services import funding as funding_service

PERIOD_S = PERIOD_MS // 1000


@pytest.fixture
async def funding_host() -> AsyncIterator[tuple[FakeFundingHost, str]]:
    async with serving() as host:
        yield host


def funding_of(entries: list[Any], position_id: str) -> list[Any]:
    return [e for e in entries if e.kind is LedgerKind.FUNDING and e.position_id == position_id]


async def test_each_missed_funding_time_is_booked_once_across_replicas(
    system: System, make_user: Any, quote: Any, funding_host: tuple[FakeFundingHost, str]
) -> None:
    """Funded at T, then no pass for three periods: two replicas coming back at once book
    T+P, T+2P and T+3P once each at the current rate and mark, a position opened in the
    gap only the times after its opening; a later pass books nothing more."""
    fake, url = funding_host
    await make_user("gus", "100000")
    quote("XBTUSDTM", "3000")
    long_id = (await system.positions.open("gus", futures(Side.LONG)))["id"]
    short_id = (await system.positions.open("gus", futures(Side.SHORT)))["id"]
    first = system.clock.now() + timedelta(minutes=1)
    fake.time_point = int(first.timestamp() * 1000)
    fake.mark, fake.rate = "3050", "0.0002"
    system.clock.advance(61)  # type: ignore[attr-defined]
    async with replicas(system, url) as passes:
        assert await passes[0].run_once() == 2
        # Down for three funding times; a position opens between the first two of them.
        system.clock.advance(PERIOD_S + PERIOD_S // 2)  # type: ignore[attr-defined]
        quote("XBTUSDTM", "3000")
        mid_id = (await system.positions.open("gus", futures(Side.LONG)))["id"]
        system.clock.advance(PERIOD_S + PERIOD_S // 2)  # type: ignore[attr-defined]
        fake.time_point += 3 * PERIOD_MS
        fake.mark, fake.rate = "3100", "0.0003"
        booked = await asyncio.gather(*(f.run_once() for f in passes))
        assert sum(booked) == 3 + 3 + 2
        assert await passes[1].run_once() == 0
        assert await passes[0].run_once() == 0
    entries = await ledger_sums(system, "gus")
    times = [first + timedelta(milliseconds=k * PERIOD_MS) for k in range(4)]
    for pid, amount in ((long_id, D("-1.86")), (short_id, D("1.86"))):
        got = funding_of(entries, pid)
        assert len(got) == 4
        assert [to_iso(t) in e.note for e, t in zip(got, times, strict=True)] == [True] * 4
        assert [e.amount for e in got[1:]] == [amount] * 3  # 2 * 3100 * 0.0003
        assert ["missed" in e.note for e in got[1:]] == [True, True, False]
    mid = funding_of(entries, mid_id)
    assert [e.amount for e in mid] == [D("-1.86")] * 2
    assert [to_iso(times[2]) in mid[0].note, to_iso(times[3]) in mid[1].note] == [True, True]
    positions = {p.id: p for p in await system.positions.list_for_user("gus")}
    assert {positions[p].details.funded_at for p in (long_id, short_id, mid_id)} == {times[3]}


async def test_a_long_backlog_is_booked_in_bounded_transactions(
    system: System,
    make_user: Any,
    quote: Any,
    funding_host: tuple[FakeFundingHost, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten missed times on three positions, at most two times a position and three
    entries a transaction: every time booked once, oldest first, the ledger sums."""
    monkeypatch.setattr(funding_service, "MAX_TIMES", 2)
    monkeypatch.setattr(funding_service, "MAX_ENTRIES", 3)
    fake, url = funding_host
    await make_user("bea", "100000")
    quote("XBTUSDTM", "3000")
    ids = [(await system.positions.open("bea", futures(Side.LONG)))["id"] for _ in range(3)]
    first = system.clock.now() + timedelta(minutes=1)
    system.clock.advance(61 + 9 * PERIOD_S)  # type: ignore[attr-defined]
    fake.time_point = int(first.timestamp() * 1000) + 9 * PERIOD_MS
    fake.mark, fake.rate = "3000", "0.0001"
    async with replicas(system, url, 1) as (funding,):
        assert await funding.run_once() == 30
        assert await funding.run_once() == 0
    entries = await ledger_sums(system, "bea")
    times = [to_iso(first + timedelta(milliseconds=k * PERIOD_MS)) for k in range(10)]
    for pid in ids:
        got = funding_of(entries, pid)
        assert [t in e.note for e, t in zip(got, times, strict=True)] == [True] * 10
        assert {e.amount for e in got} == {D("-0.60")}
