"""The optional workspaces stack: created only when an environment asks for a new Azure workspace."""

from __future__ import annotations

import json

import pytest

from spec.config import ENVIRONMENTS, AzureWorkspaceSpec, ConfigError, Workspace
from tests.support.stacks import one, resources

SPEC = AzureWorkspaceSpec(resource_group="rg-mlops", location="westeurope", metastore_id="metastore-1")


@pytest.fixture(scope="module")
def with_created_dev(tmp_path_factory) -> dict[str, dict]:
    from infra.main import build_app

    envs = dict(ENVIRONMENTS)
    envs["dev"] = envs["dev"].replace(workspace=Workspace(create=SPEC))
    outdir = tmp_path_factory.mktemp("cdktf.out")
    build_app(envs, outdir=str(outdir)).synth()
    return {p.name: json.loads((p / "cdk.tf.json").read_text()) for p in (outdir / "stacks").iterdir()}


def test_no_workspaces_stack_when_every_workspace_exists(synthesized):
    assert "workspaces" not in synthesized


def test_workspace_connector_and_metastore_assignment_are_declared(with_created_dev):
    stack = with_created_dev["workspaces"]
    workspace = one(stack, "azurerm_databricks_workspace")
    assert (workspace["name"], workspace["sku"], workspace["location"]) == ("mlops-dev", "premium", "westeurope")
    connector = one(stack, "azurerm_databricks_access_connector")
    assert connector["identity"] == {"type": "SystemAssigned"}
    assignment = one(stack, "databricks_metastore_assignment")
    assert assignment["metastore_id"] == "metastore-1"


def test_environment_stacks_reference_the_created_workspace(with_created_dev):
    prod_bindings = resources(with_created_dev["prod"], "databricks_workspace_binding").values()
    read_only = [b["workspace_id"] for b in prod_bindings if b["binding_type"] == "BINDING_TYPE_READ_ONLY"]
    assert len(read_only) == 1
    # A cross-stack reference: resolved from the workspaces stack's state, not a literal id.
    assert read_only[0].startswith("${") and "workspaces" in read_only[0]
    assert with_created_dev["dev"]["provider"]["databricks"][0]["host"].startswith("https://${")


def test_creating_a_workspace_needs_a_metastore():
    with pytest.raises(
        ConfigError,
        match="field 'workspace.create.metastore_id' must not be empty, got '' \\(required to assign the Unity",
    ):
        ENVIRONMENTS["dev"].replace(workspace={"create": SPEC.model_dump() | {"metastore_id": ""}})
