"""The websocket side of a simulated host: token check, welcome, ping/pong, subscriptions.

Error codes and texts follow KuCoin's websocket error table (406 topic is required, 400
topic is invalid, 404 not found, 509 over a subscription limit, 401 bad token, 415 bad
command), because the feed client's error handling is tested against these exact frames.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from cogmora.simulator import frames, publisher
from cogmora.simulator.hub import Session
from cogmora.simulator.market import candle_seconds
from cogmora.simulator.state import CANDLE_PREFIXES, SPOT_MARKETS, Host

log = logging.getLogger(__name__)


class TopicError(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def parse_topic(host: Host, topic: object, *, subscribing: bool) -> tuple[str, list[str]]:
    """Split `prefix:a,b,c` into single-symbol topics, or raise KuCoin's error for it."""
    if not isinstance(topic, str) or not topic.strip():
        raise TopicError(406, "topic is required")
    prefix, sep, joined = topic.partition(":")
    args = [a.strip() for a in joined.split(",")] if sep else []
    if not sep or not args or any(not a for a in args):
        raise TopicError(400, "topic is invalid")
    if prefix not in host.prefixes:
        raise TopicError(404, f"topic {topic} is not found")
    limit = host.config.max_topics_per_request
    if len(args) > limit:
        raise TopicError(509, f"exceed max subscription count limitation of {limit} per time")
    if subscribing:
        for arg in args:
            if not _known(host, prefix, arg):
                raise TopicError(404, f"topic {prefix}:{arg} is not found")
    return prefix, [f"{prefix}:{arg}" for arg in dict.fromkeys(args)]


def _known(host: Host, prefix: str, arg: str) -> bool:
    if prefix in CANDLE_PREFIXES:
        symbol, _, kind = arg.rpartition("_")
        return symbol in host.instruments and candle_seconds(kind) is not None
    if arg in host.instruments:
        return True
    return (arg == "all" and prefix == "/market/ticker") or (
        arg in SPOT_MARKETS and prefix == "/market/snapshot"
    )


async def _handle(host: Host, session: Session, message: dict[str, Any]) -> None:
    if host.hub.frozen:
        return
    kind = message.get("type")
    ident = message.get("id")
    ident_s = str(ident) if ident is not None else secrets.token_hex(6)
    if kind == "ping":
        if not host.stall_pongs:
            host.pings_answered += 1
            await session.send(frames.control("pong", ident_s))
        return
    if kind not in ("subscribe", "unsubscribe"):
        await session.send(frames.error(ident_s, 415, "type is not supported"))
        return
    subscribing = kind == "subscribe"
    try:
        _, topics = parse_topic(host, message.get("topic"), subscribing=subscribing)
        if subscribing:
            host.request_sizes.append(len(topics))
            new = [t for t in topics if t not in session.topics]
            cap = host.topic_cap
            if cap is not None and len(session.topics) + len(new) > cap:
                raise TopicError(
                    509, f"exceed max subscription count limitation of {cap} per session"
                )
            host.hub.subscribe(session, new)
        else:
            host.hub.unsubscribe(session, topics)
    except TopicError as exc:
        await session.send(frames.error(ident_s, exc.code, exc.text))
        return
    if message.get("response") is True:
        await session.send(frames.control("ack", ident_s))
    if subscribing:
        # Snapshot-style topics (books, 24 h snapshots) are pushed on a timer by KuCoin; the
        # first push comes now, so a client does not wait a period for its first state.
        await publisher.greet(host, session, new)


async def websocket_handler(host: Host, request: web.Request) -> web.StreamResponse:
    connect_id = request.query.get("connectId") or secrets.token_hex(8)
    if host.refuse_ws:
        return web.Response(status=503, text="service unavailable")
    ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
    await ws.prepare(request)
    problem = host.tokens.check(request.query.get("token"))
    if problem is not None:
        await ws.send_str(frames.error(connect_id, 401, problem))
        await ws.close(code=4001, message=problem.encode())
        return ws
    session = Session(ws=ws, market=host.market, connect_id=connect_id)
    host.hub.add(session)
    host.connections_opened += 1
    try:
        await session.send(frames.control("welcome", connect_id))
        silent = host.config.silent_timeout_s
        while not session.dead:
            try:
                msg = await ws.receive(timeout=silent)
            except TimeoutError:
                await session.send(frames.error(connect_id, 400, "ping timeout"))
                break
            if msg.type is WSMsgType.TEXT:
                try:
                    message = json.loads(msg.data)
                except ValueError:
                    await session.send(frames.error(connect_id, 400, "message is invalid"))
                    continue
                if not isinstance(message, dict):
                    await session.send(frames.error(connect_id, 400, "message is invalid"))
                    continue
                await _handle(host, session, message)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break
            elif msg.type is WSMsgType.ERROR:
                log.debug("simulator websocket error: %s", ws.exception())
                break
    finally:
        session.dead = True
        host.hub.remove(session)
        if not ws.closed:
            await ws.close()
    return ws
