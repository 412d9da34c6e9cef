"""`mlops run model-training` end to end: the local runner executes the real graph with the real entry points on
the local engines, task values flow through `{{tasks.train.values.*}}`, and the model ends as champion."""

from __future__ import annotations

import json

import pytest

from cli.commands.models import list_versions
from cli.main import main as mlops
from spec.config import ENVIRONMENTS

pytestmark = pytest.mark.integration

ENV = ENVIRONMENTS["staging"]  # validation run_mode "enabled": a failed gate fails the run
SLICE = [
    "--param", "start_date=2013-01-01",
    "--param", "end_date=2013-03-31",
    "--param", "training_start=2013-01-01",
    "--param", "training_end=2013-03-31",
    "--param", "max_rows=15000",
]  # fmt: skip


@pytest.fixture(scope="module")
def first_run(mlops_home, spark):
    code = mlops(["run", "model-training", "--env", ENV.name, *SLICE])
    runs = sorted((mlops_home / "runs").glob("*/run.json"), key=lambda p: p.stat().st_mtime)
    records = [json.loads(p.read_text()) for p in runs]
    return code, records


def test_the_workflow_succeeds_and_runs_the_feature_pipeline_as_a_child_run(first_run):
    code, records = first_run
    assert code == 0
    parent = next(r for r in records if r["graph"] == "model-training")
    child = next(r for r in records if r["graph"] == "feature-pipeline")
    assert parent["status"] == "SUCCESS"
    assert {k: t["status"] for k, t in parent["tasks"].items()} == {
        "refresh_features": "SUCCESS",
        "train": "SUCCESS",
        "validate": "SUCCESS",
        "validation_passed": "SUCCESS",
        "deploy": "SUCCESS",
        # staging validates in enabled mode: its failure task runs only when validation FAILED
        "validation_failed": "EXCLUDED",
    }
    assert parent["tasks"]["refresh_features"]["child_run_id"] == child["run_id"]
    assert child["parent_run_id"] == parent["run_id"]
    assert child["parameters"] == {"start_date": "2013-01-01", "end_date": "2013-03-31"}


def test_task_values_are_resolved_into_downstream_parameters(first_run):
    _, records = first_run
    tasks = next(r for r in records if r["graph"] == "model-training")["tasks"]
    train = tasks["train"]["values"]
    assert train["model_uri"] == f"models:/{ENV.registered_model}/1"
    assert (train["model_name"], train["model_version"]) == (ENV.registered_model, "1")
    assert tasks["validate"]["parameters"] == [
        "--env", ENV.name, "--model", ENV.model_name, "--model-uri", train["model_uri"], "--run-mode", "enabled",
    ]  # fmt: skip
    assert tasks["validation_passed"]["outcome"] == "true"
    assert tasks["deploy"]["values"] == {"promoted": "true", "champion_version": "1", "awaiting_approval": "false"}


def test_models_lists_version_1_as_champion_and_passed(first_run):
    rows = list_versions(ENV.name)
    assert [(r.version, r.aliases, r.validation_status) for r in rows] == [("1", ("challenger", "champion"), "PASSED")]


def test_mlops_serve_answers_the_readme_request_with_the_champion(first_run):
    """`mlops serve` as its own process, as the README runs it: the README's request with the token, the same without
    one, then Ctrl-C: a clean exit that flushed both requests to the inference table."""
    from pathlib import Path

    import httpx
    from deltalake import DeltaTable

    from local.paths import mlops_home, table_path
    from local.serving.auth import client_token
    from tests.support.gateway_process import mlops_serve

    request = Path(__file__).resolve().parents[2] / "examples" / "flight.json"
    with mlops_serve("--env", ENV.name) as served:
        invocations = f"{served.base}/serving-endpoints/{ENV.endpoint_name}/invocations"
        token = client_token(mlops_home() / "serving").value
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        answered = httpx.post(invocations, content=request.read_bytes(), headers=headers, timeout=30)
        refused = httpx.post(invocations, json={}, timeout=30)

    assert answered.status_code == 200, answered.text
    assert (answered.headers["served-model-name"], answered.headers["x-model-version"]) == ("champion", "1")
    assert len(answered.json()["predictions"]) == 2
    assert refused.status_code == 401
    assert served.exit_code == 0
    rows = DeltaTable(str(table_path(ENV.inference_table))).to_pyarrow_table().to_pylist()
    assert sorted(r["status_code"] for r in rows) == [200, 401]


def test_deploying_the_champion_again_changes_no_tag_or_alias(first_run):
    from mlflow import MlflowClient

    from jobs import deploy
    from local.paths import mlflow_tracking_uri

    client = MlflowClient(tracking_uri=mlflow_tracking_uri(), registry_uri=mlflow_tracking_uri())
    before = client.get_model_version(ENV.registered_model, "1").tags
    assert before["promotion_decision"] == "promoted"
    code = deploy.main(["--env", ENV.name, "--model-name", ENV.registered_model, "--model-version", "1"])
    assert code == 0
    assert client.get_model_version(ENV.registered_model, "1").tags == before
    assert [(r.version, r.aliases) for r in list_versions(ENV.name)] == [("1", ("challenger", "champion"))]


def test_a_second_run_compares_with_the_champion_and_rollback_restores_it(first_run, mlops_home):
    assert mlops(["run", "model-training", "--env", ENV.name, *SLICE]) == 0
    rows = {r.version: r for r in list_versions(ENV.name)}
    assert sorted(rows) == ["1", "2"]
    assert "champion" in rows["2"].aliases  # same data, same seed: as good as the champion, so promoted
    assert "previous_champion" in rows["1"].aliases
    assert mlops(["rollback", "--env", ENV.name]) == 0
    assert "champion" in {r.version: r for r in list_versions(ENV.name)}["1"].aliases


def test_rollback_without_a_previous_champion_is_a_clear_error(first_run, capsys):
    assert mlops(["rollback", "--env", ENV.name]) == 1
    assert (
        capsys.readouterr().err == f"mlops rollback: no previous champion of {ENV.registered_model} to roll back to\n"
    )


def test_bad_parameters_are_rejected_before_anything_runs(mlops_home):
    with pytest.raises(SystemExit) as exit_:
        mlops(["run", "model-training", "--env", ENV.name, "--param", "training_window=q1"])
    assert str(exit_.value).startswith("mlops run: workflow 'model-training' has no parameter(s) ['training_window']")
    with pytest.raises(SystemExit) as exit_:
        mlops(["run", "model-training", "--env", ENV.name, "--param", "oops"])
    assert str(exit_.value) == "mlops run: --param must be NAME=VALUE, got 'oops'"
