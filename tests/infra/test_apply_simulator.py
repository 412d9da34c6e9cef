"""The apply simulator over every environment's stack: on an empty workspace with the documented prerequisites, no
create-time rule of the Databricks APIs is broken. Each rule's mutation test puts back a defect the stacks had before
(or one a change could bring) and shows the rule catching it, so none of them passes on nothing."""

from __future__ import annotations

import copy

import pytest

from infra.constructs.jobs import job_name
from spec import access
from spec.config import ENVIRONMENTS
from spec.workflows import job_graphs
from tests.support.apply_simulator import RULES, Prerequisites, rules_broken, simulate
from tests.support.stacks import address, at_path

ENV_NAMES = list(ENVIRONMENTS)


def prerequisites(name: str, ci_principal: str | None = None) -> Prerequisites:
    env = ENVIRONMENTS[name]
    graphs = job_graphs(env)
    return Prerequisites(
        ci_principal=ci_principal or f"sp:{env.ci_service_principal}",
        ci_jobs=tuple(job_name(env, graphs[graph]) for graph in access.CI_JOBS if graph in graphs),
    )


def body(stack: dict, resource_type: str, path: str) -> dict:
    return stack["resource"][resource_type][at_path(stack, resource_type, path)[0]]


@pytest.fixture
def prod(synthesized) -> dict:
    return copy.deepcopy(synthesized["prod"])


@pytest.fixture
def staging(synthesized) -> dict:
    """The environment CI runs the integration test in (prod has none)."""
    return copy.deepcopy(synthesized["staging"])


@pytest.mark.parametrize("name", ENV_NAMES)
def test_every_stack_applies_on_an_empty_workspace(synthesized, name):
    stack = synthesized[name]
    assert len(stack["resource"]["databricks_job"]) == sum(
        len(job_graphs(m)) for m in ENVIRONMENTS[name].scoped_models()
    )

    findings = simulate(stack, prerequisites(name))

    assert [str(f) for f in findings] == []


def test_every_rule_names_where_it_comes_from():
    assert set(RULES) == {"parent_folder", "trigger_table", "principal_exists", "run_permission", "securable_exists"}
    assert all(rule.source and rule.what for rule in RULES.values())


def test_an_experiment_in_a_folder_nothing_creates_is_caught(prod):
    """Fact 1: the experiment was /Shared/mlops/prod-flight_delay and nothing created /Shared/mlops."""
    del prod["resource"]["databricks_directory"]
    body(prod, "databricks_mlflow_experiment", "ml/experiment")["name"] = "/Shared/mlops/prod-flight_delay"
    for monitor in prod["resource"]["databricks_quality_monitor"].values():
        monitor["assets_dir"] = "/Workspace/Shared/mlops/prod/monitors/x"

    findings = [f for f in simulate(prod, prerequisites("prod")) if f.rule == "parent_folder"]

    assert {(f.address.split(".")[0], f.attribute) for f in findings} == {
        ("databricks_mlflow_experiment", "name"),
        ("databricks_quality_monitor", "assets_dir"),
    }
    experiment = next(f for f in findings if f.attribute == "name")
    assert "is created in /Shared/mlops, which no databricks_directory it waits for creates" in experiment.message


def test_a_table_trigger_on_a_metrics_table_is_caught(prod):
    """Fact 2: the retraining job was triggered by the drift metrics table, which only the monitor's refresh makes."""
    retraining = body(prod, "databricks_job", "jobs/retraining")
    retraining["trigger"] = {
        "pause_status": "UNPAUSED",
        "table_update": {"table_names": ["prod.monitoring.flight_delay_predictions_drift_metrics"]},
    }

    findings = simulate(prod, prerequisites("prod"))

    assert rules_broken(findings) == {"trigger_table"}
    (finding,) = findings
    assert finding.address == address(prod, "databricks_job", "jobs/retraining")
    assert "prod.monitoring.flight_delay_predictions_drift_metrics, which no resource it waits for" in finding.message


def test_ci_running_as_the_jobs_principal_is_caught(staging):
    """Fact 3: CI ran the staging job as the jobs' principal, which held no permission on any job (the groups only)."""
    for permissions in staging["resource"]["databricks_permissions"].values():
        if "job_id" in permissions:
            permissions["access_control"] = [c for c in permissions["access_control"] if "group_name" in c]

    findings = simulate(staging, prerequisites("staging", ci_principal="sp:mlops-staging"))

    assert rules_broken(findings) == {"run_permission"}
    ci = [f for f in findings if f.attribute == "databricks_permissions"]
    assert [f.address for f in ci] == [address(staging, "databricks_job", "jobs/integration_test")]
    assert "CI signs in as 'mlops-staging' to run it, which has no CAN_MANAGE_RUN on it" in ci[0].message
    # Fact 4 comes back too: each run-job task starts a child its run_as may not run.
    assert len(findings) == 1 + 3


def test_the_ci_runner_without_its_grant_is_caught(staging):
    permissions = body(staging, "databricks_permissions", "jobs/integration_test_permissions")
    permissions["access_control"] = [
        c for c in permissions["access_control"] if "ci_service_principal" not in c.get("service_principal_name", "")
    ]

    assert rules_broken(simulate(staging, prerequisites("staging"))) == {"run_permission"}


def test_a_run_job_task_whose_run_as_cannot_run_the_child_is_caught(prod):
    """Fact 4: run-job tasks start their children as the parent's run_as, which needs CAN_MANAGE_RUN on them."""
    permissions = body(prod, "databricks_permissions", "jobs/feature_pipeline_permissions")
    permissions["access_control"] = [c for c in permissions["access_control"] if "group_name" in c]

    findings = simulate(prod, prerequisites("prod"))

    assert [(f.rule, f.address, f.attribute) for f in findings] == [
        ("run_permission", address(prod, "databricks_job", "jobs/model_training"), "task[0].run_job_task.job_id")
    ]


def test_groups_nobody_looks_up_or_creates_are_caught(prod):
    """Fact 5: the groups were granted and referenced but never created nor looked up."""
    del prod["data"]["databricks_group"]

    findings = simulate(prod, prerequisites("prod"))

    assert rules_broken(findings) == {"principal_exists"}
    named = {f.message.split("'")[1] for f in findings}
    assert named == {"data-scientists", "ml-engineers", "flight-ops"}
    assert any(f.address.startswith("databricks_catalog.") and f.attribute == "owner" for f in findings)


def test_a_principal_named_before_its_workspace_assignment_is_caught(prod):
    secret_acl = body(prod, "databricks_secret_acl", "inference/online_store_secrets_reader")
    secret_acl["depends_on"] = []

    findings = simulate(prod, prerequisites("prod"))

    assert [(f.rule, f.attribute) for f in findings] == [("principal_exists", "principal")]
    assert "names 'mlops-prod', which does not exist in the workspace" in findings[0].message


def test_a_grant_on_a_securable_created_later_is_caught(prod):
    grants = body(prod, "databricks_grants", "ml/model_grants")
    grants["model"] = "prod.ml.flight_delay"
    grants.pop("depends_on", None)

    findings = simulate(prod, prerequisites("prod"))

    assert [(f.rule, f.attribute) for f in findings] == [("securable_exists", "model")]
    assert "grants on model prod.ml.flight_delay, which is not created before it" in findings[0].message


def test_a_monitor_on_a_table_nothing_creates_is_caught(prod):
    monitor = next(iter(prod["resource"]["databricks_quality_monitor"].values()))
    monitor["table_name"] = "prod.ml.not_declared"

    findings = simulate(prod, prerequisites("prod"))

    assert [(f.rule, f.attribute) for f in findings] == [("securable_exists", "table_name")]


def test_the_stack_before_the_fixes_breaks_the_rules_its_first_deploy_would_have_met():
    """staging as commit a7f8515 synthesized it (cdktf 0.21, provider 1.99; `make bench-synth` keeps that toolchain):
    the simulator finds facts 1 to 5 of the first-deploy issue in it, as a real apply would have, one by one."""
    import json
    from pathlib import Path

    old = json.loads((Path(__file__).parent / "fixtures" / "staging-a7f8515.cdk.tf.json").read_text())

    findings = simulate(
        old, Prerequisites(ci_principal="sp:mlops-staging", ci_jobs=("[staging] flight_delay/model-training",))
    )

    by_rule = {rule: [f for f in findings if f.rule == rule] for rule in RULES}
    assert {rule: len(found) for rule, found in by_rule.items()} == {
        "parent_folder": 3,  # the experiment, both monitors' dashboards
        "trigger_table": 1,  # the retraining job, on the drift metrics table
        "principal_exists": 30,  # every grant, owner, permission and ACL naming a group nobody looked up
        "run_permission": 3,  # CI as the jobs' principal; two run-job tasks whose run_as may not run the child
        "securable_exists": 0,
    }
    assert {f.message.split("'")[1] for f in by_rule["principal_exists"]} == {
        "data-scientists",
        "ml-engineers",
        "flight-ops",
    }


def test_a_model_trigger_on_a_model_created_after_the_job_is_caught(prod):
    """The Jobs API refuses a model trigger on a registered model that does not exist yet."""
    name, job = next(
        (n, b) for n, b in prod["resource"]["databricks_job"].items() if b["name"].endswith("/model-deployment")
    )
    # Neither the model nor its grants (which wait for it) come first any more.
    job["depends_on"] = [d for d in job["depends_on"] if "registered_model" not in d and "model_grants" not in d]
    model = job["trigger"]["model"]["securable_name"]

    findings = [str(f) for f in simulate(prod, prerequisites("prod")) if f.address == f"databricks_job.{name}"]

    assert findings and all("securable_exists" in f for f in findings)
    assert any(f"is triggered by updates of model {model}, which is not created before it" in f for f in findings)
