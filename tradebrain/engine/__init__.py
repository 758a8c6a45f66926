"""The one engine for backtest, paper and live: events in, decisions and orders out."""
