"""Business operations written once against the Store port: every backend runs the same code."""
