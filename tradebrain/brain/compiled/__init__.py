"""The compiled brain: the Python brain's decisions, made in one numba pass over a whole replay.

:mod:`~tradebrain.brain.compiled.brain` is the entry (``CompiledBrain``),
:mod:`~tradebrain.brain.compiled.kernels` the jitted loop and
:mod:`~tradebrain.brain.compiled.reasons` rebuilds each decision's reasons. Parity tests keep it
equal to :class:`~tradebrain.brain.brain.Brain`, field by field.
"""
