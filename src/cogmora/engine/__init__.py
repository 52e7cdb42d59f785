"""The real-time worker's core: ticks -> trigger book -> compare-and-set writes."""
