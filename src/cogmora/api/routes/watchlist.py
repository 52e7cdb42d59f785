"""The user's watchlist: the symbols they watch, each with the scraper's latest 24h stats."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from cogmora.api.auth import Deps, Uid
from cogmora.services.watchlist import watchlist_answer

router = APIRouter(prefix="/v1/watchlist", tags=["watchlist"])


class WatchlistPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items are checked by the service, so a bad one is named `symbols[2]` with its rule.
    symbols: list[Any] = Field(max_length=1000, examples=[["BTC-USDT", "ETH-USDT", "XBTUSDTM"]])
    entries: Any = Field(
        default=None, description="ignored, so that a GET answer can be sent back as it is"
    )


@router.get("", summary="Your watched symbols, in your order, with 24h stats")
async def get_watchlist(uid: Uid, deps: Deps) -> dict[str, Any]:
    return watchlist_answer(await deps.watchlists.get(uid))


@router.put(
    "",
    summary="Replace your watched symbols",
    description=(
        "Up to 50 KuCoin symbols (spot `BTC-USDT`, futures `XBTUSDTM`). Stats of a new "
        "symbol arrive with the next refresh (every minute); a symbol KuCoin does not list "
        "stays on the list with an `error`."
    ),
)
async def put_watchlist(body: WatchlistPut, uid: Uid, deps: Deps) -> dict[str, Any]:
    return watchlist_answer(await deps.watchlists.put(uid, body.symbols))
