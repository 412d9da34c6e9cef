"""The real synthesized stacks pass every rule; each kind of violation injected into a copy of a real stack is
reported by exactly the rule that covers it, at the mutated resource, and by no other rule."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from policies import engine
from spec.config import ENVIRONMENTS

ENV_NAMES = list(ENVIRONMENTS)
PROTECTED = [name for name, env in ENVIRONMENTS.items() if env.data_scientist_access != "write"]


def of_type(stack: dict, resource_type: str) -> dict[str, dict]:
    found = stack.get("resource", {}).get(resource_type, {})
    assert found, f"the {stack['//']['metadata']['stackName']} stack has no {resource_type}"
    return found


def address_of(stack: dict, resource_type: str, predicate: Callable[[dict], bool] = lambda body: True) -> str:
    names = [name for name, body in of_type(stack, resource_type).items() if predicate(body)]
    assert names, f"no {resource_type} matches"
    return f"{resource_type}.{names[0]}"


def body_of(stack: dict, address: str) -> dict:
    resource_type, name = address.split(".")
    return stack["resource"][resource_type][name]


def environment_sp_ref(stack: dict) -> str:
    env = ENVIRONMENTS[stack["//"]["metadata"]["stackName"]]
    sp = address_of(stack, "databricks_service_principal", lambda b: b["display_name"] == env.service_principal)
    return "${" + sp + ".application_id}"


def add(stack: dict, address: str, body: dict) -> str:
    resource_type, name = address.split(".")
    stack.setdefault("resource", {}).setdefault(resource_type, {})[name] = body
    return address


def add_compliant_ml_resources(stack: dict) -> None:
    """A job, a serving endpoint with its permissions, a quality monitor and its alert, all compliant: what the
    stacks will hold once every construct lands. Mutations below break one property of one of them."""
    env = ENVIRONMENTS[stack["//"]["metadata"]["stackName"]]
    sp = environment_sp_ref(stack)
    policy = "${" + address_of(stack, "databricks_cluster_policy") + ".id}"
    add(
        stack,
        "databricks_job.probe_job",
        {
            "name": f"[{env.name}] probe",
            "run_as": {"service_principal_name": sp},
            "email_notifications": {"on_failure": list(env.alerts.emails)},
            "job_cluster": [{"job_cluster_key": "cluster", "new_cluster": {"policy_id": policy, "num_workers": 1}}],
            "task": [
                {
                    "task_key": "score",
                    "job_cluster_key": "cluster",
                    "max_retries": 1,
                    "python_wheel_task": {"package_name": "mlops_databricks", "entry_point": "mlops-score"},
                },
            ],
        },
    )
    add(
        stack,
        "databricks_model_serving.probe_endpoint",
        {
            "name": "probe",
            "ai_gateway": {
                "inference_table_config": {
                    "enabled": True,
                    "catalog_name": env.catalog,
                    "schema_name": "monitoring",
                    "table_name_prefix": "probe",
                }
            },
        },
    )
    add(
        stack,
        "databricks_permissions.probe_endpoint",
        {
            "serving_endpoint_id": "${databricks_model_serving.probe_endpoint.serving_endpoint_id}",
            "access_control": [{"group_name": env.ml_engineers_group, "permission_level": "CAN_QUERY"}],
        },
    )
    add(
        stack,
        "databricks_quality_monitor.probe_monitor",
        {
            "table_name": f"{env.catalog}.monitoring.probe_payload",
            "assets_dir": "/Shared/probe",
            "output_schema_name": f"{env.catalog}.monitoring",
        },
    )
    add(
        stack,
        "databricks_alert_v2.probe_accuracy",
        {
            "display_name": "probe accuracy",
            "query_text": f"SELECT accuracy FROM {env.catalog}.monitoring.probe_payload_profile_metrics",
            "evaluation": {"notification": {"subscriptions": [{"user_email": env.alerts.emails[0]}]}},
        },
    )


# Each mutation edits a copy of a real stack and returns the address (or addresses) it broke.
def grant_modify_to_data_scientists(stack: dict) -> str:
    env = ENVIRONMENTS[stack["//"]["metadata"]["stackName"]]
    address = address_of(stack, "databricks_grants", lambda b: "catalog" in b)
    grants = body_of(stack, address)["grant"]
    entry = next(g for g in grants if g["principal"] == env.data_scientists_group)
    entry["privileges"].append("MODIFY")
    return address


def person_owns_the_catalog(stack: dict) -> str:
    address = address_of(stack, "databricks_catalog")
    body_of(stack, address)["owner"] = "alice@example.com"
    return address


def schema_without_owner(stack: dict) -> str:
    address = address_of(stack, "databricks_schema")
    del body_of(stack, address)["owner"]
    return address


def add_a_personal_access_token(stack: dict) -> str:
    return add(stack, "databricks_token.laptop", {"comment": "for my laptop", "lifetime_seconds": 3600})


def token_in_the_provider(stack: dict) -> str:
    stack["provider"]["databricks"][0]["token"] = "dapi0123456789abcdef"
    return "provider.databricks"


def secret_value_in_code(stack: dict) -> str:
    return add(stack, "databricks_secret.webhook", {"scope": "alerts", "key": "webhook", "string_value": "hunter2"})


def remove_the_read_only_binding(stack: dict) -> str:
    bindings = of_type(stack, "databricks_workspace_binding")
    read_only = [n for n, b in bindings.items() if b["binding_type"] == "BINDING_TYPE_READ_ONLY"]
    assert read_only
    for name in read_only:
        del bindings[name]
    return address_of(stack, "databricks_catalog")


def read_only_binding_becomes_read_write(stack: dict) -> tuple[str, str]:
    """Two findings: the catalog lost its read-only binding, and the binding now writes from a foreign workspace."""
    address = address_of(stack, "databricks_workspace_binding", lambda b: b["binding_type"] == "BINDING_TYPE_READ_ONLY")
    del body_of(stack, address)["binding_type"]
    return address_of(stack, "databricks_catalog"), address


def job_runs_as_a_person(stack: dict) -> str:
    body_of(stack, "databricks_job.probe_job")["run_as"] = {"user_name": "alice@example.com"}
    return "databricks_job.probe_job"


def job_without_failure_notification(stack: dict) -> str:
    del body_of(stack, "databricks_job.probe_job")["email_notifications"]
    return "databricks_job.probe_job"


def task_without_retries(stack: dict) -> str:
    body_of(stack, "databricks_job.probe_job")["task"][0]["max_retries"] = 0
    return "databricks_job.probe_job"


def cluster_without_policy(stack: dict) -> str:
    del body_of(stack, "databricks_job.probe_job")["job_cluster"][0]["new_cluster"]["policy_id"]
    return "databricks_job.probe_job"


def endpoint_without_inference_table(stack: dict) -> str:
    body_of(stack, "databricks_model_serving.probe_endpoint")["ai_gateway"]["inference_table_config"]["enabled"] = False
    return "databricks_model_serving.probe_endpoint"


def endpoint_queryable_by_all_users(stack: dict) -> str:
    permissions = body_of(stack, "databricks_permissions.probe_endpoint")
    permissions["access_control"].append({"group_name": "users", "permission_level": "CAN_QUERY"})
    return "databricks_permissions.probe_endpoint"


def endpoint_without_consumers(stack: dict) -> str:
    """The real endpoint's permissions lose their consumers: only its managers could call it."""
    real = lambda body: "serving_endpoint_id" in body and "probe" not in body["serving_endpoint_id"]  # noqa: E731
    address = address_of(stack, "databricks_permissions", real)
    permissions = body_of(stack, address)
    permissions["access_control"] = [e for e in permissions["access_control"] if e["permission_level"] != "CAN_QUERY"]
    return address


def monitor_without_alert(stack: dict) -> str:
    del stack["resource"]["databricks_alert_v2"]["probe_accuracy"]
    return "databricks_quality_monitor.probe_monitor"


def alert_without_destination(stack: dict) -> str:
    del body_of(stack, "databricks_alert_v2.probe_accuracy")["evaluation"]["notification"]
    return "databricks_alert_v2.probe_accuracy"


MUTATIONS = [
    (grant_modify_to_data_scientists, "data_scientists_read_only"),
    (person_owns_the_catalog, "owners_not_people"),
    (job_runs_as_a_person, "owners_not_people"),
    (schema_without_owner, "owners_not_people"),
    (add_a_personal_access_token, "no_plaintext_secrets"),
    (token_in_the_provider, "no_plaintext_secrets"),
    (secret_value_in_code, "no_plaintext_secrets"),
    (remove_the_read_only_binding, "workspace_bindings"),
    (read_only_binding_becomes_read_write, "workspace_bindings"),
    (job_without_failure_notification, "job_reliability"),
    (task_without_retries, "job_reliability"),
    (cluster_without_policy, "job_cluster_policy"),
    (endpoint_without_inference_table, "serving_endpoints"),
    (endpoint_queryable_by_all_users, "serving_endpoints"),
    (endpoint_without_consumers, "serving_endpoints"),
    (monitor_without_alert, "monitor_alerts"),
    (alert_without_destination, "monitor_alerts"),
]


@pytest.mark.parametrize("name", ENV_NAMES)
def test_real_stack_passes_every_rule(real_stacks, name):
    stack = real_stacks[name]
    assert stack["resource"], f"the {name} stack declares nothing"
    assert engine.evaluate(stack) == []


@pytest.mark.parametrize("name", ENV_NAMES)
def test_every_resource_of_the_real_stack_reaches_the_rules(real_stacks, name):
    stack = real_stacks[name]
    expected = sorted(f"{t}.{n}" for t, by_name in stack["resource"].items() for n in by_name)
    seen = engine.normalized(stack)
    assert seen["environment"] == name
    assert sorted(r["address"] for r in seen["resources"]) == expected
    assert [p["address"] for p in seen["providers"]] == ["provider.databricks", "provider.databricks.account"]


def test_every_rule_has_a_mutation():
    # approvers_tag_models holds only where approval is manual (prod): its mutation has a test of its own, below.
    assert sorted({rule for _, rule in MUTATIONS} | {"approvers_tag_models"}) == engine.rule_names()


def test_a_tag_grant_outside_the_approvers_is_reported_only_where_approval_is_manual(real_stacks):
    """The serving consumers may query the endpoint; given APPLY_TAG on the model they could approve it into prod."""
    consumer = ENVIRONMENTS["prod"].serving.consumers[0]
    for name, env in ENVIRONMENTS.items():
        stack = real_stacks[name]
        grants = [
            (key, body)
            for key, body in stack["resource"]["databricks_grants"].items()
            if body["//"]["metadata"]["path"].endswith("ml/model_grants")
        ]
        assert grants
        for _, body in grants:
            body["grant"].append({"principal": consumer, "privileges": ["EXECUTE", "APPLY_TAG"]})
        violations = engine.evaluate(stack)
        if env.promotion.approval == "manual":
            assert {(v.rule, v.address) for v in violations} == {
                ("approvers_tag_models", f"databricks_grants.{key}") for key, _ in grants
            }
        else:
            assert violations == []


@pytest.mark.parametrize("name", PROTECTED)
def test_real_stack_with_compliant_ml_resources_passes(real_stacks, name):
    stack = real_stacks[name]
    add_compliant_ml_resources(stack)
    assert engine.evaluate(stack) == []


@pytest.mark.parametrize("name", PROTECTED)
@pytest.mark.parametrize(("mutate", "rule"), MUTATIONS, ids=[m.__name__ for m, _ in MUTATIONS])
def test_mutation_is_reported_by_exactly_its_rule(real_stacks, name, mutate, rule):
    stack = real_stacks[name]
    add_compliant_ml_resources(stack)
    broken = mutate(stack)
    violations = engine.evaluate(stack)
    assert violations, f"{mutate.__name__} went unnoticed in {name}"
    assert {v.rule for v in violations} == {rule}
    assert {v.address for v in violations} == ({broken} if isinstance(broken, str) else set(broken))


def test_dev_data_scientists_may_write(real_stacks):
    """The same MODIFY that fails in staging and prod is the intended access in dev."""
    writable = [n for n, env in ENVIRONMENTS.items() if env.data_scientist_access == "write"]
    assert writable
    stack = real_stacks[writable[0]]
    grant_modify_to_data_scientists(stack)
    assert engine.evaluate(stack) == []
