"""Pure, synchronous business rules: no asyncio, sockets, files or databases."""
