"""Why the stacks declare `databricks_quality_monitor` (Lakehouse Monitoring) and not the data-quality API's
`databricks_data_quality_monitor`, which provider 1.138 also has: the newer resource's inference log takes no
probability column, and without one data profiling computes no ROC AUC, which the model-quality alerts and the
retraining check read. When a provider release adds it, this test fails: move both monitors then (the metric tables
keep their names), and the monitor refresh to the data-quality API (databricks-sdk >= 0.68 `w.data_quality`; the
runtimes' preinstalled SDKs are older, runtime/*.txt)."""

from __future__ import annotations

import inspect

from cdktn_provider_databricks.data_quality_monitor import DataQualityMonitorDataProfilingConfigInferenceLog
from cdktn_provider_databricks.quality_monitor import QualityMonitorInferenceLog

from spec.config import ENVIRONMENTS
from spec.monitoring import alerts
from tests.support.stacks import resources_of


def _parameters(cls: type) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def test_the_data_quality_inference_log_has_no_probability_column_yet():
    newer = _parameters(DataQualityMonitorDataProfilingConfigInferenceLog)
    older = _parameters(QualityMonitorInferenceLog)

    assert newer == {
        "granularities", "model_id_column", "prediction_column", "problem_type", "timestamp_column", "label_column",
    }  # fmt: skip
    assert "prediction_proba_col" in older
    assert not [p for p in newer if "proba" in p or "score" in p]


def test_the_quality_alerts_read_the_roc_auc_that_only_a_probability_column_gives():
    quality = [a for a in alerts(ENVIRONMENTS["prod"]) if a.kind == "model_quality"]
    assert len(quality) == 2
    assert all("roc_auc" in a.query_text for a in quality)


def test_every_monitor_is_a_quality_monitor_with_its_probability_column(synthesized):
    for name, stack in synthesized.items():
        assert "databricks_data_quality_monitor" not in stack["resource"]
        for env in ENVIRONMENTS[name].scoped_models():
            monitors = resources_of(stack, "databricks_quality_monitor", env.model_name)
            assert len(monitors) == 2
            # A classifier's monitors read its probability (the ROC AUC of the quality alerts); a regressor has none.
            expected = {"probability"} if env.model.is_classifier else {None}
            assert {m["inference_log"][0].get("prediction_proba_col") for m in monitors.values()} == expected
