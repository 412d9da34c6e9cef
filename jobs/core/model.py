"""The model: a scikit-learn Pipeline from the examples' frame to P(arrival delay > 15 min).

One-hot carrier, origin and destination (rare values pooled, unseen ones ignored), numeric features passed
through, then a histogram gradient-boosted classifier, which handles missing weather natively and trains in
seconds on tens of thousands of rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from spec.columns import CATEGORICAL_FEATURES, FEATURE_COLUMNS, LABEL, NUMERIC_FEATURES, WEATHER_FEATURES

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

# Categories seen fewer times in training are pooled into one "infrequent" column.
MIN_CATEGORY_FREQUENCY = 20

HYPERPARAMETERS = {
    "learning_rate": 0.1,
    "max_iter": 100,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 10,
}


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


def build_model(seed: int = 0, **overrides: object) -> Pipeline:
    unknown = sorted(set(overrides) - set(HYPERPARAMETERS))
    if unknown:
        raise ValueError(f"unknown hyperparameters {unknown}; known: {sorted(HYPERPARAMETERS)}")
    encode = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist", min_frequency=MIN_CATEGORY_FREQUENCY, sparse_output=False
                ),
                list(CATEGORICAL_FEATURES),
            ),
            ("numeric", "passthrough", list(NUMERIC_FEATURES)),
        ],
        sparse_threshold=0.0,
    )
    classifier = HistGradientBoostingClassifier(random_state=seed, **{**HYPERPARAMETERS, **overrides})
    return Pipeline([("encode", encode), ("classify", classifier)])


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
