"""The airport-delay estimator: one-hot airport, numeric features passed through, then a histogram gradient-boosted
regressor, which handles missing weather natively and trains in seconds on a year of airport-hours.

Its loss is the absolute error: the model is judged on the mean absolute error, and hourly mean delays are heavy
tailed (a storm's hours average hours of delay), which a squared loss would chase at the expense of ordinary hours.
"""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from models.airport_delay.spec import SPEC

HYPERPARAMETERS = {
    "loss": "absolute_error",
    "learning_rate": 0.1,
    "max_iter": 200,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 30,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 10,
}


def build_estimator(seed: int = 0, **overrides: object) -> Pipeline:
    """An unfitted pipeline over the model frame (the features, categoricals as strings, numerics as float64)."""
    unknown = sorted(set(overrides) - set(HYPERPARAMETERS))
    if unknown:
        raise TypeError(f"unknown hyperparameters {unknown}; known: {sorted(HYPERPARAMETERS)}")
    encode = ColumnTransformer(
        [
            # An airport not seen in training gets no column rather than an error.
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(SPEC.categorical_features),
            ),
            ("numeric", "passthrough", list(SPEC.numeric_features)),
        ],
        sparse_threshold=0.0,
    )
    regressor = HistGradientBoostingRegressor(random_state=seed, **{**HYPERPARAMETERS, **overrides})
    return Pipeline([("encode", encode), ("regress", regressor)])
