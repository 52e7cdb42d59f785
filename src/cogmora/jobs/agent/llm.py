"""The LLM provider: any OpenAI-compatible chat-completions endpoint proposes the actions.

Failure is normal here, so nothing in this module raises for it. Every way a call can go
wrong ends in a `ProviderResult` with no actions and an `error` that says what happened:
the budget is spent, the endpoint timed out / rate-limited / failed after the retries,
or the model answered with something that is not valid JSON or not valid actions. The
model's reply is checked strictly (`cogmora.domain.agent.check_reply`), and one invalid
action voids the whole reply.

Retries: timeouts, transport errors, 429 and 5xx are retried up to `max_retries` times,
waiting the server's `Retry-After` when it sends one, else `backoff_seconds * 2**n`
(capped at `max_backoff_seconds`). A Retry-After longer than that cap ends the run
instead: a scheduled run should not sit for an hour on a rate limit. Other 4xx answers
(bad key, bad model) are not retried. Each HTTP request spends one call of the user's
daily budget before it is made, retries included.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import msgspec
from prometheus_client import CollectorRegistry, Counter

from cogmora.domain.agent import Usage, check_reply, response_format
from cogmora.errors import ConfigError
from cogmora.jobs.agent.budget import CallBudget
from cogmora.jobs.agent.context import AgentContext
from cogmora.jobs.agent.prompt import build_messages
from cogmora.jobs.agent.provider import ProviderResult
from cogmora.services.clock import Clock, SystemClock

BUDGET_EXHAUSTED = "daily LLM call budget exhausted"
FAILED = "LLM call failed"
MAX_REPLY_CHARS = 200_000


@dataclass(frozen=True, slots=True)
class LlmSettings:
    url: str
    model: str
    api_key: str | None = None
    timeout_seconds: float = 30.0
    max_retries: int = 2
    daily_call_budget: int = 96
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    temperature: float | None = 0.0
    max_candles: int = 48

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError("COGMORA_LLM_URL", "must be an http(s) URL such as http://host/v1")
        if not self.model.strip():
            raise ConfigError("COGMORA_LLM_MODEL", "must name the model")
        if not 0 < self.timeout_seconds <= 600:
            raise ConfigError("llm.timeout_seconds", "must be from 0 to 600 seconds")
        if not 0 <= self.max_retries <= 10:
            raise ConfigError("llm.max_retries", "must be from 0 to 10")
        if self.daily_call_budget < 0:
            raise ConfigError("COGMORA_LLM_DAILY_CALLS", "must not be negative")
        if self.backoff_seconds < 0 or self.max_backoff_seconds < 0:
            raise ConfigError("llm.backoff_seconds", "must not be negative")

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + "/chat/completions"


class LlmMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "cogmora_agent_llm_requests",
            "HTTP requests to the LLM endpoint, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.tokens = Counter(
            "cogmora_agent_llm_tokens",
            "tokens the LLM endpoint reported, by kind",
            ["kind"],
            registry=registry,
        )
        self.runs = Counter(
            "cogmora_agent_llm_runs", "LLM provider runs, by result", ["result"], registry=registry
        )


# ---------------------------------------------------------------- the wire format


class _Message(msgspec.Struct):
    content: str | None = None
    refusal: str | None = None


class _Choice(msgspec.Struct):
    message: _Message
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Completion(msgspec.Struct):
    choices: list[_Choice]
    usage: _Usage | None = None


@dataclass(frozen=True, slots=True)
class _Failure:
    outcome: str
    reason: str
    retryable: bool
    retry_after: float | None = None


# ---------------------------------------------------------------- the provider


class LlmProvider:
    def __init__(
        self,
        settings: LlmSettings,
        budget: CallBudget,
        client: httpx.AsyncClient,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Clock | None = None,
        metrics: LlmMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._budget = budget
        self._client = client
        self._sleep = sleep
        self._clock = clock or SystemClock()
        self._metrics = metrics

    @property
    def name(self) -> str:
        return "llm"

    async def decide(self, ctx: AgentContext) -> ProviderResult:
        result = await self._decide(ctx)
        if self._metrics is not None:
            self._metrics.runs.labels(_run_kind(result.error)).inc()
        return result

    async def _decide(self, ctx: AgentContext) -> ProviderResult:
        settings = self._settings
        day = ctx.now.astimezone(UTC).date()
        body = self._body(ctx)
        usage = Usage()
        failures: list[str] = []
        for attempt in range(settings.max_retries + 1):
            if not await self._budget.try_spend(ctx.uid, day):
                self._count("budget_exhausted")
                after = f" after {'; '.join(failures)}" if failures else ""
                return ProviderResult(usage=usage, error=BUDGET_EXHAUSTED + after)
            usage += Usage(calls=1)
            outcome = await self._call(body)
            if isinstance(outcome, _Completion):
                self._count("ok")
                return self._read(outcome, usage)
            self._count(outcome.outcome)
            failures.append(outcome.reason)
            if not outcome.retryable or attempt == settings.max_retries:
                break
            delay = outcome.retry_after
            if delay is None:
                delay = min(settings.backoff_seconds * 2**attempt, settings.max_backoff_seconds)
            elif delay > settings.max_backoff_seconds:
                failures.append(
                    f"Retry-After {delay:g}s exceeds the {settings.max_backoff_seconds:g}s limit"
                )
                break
            await self._sleep(delay)
        attempts = usage.calls
        plural = "attempt" if attempts == 1 else "attempts"
        return ProviderResult(
            usage=usage,
            error=f"{FAILED} after {attempts} {plural}: {'; '.join(failures)}",
        )

    def _body(self, ctx: AgentContext) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._settings.model,
            "messages": build_messages(ctx, self._settings.max_candles),
            "response_format": response_format(),
        }
        if self._settings.temperature is not None:
            body["temperature"] = self._settings.temperature
        return body

    async def _call(self, body: dict[str, Any]) -> _Completion | _Failure:
        settings = self._settings
        headers = {"Accept": "application/json"}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange, so a server
            # trickling bytes cannot hold a run past the deadline either.
            async with asyncio.timeout(settings.timeout_seconds):
                response = await self._client.post(
                    settings.endpoint,
                    json=body,
                    headers=headers,
                    timeout=settings.timeout_seconds,
                )
        except (TimeoutError, httpx.TimeoutException):
            return _Failure("timeout", f"timed out after {settings.timeout_seconds:g}s", True)
        except httpx.TransportError as exc:
            return _Failure("transport_error", f"transport error: {_describe(exc)}", True)
        except httpx.HTTPError as exc:  # undecodable body, redirect loop: retrying won't help
            return _Failure("bad_response", f"bad response: {_describe(exc)}", False)
        status = response.status_code
        if status == 200:
            try:
                return msgspec.json.decode(response.content, type=_Completion)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return _Failure("bad_response", f"response is not a chat completion: {exc}", False)
        retry_after = self._retry_after(response.headers.get("retry-after"))
        if status == 429:
            return _Failure("rate_limited", "rate limited (429)", True, retry_after)
        if status >= 500:
            return _Failure("server_error", f"server error {status}", True, retry_after)
        return _Failure(
            "client_error", f"endpoint refused the request ({status}): {_snippet(response)}", False
        )

    def _read(self, completion: _Completion, usage: Usage) -> ProviderResult:
        if completion.usage is not None:
            # A server's count is trusted only as far as it can be: never below zero.
            prompt = max(0, completion.usage.prompt_tokens)
            produced = max(0, completion.usage.completion_tokens)
            usage += Usage(prompt, produced)
            if self._metrics is not None:
                self._metrics.tokens.labels("prompt").inc(prompt)
                self._metrics.tokens.labels("completion").inc(produced)
        if not completion.choices:
            return ProviderResult(usage=usage, error="the completion has no choices")
        choice = completion.choices[0]
        if choice.message.refusal:
            return ProviderResult(usage=usage, error=f"the model refused: {choice.message.refusal}")
        content = choice.message.content
        if choice.finish_reason == "length":
            return ProviderResult(usage=usage, error="the reply was cut off at the token limit")
        if not content or not content.strip():
            return ProviderResult(usage=usage, error="the reply is empty")
        if len(content) > MAX_REPLY_CHARS:
            return ProviderResult(usage=usage, error="the reply is too long")
        try:
            data = json.loads(_unfence(content), parse_float=Decimal)
        except json.JSONDecodeError as exc:
            return ProviderResult(usage=usage, error=f"the reply is not valid JSON: {exc}")
        except RecursionError:
            return ProviderResult(usage=usage, error="the reply is nested too deeply")
        checked = check_reply(data)
        return ProviderResult(
            actions=checked.actions,
            rationale=checked.rationale,
            usage=usage,
            error=checked.error,
            refused=checked.refused,
        )

    def _retry_after(self, value: str | None) -> float | None:
        """Retry-After in delta-seconds or as an HTTP date; None when absent or unreadable."""
        if value is None:
            return None
        value = value.strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - self._clock.now()).total_seconds()
        if seconds != seconds:  # NaN
            return None
        return max(0.0, seconds)

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.requests.labels(outcome).inc()


def _run_kind(error: str | None) -> str:
    if error is None:
        return "ok"
    if error.startswith(BUDGET_EXHAUSTED):
        return "budget_exhausted"
    if error.startswith(FAILED):
        return "failed"
    return "invalid_output"


def _unfence(content: str) -> str:
    """Some servers wrap JSON in a ```json fence even when asked for JSON; unwrap one."""
    text = content.strip()
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        text = text[3:-3]
        first_line, _, rest = text.partition("\n")
        return rest if first_line.strip().isalpha() or not first_line.strip() else text
    return text


def _snippet(response: httpx.Response) -> str:
    return " ".join(response.text[:200].split())


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
