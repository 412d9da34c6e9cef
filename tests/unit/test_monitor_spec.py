"""What spec.monitoring builds from an environment's model: the monitored tables (timestamp, problem type, features,
drift columns, columns with their types) and the alert queries, for the flight-delay classifier and for a regressor
declared in the tests (tests/support/regression_model.py); and the stack's ``inference_log`` for each."""

from __future__ import annotations

import pytest

from infra.constructs.monitoring import inference_log
from spec.base import ConfigError
from spec.config import ENVIRONMENTS
from spec.monitoring import alerts, monitored_tables, quality_rule
from tests.support.regression_model import REGRESSOR

PROD = ENVIRONMENTS["prod"]
REGRESSION_PROD = PROD.replace(monitoring={"max_mean_absolute_error": 9.5})


def test_the_flight_models_tables_carry_its_declaration():
    model = PROD.model
    for monitored in monitored_tables(PROD):
        assert (monitored.timestamp_col, monitored.problem_type) == (model.event_time, "classification")
        assert monitored.profiling_problem_type == "PROBLEM_TYPE_CLASSIFICATION"
        assert monitored.features == model.monitored and monitored.drift_alert_columns == model.drift_features
        assert monitored.columns == model.prediction_column_types
        assert monitored.prediction_proba_col == "probability"
        assert monitored.monitored_columns == (*model.monitored, "prediction", "probability", "label")
        assert monitored.class_columns == ("prediction", "label")
        # No slicing in config: the model's own
        assert monitored.slicing_exprs == model.slicing_exprs


def test_a_regressors_tables_have_no_probability_and_no_classes():
    for monitored in monitored_tables(REGRESSION_PROD, REGRESSOR):
        assert (monitored.timestamp_col, monitored.problem_type) == ("started_at", "regression")
        assert monitored.profiling_problem_type == "PROBLEM_TYPE_REGRESSION"
        assert monitored.prediction_proba_col is None and monitored.class_columns == ()
        assert monitored.monitored_columns == ("station", "distance_km", "hour", "temperature", "prediction", "label")
        assert monitored.drift_alert_columns == ("distance_km", "temperature", "prediction")
        assert dict(monitored.columns)["prediction"] == dict(monitored.columns)["label"] == "DOUBLE"
        assert "probability" not in dict(monitored.columns)
        assert monitored.slicing_exprs == ("station",)


def test_a_regressors_quality_alert_reads_the_mean_absolute_error_above_its_threshold():
    specs = alerts(REGRESSION_PROD, REGRESSOR)
    quality = [s for s in specs if s.kind == "model_quality"]
    drift = [s for s in specs if s.kind == "feature_drift"]
    assert [s.starts_retraining for s in quality] == [True, False]
    for spec in quality:
        assert "MAX(q.mean_average_error) AS mean_absolute_error" in spec.query_text
        assert "mean_absolute_error > 9.5" in spec.query_text and "roc_auc" not in spec.query_text
        assert spec.description == f"mean absolute error of {spec.monitored.table} rose above 9.5"
    for spec in drift:
        assert "d.column_name IN ('distance_km', 'temperature', 'prediction')" in spec.query_text


def test_the_flight_models_quality_alert_reads_the_roc_auc():
    for spec in (s for s in alerts(PROD) if s.kind == "model_quality"):
        assert "MIN(q.roc_auc_score) AS roc_auc" in spec.query_text and f"roc_auc < {PROD.monitoring.min_roc_auc}" in (
            spec.query_text
        )
        assert spec.description == f"ROC AUC of {spec.monitored.table} fell below {PROD.monitoring.min_roc_auc}"


def test_no_alert_text_names_the_flight_model_in_its_comments():
    # (the tables' names carry the model's: that is config, not the text)
    for spec in alerts(PROD):
        comments = " ".join(line for line in spec.query_text.splitlines() if line.startswith("--"))
        assert "flight" not in comments.replace(spec.monitored.table, "<table>").lower()


def test_a_regression_model_without_a_quality_threshold_is_refused_naming_the_field():
    # Without config, the alert's bound is the one the declaration's validation puts on the mean absolute error.
    (predictions, _served) = monitored_tables(PROD, REGRESSOR)
    assert quality_rule(PROD, predictions).threshold == 8.0
    assert quality_rule(REGRESSION_PROD, predictions).threshold == 9.5
    undeclared = REGRESSOR.replace(validation={"thresholds": {"r2_score": 0.1}})
    with pytest.raises(
        ConfigError, match=r"environment 'prod': field 'monitoring.max_mean_absolute_error' is required"
    ):
        alerts(PROD, undeclared)
    [(monitored, _served)] = [monitored_tables(PROD, undeclared)]
    with pytest.raises(ConfigError) as raised:
        quality_rule(PROD, monitored)
    assert raised.value.problems[0][0] == "monitoring.max_mean_absolute_error"


def test_a_classifier_with_a_regression_threshold_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match=r"'monitoring.max_mean_absolute_error' is set \(9.5\) but the model is a"):
        alerts(REGRESSION_PROD)


def test_a_non_positive_regression_threshold_is_refused_at_config_load():
    with pytest.raises(ConfigError, match=r"monitoring.max_mean_absolute_error"):
        PROD.replace(monitoring={"max_mean_absolute_error": 0.0})


@pytest.mark.parametrize(
    ("env", "model", "problem_type", "probability", "timestamp"),
    [
        (PROD, None, "PROBLEM_TYPE_CLASSIFICATION", "probability", "sched_departure"),
        (REGRESSION_PROD, REGRESSOR, "PROBLEM_TYPE_REGRESSION", None, "started_at"),
    ],
    ids=["classifier", "regressor"],
)
def test_the_stacks_inference_log_renders_the_problem_type_and_columns(
    env, model, problem_type, probability, timestamp
):
    for monitored in monitored_tables(env, model):
        log = inference_log(monitored)
        assert (log.problem_type, log.prediction_proba_col, log.timestamp_col) == (problem_type, probability, timestamp)
        assert (log.prediction_col, log.label_col, log.model_id_col) == ("prediction", "label", "model_version")
        assert log.granularities == list(env.monitoring.granularities)
