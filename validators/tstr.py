"""Train-synthetic/test-real (TSTR) next to train-real/test-real (TRTR), for the target.

A gradient-boosting model (scikit-learn's HistGradientBoosting, native categoricals) is
trained once on synthetic rows and once on an equally large sample of real training
rows, and both are scored on the same real holdout rows. The real-trained score is the
ceiling; ``tstr_gap = trtr - tstr`` on the primary metric is what the gate checks.

- categorical / boolean target with two labels: ROC AUC (primary) and accuracy;
- more labels: macro-F1 (primary) and accuracy;
- numerical / datetime target: R2.

A dummy model (majority class / mean, trained on the real rows) gives the floor. Rows
whose target is null are left out. Any failure (e.g. a synthetic table with one class
only) raises: the caller records the figure as NaN and the gate fails it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
from threadpoolctl import threadpool_limits

from synthrelease.validators.features import is_discrete, labels_of, model_matrix

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

DEFAULT_MAX_ITER = 100
# Its figures are declared (and gated) by validators/checks/tstr.py.


def tstr_figures(
    *,
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    specs: Mapping[str, object],
    target: str,
    seed: int,
    max_iter: int = DEFAULT_MAX_ITER,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Typed frames in (see ``features.typed_frame``); figures and details out."""
    if target not in specs:
        raise ValueError("the target is not a declared column")
    if len(specs) < 2:
        raise ValueError("TSTR needs at least one feature besides the target")
    features = {n: s for n, s in specs.items() if n != target}
    spec = specs[target]
    task = _task(spec)
    test_x, test_y = _xy(holdout, features, target)
    results: dict[str, dict[str, float]] = {}
    # One OpenMP thread: on a small, shared machine HistGradientBoosting's per-tree thread
    # synchronisation made an 800-row, 8-class fit take 95 s instead of 1.4 s.
    with threadpool_limits(limits=1, user_api="openmp"):
        for name, frame in (("synthetic", synthetic), ("real", train), ("dummy", train)):
            x, y = _xy(frame, features, target)
            model = _model(task, seed=seed, max_iter=max_iter, dummy=name == "dummy")
            model.fit(x, y)
            results[name] = _scores(task, model, test_x, test_y, spec)
    primary = _primary(task)
    tstr, trtr = results["synthetic"][primary], results["real"][primary]
    figures = {"tstr_score": tstr, "trtr_score": trtr, "tstr_gap": trtr - tstr}
    details = {
        "target": target,
        "task": task,
        "primary_metric": primary,
        "model": f"HistGradientBoosting (max_iter={max_iter})",
        "train_rows": int(len(train)),
        "test_rows": int(len(test_y)),
        "scores": results,
    }
    return figures, details


def _task(spec: object) -> str:
    if is_discrete(spec):
        return "binary" if len(labels_of(spec)) == 2 else "multiclass"
    return "regression"


def _primary(task: str) -> str:
    return {"binary": "auc", "multiclass": "macro_f1", "regression": "r2"}[task]


def _xy(
    frame: pd.DataFrame, features: Mapping[str, object], target: str
) -> tuple[pd.DataFrame, pd.Series]:
    keep = frame[target].notna().to_numpy()
    if not keep.any():
        raise ValueError("no row has a target value")
    rows = frame.loc[keep].reset_index(drop=True)
    y = rows[target]
    if not pd.api.types.is_object_dtype(y.dtype):
        y = y.astype("int64").astype(float) if pd.api.types.is_datetime64_any_dtype(y) else y
    return model_matrix(rows, features), y


def _model(task: str, *, seed: int, max_iter: int, dummy: bool) -> BaseEstimator:
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if dummy:
        return DummyRegressor() if task == "regression" else DummyClassifier(strategy="prior")
    options = dict(categorical_features="from_dtype", max_iter=max_iter, random_state=seed)
    if task == "regression":
        return HistGradientBoostingRegressor(**options)
    return HistGradientBoostingClassifier(**options)


def _scores(task: str, model: Any, x: pd.DataFrame, y: pd.Series, spec: object) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score

    if task == "regression":
        return {"r2": float(r2_score(y, model.predict(x)))}
    predicted = model.predict(x)
    scores = {"accuracy": float(accuracy_score(y, predicted))}
    if task == "binary":
        positive = labels_of(spec)[1]
        classes = list(model.classes_)
        if positive not in classes or len(classes) < 2:
            raise ValueError("the model saw only one class of the target")
        proba = model.predict_proba(x)[:, classes.index(positive)]
        scores["auc"] = float(roc_auc_score((y == positive).to_numpy(), proba))
    else:
        scores["macro_f1"] = float(f1_score(y, predicted, average="macro", zero_division=0))
    return scores
