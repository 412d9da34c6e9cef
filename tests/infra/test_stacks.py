"""Every environment synthesizes, with exact names, grants, bindings and owners derived from config."""

from __future__ import annotations

import pytest

from spec import access
from spec.config import ENVIRONMENTS
from tests.support.stacks import address, at_path, one, resolve, resources

ENV_NAMES = list(ENVIRONMENTS)


def test_one_stack_per_environment(synthesized):
    assert sorted(synthesized) == sorted(ENV_NAMES)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_provider_is_pinned_and_points_at_the_environment_workspace(synthesized, name):
    stack = synthesized[name]
    assert stack["terraform"]["required_providers"]["databricks"] == {
        "source": "databricks/databricks",
        "version": "1.138.0",
    }
    workspace, account = stack["provider"]["databricks"]
    assert workspace == {"host": ENVIRONMENTS[name].workspace.host}
    assert account == {
        "alias": "account",
        "host": "https://accounts.azuredatabricks.net",
        "account_id": "${var.databricks_account_id}",
    }
    assert stack["variable"]["databricks_account_id"]["type"] == "string"
    _, federation = at_path(stack, "databricks_service_principal_federation_policy", "identity/ci_federation")
    assert federation["oidc_policy"]["audiences"] == ["${var.databricks_account_id}"]
    assert "token" not in workspace and "token" not in account


@pytest.mark.parametrize("name", ENV_NAMES)
def test_catalog_is_isolated_and_owned_by_a_group(synthesized, name):
    catalog = one(synthesized[name], "databricks_catalog")
    assert (catalog["name"], catalog["isolation_mode"], catalog["owner"]) == (name, "ISOLATED", "ml-engineers")
    schemas = resources(synthesized[name], "databricks_schema")
    assert sorted(s["name"] for s in schemas.values()) == ["features", "ml", "monitoring", "raw"]
    assert {s["owner"] for s in schemas.values()} == {"ml-engineers"}


def _catalog_grants(stack: dict) -> dict[str, list[str]]:
    grants = [g for g in resources(stack, "databricks_grants").values() if "catalog" in g]
    assert len(grants) == 1
    return {g["principal"]: g["privileges"] for g in grants[0]["grant"]}


def test_data_scientists_have_full_use_of_dev(synthesized):
    assert _catalog_grants(synthesized["dev"])["data-scientists"] == ["ALL_PRIVILEGES"]


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_data_scientists_read_staging_and_prod_and_never_write(synthesized, name):
    grants = _catalog_grants(synthesized[name])
    assert grants["data-scientists"] == ["USE_CATALOG", "USE_SCHEMA", "SELECT", "EXECUTE", "READ_VOLUME"]
    every_grant = [
        privilege
        for body in resources(synthesized[name], "databricks_grants").values()
        for grant in body["grant"]
        if grant["principal"] == "data-scientists"
        for privilege in grant["privileges"]
    ]
    assert every_grant, "data scientists should have some read access"
    assert [p for p in every_grant if access.is_write_privilege(p)] == []


@pytest.mark.parametrize("name", ENV_NAMES)
def test_the_service_principal_writes_its_own_catalog_and_owns_the_model(synthesized, name):
    stack = synthesized[name]
    sp_logical, sp = at_path(stack, "databricks_service_principal", "identity/service_principal")
    sp_ref = f"${{databricks_service_principal.{sp_logical}.application_id}}"
    assert _catalog_grants(stack)[sp_ref] == list(access.JOB_PRIVILEGES)
    models = {m["name"]: m for m in resources(stack, "databricks_registered_model").values()}
    assert sorted(models) == sorted(ENVIRONMENTS[name].model_names)
    assert {m["owner"] for m in models.values()} == {sp_ref}
    assert sp["display_name"] == f"mlops-{name}"
    # The CI runner holds no catalog grant: it only runs the CI jobs.
    ci_logical, _ = at_path(stack, "databricks_service_principal", "identity/ci_service_principal")
    assert not any(ci_logical in principal for principal in _catalog_grants(stack))


def test_prod_is_bound_read_write_to_prod_and_read_only_to_dev(synthesized):
    bindings = sorted(
        (b["workspace_id"], b["binding_type"])
        for b in resources(synthesized["prod"], "databricks_workspace_binding").values()
    )
    assert bindings == [("1111111111111111", "BINDING_TYPE_READ_ONLY"), ("3333333333333333", "BINDING_TYPE_READ_WRITE")]


def test_dev_is_bound_to_dev_only(synthesized):
    bindings = [
        (b["workspace_id"], b["binding_type"])
        for b in resources(synthesized["dev"], "databricks_workspace_binding").values()
    ]
    assert bindings == [("1111111111111111", "BINDING_TYPE_READ_WRITE")]


@pytest.mark.parametrize("name", ENV_NAMES)
def test_ci_reaches_the_service_principal_by_oidc_not_by_a_token(synthesized, name):
    stack = synthesized[name]
    _, policy = at_path(stack, "databricks_service_principal_federation_policy", "identity/ci_federation")
    assert policy["oidc_policy"]["subject"] == f"repo:example-org/mlops-databricks:environment:{name}"
    assert "databricks_token" not in stack["resource"]
    assert "databricks_obo_token" not in stack["resource"]
    assert "databricks_service_principal_secret" not in stack["resource"]


@pytest.mark.parametrize("name", ENV_NAMES)
def test_no_owner_is_a_person(synthesized, name):
    owners = [
        body["owner"]
        for resource_type in synthesized[name]["resource"].values()
        for body in resource_type.values()
        if "owner" in body
    ]
    assert owners, "expected owned resources"
    assert [o for o in owners if "@" in o] == []


@pytest.mark.parametrize("name", ENV_NAMES)
def test_experiment_warehouse_and_cluster_policy_are_named_after_the_environment(synthesized, name):
    stack = synthesized[name]
    folder = address(stack, "databricks_directory", "ml/folder")
    experiments = sorted(e["name"] for e in resources(stack, "databricks_mlflow_experiment").values())
    assert experiments == sorted(f"${{{folder}.path}}/{model}" for model in ENVIRONMENTS[name].model_names)
    assert resolve(stack, f"${{{folder}.path}}") == f"/Shared/mlops/{name}"
    warehouse = one(stack, "databricks_sql_endpoint")
    assert (warehouse["name"], warehouse["enable_serverless_compute"]) == (f"mlops-{name}-alerts", True)
    assert one(stack, "databricks_cluster_policy")["name"] == f"mlops-{name}-job-clusters"


@pytest.mark.parametrize("name", ENV_NAMES)
def test_state_is_remote_with_one_key_per_environment(synthesized, name):
    assert synthesized[name]["terraform"]["backend"] == {
        "azurerm": {
            "container_name": "tfstate",
            "key": f"{name}.tfstate",
            "resource_group_name": "rg-mlops-tfstate",
            "storage_account_name": "mlopstfstate",
            "use_oidc": True,
        }
    }
