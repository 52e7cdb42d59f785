"""Wiring the order passes (time limits, funding) of a jobs process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogmora.domain.enums import Market
from cogmora.jobs.orders import KucoinFunding, OrderJobs
from cogmora.services.funding import Funding
from cogmora.services.time_limits import TimeLimits

if TYPE_CHECKING:
    from cogmora.cli.jobs import Jobs


def build_order_jobs(jobs: Jobs) -> OrderJobs:
    system = jobs.system
    return OrderJobs(
        TimeLimits(
            system.store, system.prices, system.clock, system.settings.price_max_age_seconds
        ),
        Funding(system.store, KucoinFunding(jobs.market.rest(Market.FUTURES)), system.clock),
        poll_seconds=jobs.options.poll_seconds,
    )
