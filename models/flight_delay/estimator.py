"""The flight-delay estimator: one-hot carrier, origin and destination (rare values pooled, unseen ones ignored),
numeric features passed through, then a histogram gradient-boosted classifier, which handles missing weather natively
and trains in seconds on tens of thousands of rows."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from models.flight_delay.columns import CATEGORICAL_FEATURES, NUMERIC_FEATURES

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


def build_estimator(seed: int = 0, **overrides: object) -> Pipeline:
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
