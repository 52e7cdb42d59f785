from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cogmora.domain.enums import Market
from cogmora.domain.paths import watch_path
from cogmora.domain.watchlist import (
    NO_DATA,
    UNKNOWN_SYMBOL,
    TickerStats,
    WatchEntry,
    market_of,
    parse_symbols,
    refresh_watchlist,
)
from cogmora.errors import ValidationError

D = Decimal
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BTC = TickerStats(Market.SPOT, D("65000.1"), D("0.0047"), D(66000), D(64000), D("2227.69"))
XBT = TickerStats(Market.FUTURES, D("65010"), D("-0.01"), D(66100), D(64100), D(123456))


def test_watched_symbols_get_the_snapshot_stats_in_the_users_order() -> None:
    """Each watched symbol maps onto its ticker, keeping the order the user chose."""
    entries = refresh_watchlist(["XBTUSDTM", "BTC-USDT"], {"BTC-USDT": BTC, "XBTUSDTM": XBT}, AT)
    assert [e.symbol for e in entries] == ["XBTUSDTM", "BTC-USDT"]
    assert entries[1] == WatchEntry(
        "BTC-USDT", Market.SPOT, AT, D("65000.1"), D("0.0047"), D(66000), D(64000), D("2227.69")
    )


def test_an_unknown_symbol_is_kept_with_an_error_not_dropped() -> None:
    """A delisted symbol stays on the list, marked, with no stats."""
    entries = refresh_watchlist(["BTC-USDT", "LUNA-USDT"], {"BTC-USDT": BTC}, AT)
    assert entries[1] == WatchEntry("LUNA-USDT", Market.SPOT, AT, error=UNKNOWN_SYMBOL)
    assert entries[1].error == "unknown or delisted symbol on KuCoin"


def test_a_market_missing_from_the_snapshot_keeps_previous_stats() -> None:
    """If the futures fetch failed, futures symbols keep their last entry instead of an error."""
    before = WatchEntry.from_stats("XBTUSDTM", XBT, datetime(2024, 5, 1, 11, 0, tzinfo=UTC))
    entries = refresh_watchlist(
        ["XBTUSDTM", "ETHUSDTM"],
        {"BTC-USDT": BTC},
        AT,
        covered=frozenset({Market.SPOT}),
        previous={"XBTUSDTM": before},
    )
    assert entries[0] == before
    assert entries[1] == WatchEntry("ETHUSDTM", Market.FUTURES, AT, error=NO_DATA)


def test_an_entry_survives_a_document_round_trip() -> None:
    """Stats are decimal strings in the stored form and read back equal."""
    entry = WatchEntry.from_stats("BTC-USDT", BTC, AT)
    doc = entry.to_doc()
    assert doc["lastPrice"] == "65000.10000000"
    assert doc["changeRate24h"] == "0.00470000"
    assert doc["error"] is None
    assert WatchEntry.from_doc(doc) == entry
    missing = WatchEntry("LUNA-USDT", Market.SPOT, AT, error=UNKNOWN_SYMBOL)
    assert WatchEntry.from_doc(missing.to_doc()) == missing
    assert watch_path("u1", "BTC-USDT") == "users/u1/watchlist/BTC-USDT"


def test_the_market_of_a_symbol_follows_kucoin_naming() -> None:
    """Spot pairs have a dash; futures contract codes do not."""
    assert market_of("BTC-USDT") is Market.SPOT
    assert market_of("XBTUSDTM") is Market.FUTURES


def test_symbols_are_normalized_and_checked() -> None:
    """Input symbols are upper-cased; repeats and bad shapes are refused by position."""
    assert parse_symbols([" btc-usdt", "XBTUSDTM"]) == ["BTC-USDT", "XBTUSDTM"]
    with pytest.raises(ValidationError, match=r"symbols\[1\] repeats BTC-USDT"):
        parse_symbols(["BTC-USDT", "btc-usdt"])
    with pytest.raises(ValidationError, match="KuCoin symbol") as caught:
        parse_symbols(["BTC/USDT"])
    assert caught.value.field == "symbols[0]"
    with pytest.raises(ValidationError, match="at most 50"):
        parse_symbols([f"A{i}-USDT" for i in range(51)])
