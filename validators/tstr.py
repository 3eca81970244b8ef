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

import numpy as np
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
    task = _task(spec, present=_present(spec, (train, holdout), target))
    test_x, test_y = _xy(holdout, features, target)
    results: dict[str, dict[str, float]] = {}
    fitted: dict[str, Any] = {}
    # One OpenMP thread: on a small, shared machine HistGradientBoosting's per-tree thread
    # synchronisation made an 800-row, 8-class fit take 95 s instead of 1.4 s.
    with threadpool_limits(limits=1, user_api="openmp"):
        for name, frame in (("synthetic", synthetic), ("real", train), ("dummy", train)):
            x, y = _xy(frame, features, target)
            model = _model(task, seed=seed, max_iter=max_iter, dummy=name == "dummy")
            model.fit(x, y)
            results[name] = _scores(task, model, test_x, test_y, spec)
            fitted[name] = model
    primary = _primary(task)
    tstr, trtr = results["synthetic"][primary], results["real"][primary]
    figures = {"tstr_score": tstr, "trtr_score": trtr, "tstr_gap": trtr - tstr}
    bounds, interval = score_intervals(
        task, spec, fitted, test_x, test_y, points=figures, seed=seed
    )
    figures.update(bounds)
    details = {
        "target": target,
        "task": task,
        "primary_metric": primary,
        "model": f"HistGradientBoosting (max_iter={max_iter})",
        "train_rows": int(len(train)),
        "test_rows": int(len(test_y)),
        "scores": results,
        "interval": interval,
    }
    return figures, details


def _present(spec: object, frames: tuple[pd.DataFrame, ...], target: str) -> tuple[str, ...] | None:
    """The declared labels of a discrete target that occur in the real rows, in declared
    order (an unused ``other`` bucket is no class); None for a numerical target."""
    if not is_discrete(spec):
        return None
    seen = set().union(*(set(f[target].dropna().astype(str)) for f in frames))
    return tuple(label for label in labels_of(spec) if label in seen)


def _task(spec: object, *, present: tuple[str, ...] | None = None) -> str:
    """binary (two classes occur in the real rows: AUC), multiclass, or regression."""
    if is_discrete(spec):
        labels = labels_of(spec) if present is None else present
        return "binary" if len(labels) <= 2 else "multiclass"
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


def _positive(spec: object, classes: list[str]) -> str:
    """The positive class of a binary target: the later of the two labels that occur, in
    declared order (a declared but unused label, such as ``other``, is skipped)."""
    seen = [label for label in labels_of(spec) if label in classes]
    return seen[-1] if seen else labels_of(spec)[-1]


def _scores(task: str, model: Any, x: pd.DataFrame, y: pd.Series, spec: object) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score

    if task == "regression":
        return {"r2": float(r2_score(y, model.predict(x)))}
    predicted = model.predict(x)
    scores = {"accuracy": float(accuracy_score(y, predicted))}
    if task == "binary":
        positive = _positive(spec, list(model.classes_))
        classes = list(model.classes_)
        if positive not in classes or len(classes) < 2:
            raise ValueError("the model saw only one class of the target")
        proba = model.predict_proba(x)[:, classes.index(positive)]
        scores["auc"] = float(roc_auc_score((y == positive).to_numpy(), proba))
    else:
        scores["macro_f1"] = float(f1_score(y, predicted, average="macro", zero_division=0))
    return scores


# ------------------------------------------------------------ bootstrap intervals
# 95% intervals of tstr_score, trtr_score and tstr_gap: the holdout test rows are
# resampled with replacement (the same draw for both models, so the gap's interval is
# paired) and each draw is scored from the fitted models' predictions, made once: no
# refits, so the interval covers the test rows' sampling noise, not the training's.
# The metrics are weighted numpy, not scikit-learn's: those took 46 ms a draw (18 s for
# 200 draws x 2 models, on every release); these match them on the unweighted rows
# (checked below, and in tests/test_utility_report.py).
BOOTSTRAP_DRAWS = 200
_INTERVAL_FIGURES = ("tstr_score", "trtr_score", "tstr_gap")


def score_intervals(
    task: str,
    spec: object,
    fitted: Mapping[str, Any],
    x: pd.DataFrame,
    y: pd.Series,
    *,
    points: Mapping[str, float],
    seed: int,
    draws: int = BOOTSTRAP_DRAWS,
) -> tuple[dict[str, float], dict[str, Any]]:
    """``<figure>_low``/``_high`` for :data:`_INTERVAL_FIGURES` (percentile bootstrap,
    ``draws`` resamples of the test rows), and details for the report.

    The weighted metrics here are checked against the point estimates of ``_scores``
    (``points``) on the unweighted test rows; if they disagree, the intervals are NaN
    (reported, not gated) rather than intervals around another number."""
    inputs = {
        name: _metric_inputs(task, spec, fitted[name], x, y) for name in ("synthetic", "real")
    }
    ones = np.ones((1, len(y)))
    full = {name: _weighted_metric(task, ones, *inputs[name])[0] for name in inputs}
    if not all(
        np.isclose(full[name], points[figure], rtol=0, atol=1e-9)
        for name, figure in (("synthetic", "tstr_score"), ("real", "trtr_score"))
    ):
        nan = float("nan")
        return {f"{f}_{end}": nan for f in _INTERVAL_FIGURES for end in ("low", "high")}, {
            "draws": 0,
            "method": "not computed: the resampled metric does not reproduce the score",
        }
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(y), np.full(len(y), 1 / len(y)), size=draws).astype(float)
    tstr = _weighted_metric(task, weights, *inputs["synthetic"])
    trtr = _weighted_metric(task, weights, *inputs["real"])
    bounds: dict[str, float] = {}
    for figure, values in (("tstr_score", tstr), ("trtr_score", trtr), ("tstr_gap", trtr - tstr)):
        bounds[f"{figure}_low"], bounds[f"{figure}_high"] = _percentiles(values)
    return bounds, {"draws": draws, "method": "percentile bootstrap of the test rows, 95%"}


def _metric_inputs(
    task: str, spec: object, model: Any, x: pd.DataFrame, y: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """What the primary metric reads, as numbers: (truth, prediction) per test row.

    binary: (is the positive class, its predicted probability), the positive class as
    ``_scores`` picks it; multiclass: (label code, predicted label code) over the labels
    of both; regression: (value, predicted value)."""
    if task == "regression":
        return y.to_numpy(dtype=float), np.asarray(model.predict(x), dtype=float)
    classes = [str(c) for c in model.classes_]
    if task == "binary":
        positive = _positive(spec, classes)
        proba = model.predict_proba(x)[:, classes.index(positive)]
        return (y.astype(str) == positive).to_numpy(dtype=float), np.asarray(proba, float)
    truth, predicted = y.astype(str).to_numpy(), np.asarray(model.predict(x)).astype(str)
    inverse = np.unique(np.concatenate([truth, predicted]), return_inverse=True)[1].reshape(-1)
    return inverse[: len(truth)].astype(float), inverse[len(truth) :].astype(float)


def _weighted_metric(
    task: str, weights: np.ndarray, truth: np.ndarray, predicted: np.ndarray
) -> np.ndarray:
    """The primary metric of each row of ``weights`` (counts per test row): ROC AUC
    (ties count one half), macro-F1 over the labels that occur in the draw (as
    scikit-learn, zero_division=0) or R2. NaN where the draw leaves it undefined."""
    out = np.full(len(weights), np.nan)
    if task == "binary":
        level = np.unique(predicted, return_inverse=True)[1].reshape(-1)
        for k, w in enumerate(weights):
            pos = np.bincount(level, weights=w * truth, minlength=level.max() + 1)
            neg = np.bincount(level, weights=w * (1 - truth), minlength=level.max() + 1)
            below = np.cumsum(neg) - neg  # negatives with a lower score
            if pos.sum() > 0 and neg.sum() > 0:
                out[k] = float((pos * (below + neg / 2)).sum() / (pos.sum() * neg.sum()))
    elif task == "multiclass":
        size = int(max(truth.max(), predicted.max())) + 1
        cell = (truth * size + predicted).astype(np.int64)
        for k, w in enumerate(weights):
            confusion = np.bincount(cell, weights=w, minlength=size * size).reshape(size, size)
            tp = np.diag(confusion)
            fp, fn = confusion.sum(axis=0) - tp, confusion.sum(axis=1) - tp
            present = (tp + fp + fn) > 0
            out[k] = float(np.mean(2 * tp[present] / (2 * tp + fp + fn)[present]))
    else:
        for k, w in enumerate(weights):
            mean = np.average(truth, weights=w)
            total = float((w * (truth - mean) ** 2).sum())
            if total > 0:
                out[k] = 1 - float((w * (truth - predicted) ** 2).sum()) / total
    return out


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the defined draws; NaN when fewer than half of
    the draws are defined (e.g. a tiny test set whose draws miss a class)."""
    finite = values[np.isfinite(values)]
    if len(finite) < max(1, len(values) // 2):
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)
