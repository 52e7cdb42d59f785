"""A KuCoin-protocol exchange on loopback (REST + websocket, spot and futures).

For the test suites and the demo; see server.KucoinSimulator.
"""

from cogmora.simulator.config import DEFAULT_FUTURES, DEFAULT_SPOT, SimulatorConfig
from cogmora.simulator.server import KucoinSimulator

__all__ = ["DEFAULT_FUTURES", "DEFAULT_SPOT", "KucoinSimulator", "SimulatorConfig"]
