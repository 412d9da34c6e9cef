"""Metrics of predicted probabilities against labels, overall and per slice (origin, carrier)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

DECISION_THRESHOLD = 0.5
SLICE_COLUMNS = ("origin", "carrier")


def _check(y_true: np.ndarray, y_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob, dtype="float64")
    if y_true.shape != y_prob.shape or y_true.ndim != 1:
        raise ValueError(f"labels {y_true.shape} and probabilities {y_prob.shape} must be 1-d of the same length")
    if y_true.size == 0:
        raise ValueError("cannot evaluate on no rows")
    return y_true, y_prob


def roc_auc(y_true: np.ndarray, y_prob: np.ndarray) -> float | None:
    """ROC AUC, or None when only one class is present (it is undefined then)."""
    y_true, y_prob = _check(y_true, y_prob)
    if np.unique(y_true).size < 2:
        return None
    return float(roc_auc_score(y_true, y_prob))


def positive_rate_gap(predictions: Sequence[float], targets: Sequence[float]) -> float:
    """How far the share of flights the model calls late is from the share that were late (0 = the same share).

    A custom validation metric: a model can rank well (roc_auc) and still flag far too many or too few flights
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


@dataclass(frozen=True)
class SliceMetric:
    column: str
    value: str
    rows: int
    roc_auc: float | None  # None: one class only in the slice

    @property
    def metric_key(self) -> str:
        return f"slice_roc_auc.{self.column}.{self.value}"


def slice_metrics(
    frame: pd.DataFrame,
    y_true: np.ndarray,
    y_prob: np.ndarray,
    columns: Sequence[str] = SLICE_COLUMNS,
    min_rows: int = 1,
) -> list[SliceMetric]:
    """ROC AUC of every value of each column that has at least ``min_rows`` rows, sorted by column and value."""
    y_true, y_prob = _check(y_true, y_prob)
    if len(frame) != y_true.size:
        raise ValueError(f"frame has {len(frame)} rows but there are {y_true.size} labels")
    if min_rows < 1:
        raise ValueError(f"min_rows must be >= 1, got {min_rows}")
    result = []
    for column in columns:
        if column not in frame.columns:
            raise ValueError(f"no slice column {column!r} in the frame")
        values = frame[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            rows = int(mask.sum())
            if rows >= min_rows:
                result.append(SliceMetric(column, value, rows, roc_auc(y_true[mask], y_prob[mask])))
    return result
