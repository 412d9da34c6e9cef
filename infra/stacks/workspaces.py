"""The optional `workspaces` stack: Azure Databricks workspaces for environments whose config asks to create one.

Each gets an access connector (managed identity for Unity Catalog storage) and the metastore assignment, so the
environment stack can bind catalogs to it. Environments with an existing workspace are not touched here.
"""

from __future__ import annotations

from cdktn import AzurermBackend, TerraformOutput, TerraformStack, Token
from cdktn_provider_azurerm.databricks_access_connector import (
    DatabricksAccessConnector,
    DatabricksAccessConnectorIdentity,
)
from cdktn_provider_azurerm.databricks_workspace import DatabricksWorkspace
from cdktn_provider_azurerm.provider import AzurermProvider, AzurermProviderFeatures
from cdktn_provider_databricks.metastore_assignment import MetastoreAssignment
from cdktn_provider_databricks.provider import DatabricksProvider
from constructs import Construct

from infra.stacks.environment import account_id_of
from spec.config import Environment

STACK_NAME = "workspaces"


class WorkspacesStack(TerraformStack):
    def __init__(self, scope: Construct, envs: list[Environment]) -> None:
        if not envs or any(env.workspace.create is None for env in envs):
            raise ValueError("the workspaces stack needs environments whose workspace.create is set")
        super().__init__(scope, STACK_NAME)
        AzurermProvider(self, "azurerm", features=[AzurermProviderFeatures()])
        backend = envs[0].state_backend
        if backend is not None:
            AzurermBackend(
                self,
                resource_group_name=backend.resource_group,
                storage_account_name=backend.storage_account,
                container_name=backend.container,
                key=f"{STACK_NAME}.tfstate",
                use_oidc=True,
            )
        provider = DatabricksProvider(
            self, "databricks_account", host=envs[0].account.host, account_id=account_id_of(self, envs[0])
        )
        self.workspaces: dict[str, DatabricksWorkspace] = {}
        for env in envs:
            spec = env.workspace.create
            connector = DatabricksAccessConnector(
                self,
                f"{env.name}_access_connector",
                name=f"mlops-{env.name}-uc",
                resource_group_name=spec.resource_group,
                location=spec.location,
                identity=DatabricksAccessConnectorIdentity(type="SystemAssigned"),
                tags={"environment": env.name},
            )
            workspace = DatabricksWorkspace(
                self,
                f"{env.name}_workspace",
                name=f"mlops-{env.name}",
                resource_group_name=spec.resource_group,
                location=spec.location,
                sku=spec.sku,
                managed_resource_group_name=f"{spec.resource_group}-mlops-{env.name}-managed",
                tags={"environment": env.name, "access-connector": connector.name},
            )
            MetastoreAssignment(
                self,
                f"{env.name}_metastore_assignment",
                provider=provider,
                workspace_id=Token.as_number(workspace.workspace_id),
                metastore_id=spec.metastore_id,
            )
            TerraformOutput(self, f"{env.name}_workspace_url", value=workspace.workspace_url)
            self.workspaces[env.name] = workspace

    def host(self, env_name: str) -> str:
        return f"https://{self.workspaces[env_name].workspace_url}"

    def workspace_id(self, env_name: str) -> float:
        return Token.as_number(self.workspaces[env_name].workspace_id)
