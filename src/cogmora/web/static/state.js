// What the page knows, in one place: each view renders from it, refreshes replace it.
export const state = {
  account: null,
  positions: [],
  triggers: [],
  history: [],
  ledger: [],
  watchlist: { symbols: [], entries: [] },
  prices: {}, // symbol -> {price, prev, at}
  dayOpen: {}, // symbol -> {open, day, fetched}
  chartSymbol: null,
};
