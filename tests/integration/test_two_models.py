"""Two models side by side in one environment (dev runs the flight-delay classifier and the airport-delay regressor),
through the integration-test graph (spec/workflows.py, ``integration_test``) that CI runs in staging: the same job
graph, run by the local runner with no change of platform code between the models, ingests, computes features,
trains, validates and deploys both, sends each endpoint its request example, scores both in batch and streaming,
publishes both, joins their labels, refreshes their monitors and evaluates their alerts, with the graph's check after
each step; then retrains one while the other stays as it was. And a step that writes nothing fails the graph at that
step's check, naming the step."""

from __future__ import annotations

import json

import pytest

from cli.commands.models import list_versions
from cli.commands.workflow import run_workflow
from spec.config import ENVIRONMENTS
from tests.support.gateway_process import mlops_serve

pytestmark = pytest.mark.integration

ENV = ENVIRONMENTS["dev"]
CLASSIFIER, REGRESSOR = "flight_delay", "airport_delay"
SHIPPED = (CLASSIFIER, REGRESSOR)
# The graph's own slice (its parameters' defaults), but for the inference table: locally the gateway writes the
# request's row before the requests step reads it, so a missing row fails in a minute, not in an hour.
SLICE = {"inference_wait_minutes": "1"}
TRAINING = {
    "start_date": "2013-01-01",
    "end_date": "2013-04-10",
    "training_start": "2013-01-15",
    "training_end": "2013-04-05",
    "max_rows": "12000",
}


def succeeded(run) -> dict[str, str]:
    assert run.status == "SUCCESS", {key: (t.status, t.error) for key, t in run.tasks.items()}
    return {key: task.status for key, task in run.tasks.items()}


def table_rows(full_name: str) -> list[dict]:
    from deltalake import DeltaTable

    from local.paths import table_path

    return DeltaTable(str(table_path(full_name))).to_pyarrow_table().to_pylist()


@pytest.fixture(scope="module")
def lifecycle(mlops_home, spark):
    """The integration-test graph of each model; then a retraining of the regressor alone, with the versions of both
    before and after it."""
    # dev's shipped models, first in its list; a model a user adds (`mlops init model`) is tested by its own tests.
    assert ENV.model_names[:2] == SHIPPED
    runs = {model: run_workflow(ENV.name, "integration-test", SLICE, model) for model in SHIPPED}
    before = {model: _versions(model) for model in SHIPPED}
    runs[REGRESSOR, "retraining"] = run_workflow(ENV.name, "model-training", TRAINING, REGRESSOR)
    runs["versions"] = (before, {model: _versions(model) for model in SHIPPED})
    return runs


def _versions(model: str) -> list[str]:
    return sorted((r.version for r in list_versions(ENV.name, model=model)), key=int)


@pytest.mark.parametrize("model", [CLASSIFIER, REGRESSOR])
def test_both_models_train_validate_and_deploy_their_own_registered_model(lifecycle, model):
    statuses = succeeded(lifecycle[model])
    assert statuses["deploy"] == statuses["check_deploy"] == "SUCCESS"
    scoped = ENV.with_model(model)
    values = lifecycle[model].tasks["train"].values
    assert values["model_name"] == scoped.registered_model == f"dev.ml.{model}"
    assert lifecycle[model].tasks["deploy"].values == {
        "promoted": "true",
        "champion_version": "1",
        "awaiting_approval": "false",
    }
    first = {r.version: r for r in list_versions(ENV.name, model=model)}["1"]
    # The regressor's retraining below may promote its version 2: version 1 is then the previous champion.
    assert first.validation_status == "PASSED" and {"champion", "previous_champion"} & set(first.aliases)


@pytest.mark.parametrize("model", [CLASSIFIER, REGRESSOR])
def test_both_score_in_batch_and_streaming_and_publish(lifecycle, model):
    scoped = ENV.with_model(model)
    run = lifecycle[model]
    for step in ("score_batch", "score_stream"):
        assert int(run.tasks[step].values["scored_rows"]) > 0
    assert int(run.tasks["land"].values["landed_rows"]) > 0
    assert int(run.tasks["publish"].values["published_items"]) > 0
    rows = table_rows(scoped.predictions_table)
    sources = {r["source"] for r in rows}
    assert {"batch", "stream"} <= sources, sources
    assert {r["model_name"] for r in rows} == {scoped.registered_model}
    # A classifier's prediction is a class with its probability; a regressor's a number of minutes, and no probability.
    if scoped.model.is_classifier:
        assert {r["prediction"] for r in rows} <= {0, 1} and all(0 <= r["probability"] <= 1 for r in rows)
    else:
        assert "probability" not in rows[0] and any(r["prediction"] not in (0, 1) for r in rows)


@pytest.mark.parametrize("model", [CLASSIFIER, REGRESSOR])
def test_both_join_labels_refresh_their_monitors_and_evaluate_their_alerts(lifecycle, model):
    scoped = ENV.with_model(model)
    statuses = succeeded(lifecycle[model])
    alert_tasks = [key for key in statuses if key.startswith("alert_")]
    assert len(alert_tasks) == 4 and all(key.startswith(f"alert_{model}_") for key in alert_tasks)
    labelled = [r for r in table_rows(scoped.predictions_table) if r["label"] is not None]
    assert labelled, f"no prediction of {model} got its label"
    from spec.monitoring import monitored_tables

    predictions = monitored_tables(scoped)[0]
    profile = table_rows(predictions.profile_metrics_table)
    whole = [r for r in profile if r["column_name"] == ":table" and r["slice_key"] is None]
    quality = "roc_auc_score" if scoped.model.is_classifier else "mean_squared_error"
    assert any(r[quality] is not None for r in whole), f"{model}'s monitor computed no {quality}"
    history = table_rows(scoped.alert_history_table)
    evaluated = {r["alert"] for r in history}
    assert {f"{model}_predictions_model_quality", f"{model}_predictions_feature_drift"} <= evaluated


def test_retraining_one_model_leaves_the_other_as_it_was(lifecycle):
    succeeded(lifecycle[REGRESSOR, "retraining"])
    before, after = lifecycle["versions"]
    assert after[REGRESSOR] == [*before[REGRESSOR], str(len(before[REGRESSOR]) + 1)]
    assert after[CLASSIFIER] == before[CLASSIFIER] and before[CLASSIFIER]


@pytest.mark.parametrize("model", [CLASSIFIER, REGRESSOR])
def test_each_model_is_served_on_its_own_endpoint(lifecycle, model):
    import httpx

    from local.paths import mlops_home
    from local.serving.auth import client_token

    scoped = ENV.with_model(model)
    with mlops_serve("--env", ENV.name, "--model", model) as served:
        token = client_token(mlops_home() / "serving").value
        body = {"dataframe_records": [dict(scoped.model.request_example)]}
        answer = httpx.post(
            f"{served.base}/serving-endpoints/{scoped.endpoint_name}/invocations",
            content=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=30,
        )
        other = ENV.with_model(REGRESSOR if model == CLASSIFIER else CLASSIFIER).endpoint_name
        elsewhere = httpx.post(
            f"{served.base}/serving-endpoints/{other}/invocations",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    if scoped.model.is_classifier:
        assert prediction in (0, 1)
    else:
        assert isinstance(prediction, float)
    assert elsewhere.status_code == 404


@pytest.mark.parametrize("model", [CLASSIFIER, REGRESSOR])
def test_the_request_example_went_through_the_endpoint_into_the_inference_table(lifecycle, model):
    scoped = ENV.with_model(model)
    answers = json.loads(lifecycle[model].tasks["check_requests"].values["answers"])
    assert len(answers) == len([scoped.model.request_example])
    logged = [
        r for r in table_rows(scoped.inference_table) if (r["client_request_id"] or "").startswith("integration-test-")
    ]
    assert [(r["status_code"], r["model_version"]) for r in logged] == [(200, "1")]
    assert json.loads(logged[0]["response"])["predictions"] == answers


def _only(graph, step: str):
    """The integration-test graph cut to its start task, ``step`` right after it, and ``step``'s check."""
    from dataclasses import replace

    from spec.workflows import Dependency

    tasks = (
        graph.task("start"),
        replace(graph.task(step), depends_on=(Dependency("start"),)),
        graph.task(f"check_{step}"),
    )
    return replace(graph, tasks=tasks)


@pytest.mark.parametrize(
    ("step", "entry_point", "missing"),
    [
        (
            "score_batch",
            "mlops-score-batch",
            "dev.ml.flight_delay_predictions has no batch prediction scored in this run",
        ),
        ("features", "mlops-features", "dev.features.weather_hourly got no commit in this run"),
    ],
)
def test_a_step_that_writes_nothing_fails_the_graph_at_its_check_naming_the_step(lifecycle, step, entry_point, missing):
    """The mutation: the step's entry point replaced by one that does nothing and succeeds (the runner's executor, its
    seam for what runs a wheel task), on the state the graph left. The rows and versions of the earlier run are there:
    the check must not take them for this run's."""
    from local.runner import LocalRunner, run_entry_point
    from spec.workflows import job_graphs

    env = ENV.with_model(CLASSIFIER)
    graph = _only(job_graphs(env)["integration-test"], step)

    def executor(name: str, argv: list[str]) -> int:
        return 0 if name == entry_point else run_entry_point(name, argv)

    run = LocalRunner(env, graphs={graph.name: graph}, executor=executor).run(graph.name)

    assert run.status == "FAILED"
    assert run.tasks[step].status == "SUCCESS"
    check = run.tasks[f"check_{step}"]
    assert check.status == "FAILED"
    assert check.error.startswith(f"integration test, step {step}: ") and missing in check.error, check.error
