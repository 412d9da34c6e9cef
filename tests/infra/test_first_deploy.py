"""What a first `cdktn deploy` into an empty workspace needs from the synthesized stacks: folders that exist before
what lives in them, groups looked up before anything names them, nothing that fires on its own before the daily
job orders it, a CI runner reached by federation with the least rights, and no trigger on a table that does not exist
yet. Plus the config check that keeps a continuous stream off serverless compute."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from spec.config import ENVIRONMENTS, ConfigError
from spec.workflows import job_graphs
from tests.support.stacks import address, at_path, one, resolve, resources

ENV_NAMES = list(ENVIRONMENTS)


def _data(stack: dict, data_type: str) -> dict[str, dict]:
    found = stack.get("data", {}).get(data_type, {})
    return {name: {k: v for k, v in body.items() if k != "//"} for name, body in found.items()}


def _keys(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def _jobs_by_reference(stack: dict) -> dict[str, str]:
    """``${databricks_job.<name>.id}`` -> the job's name."""
    jobs = resources(stack, "databricks_job")
    assert jobs, "no databricks_job synthesized"
    return {f"${{databricks_job.{key}.id}}": body["name"] for key, body in jobs.items()}


def _job_permission_entries(stack: dict) -> list[tuple[str, dict]]:
    """(job name, access control entry) for every entry of every job's databricks_permissions."""
    by_reference = _jobs_by_reference(stack)
    entries = [
        (by_reference[body["job_id"]], entry)
        for body in resources(stack, "databricks_permissions").values()
        if "job_id" in body
        for entry in body["access_control"]
    ]
    assert entries, "no job permissions synthesized"
    return entries


@pytest.mark.parametrize("name", ENV_NAMES)
def test_the_experiment_lives_in_the_folder_the_stack_creates(synthesized, name):
    env = ENVIRONMENTS[name]
    stack = synthesized[name]
    experiments = sorted(resources(stack, "databricks_mlflow_experiment").values(), key=lambda e: e["name"])
    assert len(experiments) == len(env.models)
    for experiment in experiments:
        match = re.fullmatch(r"\$\{databricks_directory\.([A-Za-z0-9_]+)\.path\}/([a-z_]+)", experiment["name"])
        assert match and match.group(2) in env.model_names, experiment["name"]
        folder = resources(stack, "databricks_directory")[match.group(1)]
        assert folder["path"] == env.experiment_folder == f"/Shared/mlops/{name}"
        assert resolve(stack, experiment["name"].split("/")[0]) == f"/Shared/mlops/{name}"
    assert env.experiment_name == f"/Shared/mlops/{name}/flight_delay"


@pytest.mark.parametrize("name", ENV_NAMES)
def test_each_quality_monitor_keeps_its_assets_in_a_created_folder_and_has_no_schedule(synthesized, name):
    stack = synthesized[name]
    monitors = resources(stack, "databricks_quality_monitor")
    assert len(monitors) == 2 * len(ENVIRONMENTS[name].models)
    folders = resources(stack, "databricks_directory")

    assets = {}
    for monitor in monitors.values():
        match = re.fullmatch(r"\$\{databricks_directory\.([A-Za-z0-9_]+)\.workspace_path\}", monitor["assets_dir"])
        assert match, monitor["assets_dir"]
        assets[monitor["table_name"].rsplit(".", 1)[1]] = folders[match.group(1)]["path"]
        assert "schedule" not in monitor

    assert assets == {
        f"{model}_{table}": f"/Shared/mlops/{name}/monitors/{model}_{table}"
        for model in ENVIRONMENTS[name].model_names
        for table in ("predictions", "served")
    }


@pytest.mark.parametrize("name", ENV_NAMES)
def test_every_alert_schedule_is_paused(synthesized, name):
    env = ENVIRONMENTS[name]
    alerts = resources(synthesized[name], "databricks_alert_v2")
    assert len(alerts) == 4 * len(env.models)
    assert {key: alert["schedule"] for key, alert in alerts.items()} == {
        key: {
            "pause_status": "PAUSED",
            "quartz_cron_schedule": env.monitoring.schedule.quartz_cron,
            "timezone_id": "UTC",
        }
        for key in alerts
    }


@pytest.mark.parametrize("name", ENV_NAMES)
def test_every_named_group_is_looked_up_once_and_no_other(synthesized, name):
    env = ENVIRONMENTS[name]
    assert env.create_groups is False
    # The platform's groups and each model's consumers (a model added by `mlops init model` brings the default's).
    consumers = {group for scoped in env.scoped_models() for group in scoped.serving.consumers}
    assert sorted(env.groups) == sorted({"data-scientists", "ml-engineers", *consumers})
    assert "flight-ops" in env.groups

    lookups = _data(synthesized[name], "databricks_group")
    assert sorted(body["display_name"] for body in lookups.values()) == sorted(env.groups)
    assert resources(synthesized[name], "databricks_group") == {}


@pytest.mark.parametrize("name", ENV_NAMES)
def test_every_job_notifies_the_webhook_on_failure_and_the_catalog_has_its_own_storage(synthesized, name):
    env = ENVIRONMENTS[name]
    stack = synthesized[name]
    assert env.alerts.webhook_destination_name
    destination = address(stack, "databricks_notification_destination", "notifications/webhook")

    jobs = resources(stack, "databricks_job")
    assert len(jobs) == sum(len(job_graphs(m)) for m in env.scoped_models())
    assert {job["name"]: job.get("webhook_notifications") for job in jobs.values()} == {
        job["name"]: {"on_failure": [{"id": f"${{{destination}.id}}"}]} for job in jobs.values()
    }

    assert env.storage_root == f"abfss://{name}@mlopsdata.dfs.core.windows.net/catalog"
    assert one(stack, "databricks_catalog")["storage_root"] == env.storage_root


@pytest.mark.parametrize("name", ENV_NAMES)
def test_the_ci_runner_is_reached_by_federation_from_github_and_azure_devops(synthesized, name):
    env = ENVIRONMENTS[name]
    stack = synthesized[name]
    ci_key, ci = at_path(stack, "databricks_service_principal", "identity/ci_service_principal")
    jobs_key, _ = at_path(stack, "databricks_service_principal", "identity/service_principal")
    assert ci["display_name"] == env.ci_service_principal == f"mlops-{name}-ci"
    assert env.account.account_id is None

    policies = resources(stack, "databricks_service_principal_federation_policy")
    gitlab = [f"mlops-{name}-ci-gitlab"] if env.ci_gitlab is not None else []  # tests/infra/test_gitlab_federation.py
    assert sorted(policy["policy_id"] for policy in policies.values()) == [
        f"mlops-{name}-ci-azure-devops",
        f"mlops-{name}-ci-github",
        *gitlab,
    ]
    # All name the CI runner; none the jobs' principal (nobody signs in as it).
    assert {policy["service_principal_id"] for policy in policies.values()} == {
        f"${{databricks_service_principal.{ci_key}.id}}"
    }
    assert not any(jobs_key in str(policy) for policy in policies.values())

    github = next(p["oidc_policy"] for p in policies.values() if p["policy_id"].endswith("-github"))
    assert github == {
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": f"repo:{env.ci_federation.repository}:environment:{name}",
        "audiences": ["${var.databricks_account_id}"],
    }
    assert github["subject"] == f"repo:example-org/mlops-databricks:environment:{name}"

    azure_devops = next(p["oidc_policy"] for p in policies.values() if p["policy_id"].endswith("-azure-devops"))
    assert azure_devops["issuer"].startswith("https://vstoken.dev.azure.com/")
    assert azure_devops == {
        "issuer": "https://vstoken.dev.azure.com/00000000-0000-0000-0000-000000000000",
        "subject": "p://example-org/mlops-databricks/mlops-databricks",
        "audiences": ["api://AzureADTokenExchange"],
    }
    # Federated: no OAuth secret kept in state.
    assert resources(stack, "databricks_service_principal_secret") == {}


@pytest.mark.parametrize("name", ENV_NAMES)
def test_the_ci_runner_may_run_the_integration_test_and_nothing_else(synthesized, name):
    stack = synthesized[name]
    ci = f"${{{address(stack, 'databricks_service_principal', 'identity/ci_service_principal')}.application_id}}"

    on_jobs = {
        (job, entry["permission_level"])
        for job, entry in _job_permission_entries(stack)
        if entry.get("service_principal_name") == ci
    }
    # Where the environment has no integration test (prod), the CI runner may run no job at all.
    assert on_jobs == {
        (f"[{name}] {model}/integration-test", "CAN_MANAGE_RUN")
        for model in ENVIRONMENTS[name].model_names
        if ENVIRONMENTS[name].integration_test
    }
    # No other permissions (experiment, warehouse, endpoint) name it.
    others = [
        key
        for key, body in resources(stack, "databricks_permissions").items()
        if "job_id" not in body and ci in str(body["access_control"])
    ]
    assert others == []


@pytest.mark.parametrize("name", ENV_NAMES)
def test_the_jobs_principal_may_run_exactly_the_jobs_its_run_job_tasks_start(synthesized, name):
    stack = synthesized[name]
    sp = f"${{{address(stack, 'databricks_service_principal', 'identity/service_principal')}.application_id}}"
    by_reference = _jobs_by_reference(stack)

    started = {
        by_reference[task["run_job_task"]["job_id"]]
        for job in resources(stack, "databricks_job").values()
        for task in job["task"]
        if "run_job_task" in task
    }
    assert started == {
        f"[{name}] {model}/{graph}"
        for model in ENVIRONMENTS[name].model_names
        for graph in ("feature-pipeline", "model-training", "retraining")
    }

    granted = {
        (job, entry["permission_level"])
        for job, entry in _job_permission_entries(stack)
        if entry.get("service_principal_name") == sp
    }
    assert granted == {(job, "CAN_MANAGE_RUN") for job in started}


@pytest.mark.parametrize("name", ENV_NAMES)
def test_no_job_is_triggered_by_a_table_update(synthesized, name):
    jobs = resources(synthesized[name], "databricks_job")
    assert len(jobs) == sum(len(job_graphs(m)) for m in ENVIRONMENTS[name].scoped_models())
    assert {job["name"]: "table_update" in set(_keys(job)) for job in jobs.values()} == {
        job["name"]: False for job in jobs.values()
    }


def test_a_continuous_stream_is_refused_on_serverless_compute():
    prod = ENVIRONMENTS["prod"]
    assert prod.compute.serverless is True
    continuous = prod.inference.replace(streaming_mode="continuous", streaming_schedule=None)

    with pytest.raises(ConfigError) as error:
        prod.replace(inference=continuous)

    assert str(error.value).startswith(
        "environment 'prod': field 'inference.streaming_mode' cannot be continuous on serverless compute"
    )


def test_a_continuous_stream_is_accepted_on_a_job_cluster():
    prod = ENVIRONMENTS["prod"]
    continuous = prod.inference.replace(streaming_mode="continuous", streaming_schedule=None)

    env = prod.replace(inference=continuous, compute=prod.compute.replace(serverless=False))

    assert (env.inference.streaming_mode, env.inference.streaming_schedule, env.compute.serverless) == (
        "continuous",
        None,
        False,
    )
