"""Every rule of spec.config: an invalid value is refused with the environment and exactly the field at fault named.

One case per rule (types, ranges, patterns, Literal values, and the rules across fields), each applied to prod as an
update, as a person editing the environments would make it."""

from __future__ import annotations

import pytest

from spec.config import ENVIRONMENTS, ConfigError

CREATE = {"resource_group": "rg", "location": "westeurope", "metastore_id": "m-1"}

# (changes to prod, the one field the error must name)
RULES = [
    ({"name": "Prod"}, "name"),
    ({"catalog": "prod-catalog"}, "catalog"),
    ({"schemas": ("raw", "features", "ml", "monitoring", "Bad")}, "schemas[4]"),
    ({"schemas": ("raw", "features", "ml", "monitoring", "ml")}, "schemas"),
    ({"schemas": ("raw", "features", "ml")}, "schemas"),
    ({"storage_root": "/mnt/prod"}, "storage_root"),
    ({"model_name": "flight-delay"}, "model_name"),
    ({"service_principal": ""}, "service_principal"),
    ({"ml_engineers_group": "data-scientists"}, "ml_engineers_group"),
    ({"data_scientists_group": ""}, "data_scientists_group"),
    ({"data_scientist_access": "admin"}, "data_scientist_access"),
    ({"cloud": "oracle"}, "cloud"),
    ({"experiment_dir": "Shared/mlops"}, "experiment_dir"),
    ({"job_retries": -1}, "job_retries"),
    ({"sql_warehouse_size": "Huge"}, "sql_warehouse_size"),
    ({"read_only_from": ("prod",)}, "read_only_from"),
    ({"unknown_field": 1}, "unknown_field"),
    # workspace
    ({"workspace": {"host": None}}, "workspace.host"),
    ({"workspace": {"host": "https://example.com"}}, "workspace.host"),
    ({"workspace": {"workspace_id": 42}}, "workspace.workspace_id"),
    ({"workspace": {"workspace_id": 0}}, "workspace.workspace_id"),
    ({"workspace": {"create": CREATE}}, "workspace.host"),
    ({"workspace": {"host": None, "create": {**CREATE, "metastore_id": ""}}}, "workspace.create.metastore_id"),
    ({"workspace": {"host": None, "create": {**CREATE, "sku": "gold"}}}, "workspace.create.sku"),
    ({"workspace": {"host": None, "create": CREATE}, "storage_root": None}, "storage_root"),
    (
        {"cloud": "aws", "workspace": {"host": None, "create": CREATE}},
        "workspace.create",
    ),
    ({"cloud": "aws", "workspace": {"host": "https://dbc-1.cloud.databricks.com"}}, "workspace.workspace_id"),
    # identities
    ({"account": {"account_id": "not-a-uuid"}}, "account.account_id"),
    ({"account": {"host": "http://accounts"}}, "account.host"),
    ({"ci_federation": {"issuer": "http://token"}}, "ci_federation.issuer"),
    ({"ci_federation": {"repository": "mlops-databricks"}}, "ci_federation.repository"),
    ({"ci_azure_devops": {"organization_id": "org"}}, "ci_azure_devops.organization_id"),
    ({"ci_azure_devops": {"organization": "example org"}}, "ci_azure_devops.organization"),
    ({"ci_azure_devops": {"project": "a/b"}}, "ci_azure_devops.project"),
    ({"ci_azure_devops": {"pipeline": ""}}, "ci_azure_devops.pipeline"),
    ({"state_backend": {"storage_account": "Bad_Account"}}, "state_backend.storage_account"),
    # compute
    ({"compute": {"num_workers": -1}}, "compute.num_workers"),
    ({"compute": {"num_workers": 5}}, "compute.max_workers"),
    ({"compute": {"max_workers": 0}}, "compute.max_workers"),
    ({"compute": {"serverless_environment_version": "9"}}, "compute.serverless_environment_version"),
    ({"compute": {"spark_version": "12.2.x-scala2.12"}}, "compute.spark_version"),
    ({"compute": {"node_types": {"aws": "m6gd.xlarge"}}}, "compute.node_types"),
    ({"compute": {"node_types": {"azure": "x", "ibm": "y"}}}, "compute.node_types[ibm]"),
    # validation and promotion
    ({"validation": {"run_mode": "sometimes"}}, "validation.run_mode"),
    ({"validation": {"min_roc_auc": 1.5}}, "validation.min_roc_auc"),
    ({"validation": {"min_slice_roc_auc": -0.1}}, "validation.min_slice_roc_auc"),
    ({"validation": {"min_slice_rows": 0}}, "validation.min_slice_rows"),
    ({"validation": {"max_relative_drop_vs_champion": 2}}, "validation.max_relative_drop_vs_champion"),
    ({"validation": {"max_positive_rate_gap": 1.01}}, "validation.max_positive_rate_gap"),
    ({"promotion": {"margin": 1.0}}, "promotion.margin"),
    ({"promotion": {"margin": -0.01}}, "promotion.margin"),
    ({"promotion": {"min_gain": -0.01}}, "promotion.min_gain"),
    ({"promotion": {"min_gain": 0.01, "margin": 0.01}}, "promotion.min_gain"),
    ({"promotion": {"business_threshold": 1.2}}, "promotion.business_threshold"),
    ({"promotion": {"metric": ""}}, "promotion.metric"),
    # serving
    ({"serving": {"endpoint_name": "Flight_Delay"}}, "serving.endpoint_name"),
    ({"serving": {"workload_size": "Tiny"}}, "serving.workload_size"),
    ({"serving": {"challenger_traffic_percent": 51}}, "serving.challenger_traffic_percent"),
    ({"serving": {"consumers": ()}}, "serving.consumers"),
    ({"serving": {"consumers": ("flight-ops", "ml-engineers")}}, "serving.consumers"),
    ({"serving": {"consumers": ("mlops-prod",)}}, "serving.consumers"),
    ({"serving": {"update_timeout_minutes": 4}}, "serving.update_timeout_minutes"),
    ({"serving": {"update_timeout_minutes": 121}}, "serving.update_timeout_minutes"),
    # inference
    ({"inference": {"streaming_mode": "micro"}}, "inference.streaming_mode"),
    ({"inference": {"streaming_mode": "continuous"}}, "inference.streaming_schedule"),
    (
        {"inference": {"streaming_mode": "continuous", "streaming_schedule": None}},
        "inference.streaming_mode",
    ),
    ({"inference": {"batch_schedule": {"quartz_cron": "0 5 * * *"}}}, "inference.batch_schedule.quartz_cron"),
    ({"inference": {"streaming_schedule": {"quartz_cron": "15 *"}}}, "inference.streaming_schedule.quartz_cron"),
    ({"inference": {"landing_volume": "Landing"}}, "inference.landing_volume"),
    ({"inference": {"max_files_per_trigger": 0}}, "inference.max_files_per_trigger"),
    # online store
    ({"online_store": {"table_name": "bad name"}}, "online_store.table_name"),
    ({"online_store": {"table_name": "x" * 200}}, "online_store.table_name"),
    ({"online_store": {"retry_mode": "legacy"}}, "online_store.retry_mode"),
    ({"online_store": {"max_attempts": 0}}, "online_store.max_attempts"),
    ({"online_store": {"endpoint_url": "localhost:8000"}}, "online_store.endpoint_url"),
    # monitoring
    ({"monitoring": {"granularities": ()}}, "monitoring.granularities"),
    ({"monitoring": {"granularities": ("1 day", "2 days")}}, "monitoring.granularities[1]"),
    ({"monitoring": {"alert_granularity": "1 day", "granularities": ("1 week",)}}, "monitoring.alert_granularity"),
    ({"monitoring": {"min_roc_auc": 1.1}}, "monitoring.min_roc_auc"),
    ({"monitoring": {"max_drift_psi": 0}}, "monitoring.max_drift_psi"),
    ({"monitoring": {"alert_windows": 0}}, "monitoring.alert_windows"),
    ({"monitoring": {"alert_breaches": 0}}, "monitoring.alert_breaches"),
    ({"monitoring": {"alert_breaches": 5}}, "monitoring.alert_breaches"),
    # The two rules the hand-written checks named by the wrong field:
    ({"monitoring": {"min_window_rows": 0}}, "monitoring.min_window_rows"),
    ({"retraining": {"max_rows": 999}}, "retraining.max_rows"),
    ({"monitoring": {"min_labelled_rows": 0}}, "monitoring.min_labelled_rows"),
    ({"monitoring": {"schedule": {"quartz_cron": "0 6 * * *"}}}, "monitoring.schedule.quartz_cron"),
    # retraining
    ({"retraining": {"window_days": 6}}, "retraining.window_days"),
    ({"retraining": {"max_model_age_days": 0}}, "retraining.max_model_age_days"),
    ({"retraining": {"alert_cooldown_days": -1}}, "retraining.alert_cooldown_days"),
    # online evaluation
    ({"online_evaluation": {"min_paired_rows": 10}}, "online_evaluation.min_paired_rows"),
    ({"online_evaluation": {"max_paired_rows": 500}}, "online_evaluation.max_paired_rows"),
    ({"online_evaluation": {"significance": 0.5}}, "online_evaluation.significance"),
    ({"online_evaluation": {"bootstrap_resamples": 10}}, "online_evaluation.bootstrap_resamples"),
    ({"online_evaluation": {"max_share_percent": 51}}, "online_evaluation.max_share_percent"),
    ({"online_evaluation": {"max_share_percent": 5}}, "online_evaluation.ramp_step_percent"),
    ({"online_evaluation": {"ramp_step_percent": 0}}, "online_evaluation.ramp_step_percent"),
    ({"online_evaluation": {"schedule": {"quartz_cron": "x"}}}, "online_evaluation.schedule.quartz_cron"),
    # alerts
    ({"alerts": {"emails": ("not-an-address",)}}, "alerts.emails[0]"),
    ({"alerts": {"emails": (), "webhook_destination_name": None}}, "alerts"),
]


@pytest.mark.parametrize(("changes", "field"), RULES, ids=[f"{f}-{i}" for i, (_, f) in enumerate(RULES)])
def test_an_invalid_value_names_prod_and_exactly_its_field(changes, field):
    with pytest.raises(ConfigError) as error:
        ENVIRONMENTS["prod"].replace(**changes)

    assert [f for f, _ in error.value.problems] == [field]
    name = changes.get("name", "prod")
    assert str(error.value).startswith(f"environment {name!r}: field {field!r} ")


def test_the_cases_cover_every_field_of_every_part_that_has_a_rule():
    """A field added with a constraint but no case here fails this test: each rule keeps its test."""
    named = {field.split("[")[0] for _, field in RULES}
    assert {"monitoring.min_window_rows", "retraining.max_rows", "compute.max_workers", "alerts"} <= named
    assert len(RULES) >= 90


def test_a_valid_update_is_accepted_and_unchanged_parts_stay_the_same_objects():
    prod = ENVIRONMENTS["prod"]
    changed = prod.replace(monitoring={"min_window_rows": 1}, serving={"challenger_traffic_percent": 50})
    assert (changed.monitoring.min_window_rows, changed.serving.challenger_traffic_percent) == (1, 50)
    assert changed.retraining is prod.retraining
