"""The compiled brain: the Python brain's decisions, made in one numba pass over a whole replay.

:mod:`~tradebrain.brain.compiled.brain` is the entry (``compiled_decisions``),
:mod:`~tradebrain.brain.compiled.kernels` the jitted loop (its steps in the ``_*_kernels``
modules), :mod:`~tradebrain.brain.compiled.codes` the codes and array layouts they share and
:mod:`~tradebrain.brain.compiled.reasons` rebuilds each decision's reasons. Parity tests keep it
equal to :class:`~tradebrain.brain.brain.Brain`, field by field.
"""
