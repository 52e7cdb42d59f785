"""What the trailing-stop book hands out: one key's state, and one peak to store.

The book keeps peaks signed (`+p` for a long, `-p` for a short, so a short's trough is also
"the largest signed price seen") and scaled to integers of 1e-8; these values carry that
form and turn it back into prices only when asked (a fire's record, a write-out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from cogmora.domain.enums import Side
from cogmora.domain.ladder import EXACT, PLACES
from cogmora.domain.trailing import TrailingStop, stop_shown


def scaled_level(value: Decimal) -> int:
    """A price on the 1e-8 grid as the book's integer (the caller's price is on it)."""
    return int(value.scaleb(PLACES, EXACT))


def signed_price(s: int, sign: int) -> Decimal:
    """The price of a signed, scaled peak."""
    return Decimal(sign * s).scaleb(-PLACES, EXACT)


@dataclass(frozen=True, slots=True)
class TrailState:
    """One key's trailing stop as the book holds it: enough to put it back exactly.

    `peak` is signed and scaled (None: waiting for its activation price); `at_open` marks a
    stop a candle's open crossed (a gap fills it at the open, SPEC 5.1). `owed` marks a
    peak the store may not have yet (moved since the writer last took the key): a key
    taken out and put back with it (a PATCH's echo, a gap's hold-out, a lost crossing's
    restore) is queued for the writer again, so the move is not forgotten until the next
    one. It is bookkeeping, not state: two states differing only in it are equal."""

    side: Side
    spec: TrailingStop
    peak: int | None
    at_open: bool = False
    owed: bool = field(default=False, compare=False)

    def peak_price(self) -> Decimal | None:
        if self.peak is None:
            return None
        return signed_price(self.peak, 1 if self.side is Side.LONG else -1)

    def stop_price(self) -> Decimal | None:
        peak = self.peak_price()
        return None if peak is None else stop_shown(self.side, peak, self.spec.callback_rate)


@dataclass(frozen=True, slots=True)
class TrailWrite:
    """Keys whose stored peak is behind the book and that share what to store: the same
    parameters, peak and stop (one compare-and-set for them all)."""

    keys: list[str]
    spec: TrailingStop
    peak: Decimal
    stop: Decimal
