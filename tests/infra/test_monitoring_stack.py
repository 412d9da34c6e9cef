"""The watch of the production loop as synthesized: the monitored tables, a quality monitor on each with the
columns and settings of spec/monitoring.py and config, SQL alerts whose query text is byte-identical to what the
local warehouse runs, each notifying someone, and the retraining job started by the drift metrics' updates."""

from __future__ import annotations

import pytest

from spec import monitoring
from spec.config import ENVIRONMENTS
from tests.support.stacks import resolve, resources, resources_of

ENV_NAMES = list(ENVIRONMENTS)
# The flight-delay model's columns (every environment runs it).
_MODEL = ENVIRONMENTS["prod"].model
CATEGORICAL_FEATURES, NUMERIC_FEATURES = _MODEL.categorical_features, _MODEL.numeric_features
FEATURE_COLUMNS, PREDICTION_COLUMNS = _MODEL.feature_names, _MODEL.prediction_columns


def test_the_monitored_columns_are_the_predictions_with_a_sql_type_each():
    [monitored, _served] = monitoring.monitored_tables(ENVIRONMENTS["prod"])
    types = dict(monitored.columns)
    assert list(types) == list(PREDICTION_COLUMNS) and monitored.features == FEATURE_COLUMNS
    assert {types[c] for c in NUMERIC_FEATURES} == {"DOUBLE"} and {types[c] for c in CATEGORICAL_FEATURES} == {"STRING"}
    key_types = (types["prediction"], types["probability"], types["label"], types["flight"])
    assert key_types == ("INT", "DOUBLE", "INT", "BIGINT")


@pytest.mark.parametrize("name", ENV_NAMES)
def test_every_alert_query_is_the_text_the_local_warehouse_runs(synthesized, name):
    env = ENVIRONMENTS[name]
    synthesized_alerts = {
        b["display_name"]: b for b in resources_of(synthesized[name], "databricks_alert_v2", env.model_name).values()
    }
    specs = monitoring.alerts(env)
    assert len(specs) == 4
    assert sorted(synthesized_alerts) == sorted(f"[{name}] {s.name}" for s in specs)
    for spec in specs:
        alert = synthesized_alerts[f"[{name}] {spec.name}"]
        assert alert["query_text"] == spec.query_text
        assert alert["evaluation"]["source"] == {"name": "triggered"}
        assert (alert["evaluation"]["comparison_operator"], alert["evaluation"]["empty_result_state"]) == (
            "GREATER_THAN",
            "ERROR",
        )
        subscriptions = alert["evaluation"]["notification"]["subscriptions"]
        assert all({"user_email": e} in subscriptions for e in env.alerts.emails)
        assert len(subscriptions) == len(env.alerts.emails) + (1 if env.alerts.webhook_destination_name else 0)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_each_monitored_table_has_an_inference_log_monitor_with_its_baseline(synthesized, name):
    env = ENVIRONMENTS[name]
    stack = synthesized[name]
    monitors = {
        resolve_name(stack, b["table_name"]): b
        for b in resources_of(stack, "databricks_quality_monitor", env.model_name).values()
    }
    assert sorted(monitors) == sorted([env.predictions_table, env.served_table])
    for monitor in monitors.values():
        assert resolve_name(stack, monitor["baseline_table_name"]) == env.baseline_table
        assert monitor["inference_log"] == [
            {
                "granularities": ["1 day", "1 week"],
                "label_col": "label",
                "model_id_col": "model_version",
                "prediction_col": "prediction",
                "prediction_proba_col": "probability",
                "problem_type": "PROBLEM_TYPE_CLASSIFICATION",
                "timestamp_col": "sched_departure",
            }
        ]
        assert monitor["slicing_exprs"] == ["origin", "carrier"]
        # Refreshed by the daily-monitoring job after the labels, not on a clock of its own.
        assert "schedule" not in monitor
    tables = {
        resolve_name(stack, f"{b['catalog_name']}.{b['schema_name']}.{b['name']}"): b
        for b in resources_of(stack, "databricks_sql_table", env.model_name).values()
    }
    assert sorted(tables) == sorted([env.predictions_table, env.served_table, env.baseline_table])
    for table in tables.values():
        assert [c["name"] for c in table["column"]] == list(PREDICTION_COLUMNS)


def resolve_name(stack: dict, text: str) -> str:
    return ".".join(resolve(stack, part) if part.startswith("${") else part for part in _split_refs(text))


def _split_refs(text: str) -> list[str]:
    """``${a.b.c}.${d.e.f}.name`` -> the three dotted parts, references kept whole."""
    parts, current, depth = [], "", 0
    for char in text:
        depth += char == "{"
        depth -= char == "}"
        if char == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


@pytest.mark.parametrize("name", ENV_NAMES)
def test_the_daily_job_refreshes_the_monitors_then_runs_the_alerts_then_retraining(synthesized, name):
    stack = synthesized[name]
    (job,) = [
        b
        for b in resources(stack, "databricks_job").values()
        if b["name"] == f"[{name}] {ENVIRONMENTS[name].model_name}/daily-monitoring"
    ]
    tasks = {t["task_key"]: t for t in job["task"]}
    assert job["schedule"]["quartz_cron_expression"] == "0 0 6 * * ?"
    assert tasks["refresh_monitors"]["python_wheel_task"]["entry_point"] == "mlops-refresh-monitors"
    alert_tasks = [t for t in job["task"] if "alert_task" in t]
    model = ENVIRONMENTS[name].model_name
    assert len(alert_tasks) == len(resources_of(stack, "databricks_alert_v2", model)) == 4
    assert all(t["depends_on"] == [{"task_key": "refresh_monitors"}] for t in alert_tasks)
    assert tasks["retraining"]["depends_on"] == [{"task_key": t["task_key"]} for t in alert_tasks]
    (retraining,) = [
        b
        for b in resources(stack, "databricks_job").values()
        if b["name"] == f"[{name}] {ENVIRONMENTS[name].model_name}/retraining"
    ]
    assert "trigger" not in retraining and "schedule" not in retraining
    assert retraining["max_concurrent_runs"] == 1
    # The alerts' own schedules stay paused: the job evaluates them right after the refresh they read.
    assert {a["schedule"]["pause_status"] for a in resources(stack, "databricks_alert_v2").values()} == {"PAUSED"}


# --- A regression model's watch --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regression_stack(tmp_path_factory):
    """dev's stack with a regressor as its model (declared in the tests, tests/support/regression_model.py: the
    platform finds it as it finds a package under models/), synthesized once."""
    import sys
    import types

    from infra.main import build_app
    from spec.model import load_model_spec
    from tests.support.regression_model import REGRESSOR
    from tests.support.stacks import CODE_VERSION, load_stacks

    package = types.ModuleType(f"models.{REGRESSOR.name}.spec")
    package.SPEC = REGRESSOR
    outdir = tmp_path_factory.mktemp("regression.out")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, package.__name__, package)
        load_model_spec.cache_clear()
        try:
            env = ENVIRONMENTS["dev"].replace(
                models=({"name": REGRESSOR.name},),
                model_name=REGRESSOR.name,
                monitoring={"max_mean_absolute_error": 9.5},
            )
            build_app({env.name: env}, outdir=str(outdir), code_version=CODE_VERSION).synth()
            specs = monitoring.alerts(env)
        finally:
            load_model_spec.cache_clear()
    [stack] = load_stacks(outdir).values()
    return env, stack, specs


def test_a_regressors_monitors_have_its_problem_type_and_no_probability(regression_stack):
    env, stack, specs = regression_stack
    monitors = {
        resolve_name(stack, b["table_name"]): b
        for b in resources_of(stack, "databricks_quality_monitor", env.model_name).values()
    }
    assert sorted(monitors) == sorted([env.predictions_table, env.served_table])
    for monitor in monitors.values():
        assert monitor["inference_log"] == [
            {
                "granularities": ["1 day", "1 week"],
                "label_col": "label",
                "model_id_col": "model_version",
                "prediction_col": "prediction",
                "problem_type": "PROBLEM_TYPE_REGRESSION",
                "timestamp_col": "started_at",
            }
        ]
        assert monitor["slicing_exprs"] == ["station"]
    tables = {
        resolve_name(stack, f"{b['catalog_name']}.{b['schema_name']}.{b['name']}"): b
        for b in resources_of(stack, "databricks_sql_table", env.model_name).values()
    }
    assert sorted(tables) == sorted([env.predictions_table, env.served_table, env.baseline_table])
    for table in tables.values():
        columns = {c["name"]: c["type"] for c in table["column"]}
        assert "probability" not in columns and (columns["prediction"], columns["label"]) == ("DOUBLE", "DOUBLE")
        assert (columns["started_at"], columns["ended_at"], columns["ride_id"]) == ("TIMESTAMP", "TIMESTAMP", "BIGINT")
    synthesized_alerts = {b["display_name"]: b for b in resources(stack, "databricks_alert_v2").values()}
    assert sorted(synthesized_alerts) == sorted(f"[{env.name}] {s.name}" for s in specs)
    for spec in specs:
        assert synthesized_alerts[f"[{env.name}] {spec.name}"]["query_text"] == spec.query_text
        if spec.kind == "model_quality":
            assert "mean_absolute_error > 9.5" in spec.query_text
