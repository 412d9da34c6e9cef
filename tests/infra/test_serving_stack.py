"""The serving endpoint and its permissions, as synthesized for every environment: exact values from config."""

from __future__ import annotations

import pytest

from spec.config import ENVIRONMENTS, ConfigError, Environment
from tests.support.stacks import address, at_path, resolve

ENV_NAMES = list(ENVIRONMENTS)


def test_every_environment_has_a_stack(synthesized):
    assert sorted(synthesized) == sorted(ENV_NAMES)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_endpoint_is_declared_without_versions_and_with_inference_table_and_notifications(synthesized, name):
    env = ENVIRONMENTS[name]
    stack = synthesized[name]
    schema = address(stack, "databricks_schema", "governance/schema_monitoring")
    _, endpoint = at_path(stack, "databricks_model_serving", f"{ENVIRONMENTS[name].model_name}/serving/endpoint")
    assert endpoint == {
        "name": "flight-delay",
        "description": f"Serves the champion (and challenger) of {name}.ml.flight_delay",
        "ai_gateway": {
            "inference_table_config": {
                "enabled": True,
                "catalog_name": f"${{{schema}.catalog_name}}",
                "schema_name": f"${{{schema}.name}}",
                "table_name_prefix": "flight_delay",
            }
        },
        "email_notifications": {"on_update_failure": list(env.alerts.emails)},
        "tags": [
            {"key": "environment", "value": name},
            {"key": "registered_model", "value": f"{name}.ml.flight_delay"},
            {"key": "managed-by", "value": "cdktn"},
        ],
        # The deploy job owns served entities and traffic routes (no version exists at first apply).
        "lifecycle": {"ignore_changes": ["config"]},
    }
    assert "config" not in endpoint


@pytest.mark.parametrize("name", ENV_NAMES)
def test_inference_table_prefix_matches_the_local_gateway_table(synthesized, name):
    from local.serving.state import inference_table_config

    stack = synthesized[name]
    _, endpoint = at_path(stack, "databricks_model_serving", f"{ENVIRONMENTS[name].model_name}/serving/endpoint")
    table = {
        k: resolve(stack, v) if isinstance(v, str) else v
        for k, v in endpoint["ai_gateway"]["inference_table_config"].items()
    }
    rendered = f"{table['catalog_name']}.{table['schema_name']}.{table['table_name_prefix']}_payload"
    assert rendered == ENVIRONMENTS[name].inference_table == f"{name}.monitoring.flight_delay_payload"
    # The local gateway describes the same AI Gateway settings.
    assert table == inference_table_config(ENVIRONMENTS[name])


@pytest.mark.parametrize("name", ENV_NAMES)
def test_endpoint_permissions_manage_for_engineers_and_jobs_principal(synthesized, name):
    stack = synthesized[name]
    _, permissions = at_path(
        stack, "databricks_permissions", f"{ENVIRONMENTS[name].model_name}/serving/endpoint_permissions"
    )
    endpoint = address(stack, "databricks_model_serving", f"{ENVIRONMENTS[name].model_name}/serving/endpoint")
    principal = address(stack, "databricks_service_principal", "identity/service_principal")
    permissions["depends_on"] = sorted(permissions["depends_on"])
    assert permissions == {
        "serving_endpoint_id": f"${{{endpoint}.serving_endpoint_id}}",
        "access_control": [
            {"group_name": "ml-engineers", "permission_level": "CAN_MANAGE"},
            {"service_principal_name": f"${{{principal}.application_id}}", "permission_level": "CAN_MANAGE"},
            {"group_name": "flight-ops", "permission_level": "CAN_QUERY"},
        ],
        "depends_on": sorted(
            [
                address(stack, "databricks_mws_permission_assignment", "identity/workspace_assignment"),
                address(stack, "databricks_mws_permission_assignment", "identity/ci_workspace_assignment"),
                *(f"data.databricks_group.{n}" for n in stack["data"]["databricks_group"]),
            ]
        ),
    }


def _levels(env: Environment) -> list[tuple[str | None, str | None, str]]:
    from infra.constructs.serving import endpoint_access

    return [(a.group_name, a.service_principal_name, a.permission_level) for a in endpoint_access(env, "sp-app-id")]


def test_each_consumer_gets_can_query_once():
    env = ENVIRONMENTS["staging"].replace(serving={"consumers": ("analysts", "apps", "analysts")})
    assert _levels(env) == [
        ("ml-engineers", None, "CAN_MANAGE"),
        (None, "sp-app-id", "CAN_MANAGE"),
        ("analysts", None, "CAN_QUERY"),
        ("apps", None, "CAN_QUERY"),
    ]


@pytest.mark.parametrize(
    ("consumers", "problem"),
    [
        ((), r"must not be empty, got \(\) \(the groups or principals that query the endpoint \(CAN_QUERY\)\)"),
        (("apps", "ml-engineers"), r"must not name \['ml-engineers'\]: they manage the endpoint already"),
        (("mlops-staging",), r"must not name \['mlops-staging'\]: they manage the endpoint already"),
    ],
)
def test_an_endpoint_without_a_consumer_who_only_queries_is_a_config_error(consumers, problem):
    with pytest.raises(ConfigError, match=rf"^environment 'staging': field 'serving.consumers' {problem}"):
        ENVIRONMENTS["staging"].replace(serving={"consumers": consumers})


def test_an_environment_without_a_monitoring_schema_is_rejected_with_the_field_named():
    from cdktn import App, TerraformStack

    from infra.constructs.serving import Serving as ServingConstruct

    with pytest.raises(ConfigError, match=r"^environment 'dev': field 'schemas' must contain \['monitoring'\]"):
        ENVIRONMENTS["dev"].replace(schemas=("raw", "features", "ml"))
    # The construct checks what it is given, too: the schema resources must include the inference table's.
    with pytest.raises(ConfigError, match=r"environment 'dev': field 'schemas' must contain 'monitoring'"):
        ServingConstruct(
            TerraformStack(App(), "t"),
            "serving_no_schema",
            env=ENVIRONMENTS["dev"],
            service_principal_id="sp",
            principal_ready=None,
            schemas={},
        )
