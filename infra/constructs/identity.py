"""The environment's service principal: created in the account, assigned to the workspace, reachable from CI by
OIDC federation (no stored secret) or, without federation, by an OAuth secret that stays in Terraform state."""

from __future__ import annotations

from cdktn import TerraformProvider, Token
from cdktn_provider_databricks.mws_permission_assignment import MwsPermissionAssignment
from cdktn_provider_databricks.service_principal import ServicePrincipal
from cdktn_provider_databricks.service_principal_federation_policy import (
    ServicePrincipalFederationPolicy,
    ServicePrincipalFederationPolicyOidcPolicy,
)
from cdktn_provider_databricks.service_principal_secret import ServicePrincipalSecret
from constructs import Construct

from spec.config import Environment


class Identity(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: Environment,
        account_provider: TerraformProvider,
        account_id: str,
        workspace_id: float,
    ) -> None:
        super().__init__(scope, construct_id)
        self.service_principal = ServicePrincipal(
            self,
            "service_principal",
            provider=account_provider,
            display_name=env.service_principal,
            active=True,
        )
        self.assignment = MwsPermissionAssignment(
            self,
            "workspace_assignment",
            provider=account_provider,
            workspace_id=workspace_id,
            principal_id=Token.as_number(self.service_principal.id),
            permissions=["USER"],
        )
        if env.ci_federation is not None:
            self.federation = ServicePrincipalFederationPolicy(
                self,
                "ci_federation",
                provider=account_provider,
                service_principal_id=Token.as_number(self.service_principal.id),
                policy_id=f"{env.service_principal}-ci",
                description=f"CI deploys {env.name} as {env.service_principal} with its OIDC token",
                oidc_policy=ServicePrincipalFederationPolicyOidcPolicy(
                    issuer=env.ci_federation.issuer,
                    subject=env.ci_federation.subject(env.name),
                    audiences=[account_id],
                ),
            )
        else:
            self.secret = ServicePrincipalSecret(
                self, "oauth_secret", provider=account_provider, service_principal_id=self.service_principal.id
            )

    @property
    def application_id(self) -> str:
        return self.service_principal.application_id
