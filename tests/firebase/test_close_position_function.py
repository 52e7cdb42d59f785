"""`closePositionHandler`: the Firestore trigger on users/{uid}/openPositions/{id} settles
a position once, however often the event comes and whoever else settles it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal as D
from types import ModuleType

import cloudevents.http
from fs_kit import UPDATED, FsWorld, event_data, updated_event
from google.cloud.firestore import DocumentSnapshot

from cogmora.domain.enums import LedgerKind, Market, PositionStatus, Side
from cogmora.domain.models import PriceQuote
from cogmora.domain.orders import OpenRequest
from cogmora.jobs.close_handler import run_close_handler


async def open_long(fs: FsWorld, uid: str) -> str:
    system = fs.system
    await system.accounts.create_user(uid, D(10000))
    system.live.put(PriceQuote("XBTUSDTM", D(3000), system.clock.now()))
    request = OpenRequest("XBTUSDTM", Market.FUTURES, Side.LONG, qty=D(2), leverage=D(10))
    return str((await system.positions.open(uid, request))["id"])


async def close_request(fs: FsWorld, uid: str) -> tuple[str, DocumentSnapshot, DocumentSnapshot]:
    """Open a position, then mark it closing at 3150 as the API does: (path, before, after)."""
    pid = await open_long(fs, uid)
    path = f"users/{uid}/openPositions/{pid}"
    before = await asyncio.to_thread(fs.snapshot, path)
    fs.system.live.put(PriceQuote("XBTUSDTM", D(3150), fs.system.clock.now()))
    await fs.system.positions.request_close(uid, pid)
    after = await asyncio.to_thread(fs.snapshot, path)
    return path, before, after


async def assert_settled_once(fs: FsWorld, uid: str, pid: str) -> None:
    user = await fs.system.accounts.get_user(uid)
    assert user.balance == D("10292.62")  # 10000 - 603.6 + 900 - 3.78: one credit
    kinds = [e.kind for e in await fs.system.accounts.ledger(uid)]
    assert kinds.count(LedgerKind.CLOSE) == 1
    assert (await fs.system.positions.get(uid, pid)).status is PositionStatus.CLOSED
    assert len(await fs.system.positions.history(uid)) == 1


async def test_the_event_of_a_close_request_settles_the_position(
    fs: FsWorld, functions: ModuleType
) -> None:
    """The update to `closing` settles it: one credit, one history document, closed."""
    path, before, after = await close_request(fs, "ann")
    await asyncio.to_thread(
        functions.closePositionHandler.__wrapped__, updated_event(fs, path, before, after)
    )
    await assert_settled_once(fs, "ann", path.rsplit("/", 1)[1])


async def test_a_retried_or_repeated_event_settles_nothing_twice(
    fs: FsWorld, functions: ModuleType
) -> None:
    """The same event delivered three times (platform retries) credits the user once."""
    path, before, after = await close_request(fs, "bea")
    event = updated_event(fs, path, before, after)
    for _ in range(3):
        await asyncio.to_thread(functions.closePositionHandler.__wrapped__, event)
    await assert_settled_once(fs, "bea", path.rsplit("/", 1)[1])


async def test_updates_that_are_not_a_close_do_nothing(fs: FsWorld, functions: ModuleType) -> None:
    """An amend of an open position is an update too: nothing is settled."""
    pid = await open_long(fs, "cid")
    path = f"users/cid/openPositions/{pid}"
    before = await asyncio.to_thread(fs.snapshot, path)
    await fs.system.positions.amend("cid", pid, {"stopLoss": D(2900)})
    after = await asyncio.to_thread(fs.snapshot, path)
    await asyncio.to_thread(
        functions.closePositionHandler.__wrapped__, updated_event(fs, path, before, after)
    )
    assert (await fs.system.positions.get("cid", pid)).status is PositionStatus.OPEN
    assert (await fs.system.accounts.get_user("cid")).balance == D("9396.4")


async def test_the_function_racing_the_close_handler_process_settles_once(
    fs: FsWorld, functions: ModuleType
) -> None:
    """Functions for every close and a close handler process run at once: one settlement each."""
    closes = [await close_request(fs, f"u{i}") for i in range(6)]
    handler = asyncio.create_task(run_close_handler(fs.system.store, fs.system.settler, 0.05))
    try:
        await asyncio.gather(
            *(
                asyncio.to_thread(functions.closePositionHandler.__wrapped__, updated_event(fs, *c))
                for c in closes
                for _ in range(2)
            )
        )
        pids = [(f"u{i}", path.rsplit("/", 1)[1]) for i, (path, _, _) in enumerate(closes)]
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            statuses = [(await fs.system.positions.get(u, p)).status for u, p in pids]
            if all(s is PositionStatus.CLOSED for s in statuses):
                break
            assert asyncio.get_running_loop().time() < deadline, "not all settled in 60 s"
            await asyncio.sleep(0.05)
    finally:
        handler.cancel()
        await asyncio.gather(handler, return_exceptions=True)
    for i, (path, _, _) in enumerate(closes):
        await assert_settled_once(fs, f"u{i}", path.rsplit("/", 1)[1])


async def test_the_raw_cloud_event_goes_through_the_sdks_decoding(
    fs: FsWorld, functions: ModuleType
) -> None:
    """The protobuf CloudEvent Eventarc delivers, decoded by the SDK itself, settles once."""
    path, before, after = await close_request(fs, "dee")
    data = event_data(fs.project, path, before, after)
    raw = cloudevents.http.CloudEvent(
        {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": f"//firestore.googleapis.com/projects/{fs.project}/databases/(default)",
            "type": UPDATED,
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/protobuf",
            "subject": f"documents/{path}",
            "location": "nam5",
            "project": fs.project,
            "database": "(default)",
            "namespace": "(default)",
            "document": path,
        },
        data,
    )
    await asyncio.to_thread(functions.closePositionHandler, raw)
    await asyncio.to_thread(functions.closePositionHandler, raw)
    await assert_settled_once(fs, "dee", path.rsplit("/", 1)[1])
