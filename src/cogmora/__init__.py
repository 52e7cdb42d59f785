"""Cogmora: real-time paper-trading automation on KuCoin market data."""

__version__ = "0.1.0"
