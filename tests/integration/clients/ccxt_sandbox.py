"""How ccxt is pointed at the simulator (imported by the ccxt contract tests)."""

from __future__ import annotations

from typing import Any

from cogmora.simulator import KucoinSimulator


def ccxt_urls(sim: KucoinSimulator) -> dict[str, Any]:
    """The only ccxt option the sandbox needs: its two hosts."""
    return {"api": {"public": sim.spot_url, "private": sim.spot_url,
                    "futuresPublic": sim.futures_url, "futuresPrivate": sim.futures_url}}
