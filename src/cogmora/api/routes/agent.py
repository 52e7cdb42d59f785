"""The user's trading agent: its config, and the log of what it decided and why."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from cogmora.api.auth import Deps, Uid
from cogmora.errors import ValidationError
from cogmora.services.agent import MAX_DECISIONS

router = APIRouter(prefix="/v1/agent", tags=["agent"])

CONFIG_EXAMPLE = {
    "enabled": True,
    "schedule": "every 15m",
    "provider": "builtin",
    "symbols": ["BTC-USDT", "XBTUSDTM"],
    "risk": {
        "maxLeverage": "3",
        "maxPositionNotional": "1000",
        "maxOpenPositions": 3,
        "maxDailyLoss": "100",
    },
}
CONFIG_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "enabled": {"type": "boolean"},
                        "schedule": {"type": "string", "description": "'every 15m' or cron"},
                        "provider": {"type": "string", "enum": ["builtin", "llm"]},
                        "symbols": {"type": "array", "items": {"type": "string"}},
                        "risk": {"type": "object"},
                    },
                    "additionalProperties": False,
                },
                "example": CONFIG_EXAMPLE,
            }
        },
    }
}


@router.get("", summary="Your agent's config (the disabled defaults if never saved)")
async def get_agent(uid: Uid, deps: Deps) -> dict[str, Any]:
    return (await deps.agent_configs.get(uid)).to_doc()


@router.put(
    "",
    summary="Save your agent's config",
    description=(
        "Every field is optional (defaults: off, `every 1h`, `builtin`, no symbols, timid "
        "limits). Numbers may be decimal strings or JSON numbers. `nextRunAt` and "
        "`updatedAt` are set by the server. `provider: llm` is refused (422) when the server "
        "has no LLM endpoint configured."
    ),
    openapi_extra=CONFIG_BODY,
)
async def put_agent(request: Request, uid: Uid, deps: Deps) -> dict[str, Any]:
    raw = await request.body()
    try:
        # Decimal, not float: `"maxDailyLoss": 0.1` must mean exactly 0.1.
        body = json.loads(raw or b"null", parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError("body", f"the body must be a JSON object: {exc}") from None
    return (await deps.agent_configs.put(uid, body)).to_doc()


@router.get("/decisions", summary="What your agent decided, newest first")
async def get_decisions(
    uid: Uid,
    deps: Deps,
    limit: Annotated[int, Query(ge=1, le=MAX_DECISIONS)] = 50,
) -> list[dict[str, Any]]:
    return await deps.agent_configs.decisions(uid, limit)
