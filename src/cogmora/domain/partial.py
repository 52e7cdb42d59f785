"""Partial closes (SPEC 5.2): the share of a position that closes, and what stays open.

A partial close settles like a full close for its share: qty, margin and feeOpen are split
pro rata, quantized to 8 places half-even, and the remainder stays with the open part, so
the two parts always add up to exactly what was opened (the ledger still sums to the
balance whatever the rounding). The open part keeps its id, entry price, leverage and
liquidation price: with isolated margin split pro rata, the liquidation price of the
remainder is the same as the whole's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cogmora.domain.money import in_money_context, quantize, require_places
from cogmora.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Share:
    """A position cut in two: the part that closes and the part that stays open."""

    qty: Decimal
    margin: Decimal
    fee_open: Decimal
    rest_qty: Decimal
    rest_margin: Decimal
    rest_fee_open: Decimal


@in_money_context
def split(qty: Decimal, margin: Decimal, fee_open: Decimal, part: Decimal) -> Share:
    """`part` of `qty` (0 < part <= qty): its pro-rata margin and fee, the rest to the open part."""
    if not 0 < part <= qty:
        raise ValueError(f"cannot split {part} out of {qty}")
    if part == qty:
        return Share(qty, margin, fee_open, qty - qty, margin - margin, fee_open - fee_open)
    part_margin = quantize(margin * part / qty)
    part_fee = quantize(fee_open * part / qty)
    return Share(part, part_margin, part_fee, qty - part, margin - part_margin, fee_open - part_fee)


def check_part(qty: Decimal, open_qty: Decimal, min_size: Decimal | None, symbol: str) -> None:
    """0 < qty <= open qty, at least the minimum size, and the rest too unless it is 0."""
    if not qty.is_finite() or qty <= 0:
        raise ValidationError("qty", "qty must be greater than 0")
    require_places(qty, "qty")
    if qty > open_qty:
        raise ValidationError("qty", f"qty must be at most the open qty {open_qty}")
    if min_size is not None and min_size > 0:
        if qty < min_size:
            raise ValidationError(
                "qty", f"qty must be at least the minimum size {min_size} of {symbol}"
            )
        rest = open_qty - qty
        if 0 < rest < min_size:
            raise ValidationError(
                "qty",
                f"qty must leave 0 or at least the minimum size {min_size} of {symbol} open "
                f"(it leaves {rest})",
            )
