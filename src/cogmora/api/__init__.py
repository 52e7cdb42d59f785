"""The HTTP API (SPEC section 6): FastAPI at the edge, services underneath."""
