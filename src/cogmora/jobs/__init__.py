"""Background jobs: the close handler, the scheduler, the agent and the watchlist scraper."""
