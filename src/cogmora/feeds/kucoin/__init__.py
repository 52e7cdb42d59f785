"""KuCoin's public market data: REST client, websocket feed, wire schemas, hot decoder."""
