"""A model's quality metrics against the labels, overall and per slice, for both problem types.

A classifier is measured on its P(label = 1), a regressor on its predicted value (``jobs.core.model.scores``). The
metrics carry the names Databricks data profiling gives them (``spec.model.METRICS``), which the validation job logs
and the thresholds of a model's declaration name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

# The config package first: it loads every environment's model declaration, so spec.model imported before it would
# find itself half-initialized (spec.model -> spec.config.base -> spec.config -> spec.model).
import spec.config  # noqa: F401  isort: skip
from spec.model import LOWER_IS_BETTER, METRICS  # isort: skip

DECISION_THRESHOLD = 0.5
# The metric a slice of a model is judged on, by problem type: it must be defined on a few hundred rows.
SLICE_METRIC = {"classification": "roc_auc", "regression": "mean_absolute_error"}


def _check(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype="float64")
    if y_true.shape != y_score.shape or y_true.ndim != 1:
        raise ValueError(f"labels {y_true.shape} and predictions {y_score.shape} must be 1-d of the same length")
    if y_true.size == 0:
        raise ValueError("cannot evaluate on no rows")
    return y_true, y_score


def greater_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (a ``ValueError`` naming the known metrics otherwise)."""
    known = [m for names in METRICS.values() for m in names]
    if metric not in known:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(known)}")
    return metric not in LOWER_IS_BETTER


def roc_auc(y_true: np.ndarray, y_prob: np.ndarray) -> float | None:
    """ROC AUC, or None when only one class is present (it is undefined then)."""
    y_true, y_prob = _check(y_true, y_prob)
    if np.unique(y_true).size < 2:
        return None
    return float(roc_auc_score(y_true, y_prob))


def positive_rate_gap(predictions: Sequence[float], targets: Sequence[float]) -> float:
    """How far the share of rows the classifier calls positive is from the share that were (0 = the same share).

    A custom validation metric: a model can rank well (roc_auc) and still flag far too many or too few rows
    at its decision threshold, which is what a consumer of the endpoint acts on."""
    predicted, actual = np.asarray(predictions, dtype=float), np.asarray(targets, dtype=float)
    if predicted.size == 0 or predicted.size != actual.size:
        raise ValueError(f"need as many predictions as targets, got {predicted.size} and {actual.size}")
    return abs(float(predicted.mean()) - float(actual.mean()))


def classification_metrics(y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, float]:
    """roc_auc, accuracy (at 0.5), log_loss, the number of rows and the positive rate."""
    y_true, y_prob = _check(y_true, y_prob)
    auc = roc_auc(y_true, y_prob)
    return {
        "roc_auc": math.nan if auc is None else auc,
        "accuracy": float(accuracy_score(y_true, (y_prob >= DECISION_THRESHOLD).astype(int))),
        "log_loss": float(log_loss(y_true, np.clip(y_prob, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "rows": float(y_true.size),
        "positive_rate": float(y_true.mean()),
    }


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """The coefficient of determination, or None when the labels do not vary (it is undefined then)."""
    y_true, y_pred = _check(y_true, y_pred)
    if y_true.size < 2 or np.all(y_true == y_true[0]):
        return None
    return float(r2_score(y_true, y_pred))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """mean_absolute_error, mean_squared_error, root_mean_squared_error, r2_score, the number of rows and the mean
    label."""
    y_true, y_pred = _check(np.asarray(y_true, dtype="float64"), y_pred)
    mse = float(mean_squared_error(y_true, y_pred))
    score = r2(y_true, y_pred)
    return {
        "mean_absolute_error": float(mean_absolute_error(y_true, y_pred)),
        "mean_squared_error": mse,
        "root_mean_squared_error": math.sqrt(mse),
        "r2_score": math.nan if score is None else score,
        "rows": float(y_true.size),
        "mean_label": float(y_true.mean()),
    }


def quality_metrics(problem_type: str, y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    """The problem type's metrics: of probabilities for classification, of predicted values for regression."""
    if problem_type == "classification":
        return classification_metrics(y_true, y_score)
    if problem_type == "regression":
        return regression_metrics(y_true, y_score)
    raise ValueError(f"unknown problem type {problem_type!r}; known: {', '.join(METRICS)}")


def _mae(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    return float(mean_absolute_error(np.asarray(y_true, dtype="float64"), y_pred))


# How a slice's metric is computed (None: undefined on the slice).
_SLICE_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float | None]] = {
    "roc_auc": roc_auc,
    "mean_absolute_error": _mae,
}


@dataclass(frozen=True)
class SliceMetric:
    column: str
    value: str
    rows: int
    score: float | None  # the metric on the slice; None when undefined there (one class only)
    metric: str = "roc_auc"

    @property
    def metric_key(self) -> str:
        return f"slice_{self.metric}.{self.column}.{self.value}"


def slice_metrics(
    frame: pd.DataFrame,
    y_true: np.ndarray,
    y_score: np.ndarray,
    columns: Sequence[str],
    min_rows: int = 1,
    metric: str = "roc_auc",
) -> list[SliceMetric]:
    """``metric`` on every value of each column that has at least ``min_rows`` rows, sorted by column and value."""
    y_true, y_score = _check(y_true, y_score)
    if len(frame) != y_true.size:
        raise ValueError(f"frame has {len(frame)} rows but there are {y_true.size} labels")
    if min_rows < 1:
        raise ValueError(f"min_rows must be >= 1, got {min_rows}")
    if metric not in _SLICE_FUNCTIONS:
        raise ValueError(f"slices are judged on {', '.join(_SLICE_FUNCTIONS)}, not {metric!r}")
    compute = _SLICE_FUNCTIONS[metric]
    result = []
    for column in columns:
        if column not in frame.columns:
            raise ValueError(f"no slice column {column!r} in the frame")
        values = frame[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            rows = int(mask.sum())
            if rows >= min_rows:
                result.append(SliceMetric(column, value, rows, compute(y_true[mask], y_score[mask]), metric))
    return result
