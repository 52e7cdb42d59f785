"""`cogmora demo`: the whole system, offline, against the built-in KuCoin simulator.

It starts the simulator (a random walk with a little extra volatility so levels get
crossed), a fresh SQLite store, the worker, the close handler and the API; creates demo
users with positions and triggers through the real HTTP API (`script`); shows a live
terminal view of prices, fires, closes and balances (`view`); and ends with a summary that
checks every user's ledger against their balance (`summary`). `command` ties them together.
"""
