"""The same rules over `terraform show -json` plans: planned values, resource_changes, references for values
known only after apply, literals from the configuration, resources in child modules."""

from __future__ import annotations

import pytest

from policies import engine
from tests.policies.conftest import fixture

READ_ONLY = "USE_CATALOG, USE_SCHEMA, SELECT, EXECUTE, READ_VOLUME"
EXPECTED_FAIL = [
    engine.Violation(
        "data_scientists_read_only",
        "databricks_grants.catalog",
        "databricks_grants.catalog grants data-scientists the write privileges MODIFY on catalog prod in protected "
        f"environment prod: grant that group only {READ_ONLY} here and leave writes to the service principal's jobs",
    ),
    engine.Violation(
        "no_plaintext_secrets",
        "databricks_secret.webhook",
        "databricks_secret.webhook has its string_value written in the code: pass it as a sensitive variable "
        "(TF_VAR_ from the CI secret store) or put it with databricks secrets put-secret outside Terraform",
    ),
    engine.Violation(
        "no_plaintext_secrets",
        "provider.databricks",
        "provider.databricks sets token as a literal: remove it and authenticate through the environment "
        "(DATABRICKS_AUTH_TYPE=github-oidc in CI, a CLI profile on a laptop)",
    ),
    engine.Violation(
        "owners_not_people",
        "module.governance.databricks_schema.ml",
        "module.governance.databricks_schema.ml is owned by the person alice@example.com: set owner to a group or "
        "to the service principal's application id",
    ),
]


def without(document: dict, key: str) -> dict:
    return {k: v for k, v in document.items() if k != key}


def test_compliant_plan_passes():
    assert engine.evaluate(fixture("plans/prod_pass.json")) == []


def test_failing_plan_reports_exactly_the_expected_messages():
    assert engine.evaluate(fixture("plans/prod_fail.json")) == sorted(EXPECTED_FAIL)


@pytest.mark.parametrize(("name", "expected"), [("prod_pass", []), ("prod_fail", sorted(EXPECTED_FAIL))])
def test_resource_changes_stand_in_when_planned_values_are_absent(name, expected):
    assert engine.evaluate(without(fixture(f"plans/{name}.json"), "planned_values")) == expected


def test_plan_resources_include_child_modules_and_exclude_destroyed_ones():
    plan = fixture("plans/prod_pass.json")
    addresses = [r["address"] for r in engine.normalized(plan)["resources"]]
    assert "module.governance.databricks_schema.ml" in addresses
    assert "databricks_token.old" not in addresses
    assert len(addresses) == 8
    changes_only = engine.normalized(without(plan, "planned_values"))["resources"]
    assert sorted(r["address"] for r in changes_only) == sorted(addresses)


def test_value_known_after_apply_is_read_as_the_reference_from_the_configuration():
    plan = fixture("plans/prod_pass.json")
    job = next(r for r in engine.normalized(plan)["resources"] if r["type"] == "databricks_job")
    assert job["values"]["run_as"] == [
        {"user_name": None, "service_principal_name": "${databricks_service_principal.sp.application_id}"}
    ]


def test_without_the_configuration_an_unknown_run_as_cannot_be_proven():
    """The references are what proves an unknown run_as is the prod service principal: drop them, and it fails."""
    plan = fixture("plans/prod_pass.json")
    assert engine.evaluate(without(plan, "configuration")) == [
        engine.Violation(
            "owners_not_people",
            "databricks_job.training",
            "databricks_job.training does not run as the prod service principal mlops-prod: "
            "set run_as.service_principal_name to its application_id",
        )
    ]


@pytest.mark.parametrize(
    ("name", "literals"), [("prod_pass", ["key", "scope"]), ("prod_fail", ["key", "scope", "string_value"])]
)
def test_literals_come_from_constant_values_in_the_configuration(name, literals):
    resources = engine.normalized(fixture(f"plans/{name}.json"))["resources"]
    secret = next(r for r in resources if r["type"] == "databricks_secret")
    assert secret["literal_attributes"] == literals


def test_plan_environment_is_read_from_its_catalog_or_given():
    plan = fixture("plans/prod_pass.json")
    assert engine.environment_of(plan) == "prod"
    catalog_less = without(plan, "planned_values")
    catalog_less["resource_changes"] = [c for c in plan["resource_changes"] if c["type"] != "databricks_catalog"]
    assert engine.environment_of(catalog_less) is None
    with pytest.raises(engine.PolicyInputError, match="pass environment="):
        engine.evaluate(catalog_less)
    assert engine.evaluate(catalog_less, environment="prod") == []
