"""A model's input frame, its labels, its answers and its logged signature, from its declaration (``ModelSpec``).

The frame is the same for every model: exactly the declared features, categoricals as strings and numerics as
float64 (missing = NaN). Fixed dtypes keep the logged signature, the serving payloads and the training data in
agreement. What the estimator is comes from the model's package (``jobs.platform.model``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spec.columns import LABEL

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from spec.model import ModelSpec

# A classifier's predicted class: 1 when P(label = 1) is above this.
POSITIVE_ABOVE = 0.5


def model_frame(spec: ModelSpec, examples: pd.DataFrame) -> pd.DataFrame:
    """The model's input: exactly ``spec.feature_names``, categoricals as strings, numerics as float64."""
    missing = [c for c in spec.feature_names if c not in examples.columns]
    if missing:
        raise ValueError(f"model {spec.name!r}: examples lack the feature columns {missing}")
    frame = pd.DataFrame(index=examples.index)
    for feature in spec.features:
        column = examples[feature.name]
        if feature.kind == "categorical":
            frame[feature.name] = column.astype("string").fillna("").astype(object)
        else:
            frame[feature.name] = pd.to_numeric(column, errors="coerce").astype("float64")
    return frame.reset_index(drop=True)


def labels(spec: ModelSpec, examples: pd.DataFrame) -> np.ndarray:
    """The label column: int64 classes (0/1) for a classifier, float64 values for a regressor."""
    if LABEL not in examples.columns:
        raise ValueError(f"model {spec.name!r}: examples lack the label column {LABEL!r}")
    values = examples[LABEL]
    if values.isna().any():
        raise ValueError(f"model {spec.name!r}: examples have missing labels")
    if not spec.is_classifier:
        return pd.to_numeric(values, errors="raise").astype("float64").to_numpy()
    classes = sorted(set(values.astype("int64").tolist()))
    if not set(classes) <= {0, 1}:
        raise ValueError(f"model {spec.name!r}: a classifier's labels must be 0 or 1, got the classes {classes}")
    return values.astype("int64").to_numpy()


def shuffled(y: np.ndarray, seed: int) -> np.ndarray:
    """The same labels in a random order: a model trained on them learns nothing (a deliberately bad model)."""
    return np.random.default_rng(seed).permutation(y)


def predict_proba(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """P(label = 1) for each row (a classifier)."""
    classes = list(model.classes_)
    if 1 not in classes:
        raise ValueError(f"model was not trained with the positive class 1 (classes {classes})")
    return model.predict_proba(frame)[:, classes.index(1)]


def scores(spec: ModelSpec, model: Any, frame: pd.DataFrame) -> np.ndarray:
    """What a model's quality is measured on: P(label = 1) for a classifier, the predicted value for a regressor."""
    if spec.is_classifier:
        return predict_proba(model, frame)
    return np.asarray(model.predict(frame), dtype="float64")


def predictions(spec: ModelSpec, scored: np.ndarray) -> np.ndarray:
    """The model's answer from its scores (``scores``): the class for a classifier, the value for a regressor."""
    if spec.is_classifier:
        return (np.asarray(scored) > POSITIVE_ABOVE).astype("int64")
    return np.asarray(scored, dtype="float64")


def model_signature(spec: ModelSpec) -> ModelSignature:
    """Inputs: the features (an optional one may be missing). Output: the class (int64) of a classifier, the value
    (float64) of a regressor."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    inputs = [
        ColSpec("string" if f.kind == "categorical" else "double", f.name, required=not f.optional)
        for f in spec.features
    ]
    output = np.dtype("int64") if spec.is_classifier else np.dtype("float64")
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([TensorSpec(output, (-1,))]))
