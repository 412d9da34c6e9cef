"""GitLab CI/CD reaches an environment's CI runner by OIDC federation, as GitHub Actions and Azure DevOps do: a
federation policy for GitLab's issuer and the subject of the project and its protected ref, declared in the stack
from config (``Environment.ci_gitlab``), where a GitLab pipeline runs CI jobs (staging) and nowhere else."""

from __future__ import annotations

import pytest

from spec.base import ConfigError
from spec.config import ENVIRONMENTS, GitLabFederation
from tests.support.stacks import at_path, resources


def test_staging_s_ci_runner_trusts_gitlab_main_of_the_configured_project(synthesized):
    env = ENVIRONMENTS["staging"]
    stack = synthesized["staging"]
    ci_key, _ = at_path(stack, "databricks_service_principal", "identity/ci_service_principal")
    _, policy = at_path(stack, "databricks_service_principal_federation_policy", "identity/ci_federation_gitlab")

    assert env.ci_gitlab is not None
    assert policy["policy_id"] == "mlops-staging-ci-gitlab"
    assert policy["service_principal_id"] == f"${{databricks_service_principal.{ci_key}.id}}"
    assert policy["oidc_policy"] == {
        "issuer": "https://gitlab.com",
        "subject": "project_path:example-org/mlops-databricks:ref_type:branch:ref:main",
        # The job's id_tokens aud (.gitlab-ci.yml): the account id, as Databricks recommends for GitLab.
        "audiences": ["${var.databricks_account_id}"],
    }


@pytest.mark.parametrize("name", [n for n in ENVIRONMENTS if ENVIRONMENTS[n].ci_gitlab is None])
def test_no_gitlab_policy_where_config_has_none(synthesized, name):
    assert name != "staging"
    policies = resources(synthesized[name], "databricks_service_principal_federation_policy")
    assert policies, "GitHub's and Azure DevOps' policies are still there"
    assert not [p for p in policies.values() if "gitlab" in p["policy_id"]]


def test_a_self_managed_instance_and_a_subgroup_make_the_subject():
    federation = GitLabFederation(issuer="https://gitlab.example.com", project_path="ml/platform/mlops", ref="release")

    assert federation.issuer == "https://gitlab.example.com"
    assert federation.subject() == "project_path:ml/platform/mlops:ref_type:branch:ref:release"


@pytest.mark.parametrize(
    ("field", "value", "meaning"),
    [
        ("issuer", "http://gitlab.example.com", "an https URL"),
        ("project_path", "mlops-databricks", "<group>/<project>"),
        ("ref", "main:evil", "a branch or tag name without spaces or ':'"),
        ("ref_type", "merge_request", "'branch' or 'tag'"),
    ],
)
def test_a_bad_gitlab_setting_names_the_field(field, value, meaning):
    with pytest.raises(ConfigError) as raised:
        GitLabFederation(**{field: value})
    assert field in str(raised.value) and meaning in str(raised.value)
