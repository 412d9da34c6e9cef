"""One Terraform stack per environment: `cdktn deploy staging` deploys exactly the staging environment."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from cdktn import AzurermBackend, ITerraformDependable, TerraformOutput, TerraformStack, TerraformVariable
from cdktn_provider_databricks.provider import DatabricksProvider
from constructs import Construct

from infra.constructs.governance import Governance
from infra.constructs.groups import Groups
from infra.constructs.identity import Identity
from infra.constructs.inference import Inference
from infra.constructs.jobs import Artifacts, Jobs
from infra.constructs.ml_assets import MlAssets, ModelAssets
from infra.constructs.monitoring import Monitoring
from infra.constructs.notifications import Notifications
from infra.constructs.serving import Serving
from spec.config import Environment
from spec.workflows import PACKAGE_NAME


def wheel_version() -> str:
    """The version of this project's wheel the jobs install (from the installed distribution's metadata)."""
    return metadata.version(PACKAGE_NAME)


def account_id_of(stack: TerraformStack, env: Environment) -> str:
    """The account id from config, or else the stack's Terraform variable ``databricks_account_id``."""
    if env.account.account_id is not None:
        return env.account.account_id
    variable = TerraformVariable(
        stack,
        "databricks_account_id",
        type="string",
        description="Databricks account id (TF_VAR_databricks_account_id)",
    )
    return variable.string_value


@dataclass(frozen=True)
class WorkspaceRef:
    """Where an environment's workspace is: literal values, or tokens from the `workspaces` stack."""

    host: str
    # A number for Terraform; ids above 2**53 lose precision as JS numbers, so literals pass as number tokens.
    workspace_id: float


class EnvironmentStack(TerraformStack):
    """Declares everything one environment has. Credentials come from the usual DATABRICKS_* variables
    (or Azure CLI / OIDC auth); nothing here reads them."""

    def __init__(
        self, scope: Construct, env: Environment, *, workspaces: dict[str, WorkspaceRef], code_version: str
    ) -> None:
        super().__init__(scope, env.name)
        self.env = env
        own = workspaces[env.name]
        if env.state_backend is not None:
            AzurermBackend(
                self,
                resource_group_name=env.state_backend.resource_group,
                storage_account_name=env.state_backend.storage_account,
                container_name=env.state_backend.container,
                key=f"{env.name}.tfstate",
                use_oidc=True,
            )
        DatabricksProvider(self, "databricks", host=own.host)
        account_id = account_id_of(self, env)
        account = DatabricksProvider(
            self, "databricks_account", alias="account", host=env.account.host, account_id=account_id
        )
        self.identity = Identity(
            self, "identity", env=env, account_provider=account, account_id=account_id, workspace_id=own.workspace_id
        )
        self.groups = Groups(self, "groups", env=env, account_provider=account, workspace_id=own.workspace_id)
        sp_id = self.identity.application_id
        # Whatever names a principal (grants, owners, run_as, permissions, ACLs) waits for it to be usable in the
        # workspace: the service principals' assignments, the groups' lookups (or assignments, when created).
        ready = [self.identity.assignment, self.identity.ci_assignment, *self.groups.ready.values()]
        self.governance = Governance(
            self,
            "governance",
            env=env,
            service_principal_id=sp_id,
            principal_ready=ready,
            workspace_ids={name: ref.workspace_id for name, ref in workspaces.items()},
        )
        self.ml = MlAssets(self, "ml", env=env, service_principal_id=sp_id, principal_ready=ready)
        self.inference = Inference(
            self,
            "inference",
            env=env,
            raw_schema=self.governance.schemas["raw"],
            service_principal_id=sp_id,
            principal_ready=ready,
        )
        self.notifications = Notifications(self, "notifications", env=env)
        self.artifacts = Artifacts(
            self,
            "artifacts",
            ml_schema=self.governance.schemas["ml"],
            wheel_version=wheel_version(),
            code_version=code_version,
        )
        # Every model of the environment: its own resources, in a construct named after it, so adding or removing a
        # model adds or removes only its own.
        self.models = {
            scoped.model_name: ModelResources(self, scoped.model_name, env=scoped, stack=self, ready=ready)
            for scoped in env.scoped_models()
        }
        TerraformOutput(self, "catalog", value=self.governance.catalog.name)
        TerraformOutput(self, "registered_models", value=[scoped.registered_model for scoped in env.scoped_models()])
        TerraformOutput(self, "service_principal_application_id", value=sp_id)
        # CI's DATABRICKS_CI_CLIENT_ID: the principal CI signs in as to run the CI jobs (docs/ci-cd.md).
        TerraformOutput(self, "ci_service_principal_application_id", value=self.identity.ci_application_id)
        TerraformOutput(self, "sql_warehouse_id", value=self.ml.warehouse.id)
        TerraformOutput(self, "cluster_policy_id", value=self.ml.cluster_policy.id)


class ModelResources(Construct):
    """One model's resources in an environment (``env`` as the model sees it): experiment and registered model,
    serving endpoint, monitors and alerts, jobs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: Environment,
        stack: EnvironmentStack,
        ready: list[ITerraformDependable],
    ) -> None:
        super().__init__(scope, construct_id)
        sp_id = stack.identity.application_id
        schemas = stack.governance.schemas
        self.assets = ModelAssets(
            self,
            "ml",
            env=env,
            folder=stack.ml.folder,
            catalog_name=stack.governance.catalog.name,
            schema_name=schemas["ml"].name,
            service_principal_id=sp_id,
            principal_ready=ready,
        )
        self.serving = Serving(
            self, "serving", env=env, service_principal_id=sp_id, principal_ready=ready, schemas=schemas
        )
        self.monitoring = Monitoring(
            self,
            "monitoring",
            env=env,
            schemas=schemas,
            warehouse=stack.ml.warehouse,
            warehouse_ready=stack.ml.warehouse_permissions,
            notifications=stack.notifications,
            service_principal_id=sp_id,
        )
        self.jobs = Jobs(
            self,
            "jobs",
            env=env,
            service_principal_id=sp_id,
            ci_service_principal_id=stack.identity.ci_application_id,
            principal_ready=ready,
            cluster_policy_id=stack.ml.cluster_policy.id,
            notifications=stack.notifications,
            artifacts=stack.artifacts,
            alerts=dict(self.monitoring.alerts),
            warehouse_id=stack.ml.warehouse.id,
            model_ready=[self.assets.model, self.assets.model_grants],
        )
