"""The training side for a regressor: its frame, labels and signature from a declaration built here, its metrics,
its slices judged on mean absolute error, its gates and its promotion in the error's direction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from jobs.core.decisions import (
    MetricGate,
    metric_gates,
    promotion_decision,
    slice_problems,
    validation_decision,
)
from jobs.core.evaluation import (
    SLICE_METRIC,
    SliceMetric,
    greater_is_better,
    quality_metrics,
    regression_metrics,
    slice_metrics,
)
from jobs.core.model import labels, model_frame, model_signature, predictions, scores
from spec.model import Column, Feature, ModelSpec, ValidationSpec

# A small regressor: minutes of delay of a delivery, from its depot, its distance and the rain (which may be missing).
SPEC = ModelSpec(
    name="delivery_minutes",
    problem_type="regression",
    description="Minutes a delivery is late",
    sources=("deliveries",),
    key=(Column(name="delivery_id", type="BIGINT"), Column(name="day", type="DATE")),
    event_date="day",
    event_time="promised_at",
    features=(
        Feature(name="depot", kind="categorical"),
        Feature(name="km", kind="numeric"),
        Feature(name="rain_mm", kind="numeric", optional=True),
    ),
    label_delay_days=0,
    validation=ValidationSpec(
        primary_metric="mean_absolute_error",
        thresholds={"mean_absolute_error": 5.0, "r2_score": 0.3},
        slices=("depot",),
        min_slice_rows=20,
    ),
    drift_features=("km", "prediction"),
    online_key=("delivery_id",),
    request_example={"depot": "north", "km": 3.5, "rain_mm": 0.0},
)


def deliveries(n: int, seed: int = 0) -> pd.DataFrame:
    """Late minutes grow with the distance, and more in the rain at the hill depot."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "delivery_id": np.arange(n),
            "depot": rng.choice(["north", "hill", "port"], n),
            "km": rng.integers(1, 30, n),
            "rain_mm": rng.uniform(0, 10, n),
            "extra": "ignored",
        }
    )
    frame.loc[rng.random(n) < 0.1, "rain_mm"] = None
    rain = frame["rain_mm"].fillna(0.0)
    frame["label"] = 0.8 * frame["km"] + (frame["depot"] == "hill") * rain * 1.5 + rng.normal(0, 1.0, n)
    return frame


def regressor(seed: int = 0) -> Pipeline:
    encode = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), ["depot"]),
            ("numeric", "passthrough", ["km", "rain_mm"]),
        ]
    )
    return Pipeline([("encode", encode), ("regress", HistGradientBoostingRegressor(random_state=seed))])


def test_a_regressor_frame_has_its_features_with_fixed_types_and_float_labels():
    examples = deliveries(40)

    frame, y = model_frame(SPEC, examples), labels(SPEC, examples)

    assert list(frame.columns) == ["depot", "km", "rain_mm"]
    assert frame["depot"].dtype == object
    assert frame["km"].dtype == frame["rain_mm"].dtype == "float64"
    assert frame["rain_mm"].isna().sum() == examples["rain_mm"].isna().sum() > 0
    assert y.dtype == np.float64
    assert np.allclose(y, examples["label"])


def test_a_regressor_frame_names_the_model_and_the_missing_columns():
    with pytest.raises(ValueError, match=r"model 'delivery_minutes': examples lack the feature columns \['km'\]"):
        model_frame(SPEC, deliveries(3).drop(columns=["km"]))
    with pytest.raises(ValueError, match="model 'delivery_minutes': examples have missing labels"):
        labels(SPEC, pd.DataFrame({"label": [1.5, None]}))


def test_a_regressor_signature_answers_a_double_and_does_not_require_the_optional_feature():
    signature = model_signature(SPEC)

    inputs = {c.name: (c.type.name, c.required) for c in signature.inputs.inputs}
    assert inputs == {"depot": ("string", True), "km": ("double", True), "rain_mm": ("double", False)}
    assert [str(o.type) for o in signature.outputs.inputs] == ["float64"]


def test_a_regressor_learns_and_is_measured_on_its_predicted_values():
    train, test = deliveries(2000, seed=1), deliveries(500, seed=2)
    model = regressor().fit(model_frame(SPEC, train), labels(SPEC, train))
    shuffled_model = regressor().fit(
        model_frame(SPEC, train), np.random.default_rng(0).permutation(labels(SPEC, train))
    )

    predicted = scores(SPEC, model, model_frame(SPEC, test))
    good = quality_metrics(SPEC.problem_type, labels(SPEC, test), predicted)
    bad = quality_metrics(SPEC.problem_type, labels(SPEC, test), scores(SPEC, shuffled_model, model_frame(SPEC, test)))

    assert np.array_equal(predictions(SPEC, predicted), predicted)
    assert good["r2_score"] > 0.9 and bad["r2_score"] < 0.1
    assert good["mean_absolute_error"] < 1.5 < bad["mean_absolute_error"]
    assert good["rows"] == 500.0


def test_regression_metrics_on_a_small_example():
    metrics = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 3.0, 2.0]))

    assert metrics["mean_absolute_error"] == 0.75  # |1| + 0 + 0 + |2|, over 4
    assert metrics["mean_squared_error"] == 1.25  # 1 + 0 + 0 + 4, over 4
    assert metrics["root_mean_squared_error"] == pytest.approx(math.sqrt(1.25))
    assert metrics["r2_score"] == pytest.approx(1 - 5.0 / 5.0)  # residual 5 over a total of 5: no better than the mean
    assert (metrics["rows"], metrics["mean_label"]) == (4.0, 2.5)
    assert set(metrics) >= set(SLICE_METRIC.values()) - {"roc_auc"}


def test_r2_is_undefined_when_the_labels_do_not_vary():
    assert math.isnan(regression_metrics(np.array([3.0, 3.0]), np.array([2.0, 4.0]))["r2_score"])
    with pytest.raises(ValueError, match="unknown problem type 'ranking'"):
        quality_metrics("ranking", np.array([1.0]), np.array([1.0]))


def test_errors_are_better_lower_and_scores_higher():
    assert not greater_is_better("mean_absolute_error") and not greater_is_better("root_mean_squared_error")
    assert greater_is_better("r2_score") and greater_is_better("roc_auc")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        greater_is_better("f1")


def test_regression_slices_are_judged_on_mean_absolute_error():
    frame = pd.DataFrame({"depot": ["north"] * 3 + ["hill"] * 3 + ["port"]})
    y = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 5.0])
    predicted = np.array([1.0, 2.0, 4.0, 4.0, 5.0, 6.0, 5.0])

    slices = slice_metrics(frame, y, predicted, ("depot",), min_rows=2, metric=SLICE_METRIC["regression"])

    assert slices == [
        SliceMetric("depot", "hill", 3, 3.0, "mean_absolute_error"),
        SliceMetric("depot", "north", 3, pytest.approx(1 / 3), "mean_absolute_error"),
    ]
    assert slices[0].metric_key == "slice_mean_absolute_error.depot.hill"
    # An error above the bound fails the slice (an error is better lower).
    assert slice_problems(slices, min_rows=2, bound=2.0) == [
        "slice depot=hill (3 rows): mean_absolute_error 3.0000 > 2.0000"
    ]
    outcome = validation_decision(
        metadata_problems=[], metric_failures=[], slices=slices, min_slice_rows=2, slice_bound=4.0
    )
    assert outcome.passed
    assert outcome.reasons == ("metadata, metric gates and 2 slices with >= 2 rows passed",)


def test_a_regressor_gates_are_its_thresholds_in_each_metric_direction():
    gates = metric_gates(SPEC.validation.thresholds, SPEC.validation.primary_metric, 0.05, None)

    assert gates == [
        MetricGate(
            "max_mean_absolute_error", "mean_absolute_error", 5.0, "mean_absolute_error must be <= 5.0000", False
        ),
        MetricGate("min_r2_score", "r2_score", 0.3, "r2_score must be >= 0.3000", True),
    ]


def test_against_a_champion_an_error_may_rise_at_most_the_relative_drop():
    gates = metric_gates({}, "mean_absolute_error", 0.05, 4.0)

    assert gates == [
        MetricGate(
            "vs_champion",
            "mean_absolute_error",
            pytest.approx(4.2),
            "mean_absolute_error must be <= 4.2000 (champion 4.0000 + 5%)",
            False,
        )
    ]
    # A score that may be negative (r2) may fall by the drop of its size, never rise.
    (r2_gate,) = metric_gates({}, "r2_score", 0.5, -0.2)
    assert r2_gate.threshold == pytest.approx(-0.3)
    with pytest.raises(ValueError, match="unknown metric 'mape'"):
        metric_gates({"mape": 0.1}, "mean_absolute_error", 0.05, None)


def test_promotion_on_an_error_prefers_the_lower():
    assert promotion_decision(3.9, 4.0, "mean_absolute_error", 0.0, None).promote
    worse = promotion_decision(4.3, 4.0, "mean_absolute_error", 0.2, None)
    assert not worse.promote
    assert worse.reason == "challenger mean_absolute_error 4.3000 > champion 4.0000 + margin 0.2000"
    first = promotion_decision(6.0, None, "mean_absolute_error", 0.0, 5.0)
    assert not first.promote
    assert first.reason == "no champion yet: challenger mean_absolute_error 6.0000 > business threshold 5.0000"
    assert promotion_decision(6.0, None, "mean_absolute_error", 0.0, None).promote


def test_a_classifier_is_gated_and_promoted_on_the_environment_a_regressor_on_its_declaration():
    from jobs.deploy import promotion_terms
    from jobs.validate import gates
    from models.flight_delay.spec import SPEC as FLIGHT_DELAY
    from spec.config import Promotion, Validation

    # The environment's min_roc_auc is the classifier's floor (config tightens it per environment) ...
    strict = Validation(min_roc_auc=0.7)
    assert gates(FLIGHT_DELAY, strict, None) == [MetricGate("min_roc_auc", "roc_auc", 0.7, "roc_auc must be >= 0.7000")]
    # ... and has nothing to say about a regressor, gated on its declared thresholds and its champion's error.
    assert [(g.name, g.threshold) for g in gates(SPEC, strict, 4.0)] == [
        ("max_mean_absolute_error", 5.0),
        ("min_r2_score", 0.3),
        ("vs_champion", pytest.approx(4.2)),
    ]
    assert promotion_terms(FLIGHT_DELAY, Promotion()) == ("roc_auc", 0.62)
    assert promotion_terms(SPEC, Promotion()) == ("mean_absolute_error", 5.0)
