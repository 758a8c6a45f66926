"""Learning: training the models a strategy trades with (the forecast bundle of each window).

:func:`~tradebrain.learning.forecaster.train_forecaster` trains one window's forecast; the
learning loop (experience, registry, promotion) is to grow here.
"""
