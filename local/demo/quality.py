"""The demo's weekly quality figure: the model's replay's ``QUALITY`` (a metric of its problem type), of a model on
labelled examples (``model_quality``) and of what the loop served (``served_quality``); and the reference model
retrained the way the training job trains, from the package's own estimator (``fit_reference``).

A classifier is judged on the probability of the positive class it gives, a regressor on the value it predicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from local.demo.replays import ModelReplay
from spec.columns import PREDICTION, PROBABILITY

if TYPE_CHECKING:
    import pandas as pd


def truth(replay: ModelReplay, examples: pd.DataFrame) -> np.ndarray:
    """The labels of ``examples``: classes (int) for a classifier, values (float) for a regressor."""
    from jobs.core.model import labels

    return labels(replay.spec, examples)


def figure(metric: str, y: np.ndarray, scores: np.ndarray) -> float | None:
    """``metric`` of ``scores`` (probabilities or values) against ``y``, to four places; None when it is undefined
    (one class only for a ROC AUC, fewer than two rows for r2). The validation job's own metrics
    (``jobs.core.evaluation``)."""
    from jobs.core.evaluation import classification_metrics, regression_metrics, roc_auc

    if metric == "roc_auc":
        value = roc_auc(np.asarray(y, dtype=int), np.asarray(scores, dtype=float))
    elif metric in ("accuracy", "log_loss", "positive_rate"):
        value = classification_metrics(np.asarray(y, dtype=int), np.asarray(scores, dtype=float))[metric]
    elif len(y) < 2 and metric == "r2_score":
        value = None
    else:
        value = regression_metrics(np.asarray(y, dtype=float), np.asarray(scores, dtype=float)).get(metric)
        if value is None:
            raise ValueError(f"no such quality metric {metric!r}")
    return None if value is None or np.isnan(value) else round(float(value), 4)


def model_quality(replay: ModelReplay, model: Any, examples: pd.DataFrame) -> float | None:
    """The figure of a fitted ``model`` (a reference, or a champion loaded from the registry) on labelled
    ``examples``; None without examples."""
    from jobs.core.model import model_frame, predict_proba

    if examples.empty:
        return None
    frame = model_frame(replay.spec, examples)
    scores = predict_proba(model, frame) if replay.spec.is_classifier else model.predict(frame)
    return figure(replay.quality, truth(replay, examples), scores)


def served_quality(replay: ModelReplay, rows: pd.DataFrame) -> float | None:
    """The figure of what the loop served: labelled rows of the predictions table with the model's outputs."""
    scores = rows[PROBABILITY if replay.spec.is_classifier else PREDICTION].to_numpy()
    return figure(replay.quality, truth(replay, rows), scores)


def fit_reference(replay: ModelReplay, examples: pd.DataFrame, seed: int) -> Any:
    """A model of the package's estimator fitted on labelled ``examples`` as the training job fits: the last fifth
    of the days is its test period, not trained on."""
    from jobs.core.model import model_frame
    from jobs.core.split import held_out_start
    from jobs.platform.model import load_model
    from jobs.train import TEST_FRACTION

    day = replay.spec.event_date
    first_test_day = held_out_start(examples.groupby(day).size().to_dict(), TEST_FRACTION)
    train = examples[examples[day] < first_test_day]
    return load_model(replay.name).build_estimator(seed).fit(model_frame(replay.spec, train), truth(replay, train))
