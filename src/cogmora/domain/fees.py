"""Fee and margin rates (SPEC section 4), configurable per deployment."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cogmora.domain.enums import Market


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    spot_taker: Decimal = Decimal("0.001")
    futures_taker: Decimal = Decimal("0.0006")
    maintenance_margin_rate: Decimal = Decimal("0.005")
    max_leverage: Decimal = Decimal("125")

    def taker(self, market: Market) -> Decimal:
        return self.spot_taker if market is Market.SPOT else self.futures_taker
