"""Account summary, history, ledger, prices and the user's event stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from cogmora.api.auth import Deps, Uid
from cogmora.api.schemas import canonical_symbol
from cogmora.domain.enums import Market
from cogmora.domain.money import to_str
from cogmora.domain.timeutil import to_iso
from cogmora.errors import NotFound, ValidationError
from cogmora.services.events import UserEvents

router = APIRouter(tags=["account"])


@router.get("/v1/account", summary="Balance, equity, margin used and unrealized P&L")
async def account(uid: Uid, deps: Deps) -> dict[str, Any]:
    view = await deps.positions.account(uid)
    return {
        "uid": view.uid,
        "balance": to_str(view.balance),
        "equity": to_str(view.equity),
        "marginUsed": to_str(view.margin_used),
        "unrealizedPnl": to_str(view.unrealized_pnl),
    }


@router.get("/v1/history", summary="Closed positions, newest first")
async def history(
    uid: Uid,
    deps: Deps,
    limit: Annotated[int, Query(ge=1, le=5000, description="at most this many")] = 500,
) -> list[dict[str, Any]]:
    return await deps.positions.history(uid, limit)


@router.get("/v1/ledger", summary="Every balance change, in booking order")
async def ledger(uid: Uid, deps: Deps) -> list[dict[str, Any]]:
    return [{"id": e.id, **e.to_doc()} for e in await deps.accounts.ledger(uid)]


@router.get("/v1/prices/{symbol}", summary="The latest known trade price of a symbol")
async def price(symbol: str, uid: Uid, deps: Deps) -> dict[str, Any]:
    symbol = canonical_symbol(symbol)
    market = deps.catalog.market_of(symbol)
    if market is None:
        raise ValidationError("symbol", f"symbol {symbol} is not a known symbol on KuCoin")
    quote = await deps.prices.latest(symbol, Market(market))
    if quote is None:
        raise NotFound(f"no price known yet for {symbol}")
    return {"symbol": symbol, "price": to_str(quote.price), "at": to_iso(quote.at)}


@router.get(
    "/v1/events",
    summary="Server-sent events: every change to your documents, as it commits",
    description=(
        "Each event is `id: SEQ`, `event: COLLECTION`, `data: {seq, collection, path, doc}`. "
        "An `event: resync` means the stream fell behind what the store keeps of its change "
        "feed: changes were missed, so reload your view (account, positions, triggers), "
        "then keep reading."
    ),
    response_class=StreamingResponse,
)
async def events(request: Request, uid: Uid, deps: Deps) -> StreamingResponse:
    follow = UserEvents(deps.store, deps.accounts).follow(uid)
    await anext(follow)  # the cursor is set: nothing committed from here on is missed

    async def stream() -> AsyncIterator[bytes]:
        yield b": connected\n\n"
        while not await request.is_disconnected():
            try:
                batch = await anext(follow)
            except asyncio.CancelledError:
                return
            if not batch:
                yield b": keep-alive\n\n"
            for e in batch:
                yield (
                    f"id: {e['seq']}\nevent: {e['collection']}\ndata: ".encode()
                    + msgspec.json.encode(e)
                    + b"\n\n"
                )

    return StreamingResponse(stream(), media_type="text/event-stream")
