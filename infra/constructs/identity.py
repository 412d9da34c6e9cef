"""The environment's two service principals, created in the account and assigned to the workspace:

- the jobs' principal (``env.service_principal``): every job's ``run_as``, the owner of the registered model, the
  holder of the catalog grants. Nobody signs in as it: it has no federation policy and no secret.
- the CI runner (``env.ci_service_principal``): what CI signs in as to run the jobs it runs (the integration
  test). It is reached by OIDC federation from GitHub Actions, Azure DevOps and (where config says) GitLab CI/CD,
  with no stored secret, or, when config has none of them, by an OAuth secret that stays in Terraform state. Its
  only rights are workspace USER and CAN_MANAGE_RUN on those jobs (``infra.constructs.jobs``).
"""

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
        self._account = account_provider
        self._workspace_id = workspace_id
        self.service_principal, self.assignment = self._principal(
            "service_principal", "workspace_assignment", env.service_principal
        )
        self.ci_service_principal, self.ci_assignment = self._principal(
            "ci_service_principal", "ci_workspace_assignment", env.ci_service_principal
        )
        self.federations: list[ServicePrincipalFederationPolicy] = []
        if env.ci_federation is not None:
            self._federation(
                "ci_federation",
                env,
                "github",
                "GitHub Actions",
                env.ci_federation.issuer,
                env.ci_federation.subject(env.name),
                account_id,
            )
        if env.ci_azure_devops is not None:
            azure = env.ci_azure_devops
            self._federation(
                "ci_federation_azure_devops", env, "azure-devops", "Azure DevOps", azure.issuer, azure.subject(),
                azure.audience,
            )  # fmt: skip
        if env.ci_gitlab is not None:
            gitlab = env.ci_gitlab
            self._federation(
                "ci_federation_gitlab", env, "gitlab", "GitLab CI/CD", gitlab.issuer, gitlab.subject(), account_id
            )
        if not self.federations:
            self.secret = ServicePrincipalSecret(
                self, "oauth_secret", provider=account_provider, service_principal_id=self.ci_service_principal.id
            )

    def _federation(
        self, construct_id: str, env: Environment, key: str, ci: str, issuer: str, subject: str, audience: str
    ) -> None:
        """Lets ``ci``'s OIDC tokens with this issuer and subject (and audience) sign in as the CI runner."""
        self.federations.append(
            ServicePrincipalFederationPolicy(
                self,
                construct_id,
                provider=self._account,
                service_principal_id=Token.as_number(self.ci_service_principal.id),
                policy_id=f"{env.ci_service_principal}-{key}",
                description=f"{ci} runs {env.name}'s CI jobs as {env.ci_service_principal}",
                oidc_policy=ServicePrincipalFederationPolicyOidcPolicy(
                    issuer=issuer, subject=subject, audiences=[audience]
                ),
            )
        )

    def _principal(
        self, principal_id: str, assignment_id: str, name: str
    ) -> tuple[ServicePrincipal, MwsPermissionAssignment]:
        principal = ServicePrincipal(self, principal_id, provider=self._account, display_name=name, active=True)
        assignment = MwsPermissionAssignment(
            self,
            assignment_id,
            provider=self._account,
            workspace_id=self._workspace_id,
            principal_id=Token.as_number(principal.id),
            permissions=["USER"],
        )
        return principal, assignment

    @property
    def application_id(self) -> str:
        return self.service_principal.application_id

    @property
    def ci_application_id(self) -> str:
        return self.ci_service_principal.application_id
