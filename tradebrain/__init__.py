"""tradebrain: a hybrid-AI decision system for crypto markets whose numbers can be trusted."""

__version__ = "0.1.0"
