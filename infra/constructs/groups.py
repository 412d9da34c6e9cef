"""The groups the environment names (owners, grants, permissions, ACLs): looked up, or created when config asks.

A grant or a permission that names a group that does not exist fails deep inside an apply, after half the
environment was created. Looked up by a data source instead, a missing group fails ``cdktn diff`` / the plan, before
anything is created, with its name ("cannot find group: <name>"). With ``create_groups`` the stack creates each group
in the account and assigns it to the workspace, and whatever names a group waits for that assignment.
"""

from __future__ import annotations

from cdktn import ITerraformDependable, TerraformProvider, Token
from cdktn_provider_databricks.data_databricks_group import DataDatabricksGroup
from cdktn_provider_databricks.group import Group
from cdktn_provider_databricks.mws_permission_assignment import MwsPermissionAssignment
from constructs import Construct

from spec.config import Environment


def _key(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


class Groups(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: Environment,
        account_provider: TerraformProvider,
        workspace_id: float,
    ) -> None:
        super().__init__(scope, construct_id)
        # What each group's users wait for: its lookup, or its assignment to the workspace.
        self.ready: dict[str, ITerraformDependable] = {}
        for name in env.groups:
            if env.create_groups:
                group = Group(self, f"group_{_key(name)}", provider=account_provider, display_name=name)
                self.ready[name] = MwsPermissionAssignment(
                    self,
                    f"group_{_key(name)}_assignment",
                    provider=account_provider,
                    workspace_id=workspace_id,
                    principal_id=Token.as_number(group.id),
                    permissions=["USER"],
                )
            else:
                self.ready[name] = DataDatabricksGroup(self, f"lookup_{_key(name)}", display_name=name)
