"""The serving endpoint and its permissions, as synthesized for every environment: exact values from config."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from infra.config import ENVIRONMENTS, ConfigError, Environment, Serving

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

ENV_NAMES = list(ENVIRONMENTS)


@pytest.fixture(scope="module")
def stacks(tmp_path_factory) -> dict[str, dict]:
    from infra.main import build_app

    outdir = tmp_path_factory.mktemp("serving-synth")
    build_app(outdir=str(outdir)).synth()
    found = {p.name: json.loads((p / "cdk.tf.json").read_text()) for p in sorted((outdir / "stacks").iterdir())}
    assert found, "no stack was synthesized"
    return found


def _one(stack: dict, resource_type: str, path_suffix: str) -> tuple[str, dict]:
    """The one resource of ``resource_type`` whose construct path ends with ``path_suffix`` (name, body)."""
    found = {
        name: body
        for name, body in stack.get("resource", {}).get(resource_type, {}).items()
        if body["//"]["metadata"]["path"].endswith(path_suffix)
    }
    assert len(found) == 1, f"expected one {resource_type} at */{path_suffix}, found {sorted(found)}"
    name, body = next(iter(found.items()))
    return name, {k: v for k, v in body.items() if k != "//"}


def _address(stack: dict, resource_type: str, path_suffix: str) -> str:
    return f"{resource_type}.{_one(stack, resource_type, path_suffix)[0]}"


def test_every_environment_has_a_stack(stacks):
    assert sorted(stacks) == sorted(ENV_NAMES)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_endpoint_is_declared_without_versions_and_with_inference_table_and_notifications(stacks, name):
    env = ENVIRONMENTS[name]
    stack = stacks[name]
    _, endpoint = _one(stack, "databricks_model_serving", "serving/endpoint")
    assert endpoint == {
        "name": "flight-delay",
        "description": f"Serves the champion (and challenger) of {name}.ml.flight_delay",
        "ai_gateway": {
            "inference_table_config": {
                "enabled": True,
                "catalog_name": name,
                "schema_name": "monitoring",
                "table_name_prefix": "flight_delay",
            }
        },
        "email_notifications": {"on_update_failure": list(env.alerts.emails)},
        "tags": [
            {"key": "environment", "value": name},
            {"key": "registered_model", "value": f"{name}.ml.flight_delay"},
            {"key": "managed-by", "value": "cdktf"},
        ],
        # The deploy job owns served entities and traffic routes (no version exists at first apply).
        "lifecycle": {"ignore_changes": ["config"]},
        "depends_on": [_address(stack, "databricks_schema", "governance/schema_monitoring")],
    }
    assert "config" not in endpoint


@pytest.mark.parametrize("name", ENV_NAMES)
def test_inference_table_prefix_matches_the_local_gateway_table(stacks, name):
    from jobs.serving.databricks import ai_gateway

    _, endpoint = _one(stacks[name], "databricks_model_serving", "serving/endpoint")
    table = endpoint["ai_gateway"]["inference_table_config"]
    rendered = f"{table['catalog_name']}.{table['schema_name']}.{table['table_name_prefix']}_payload"
    assert rendered == ENVIRONMENTS[name].inference_table == f"{name}.monitoring.flight_delay_payload"
    # The deploy job creates a missing endpoint with the same settings.
    assert endpoint["ai_gateway"] == ai_gateway(ENVIRONMENTS[name]).as_dict()


@pytest.mark.parametrize("name", ENV_NAMES)
def test_endpoint_permissions_manage_for_engineers_and_jobs_principal(stacks, name):
    stack = stacks[name]
    _, permissions = _one(stack, "databricks_permissions", "serving/endpoint_permissions")
    endpoint = _address(stack, "databricks_model_serving", "serving/endpoint")
    # prod's consumers (ml-engineers, mlops-prod = the jobs' principal) already manage it: no CAN_QUERY entry.
    principal = _address(stack, "databricks_service_principal", "identity/service_principal")
    assert permissions == {
        "serving_endpoint_id": f"${{{endpoint}.serving_endpoint_id}}",
        "access_control": [
            {"group_name": "ml-engineers", "permission_level": "CAN_MANAGE"},
            {"service_principal_name": f"${{{principal}.application_id}}", "permission_level": "CAN_MANAGE"},
        ],
    }


def _levels(env: Environment) -> list[tuple[str | None, str | None, str]]:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra.constructs.serving import endpoint_access

    return [(a.group_name, a.service_principal_name, a.permission_level) for a in endpoint_access(env, "sp-app-id")]


def test_consumers_get_can_query_only_once_and_never_weaken_a_manager():
    env = replace(
        ENVIRONMENTS["staging"],
        serving=Serving(consumers=("analysts", "ml-engineers", "analysts", "mlops-staging", "apps")),
    )
    assert _levels(env) == [
        ("ml-engineers", None, "CAN_MANAGE"),
        (None, "sp-app-id", "CAN_MANAGE"),
        ("analysts", None, "CAN_QUERY"),
        ("apps", None, "CAN_QUERY"),
    ]


def test_an_environment_without_a_monitoring_schema_is_rejected_with_the_field_named():
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from cdktf import App, TerraformStack

    from infra.constructs.serving import Serving as ServingConstruct

    env = replace(ENVIRONMENTS["dev"], schemas=("raw", "features", "ml"))
    stack = TerraformStack(App(), "t")
    with pytest.raises(ConfigError, match=r"^environment 'dev': field 'schemas' has no schema 'monitoring'$"):
        ServingConstruct(stack, "serving", env=env, service_principal_id="sp", schemas={})
    with pytest.raises(ConfigError, match=r"environment 'dev': field 'schemas' must contain 'monitoring'"):
        ServingConstruct(stack, "serving_no_schema", env=ENVIRONMENTS["dev"], service_principal_id="sp", schemas={})
