"""The ground floor: the words every room speaks — orders and fills, engine events, market state.

Everything may import :mod:`tradebrain.core`; it imports nothing of tradebrain's but
:mod:`tradebrain.exceptions` (an import-rule test keeps it so).
"""
