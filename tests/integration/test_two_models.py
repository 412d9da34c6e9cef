"""Two models side by side in one environment (dev runs the flight-delay classifier and the airport-delay regressor):
the same job graphs, run by the local runner with no change of platform code between them, train, validate and
deploy both, serve both endpoints, score both in batch and streaming, publish both, join their labels, refresh
their monitors, evaluate their alerts, and retrain one while the other stays as it was."""

from __future__ import annotations

import json

import pytest

from cli.commands.models import list_versions
from cli.commands.workflow import run_workflow
from cli.main import main as mlops
from spec.config import ENVIRONMENTS
from tests.support.gateway_process import mlops_serve

pytestmark = pytest.mark.integration

ENV = ENVIRONMENTS["dev"]
CLASSIFIER, REGRESSOR = "flight_delay", "airport_delay"
TRAINING = {
    "start_date": "2013-01-01",
    "end_date": "2013-04-10",
    "training_start": "2013-01-01",
    "training_end": "2013-03-31",
    "max_rows": "12000",
}
BATCH = {"start_date": "2013-04-01", "end_date": "2013-04-02"}
LANDED = ("2013-04-03", "2013-04-04")
AS_OF = "2013-04-06"


def succeeded(run) -> dict[str, str]:
    assert run.status == "SUCCESS", {key: (t.status, t.error) for key, t in run.tasks.items()}
    return {key: task.status for key, task in run.tasks.items()}


def table_rows(full_name: str) -> list[dict]:
    from deltalake import DeltaTable

    from local.paths import table_path

    return DeltaTable(str(table_path(full_name))).to_pyarrow_table().to_pylist()


@pytest.fixture(scope="module")
def lifecycle(mlops_home, spark):
    """Every graph of both models, in the order of a model's life; the runs by (model, step)."""
    assert ENV.model_names == (CLASSIFIER, REGRESSOR)
    runs = {}
    for model in ENV.model_names:
        runs[model, "training"] = run_workflow(ENV.name, "model-training", TRAINING, model)
        runs[model, "batch"] = run_workflow(ENV.name, "batch-inference", BATCH, model)
        assert mlops(["land", "--env", ENV.name, "--model", model, "--date", LANDED[0], "--to-date", LANDED[1]]) == 0
        runs[model, "stream"] = run_workflow(ENV.name, "streaming-inference", {}, model)
        runs[model, "daily"] = run_workflow(ENV.name, "daily-monitoring", {"as_of": AS_OF}, model)
    # A retraining of the regressor alone, on a later window; the versions of both before and after it.
    later = {**TRAINING, "training_start": "2013-01-15", "training_end": "2013-04-05"}
    before = {model: _versions(model) for model in ENV.model_names}
    runs[REGRESSOR, "retraining"] = run_workflow(ENV.name, "model-training", later, REGRESSOR)
    runs["versions"] = (before, {model: _versions(model) for model in ENV.model_names})
    return runs


def _versions(model: str) -> list[str]:
    return sorted((r.version for r in list_versions(ENV.name, model=model)), key=int)


@pytest.mark.parametrize("model", [CLASSIFIER, REGRESSOR])
def test_both_models_train_validate_and_deploy_their_own_registered_model(lifecycle, model):
    statuses = succeeded(lifecycle[model, "training"])
    assert statuses["deploy"] == "SUCCESS"
    scoped = ENV.with_model(model)
    values = lifecycle[model, "training"].tasks["train"].values
    assert values["model_name"] == scoped.registered_model == f"dev.ml.{model}"
    first = {r.version: r for r in list_versions(ENV.name, model=model)}["1"]
    assert first.validation_status == "PASSED" and "champion" in first.aliases


@pytest.mark.parametrize("model", [CLASSIFIER, REGRESSOR])
def test_both_score_in_batch_and_streaming_and_publish(lifecycle, model):
    scoped = ENV.with_model(model)
    for step in ("batch", "stream"):
        statuses = succeeded(lifecycle[model, step])
        assert statuses["publish"] == "SUCCESS"
        assert int(lifecycle[model, step].tasks["publish"].values["published_items"]) > 0
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
    statuses = succeeded(lifecycle[model, "daily"])
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
