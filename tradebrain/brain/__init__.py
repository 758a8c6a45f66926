"""Decision intelligence: regimes, fusion of model votes, filters, and the Decision."""
