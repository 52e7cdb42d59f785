"""Market-data feeds: KuCoin's websocket and REST clients, recordings and their replay."""
