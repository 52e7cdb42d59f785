"""Account summary, history, ledger, prices and the user's event stream."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from cogmora.api.auth import Deps, Uid
from cogmora.api.schemas import canonical_symbol
from cogmora.domain.enums import LedgerKind, Market
from cogmora.domain.money import to_str
from cogmora.domain.timeutil import to_iso
from cogmora.errors import NotFound, ValidationError
from cogmora.services.events import UserEvents
from cogmora.services.ledger import LedgerCursor, LedgerFilter, read_ledger

router = APIRouter(tags=["account"])


@router.get(
    "/v1/auth/config",
    tags=["auth"],
    summary="How to sign in: whether Firebase ID tokens are taken, and where to get one",
    description=(
        "No bearer needed. `firebase` is null unless the server takes Firebase ID tokens "
        "(COGMORA_FIREBASE_PROJECT); then it names the project, the web API key "
        "(COGMORA_FIREBASE_API_KEY; public by Firebase's design) and the Identity Toolkit "
        "and Secure Token REST bases to call `accounts:signInWithPassword` and `token` on: "
        "the Auth emulator's when FIREBASE_AUTH_EMULATOR_HOST is set."
    ),
)
async def auth_config(deps: Deps) -> dict[str, Any]:
    firebase = deps.firebase_id_tokens
    if firebase is None:
        return {"firebase": None}
    # Read where the SDK reads it (firebase_auth.py verifies against the same emulator).
    emulator = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST", "").strip()
    root = f"http://{emulator}/" if emulator else "https://"
    return {
        "firebase": {
            "projectId": firebase.project,
            "apiKey": deps.firebase_api_key or ("emulator" if emulator else ""),
            "identityToolkit": f"{root}identitytoolkit.googleapis.com/v1",
            "secureToken": f"{root}securetoken.googleapis.com/v1",
            "emulator": bool(emulator),
        }
    }


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


LEDGER_PARAMS = frozenset({"kind", "since", "until", "cursor", "limit", "format"})
LEDGER_COLUMNS = ("seq", "at", "kind", "amount", "balanceAfter", "positionId", "note", "id")


def _when(name: str, text: str | None) -> datetime | None:
    """A day (`2026-05-01`, its 00:00 UTC) or an ISO time with its zone (`...Z`)."""
    if text is None or text.strip() == "":
        return None
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        # An unencoded `+01:00` arrives as ` 01:00` (a `+` in a query string is a space).
        at = datetime.fromisoformat(re.sub(r" (\d\d:?\d\d)$", r"+\1", text.replace("Z", "+00:00")))
    except ValueError:
        raise ValidationError(
            name, f"{name}: must be a date (2026-05-01) or an ISO time (2026-05-01T12:00:00Z)"
        ) from None
    if at.tzinfo is None:
        raise ValidationError(name, f"{name}: must include a timezone, e.g. 2026-05-01T12:00:00Z")
    return at.astimezone(UTC)


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, LEDGER_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@router.get(
    "/v1/ledger",
    summary="Balance changes, filtered, in booking order (or time order with since/until)",
    description=(
        "Without `since`/`until` the entries come in booking order (`seq`); with either, in "
        "time order (`at`, then `seq`). With `limit`, a full page carries the header "
        "`X-Next-Cursor`: pass it as `cursor` (with the same filters) for the next page. "
        "`format=csv` answers the same entries as CSV (RFC 4180), columns "
        f"`{','.join(LEDGER_COLUMNS)}`. An unknown parameter is a 422 naming it."
    ),
    responses={
        200: {
            "headers": {
                "X-Next-Cursor": {
                    "description": "present when more entries match: the next page's cursor",
                    "schema": {"type": "string"},
                }
            },
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def ledger(
    request: Request,
    uid: Uid,
    deps: Deps,
    kind: Annotated[LedgerKind | None, Query(description="only entries of this kind")] = None,
    since: Annotated[
        str | None,
        Query(description="booked at or after: a UTC day `2026-05-01` or an ISO time with zone"),
    ] = None,
    until: Annotated[str | None, Query(description="booked before (excluded), as `since`")] = None,
    cursor: Annotated[str | None, Query(description="`X-Next-Cursor` of the previous page")] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=5000, description="at most this many (default: all)")
    ] = None,
    format: Annotated[
        Literal["json", "csv"], Query(description="`csv` for a CSV download")
    ] = "json",
) -> Any:
    unknown = sorted(set(request.query_params) - LEDGER_PARAMS)
    if unknown:
        raise ValidationError(
            unknown[0],
            f"{unknown[0]}: is not a ledger filter (known: {', '.join(sorted(LEDGER_PARAMS))})",
        )
    page = await read_ledger(
        deps.store,
        uid,
        LedgerFilter(
            kind=kind,
            since=_when("since", since),
            until=_when("until", until),
            cursor=None if cursor is None else LedgerCursor.decode(cursor),
            limit=limit,
        ),
    )
    rows = [{"id": e.id, **e.to_doc()} for e in page.entries]
    headers = {} if page.next is None else {"X-Next-Cursor": page.next.encode()}
    if format == "csv":
        return Response(_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
    return JSONResponse(rows, headers=headers)


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
