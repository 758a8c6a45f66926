"""The ground floor: the words every room speaks, and the one safe way to write a file.

:mod:`~tradebrain.core.orders` (order intents, fills, sides), :mod:`~tradebrain.core.events`
(the engine's immutable, past-tense events), :mod:`~tradebrain.core.market` (the market state
risk and costs read, and the one incremental ATR) and :mod:`~tradebrain.core.atomic_write`
(temporary file + rename). Every room may import :mod:`tradebrain.core`; it imports nothing of
tradebrain's but :mod:`tradebrain.exceptions` (the import-rule test keeps it so).
"""
