"""The LLM provider against a fake OpenAI-compatible server on a loopback socket."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fake_openai_server import FakeOpenAI
from prometheus_client import CollectorRegistry

from cogmora.domain.agent import (
    Action,
    CancelTriggerAction,
    ClosePositionAction,
    OpenPositionAction,
    PlaceTriggerAction,
    RiskLimits,
    Usage,
)
from cogmora.jobs.agent.context import AgentContext, Candle
from cogmora.jobs.agent.llm import BUDGET_EXHAUSTED, LlmMetrics, LlmProvider, LlmSettings
from cogmora.jobs.agent.run import RunIds, run_agent
from cogmora.testing import InMemoryCallBudget

D = Decimal
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_context() -> AgentContext:
    start = NOW - timedelta(hours=30)
    series = tuple(
        Candle(start + timedelta(hours=i), D(c), D(c + 1), D(c - 1), D(c), D(5))
        for i, c in enumerate(range(100, 130))
    )
    return AgentContext(
        uid="u1",
        now=NOW,
        balance=D(5000),
        equity=D(5000),
        symbols=("BTC-USDT", "XBTUSDTM"),
        limits=RiskLimits(),
        candles={"BTC-USDT": series, "XBTUSDTM": series},
    )


def open_action(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "open_position",
        "symbol": "BTC-USDT",
        "market": "spot",
        "side": "long",
        "qty": None,
        "notional": "200",
        "leverage": None,
        "stopLoss": "120",
        "takeProfit": "140",
        "rationale": "uptrend",
    }
    doc.update(changes)
    return doc


class Sleeps:
    """Stands in for asyncio.sleep: records each requested wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(
    server: FakeOpenAI,
    client: httpx.AsyncClient,
    *,
    budget: InMemoryCallBudget | None = None,
    sleeps: Sleeps | None = None,
    metrics: LlmMetrics | None = None,
    **settings: Any,
) -> LlmProvider:
    config: dict[str, Any] = {
        "url": server.url,
        "model": "fake-model",
        "api_key": "sk-test",
        "timeout_seconds": 2.0,
        "max_retries": 2,
        "backoff_seconds": 0.5,
        "max_backoff_seconds": 30.0,
    }
    config.update(settings)
    return LlmProvider(
        LlmSettings(**config),
        budget or InMemoryCallBudget(100),
        client,
        sleep=sleeps or Sleeps(),
        metrics=metrics,
    )


# ---------------------------------------------------------------- valid output


async def test_a_valid_reply_becomes_typed_actions_with_token_counts(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """Every action type in a valid reply is returned; usage comes from the reply."""
    fake_llm.reply(
        {
            "rationale": "uptrend on both",
            "actions": [
                open_action(),
                {
                    "type": "place_trigger",
                    "symbol": "XBTUSDTM",
                    "market": "futures",
                    "op": "below",
                    "price": "110",
                    "side": "long",
                    "qty": "1",
                    "notional": None,
                    "leverage": "2",
                    "stopLoss": "100",
                    "takeProfit": None,
                    "expiresAt": "2024-05-02T00:00:00Z",
                    "rationale": "buy the dip",
                },
                {"type": "cancel_trigger", "triggerId": "t1", "rationale": "stale"},
                {"type": "close_position", "positionId": "p1", "rationale": "done"},
                {"type": "hold", "symbol": None, "rationale": "rest"},
            ],
        },
        usage=(812, 95),
    )
    result = await provider(fake_llm, http_client).decide(make_context())
    assert result.error is None
    assert result.rationale == "uptrend on both"
    assert [type(a) for a in result.actions][:4] == [
        OpenPositionAction,
        PlaceTriggerAction,
        CancelTriggerAction,
        ClosePositionAction,
    ]
    first = result.actions[0]
    assert isinstance(first, OpenPositionAction)
    assert (first.notional, first.stop_loss) == (D(200), D(120))
    assert result.usage == Usage(812, 95, 1)


async def test_the_request_speaks_the_chat_completions_protocol(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """The request carries the key, the model, a strict json_schema and the context as JSON."""
    fake_llm.reply({"rationale": "", "actions": []})
    await provider(fake_llm, http_client).decide(make_context())
    [request] = fake_llm.requests
    assert request.headers["Authorization"] == "Bearer sk-test"
    body = request.body
    assert body["model"] == "fake-model"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    system, user = body["messages"]
    assert system["role"] == "system" and "open_position" in system["content"]
    facts = json.loads(user["content"])
    assert facts["symbols"] == ["BTC-USDT", "XBTUSDTM"]
    assert len(facts["candles"]["BTC-USDT"]["rows"]) == 30


async def test_a_fenced_json_reply_is_read(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """A reply wrapped in a ```json fence is unwrapped, not refused."""
    fake_llm.reply_text("```json\n" + json.dumps({"rationale": "ok", "actions": []}) + "\n```")
    result = await provider(fake_llm, http_client).decide(make_context())
    assert result.error is None
    assert result.rationale == "ok"


async def test_a_reply_without_usage_counts_the_call_but_no_tokens(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """Servers that omit `usage` still have their calls counted."""
    fake_llm.reply({"rationale": "ok", "actions": []}, usage=None)
    result = await provider(fake_llm, http_client).decide(make_context())
    assert result.error is None
    assert result.usage == Usage(0, 0, 1)


# ---------------------------------------------------------------- bad output


@pytest.mark.parametrize(
    "content",
    [
        '{"rationale": "x", "actions": [',
        "I think you should buy bitcoin.",
        "",
        "null",
        "[" * 50_000 + "]" * 50_000,
    ],
)
async def test_malformed_output_gives_an_error_and_no_actions(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient, content: str
) -> None:
    """Broken or non-JSON output is reported, not raised, and not retried."""
    fake_llm.reply_text(content)
    result = await provider(fake_llm, http_client).decide(make_context())
    assert result.actions == ()
    assert result.error is not None
    assert len(fake_llm.requests) == 1
    assert result.usage.calls == 1


@pytest.mark.parametrize(
    ("action", "fragment"),
    [
        (open_action(notional=200), "actions[0].notional must be a decimal string"),
        (open_action(leverage="5"), "actions[0]: leverage must be 1 for spot"),
        (open_action(side="short"), "actions[0]: side must be long for spot"),
        (open_action(qty="1"), "exactly one of qty and notional"),
        (open_action(type="buy_everything"), "actions[0].type must be one of"),
        (open_action(urgency="high"), "actions[0].urgency is not a known field"),
        ({"type": "close_position", "rationale": "x"}, "actions[0].positionId"),
    ],
)
async def test_out_of_schema_actions_are_refused_with_a_reason_that_names_them(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient, action: dict[str, Any], fragment: str
) -> None:
    """An invalid action voids the reply; the error and its refusal name what was wrong."""
    fake_llm.reply({"rationale": "r", "actions": [action, {"type": "hold", "rationale": "x"}]})
    result = await provider(fake_llm, http_client).decide(make_context())
    assert result.actions == ()
    assert result.error is not None and fragment in result.error
    assert fragment in result.refused[0].reason
    assert result.refused[1].reason == "not applied: another action in the reply is invalid"


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"finish_reason": "length"}, "cut off"),
        ({"refusal": "I cannot help with trading"}, "the model refused"),
    ],
)
async def test_truncated_or_refused_completions_are_errors(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient, kw: dict[str, Any], fragment: str
) -> None:
    """A cut-off or refused completion yields no actions."""
    fake_llm.reply({"rationale": "", "actions": [open_action()]}, **kw)
    result = await provider(fake_llm, http_client).decide(make_context())
    assert result.actions == ()
    assert result.error is not None and fragment in result.error


async def test_a_body_that_is_not_a_chat_completion_is_an_error(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """A 200 whose body lacks `choices` is reported as such."""
    fake_llm.raw('{"object": "list", "data": []}')
    result = await provider(fake_llm, http_client).decide(make_context())
    assert result.error is not None
    assert result.error.startswith("LLM call failed after 1 attempt: response is not a chat")


# ---------------------------------------------------------------- retries


async def test_a_timeout_is_retried_with_backoff(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """A response slower than the timeout is abandoned and the call retried."""
    fake_llm.slow(30)
    fake_llm.reply({"rationale": "second time lucky", "actions": []})
    sleeps = Sleeps()
    result = await provider(fake_llm, http_client, sleeps=sleeps, timeout_seconds=0.3).decide(
        make_context()
    )
    assert result.error is None
    assert result.rationale == "second time lucky"
    assert sleeps.waits == [0.5]
    assert result.usage.calls == 2


async def test_timeouts_on_every_attempt_end_in_an_error(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """After max_retries timeouts the run ends with an error listing each attempt."""
    fake_llm.slow(30)
    fake_llm.slow(30)
    result = await provider(fake_llm, http_client, timeout_seconds=0.2, max_retries=1).decide(
        make_context()
    )
    assert result.actions == ()
    assert result.error == (
        "LLM call failed after 2 attempts: timed out after 0.2s; timed out after 0.2s"
    )


async def test_a_429_waits_for_retry_after(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """The server's Retry-After is the wait before the retry."""
    fake_llm.fail(429, retry_after="7")
    fake_llm.reply({"rationale": "ok", "actions": []})
    sleeps = Sleeps()
    result = await provider(fake_llm, http_client, sleeps=sleeps).decide(make_context())
    assert result.error is None
    assert sleeps.waits == [7.0]


async def test_a_retry_after_http_date_is_honoured(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """Retry-After may be an HTTP date; the wait is the time until then."""
    when = datetime.now(UTC) + timedelta(seconds=20)
    fake_llm.fail(429, retry_after=when.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    fake_llm.reply({"rationale": "ok", "actions": []})
    sleeps = Sleeps()
    result = await provider(fake_llm, http_client, sleeps=sleeps).decide(make_context())
    assert result.error is None
    assert len(sleeps.waits) == 1 and 0 < sleeps.waits[0] <= 20


async def test_a_retry_after_beyond_the_cap_ends_the_run(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """A server asking for an hour's wait ends the run instead of stalling it."""
    fake_llm.fail(429, retry_after="3600")
    sleeps = Sleeps()
    result = await provider(fake_llm, http_client, sleeps=sleeps).decide(make_context())
    assert sleeps.waits == []
    assert result.error == (
        "LLM call failed after 1 attempt: rate limited (429); "
        "Retry-After 3600s exceeds the 30s limit"
    )


async def test_server_errors_are_retried_with_exponential_backoff(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """500 then 503 then success waits 0.5s then 1s."""
    fake_llm.fail(500)
    fake_llm.fail(503)
    fake_llm.reply({"rationale": "ok", "actions": []}, usage=(10, 2))
    sleeps = Sleeps()
    result = await provider(fake_llm, http_client, sleeps=sleeps).decide(make_context())
    assert result.error is None
    assert sleeps.waits == [0.5, 1.0]
    assert result.usage == Usage(10, 2, 3)


async def test_persistent_server_errors_end_in_an_error(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """Three 500s with two retries give up with every failure listed."""
    for _ in range(3):
        fake_llm.fail(500)
    result = await provider(fake_llm, http_client).decide(make_context())
    assert result.error == (
        "LLM call failed after 3 attempts: server error 500; server error 500; server error 500"
    )
    assert len(fake_llm.requests) == 3


async def test_a_client_error_is_not_retried(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """A 401 will not fix itself: one request, and the server's message in the error."""
    fake_llm.fail(401, message="Incorrect API key provided")
    result = await provider(fake_llm, http_client).decide(make_context())
    assert len(fake_llm.requests) == 1
    assert result.error is not None
    assert "(401)" in result.error and "Incorrect API key provided" in result.error


async def test_an_unreachable_endpoint_is_retried_then_reported(
    http_client: httpx.AsyncClient,
) -> None:
    """Connection refused is a transport error, retried, then the run's error."""
    server = FakeOpenAI()
    await server.start()
    await server.stop()
    result = await provider(server, http_client, max_retries=1).decide(make_context())
    assert result.actions == ()
    assert result.error is not None
    assert result.error.startswith("LLM call failed after 2 attempts: transport error: Connect")


# ---------------------------------------------------------------- the budget


async def test_a_run_over_budget_makes_no_call(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """With the day's budget spent, the run is refused without contacting the endpoint."""
    budget = InMemoryCallBudget(1)
    fake_llm.reply({"rationale": "ok", "actions": []})
    llm = provider(fake_llm, http_client, budget=budget)
    assert (await llm.decide(make_context())).error is None
    result = await llm.decide(make_context())
    assert result.error == BUDGET_EXHAUSTED == "daily LLM call budget exhausted"
    assert result.usage.calls == 0
    assert len(fake_llm.requests) == 1
    assert budget.spent("u1", date(2024, 5, 1)) == 1


async def test_retries_spend_the_budget_too(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """Each retry is a call; when the budget runs out mid-run the run stops there."""
    for _ in range(5):
        fake_llm.fail(500)
    result = await provider(
        fake_llm, http_client, budget=InMemoryCallBudget(2), max_retries=5
    ).decide(make_context())
    assert len(fake_llm.requests) == 2
    assert result.error == (
        "daily LLM call budget exhausted after server error 500; server error 500"
    )


# ---------------------------------------------------------------- metrics and whole runs


async def test_metrics_count_requests_tokens_and_runs(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient
) -> None:
    """Request outcomes, reported tokens and run results reach the registry."""
    registry = CollectorRegistry()
    fake_llm.fail(429, retry_after="1")
    fake_llm.reply({"rationale": "ok", "actions": []}, usage=(50, 7))
    await provider(fake_llm, http_client, metrics=LlmMetrics(registry)).decide(make_context())

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("cogmora_agent_llm_requests_total", outcome="rate_limited") == 1
    assert value("cogmora_agent_llm_requests_total", outcome="ok") == 1
    assert value("cogmora_agent_llm_tokens_total", kind="prompt") == 50
    assert value("cogmora_agent_llm_tokens_total", kind="completion") == 7
    assert value("cogmora_agent_llm_runs_total", result="ok") == 1


class RecordingApplier:
    def __init__(self) -> None:
        self.applied: list[Action] = []

    async def _record(self, action: Action) -> str:
        self.applied.append(action)
        return f"id{len(self.applied)}"

    async def open_position(self, uid: str, action: OpenPositionAction) -> str:
        return await self._record(action)

    async def place_trigger(self, uid: str, action: PlaceTriggerAction) -> str:
        return await self._record(action)

    async def cancel_trigger(self, uid: str, action: CancelTriggerAction) -> str:
        return await self._record(action)

    async def close_position(self, uid: str, action: ClosePositionAction) -> str:
        return await self._record(action)


SCRIPTS: list[tuple[str, Any]] = [
    ("valid", {"rationale": "r", "actions": [open_action()]}),
    ("over limit", {"rationale": "r", "actions": [open_action(notional="99999")]}),
    ("malformed", "{not json"),
    ("out of schema", {"rationale": "r", "actions": [open_action(notional=1.5)]}),
    (
        "unknown id",
        {
            "rationale": "r",
            "actions": [{"type": "close_position", "positionId": "nope", "rationale": ""}],
        },
    ),
    ("slow", None),
    ("429", 429),
    ("500", 500),
]


@pytest.mark.parametrize(("label", "script"), SCRIPTS, ids=[s[0] for s in SCRIPTS])
async def test_a_whole_run_never_crashes_and_applies_only_valid_accepted_actions(
    fake_llm: FakeOpenAI, http_client: httpx.AsyncClient, label: str, script: Any
) -> None:
    """Whatever the endpoint does, the run returns a decision; only the valid open is applied."""
    for _ in range(2):  # max_retries=1: enough answers for every attempt
        if script is None:
            fake_llm.slow(30)
        elif isinstance(script, int):
            fake_llm.fail(script, retry_after="0")
        elif isinstance(script, str):
            fake_llm.reply_text(script)
        else:
            fake_llm.reply(script)
    applier = RecordingApplier()
    llm = provider(fake_llm, http_client, timeout_seconds=0.2, max_retries=1)
    decision = await run_agent(make_context(), llm, applier, RunIds("d1", NOW))
    assert decision.provider == "llm"
    if label == "valid":
        assert applier.applied == [OpenPositionAction.from_doc(open_action())]
        assert decision.error is None and decision.refused == ()
        assert decision.applied[0].result_id == "id1"
    else:
        assert applier.applied == []
        assert decision.error is not None or decision.refused
    if label in ("over limit", "unknown id"):
        assert decision.error is None
        assert decision.refused[0].reason in (
            "notional 99999 exceeds maxPositionNotional 1000",
            "position nope is not open",
        )
    decision.to_doc()
