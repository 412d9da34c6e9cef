"""The model: a scikit-learn Pipeline from the examples' frame to P(arrival delay > 15 min).

One-hot carrier, origin and destination (rare values pooled, unseen ones ignored), numeric features passed
through, then a histogram gradient-boosted classifier, which handles missing weather natively and trains in
seconds on tens of thousands of rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from models.flight_delay.columns import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, WEATHER_FEATURES
from spec.columns import LABEL

if TYPE_CHECKING:
    from mlflow.models import ModelSignature


def model_frame(examples: pd.DataFrame) -> pd.DataFrame:
    """The model's input: exactly ``FEATURE_COLUMNS``, categoricals as strings, numerics as float64 (missing = NaN).

    Fixed dtypes keep the logged signature, the serving payloads and the training data in agreement.
    """
    missing = [c for c in FEATURE_COLUMNS if c not in examples.columns]
    if missing:
        raise ValueError(f"examples lack the feature columns {missing}")
    frame = pd.DataFrame(index=examples.index)
    for column in CATEGORICAL_FEATURES:
        frame[column] = examples[column].astype("string").fillna("").astype(object)
    for column in NUMERIC_FEATURES:
        frame[column] = pd.to_numeric(examples[column], errors="coerce").astype("float64")
    return frame.reset_index(drop=True)


def labels(examples: pd.DataFrame) -> np.ndarray:
    if LABEL not in examples.columns:
        raise ValueError(f"examples lack the label column {LABEL!r}")
    if examples[LABEL].isna().any():
        raise ValueError("examples have missing labels")
    return examples[LABEL].astype("int64").to_numpy()


def shuffled(y: np.ndarray, seed: int) -> np.ndarray:
    """The same labels in a random order: a model trained on them learns nothing (a deliberately bad model)."""
    return np.random.default_rng(seed).permutation(y)


def predict_proba(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """P(label = 1) for each row."""
    classes = list(model.classes_)
    if 1 not in classes:
        raise ValueError(f"model was not trained with the positive class 1 (classes {classes})")
    return model.predict_proba(frame)[:, classes.index(1)]


def model_signature() -> ModelSignature:
    """Inputs: the feature columns; weather may be missing (no reading within 6 hours). Output: 1 = late."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    inputs = [ColSpec("string", c) for c in CATEGORICAL_FEATURES]
    inputs += [ColSpec("double", c, required=c not in WEATHER_FEATURES) for c in NUMERIC_FEATURES]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([TensorSpec(np.dtype("int64"), (-1,))]))
