"""A scriptable OpenAI-compatible chat-completions server on a real loopback socket.

It speaks the wire protocol the provider is written against: `POST /v1/chat/completions`
with a JSON body, answered by a `chat.completion` object (choices, message, finish_reason,
usage) or an OpenAI-style error body, with `Retry-After` where a real server sends one.
Each test queues the answers it wants; every request is recorded for inspection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Answer:
    status: int = 200
    content: str | None = None
    raw_body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    usage: tuple[int, int] | None = (120, 30)
    finish_reason: str = "stop"
    refusal: str | None = None


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: deque[Answer] = deque()
        self.requests: list[Received] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------ scripting

    def reply(self, reply: object, **kw: Any) -> None:
        """Answer with `reply` serialized as the message content."""
        self.script.append(Answer(content=json.dumps(reply), **kw))

    def reply_text(self, content: str, **kw: Any) -> None:
        self.script.append(Answer(content=content, **kw))

    def fail(self, status: int, retry_after: str | None = None, message: str = "") -> None:
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        self.script.append(Answer(status=status, headers=headers, content=message or None))

    def slow(self, seconds: float, reply: object | None = None) -> None:
        content = json.dumps(reply or {"rationale": "late", "actions": []})
        self.script.append(Answer(content=content, delay=seconds))

    def answer_now(self) -> None:
        """Let every answer held by `slow` go out at once (a slow model that finally replies)."""
        self._release.set()

    def raw(self, body: str, status: int = 200) -> None:
        self.script.append(Answer(status=status, raw_body=body))

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self.url

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------ the protocol

    async def _completions(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "invalid_request_error", "body is not JSON")
        self.requests.append(Received(dict(request.headers), body))
        if not isinstance(body, dict) or "model" not in body or "messages" not in body:
            return _error(400, "invalid_request_error", "model and messages are required")
        answer = self.script.popleft() if self.script else Answer(status=500, content="unscripted")
        if answer.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), answer.delay)
        if answer.raw_body is not None:
            return web.Response(
                status=answer.status, text=answer.raw_body, content_type="application/json"
            )
        if answer.status != 200:
            kind = "rate_limit_exceeded" if answer.status == 429 else "server_error"
            if 400 <= answer.status < 500 and answer.status != 429:
                kind = "invalid_request_error"
            return _error(answer.status, kind, answer.content or kind, answer.headers)
        return web.json_response(_completion(body["model"], answer), headers=answer.headers)


def _completion(model: str, answer: Answer) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer.content,
                    "refusal": answer.refusal,
                },
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "system_fingerprint": "fp_fake",
    }
    if answer.usage is not None:
        prompt, completion = answer.usage
        doc["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    return doc


def _error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status, headers=headers or {})
