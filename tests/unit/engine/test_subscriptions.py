"""ResubscribeWatch: which acknowledgements of a feed count as a resubscription."""

from __future__ import annotations

from collections.abc import Collection

from cogmora.engine.subscriptions import ResubscribeWatch


class Recorder:
    """The gap listener's side: what the feed told it, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def lost(self, symbols: Collection[str], complete_until_ns: int) -> None:
        self.calls.append(("lost", sorted(symbols)))

    def live(self, symbols: Collection[str]) -> None:
        self.calls.append(("live", sorted(symbols)))

    def dropped(self, symbols: Collection[str]) -> None:
        self.calls.append(("dropped", sorted(symbols)))


def watch() -> tuple[ResubscribeWatch, Recorder, list[list[str]]]:
    inner, reloads = Recorder(), []
    return ResubscribeWatch(inner, lambda s: reloads.append(sorted(s))), inner, reloads


def test_a_first_subscription_reloads_nothing() -> None:
    """The book already holds what the start-up load gave it."""
    w, inner, reloads = watch()
    w.live(["BTC-USDT", "ETH-USDT"])
    assert reloads == []
    assert inner.calls == [("live", ["BTC-USDT", "ETH-USDT"])]


def test_symbols_acknowledged_after_their_connection_was_lost_are_reloaded_once() -> None:
    """Only the symbols that were away are reloaded, and only on their first return."""
    w, inner, reloads = watch()
    w.live(["BTC-USDT", "ETH-USDT"])
    w.lost(["BTC-USDT"], 0)
    w.live(["BTC-USDT", "SOL-USDT"])
    w.live(["BTC-USDT"])
    assert reloads == [["BTC-USDT"]]
    assert [c[0] for c in inner.calls] == ["live", "lost", "live", "live"]


def test_a_symbol_followed_again_after_being_dropped_is_reloaded() -> None:
    """Unfollowed, its changes still reached the book, but nothing watched it: read again."""
    w, inner, reloads = watch()
    w.live(["BTC-USDT"])
    w.dropped(["BTC-USDT"])
    w.live(["BTC-USDT"])
    assert reloads == [["BTC-USDT"]]
    assert inner.calls[1] == ("dropped", ["BTC-USDT"])
