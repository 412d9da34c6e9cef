"""Unity Catalog governance for one environment: the isolated catalog, its schemas, grants and workspace bindings."""

from __future__ import annotations

from collections.abc import Sequence

from cdktn import ITerraformDependable
from cdktn_provider_databricks.catalog import Catalog
from cdktn_provider_databricks.grants import Grants, GrantsGrant
from cdktn_provider_databricks.schema import Schema
from cdktn_provider_databricks.workspace_binding import WorkspaceBinding
from constructs import Construct

from spec import access
from spec.config import Environment


class Governance(Construct):
    """Declares the catalog (ISOLATED), one schema per configured name, catalog grants and workspace bindings.

    ``principal_ready`` is what makes the principals the grants name usable in the workspace (the service
    principal's assignment, the groups' lookups or assignments): the catalog and its grants wait for them.
    ``workspace_ids`` maps every environment name to its workspace id (a number, or a token when the `workspaces`
    stack creates the workspace), so the catalog can be bound read-only to the workspaces listed in
    ``env.read_only_from``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: Environment,
        service_principal_id: str,
        principal_ready: Sequence[ITerraformDependable],
        workspace_ids: dict[str, float],
    ) -> None:
        super().__init__(scope, construct_id)
        owner = access.owner(env)
        self.catalog = Catalog(
            self,
            "catalog",
            name=env.catalog,
            comment=f"{env.name} environment of the MLOps project, managed by CDK Terrain",
            isolation_mode="ISOLATED",
            owner=owner,
            force_destroy=False,
            properties={"environment": env.name, "managed-by": "cdktn"},
            storage_root=env.storage_root,
            # Its owner is a group: it must exist (looked up, or created and assigned) first.
            depends_on=[*principal_ready],
        )
        self.schemas = {
            name: Schema(
                self,
                f"schema_{name}",
                catalog_name=self.catalog.name,
                name=name,
                owner=owner,
                comment=f"{name} schema of {env.catalog}",
            )
            for name in env.schemas
        }
        self.grants = Grants(
            self,
            "catalog_grants",
            catalog=self.catalog.name,
            grant=[
                GrantsGrant(principal=g.principal, privileges=list(g.privileges))
                for g in access.catalog_grants(env, service_principal_id)
            ],
            # A grant names the jobs' service principal: it must exist in the workspace first.
            depends_on=[*principal_ready],
        )
        self.bindings = [
            WorkspaceBinding(
                self,
                "binding_own",
                securable_name=self.catalog.name,
                securable_type="catalog",
                workspace_id=workspace_ids[env.name],
                binding_type="BINDING_TYPE_READ_WRITE",
            )
        ]
        for reader in env.read_only_from:
            self.bindings.append(
                WorkspaceBinding(
                    self,
                    f"binding_read_only_{reader}",
                    securable_name=self.catalog.name,
                    securable_type="catalog",
                    workspace_id=workspace_ids[reader],
                    binding_type="BINDING_TYPE_READ_ONLY",
                )
            )
