"""Gradient boosting: LightGBM and XGBoost, multiclass, seeded, deterministic, 2 threads.

Both train through the libraries' native APIs (``lightgbm.train``, ``xgboost.train``) and save
their native model files (``lightgbm.txt``, ``xgboost.ubj``); the model kept in memory after
``fit`` is the one a load gives back, so a save/load round trip predicts the very same numbers.

Early stopping
--------------
Pass a validation block through ``info``::

    model.fit(X_train, y_train, info={"validation": (X_val, y_val)})

The block must come from after the training rows, purged of rows whose labels overlap them
(the caller's splitter knows the label horizon; the model does not). Training stops when the
validation multiclass log loss has not improved for ``early_stopping_rounds`` rounds, and only
the best rounds are kept (``n_rounds_``). Validation rows of a class absent from the training
labels are left out: the model cannot predict that class. Without a validation block (or with
``early_stopping_rounds=None``) all ``n_estimators`` rounds are trained.

Classes missing from the training labels get probability 0 (see :func:`full_proba`).

One row at a time (``predict_proba_one``) runs through the libraries' single-row C routes,
prepared once per fit (:mod:`tradebrain.models._booster_rows`): the same numbers, several
times faster than a batch of one.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Self

import numpy as np

from tradebrain.core.atomic_write import write_atomic, write_text_atomic
from tradebrain.exceptions import UserInputError
from tradebrain.models._inputs import normalized, prediction_array, split_labels, training_arrays
from tradebrain.models.base import CLASS_NAMES, Model, RowPredictor, full_proba, register_model

if TYPE_CHECKING:
    import lightgbm
    import xgboost

CLASSES_FILE = "classes.json"
Validation = tuple[np.ndarray, np.ndarray] | None


class _BoostingModel(Model):
    """Shared fit/predict/save logic; subclasses wrap one library's booster."""

    n_jobs: int
    early_stopping_rounds: int | None

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: tuple[str, ...] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Self:
        """Fit on ``X`` (n, features) and ``y`` in {0, 1, 2}.

        ``info["validation"] = (X_val, y_val)`` turns on early stopping (module docstring);
        NaN features are allowed and treated as missing values.
        """
        X, y = training_arrays(X, y, self.input_kind)
        record = self._record(X, y, feature_names, info)
        classes, codes = split_labels(y)
        if len(classes) < 2:
            raise UserInputError(
                f"model {self.name!r} needs at least two classes; every training label is "
                f"{CLASS_NAMES[int(classes[0])]!r}"
            )
        validation = self._validation(info, classes, X.shape[1])
        n_rounds = self._train(X, codes, len(classes), validation)
        self.classes_ = classes
        self.n_rounds_ = n_rounds
        self.record_ = record
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return (n, 3) probabilities (down, flat, up) for ``X`` (n, features)."""
        X = prediction_array(self, X)
        return full_proba(normalized(self._predict(X)), self.classes_)

    def _validation(
        self, info: dict[str, Any] | None, classes: np.ndarray, n_features: int
    ) -> Validation:
        """Return the validation block as (X, class codes), or None for no early stopping."""
        if not info or info.get("validation") is None or self.early_stopping_rounds is None:
            return None
        given_X, given_y = info["validation"]
        X_val, y_val = training_arrays(given_X, given_y, self.input_kind)
        if X_val.shape[1] != n_features:
            raise UserInputError(
                f"validation X has {X_val.shape[1]} features; training X has {n_features}"
            )
        known = np.isin(y_val, classes)
        if not known.any():
            raise UserInputError(
                "no validation row has a class seen in training; early stopping cannot work"
            )
        return X_val[known], np.searchsorted(classes, y_val[known])

    def _save_state(self, folder: Path) -> None:
        state = {"classes": self.classes_.tolist(), "n_rounds": self.n_rounds_}
        write_text_atomic(json.dumps(state), folder / CLASSES_FILE)
        self._save_booster(folder)

    def _load_state(self, folder: Path) -> None:
        state = json.loads((folder / CLASSES_FILE).read_text(encoding="utf-8"))
        self.classes_ = np.asarray(state["classes"], dtype=np.int64)
        self.n_rounds_ = int(state["n_rounds"])
        self._load_booster(folder)

    @abstractmethod
    def _train(
        self, X: np.ndarray, codes: np.ndarray, n_classes: int, validation: Validation
    ) -> int:
        """Train the booster on class codes 0..n_classes-1; return the rounds kept."""

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray:
        """Return (n, n_classes) probabilities over ``classes_``."""

    @abstractmethod
    def _save_booster(self, folder: Path) -> None:
        """Write the native model file."""

    @abstractmethod
    def _load_booster(self, folder: Path) -> None:
        """Read the native model file."""


@register_model
class LightGBMModel(_BoostingModel):
    """LightGBM multiclass gradient boosting (leaf-wise trees).

    Parameters
    ----------
    n_estimators
        Most boosting rounds (each grows one tree per class).
    learning_rate
        Shrinkage per round.
    num_leaves
        Most leaves per tree.
    max_depth
        Most tree depth; -1 for no limit beyond ``num_leaves``.
    min_child_samples
        Fewest training rows in a leaf.
    subsample
        Fraction of rows drawn (without replacement) for each round; 1.0 for all.
    colsample_bytree
        Fraction of features drawn for each tree.
    reg_lambda
        L2 penalty on leaf values.
    early_stopping_rounds
        Patience on the validation log loss, when a validation block is given; None: off.
    n_jobs
        Threads for training and prediction.
    seed
        Seed of every random draw (rows, features).
    """

    name = "lightgbm"
    MODEL_FILE = "lightgbm.txt"
    booster_: lightgbm.Booster

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        max_depth: int = -1,
        min_child_samples: int = 100,
        subsample: float = 0.8,
        colsample_bytree: float = 0.5,
        reg_lambda: float = 1.0,
        early_stopping_rounds: int | None = 30,
        n_jobs: int = 2,
        seed: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.seed = seed

    def _train(
        self, X: np.ndarray, codes: np.ndarray, n_classes: int, validation: Validation
    ) -> int:
        import lightgbm as lgb

        params = {
            "objective": "multiclass",
            "num_class": n_classes,
            "metric": "multi_logloss",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1.0 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "num_threads": self.n_jobs,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }
        train_set = lgb.Dataset(X, label=codes, params={"verbosity": -1})
        valid_sets: list[lgb.Dataset] = []
        callbacks: list[Callable[..., Any]] = []
        if validation is not None and self.early_stopping_rounds is not None:
            valid_sets = [lgb.Dataset(*validation, reference=train_set)]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        trained = lgb.train(
            params, train_set, self.n_estimators, valid_sets=valid_sets, callbacks=callbacks
        )
        rounds = (
            trained.best_iteration if trained.best_iteration > 0 else trained.current_iteration()
        )
        # Keep the text form in memory: it is exactly what a load reads back.
        self.booster_ = lgb.Booster(model_str=trained.model_to_string(num_iteration=rounds))
        return int(rounds)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster_.predict(X, num_threads=self.n_jobs))

    def _row_predictor(self) -> RowPredictor:
        from tradebrain.models._booster_rows import LightGBMRow

        return LightGBMRow(self)

    def _save_booster(self, folder: Path) -> None:
        write_text_atomic(self.booster_.model_to_string(), folder / self.MODEL_FILE)

    def _load_booster(self, folder: Path) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_file=str(folder / self.MODEL_FILE))


@register_model
class XGBoostModel(_BoostingModel):
    """XGBoost multiclass gradient boosting (depth-wise ``hist`` trees).

    Parameters
    ----------
    n_estimators
        Most boosting rounds (each grows one tree per class).
    learning_rate
        Shrinkage per round (``eta``).
    max_depth
        Most tree depth.
    min_child_weight
        Smallest sum of hessians in a leaf (softmax hessians are at most 0.25 per row).
    subsample
        Fraction of rows drawn for each round.
    colsample_bytree
        Fraction of features drawn for each tree.
    reg_lambda
        L2 penalty on leaf values.
    max_bin
        Histogram bins per feature.
    early_stopping_rounds
        Patience on the validation log loss, when a validation block is given; None: off.
    n_jobs
        Threads for training and prediction.
    seed
        Seed of every random draw.
    """

    name = "xgboost"
    MODEL_FILE = "xgboost.ubj"
    booster_: xgboost.Booster

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        max_depth: int = 4,
        min_child_weight: float = 10.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.5,
        reg_lambda: float = 1.0,
        max_bin: int = 256,
        early_stopping_rounds: int | None = 30,
        n_jobs: int = 2,
        seed: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.seed = seed

    def _train(
        self, X: np.ndarray, codes: np.ndarray, n_classes: int, validation: Validation
    ) -> int:
        import xgboost as xgb

        params = {
            "objective": "multi:softprob",
            "num_class": n_classes,
            "eval_metric": "mlogloss",
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "max_bin": self.max_bin,
            "tree_method": "hist",
            "nthread": self.n_jobs,
            "seed": self.seed,
            "verbosity": 0,
        }
        train_set = xgb.DMatrix(X, label=codes, nthread=self.n_jobs)
        evals: list[tuple[xgb.DMatrix, str]] = []
        if validation is not None:
            evals = [(xgb.DMatrix(validation[0], label=validation[1], nthread=self.n_jobs), "val")]
        booster = xgb.train(
            params,
            train_set,
            self.n_estimators,
            evals=evals,
            early_stopping_rounds=self.early_stopping_rounds if evals else None,
            verbose_eval=False,
        )
        rounds = booster.num_boosted_rounds()
        if evals:
            rounds = booster.best_iteration + 1
            booster = booster[:rounds]
        self.booster_ = booster
        return int(rounds)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster_.inplace_predict(X))

    def _row_predictor(self) -> RowPredictor:
        from tradebrain.models._booster_rows import XGBoostRow

        return XGBoostRow(self)

    def _save_booster(self, folder: Path) -> None:
        raw = self.booster_.save_raw(raw_format="ubj")

        def write(handle: BinaryIO) -> None:
            handle.write(raw)

        write_atomic(folder / self.MODEL_FILE, write)

    def _load_booster(self, folder: Path) -> None:
        import xgboost as xgb

        booster = xgb.Booster(model_file=str(folder / self.MODEL_FILE))
        booster.set_param({"nthread": self.n_jobs})
        self.booster_ = booster
