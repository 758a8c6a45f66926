"""The trading service: the live runner, its state and the object the API talks to."""
