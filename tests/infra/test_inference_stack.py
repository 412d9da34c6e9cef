"""The inference jobs as synthesized: the batch and streaming graphs rendered like the others, the landing volume
they read, the online store's secret scope (declared empty: its values are never in the stack), the schedules and
the continuous mode from config."""

from __future__ import annotations

import pytest

from spec.config import ENVIRONMENTS, Inference, Schedule
from spec.workflows import job_graphs
from tests.support.stacks import address, at_path, resources

ENV_NAMES = list(ENVIRONMENTS)


def _job(stack: dict, name: str) -> dict:
    (job,) = [b for b in resources(stack, "databricks_job").values() if b["name"].endswith(f"/{name}")]
    return job


@pytest.mark.parametrize("name", ENV_NAMES)
def test_the_landing_volume_lives_in_the_raw_schema_and_the_stream_reads_it(synthesized, name):
    stack = synthesized[name]
    _, volume = at_path(stack, "databricks_volume", "inference/landing")
    raw = address(stack, "databricks_schema", "governance/schema_raw")
    assert volume == {
        "catalog_name": f"${{{raw}.catalog_name}}",
        "schema_name": f"${{{raw}.name}}",
        "name": "landing",
        "volume_type": "MANAGED",
        "comment": "files of flight_delay's flights source for the streaming job",
    }
    assert ENVIRONMENTS[name].landing_path == f"/Volumes/{name}/raw/landing/{ENVIRONMENTS[name].model_name}"


@pytest.mark.parametrize("name", ENV_NAMES)
def test_the_online_store_secrets_are_a_scope_the_service_principal_reads_and_nothing_in_it(synthesized, name):
    stack = synthesized[name]
    scope = address(stack, "databricks_secret_scope", "inference/online_store_secrets")
    acls = {body["permission"]: body for body in resources(stack, "databricks_secret_acl").values()}
    principal = address(stack, "databricks_service_principal", "identity/service_principal")
    assert acls["READ"]["principal"] == f"${{{principal}.application_id}}"
    assert acls["READ"]["scope"] == acls["MANAGE"]["scope"] == f"${{{scope}.name}}"
    assert acls["MANAGE"]["principal"] == "ml-engineers"
    assert "databricks_secret" not in stack["resource"]  # the credentials are put outside Terraform


def test_prod_scores_daily_in_batch_and_hourly_from_the_landing_volume(synthesized):
    stack = synthesized["prod"]
    batch, stream = _job(stack, "batch-inference"), _job(stack, "streaming-inference")
    assert batch["schedule"]["quartz_cron_expression"] == "0 0 5 * * ?"
    assert stream["schedule"]["quartz_cron_expression"] == "0 15 * * * ?"
    assert "continuous" not in stream
    assert [t["task_key"] for t in stream["task"]] == ["stream", "publish"]
    assert stream["task"][0]["python_wheel_task"]["parameters"] == [
        "--env",
        "prod",
        "--model",
        "flight_delay",
        "--trigger",
        "available-now",
    ]
    assert {p["name"]: p["default"] for p in batch["parameter"]} == {
        "start_date": "",
        "end_date": "",
        "publish_lookback_minutes": "120",
    }
    assert {p["name"]: p["default"] for p in stream["parameter"]} == {"publish_lookback_minutes": "120"}
    for job in (batch, stream):
        publish = next(t for t in job["task"] if t["task_key"] == "publish")
        assert publish["python_wheel_task"]["parameters"][-2:] == [
            "--lookback-minutes",
            "{{job.parameters.publish_lookback_minutes}}",
        ]


def test_a_continuous_stream_is_a_continuous_job_without_schedule_and_publishing_is_left_to_the_batch():
    prod = ENVIRONMENTS["prod"]
    env = prod.replace(
        # Continuous streaming needs a job cluster: serverless supports neither its trigger nor its retries.
        compute=prod.compute.replace(serverless=False),
        inference=Inference(batch_schedule=Schedule(quartz_cron="0 0 5 * * ?"), streaming_mode="continuous"),
    )
    graph = job_graphs(env)["streaming-inference"]
    assert (graph.continuous, graph.schedule, [t.key for t in graph.tasks]) == (True, None, ["stream"])
    assert graph.task("stream").action.parameters == (
        "--env",
        "prod",
        "--model",
        "flight_delay",
        "--trigger",
        "continuous",
    )

    import json

    from cdktn import Testing

    from infra.main import build_app

    app = build_app({"prod": env.replace(read_only_from=())}, code_version="0123456789ab")
    stack = json.loads(Testing.synth(app.node.find_child("prod")))
    job = _job(stack, "streaming-inference")
    assert job["continuous"] == {"pause_status": "UNPAUSED"}
    assert "schedule" not in job and [t["task_key"] for t in job["task"]] == ["stream"]
