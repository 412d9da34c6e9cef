"""The synthesized Databricks jobs and the local runner's graphs are the same graphs."""

from __future__ import annotations

import pytest

from spec.config import ENVIRONMENTS
from spec.workflows import AlertTask, ConditionTask, RunJobTask, WheelTask, job_graphs, references
from tests.support.stacks import CODE_VERSION, address, at_path, one, resources

ENV_NAMES = list(ENVIRONMENTS)


def _jobs_by_name(stack: dict) -> dict[str, dict]:
    jobs = {body["name"]: body for body in resources(stack, "databricks_job").values()}
    assert jobs, "no databricks_job synthesized"
    return jobs


def _texts(task: dict) -> list[str]:
    if "python_wheel_task" in task:
        return task["python_wheel_task"]["parameters"]
    if "condition_task" in task:
        return [task["condition_task"]["left"], task["condition_task"]["right"]]
    if "alert_task" in task:
        return []
    return list(task["run_job_task"].get("job_parameters", {}).values())


@pytest.mark.parametrize("name", ENV_NAMES)
def test_synthesized_jobs_have_the_local_graphs_tasks_dependencies_and_references(synthesized, name):
    jobs = _jobs_by_name(synthesized[name])
    scoped = ENVIRONMENTS[name].scoped_models()
    assert sorted(jobs) == sorted(f"[{name}] {env.model_name}/{g}" for env in scoped for g in job_graphs(env))
    for env in scoped:
        graphs = job_graphs(env)
        for graph_name, graph in graphs.items():
            job = jobs[f"[{name}] {env.model_name}/{graph_name}"]
            synthesized_tasks = {t["task_key"]: t for t in job["task"]}
            assert list(synthesized_tasks) == [t.key for t in graph.tasks]
            assert {p["name"]: p["default"] for p in job["parameter"]} == dict(graph.parameters)
            for task in graph.tasks:
                rendered = synthesized_tasks[task.key]
                assert [(d["task_key"], d.get("outcome")) for d in rendered.get("depends_on", [])] == [
                    (d.task_key, d.outcome) for d in task.depends_on
                ]
                assert sorted(r for text in _texts(rendered) for r in references(text)) == sorted(
                    r for text in task.parameter_texts() for r in references(text)
                )
                if isinstance(task.action, WheelTask):
                    assert rendered["python_wheel_task"] == {
                        "package_name": "mlops_databricks",
                        "entry_point": task.action.entry_point,
                        "parameters": list(task.action.parameters),
                    }
                    assert rendered["max_retries"] == task.max_retries
                elif isinstance(task.action, ConditionTask):
                    assert rendered["condition_task"]["op"] == task.action.op
                elif isinstance(task.action, RunJobTask):
                    child = next(
                        k
                        for k, b in resources(synthesized[name], "databricks_job").items()
                        if b["name"] == f"[{name}] {env.model_name}/{task.action.job}"
                    )
                    assert rendered["run_job_task"]["job_id"] == f"${{databricks_job.{child}.id}}"
                    assert rendered["run_job_task"]["job_parameters"] == dict(task.action.job_parameters)
                elif isinstance(task.action, AlertTask):
                    alert = at_path(
                        synthesized[name],
                        "databricks_alert_v2",
                        f"{env.model_name}/monitoring/alert_{task.action.alert}",
                    )[0]
                    assert rendered["alert_task"]["alert_id"] == f"${{databricks_alert_v2.{alert}.id}}"
                else:
                    raise AssertionError(f"{graph_name}.{task.key}: no rendering checked for {task.action}")


@pytest.mark.parametrize("name", ENV_NAMES)
def test_jobs_run_as_the_service_principal_serverless_and_notify_on_failure(synthesized, name):
    stack = synthesized[name]
    sp = at_path(stack, "databricks_service_principal", "identity/service_principal")[0]
    wheel = address(stack, "databricks_file", "artifacts/wheel")
    volume = address(stack, "databricks_volume", "artifacts/artifacts")
    assert one(stack, "databricks_file")["path"] == (
        f"${{{volume}.volume_path}}/{CODE_VERSION}/mlops_databricks-0.1.0-py3-none-any.whl"
    )
    for job in _jobs_by_name(stack).values():
        assert job["run_as"] == {"service_principal_name": f"${{databricks_service_principal.{sp}.application_id}}"}
        assert job["email_notifications"]["on_failure"] == list(ENVIRONMENTS[name].alerts.emails)
        assert job["environment"][0]["spec"]["dependencies"] == [f"${{{wheel}.path}}"]
        assert job["tags"]["code_version"] == CODE_VERSION
        for task in job["task"]:
            if "python_wheel_task" in task:
                assert task["environment_key"] == "default"


def test_prod_has_a_webhook_destination_whose_url_is_a_sensitive_variable(synthesized):
    stack = synthesized["prod"]
    assert stack["variable"]["alert_webhook_url"]["sensitive"] is True
    destination = next(iter(resources(stack, "databricks_notification_destination").values()))
    assert destination["config"]["generic_webhook"]["url"] == "${var.alert_webhook_url}"
    for job in _jobs_by_name(stack).values():
        assert len(job["webhook_notifications"]["on_failure"]) == 1


def test_the_staging_training_job_has_the_same_task_value_references_as_the_local_graph(synthesized):
    job = _jobs_by_name(synthesized["staging"])["[staging] flight_delay/model-training"]
    refs = sorted({r for t in job["task"] for text in _texts(t) for r in references(text) if r.startswith("tasks.")})
    assert refs == [
        "tasks.train.values.model_name",
        "tasks.train.values.model_uri",
        "tasks.train.values.model_version",
        "tasks.validate.values.validation_status",
    ]


def test_the_code_version_is_the_built_wheels_commit_else_the_checkouts_else_local(tmp_path, monkeypatch):
    import subprocess

    from infra import main

    outside = tmp_path / "no-git"
    outside.mkdir()
    monkeypatch.setattr(main, "ROOT", outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert main.current_code_version() == "local"

    checkout = tmp_path / "checkout"
    checkout.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(checkout)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "first"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(main, "ROOT", checkout)
    assert main.current_code_version() == head[:12]

    (checkout / "dist").mkdir()
    (checkout / "dist" / "BUILD_COMMIT").write_text("f" * 40 + "\n")
    assert main.current_code_version() == "f" * 12
    (checkout / "dist" / "BUILD_COMMIT").write_text("not a commit\n")
    assert main.current_code_version() == head[:12]
