"""The model's input frame and pipeline, on a small synthetic data set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobs.core.evaluation import roc_auc
from jobs.core.model import labels as model_labels
from jobs.core.model import model_frame as frame_of
from jobs.core.model import model_signature, predict_proba, shuffled
from models.flight_delay.estimator import build_estimator as build_model
from models.flight_delay.spec import SPEC

CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES = (
    SPEC.categorical_features,
    SPEC.feature_names,
    SPEC.numeric_features,
)


def model_frame(examples: pd.DataFrame) -> pd.DataFrame:
    return frame_of(SPEC, examples)


def labels(examples: pd.DataFrame) -> np.ndarray:
    return model_labels(SPEC, examples)


def synthetic_examples(n: int, seed: int = 0) -> pd.DataFrame:
    """Late flights are those in bad visibility or late in the day, plus noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "carrier": rng.choice(["UA", "AA", "B6"], n),
            "origin": rng.choice(["EWR", "JFK", "LGA"], n),
            "dest": rng.choice(["IAH", "MIA", "ORD"], n),
            "distance": rng.integers(200, 2500, n),
            "sched_hour": rng.integers(5, 23, n),
            "month": rng.integers(1, 13, n),
            "day_of_week": rng.integers(1, 8, n),
            **{c: rng.normal(size=n) for c in ("temp", "dewp", "humid", "wind_speed", "precip", "pressure")},
            "visib": rng.uniform(0, 10, n),
            "extra": 1,
        }
    )
    frame.loc[rng.random(n) < 0.1, "pressure"] = None
    risk = (frame["visib"] < 3).astype(int) + (frame["sched_hour"] > 17).astype(int) + rng.normal(0, 0.5, n)
    frame["label"] = (risk > 0.8).astype(int)
    return frame


def test_model_frame_has_exactly_the_features_with_fixed_types():
    examples = synthetic_examples(50)

    frame = model_frame(examples)

    assert list(frame.columns) == list(FEATURE_COLUMNS)
    assert all(frame[c].dtype == object for c in CATEGORICAL_FEATURES)
    assert all(frame[c].dtype == "float64" for c in NUMERIC_FEATURES)
    assert frame["pressure"].isna().sum() == examples["pressure"].isna().sum() > 0


def test_model_frame_names_missing_columns():
    with pytest.raises(ValueError, match=r"model 'flight_delay': examples lack the feature columns \['visib'\]"):
        model_frame(synthetic_examples(5).drop(columns=["visib"]))


def test_model_learns_the_signal_and_not_from_shuffled_labels():
    train, test = synthetic_examples(3000, seed=1), synthetic_examples(1000, seed=2)
    x_train, y_train, x_test, y_test = model_frame(train), labels(train), model_frame(test), labels(test)

    good = build_model(seed=0).fit(x_train, y_train)
    bad = build_model(seed=0).fit(x_train, shuffled(y_train, seed=0))

    assert roc_auc(y_test, predict_proba(good, x_test)) > 0.85
    assert roc_auc(y_test, predict_proba(bad, x_test)) < 0.6


def test_unseen_categories_are_ignored_at_prediction_time():
    train = synthetic_examples(500)
    model = build_model(seed=0).fit(model_frame(train), labels(train))
    unseen = model_frame(synthetic_examples(3).assign(carrier="ZZ", dest="XXX"))

    probabilities = predict_proba(model, unseen)

    assert probabilities.shape == (3,)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_shuffled_labels_are_a_permutation():
    y = np.array([0, 0, 0, 1, 1, 0, 1, 0, 0, 1])

    permuted = shuffled(y, seed=3)

    assert sorted(permuted) == sorted(y)
    assert not np.array_equal(permuted, y)


def test_unknown_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match=r"unknown hyperparameters \['depth'\]"):
        build_model(depth=3)


def test_labels_must_be_complete():
    with pytest.raises(ValueError, match="missing labels"):
        labels(pd.DataFrame({"label": [1, None]}))


def test_labels_of_a_classifier_are_zero_or_one():
    with pytest.raises(ValueError, match=r"a classifier's labels must be 0 or 1, got the classes \[0, 2\]"):
        labels(pd.DataFrame({"label": [0, 2]}))


def test_the_flight_model_signature_is_unchanged():
    # The signature served models were logged with: categoricals as strings, numerics as doubles, weather optional,
    # the class as int64.
    signature = model_signature(SPEC)

    inputs = {c.name: (c.type.name, c.required) for c in signature.inputs.inputs}
    assert list(inputs) == list(FEATURE_COLUMNS)
    assert inputs["carrier"] == ("string", True)
    assert inputs["distance"] == ("double", True)
    assert inputs["visib"] == ("double", False)
    assert [str(o.type) for o in signature.outputs.inputs] == ["int64"]
