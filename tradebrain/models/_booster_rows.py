"""Single-row predictors of the boosters: what ``predict_proba_one`` runs for LightGBM and XGBoost.

A live strategy asks for one row per candle. The libraries' public ``predict`` calls are built
for batches: each call checks its input, builds a matrix and a prediction configuration and
sizes a thread pool (LightGBM ~90 µs, XGBoost ~500 µs for one row). Their C APIs have a
single-row route that does that work once, which these classes prepare when the model first
predicts one row:

- LightGBM: ``LGBM_BoosterPredictForMatSingleRowFast``, set up once, one thread;
- XGBoost: ``XGBoosterPredictFromDense`` on a preallocated row whose array interface and
  prediction configuration are encoded once, on a one-thread copy of the booster.

Both give the numbers of the batch ``predict`` (the same trees summed in the same order). They
are private to :mod:`tradebrain.models.boosting`: nothing outside the models package knows them.
One instance serves one thread (each owns its row and output buffers).
"""

from __future__ import annotations

import ctypes
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from tradebrain.models._inputs import full_row, normalized_row, refuse_row, row_shape

if TYPE_CHECKING:
    from tradebrain.models.boosting import LightGBMModel, XGBoostModel

_C_API_PREDICT_NORMAL = 0
_C_API_DTYPE_FLOAT64 = 1


class LightGBMRow:
    """One row through LightGBM's single-row fast predictor, prepared once, one thread."""

    def __init__(self, model: LightGBMModel) -> None:
        from lightgbm.basic import _LIB, _safe_call  # type: ignore[attr-defined]

        booster = model.booster_
        self._model = model
        self._shape = row_shape(model)
        self._classes = [int(c) for c in model.classes_]
        self._row = np.zeros(booster.num_feature(), dtype=np.float64)
        self._out = np.zeros(len(self._classes), dtype=np.float64)
        self._out_len = ctypes.c_int64(0)
        self._config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_C_API_PREDICT_NORMAL),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(booster.best_iteration),  # what Booster.predict uses; <= 0: all
                ctypes.c_int(_C_API_DTYPE_FLOAT64),
                ctypes.c_int32(self._row.size),
                b"num_threads=1",
                ctypes.byref(self._config),
            )
        )
        # Free the config before the booster it points into: the finalizer holds both.
        weakref.finalize(self, _free_fast_config, _LIB, self._config, booster)
        self._check = _safe_call
        self._predict = _LIB.LGBM_BoosterPredictForMatSingleRowFast
        self._row_pointer = self._row.ctypes.data_as(ctypes.c_void_p)
        self._out_pointer = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len_ref = ctypes.byref(self._out_len)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return the (3,) probabilities (down, flat, up) of the row ``x`` (features,)."""
        if x.shape != self._shape:
            raise refuse_row(self._model, x, self._shape)
        self._row[:] = x
        self._check(
            self._predict(self._config, self._row_pointer, self._out_len_ref, self._out_pointer)
        )
        return full_row(normalized_row(self._out.tolist()), self._classes)


def _free_fast_config(library: Any, config: ctypes.c_void_p, booster: object) -> None:
    library.LGBM_FastConfigFree(config)


class XGBoostRow:
    """One row through XGBoost's ``PredictFromDense`` on a one-thread copy of the booster."""

    def __init__(self, model: XGBoostModel) -> None:
        from xgboost.core import (  # type: ignore[attr-defined]
            _LIB,
            _check_call,
            _ProxyDMatrix,
            array_interface,
            c_bst_ulong,
            make_jcargs,
        )

        booster = model.booster_.copy()
        booster.set_param({"nthread": 1})
        self._model = model
        self._booster = booster  # keeps the handle below alive
        self._shape = row_shape(model)
        self._classes = [int(c) for c in model.classes_]
        self._row = np.zeros((1, booster.num_features()), dtype=np.float64)
        self._interface = array_interface(self._row)  # holds the row's address: built once
        self._config = make_jcargs(
            type=0, training=False, iteration_begin=0, iteration_end=0, missing=np.nan,
            strict_shape=False, cache_id=0,
        )  # fmt: skip
        self._shape_out = ctypes.POINTER(c_bst_ulong)()
        self._dims = c_bst_ulong()
        self._preds = ctypes.POINTER(ctypes.c_float)()
        self._predict = _LIB.XGBoosterPredictFromDense
        self._refs = (
            ctypes.byref(self._shape_out),
            ctypes.byref(self._dims),
            ctypes.byref(self._preds),
        )
        # A proxy matrix kept across calls: without one, every call builds a fresh one, whose
        # set-up reads the cgroup CPU quota files (two file reads, about half the call's time).
        self._proxy = _ProxyDMatrix()
        self._proxy_handle = self._proxy.handle
        self._handle = booster.handle
        self._check = _check_call

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return the (3,) probabilities (down, flat, up) of the row ``x`` (features,)."""
        if x.shape != self._shape:
            raise refuse_row(self._model, x, self._shape)
        self._row[0] = x
        shape_ref, dims_ref, preds_ref = self._refs
        self._check(
            self._predict(
                self._handle, self._interface, self._config, self._proxy_handle,
                shape_ref, dims_ref, preds_ref,
            )
        )  # fmt: skip
        preds = self._preds
        proba = [float(preds[k]) for k in range(len(self._classes))]
        return full_row(normalized_row(proba), self._classes)
