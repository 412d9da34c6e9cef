"""Each rule on its own fixtures: every pass*.json has no violation at all, every fail*.json has exactly the listed
violations (rule, address and the exact message), and nothing else."""

from __future__ import annotations

import re

import pytest

from policies import engine
from tests.policies.conftest import FIXTURES, fixture

READ_ONLY = "USE_CATALOG, USE_SCHEMA, SELECT, EXECUTE, READ_VOLUME"
SECRET_FIX = (
    "remove it and authenticate through the environment (DATABRICKS_AUTH_TYPE=github-oidc in CI, "
    "a CLI profile on a laptop)"
)
TOKEN_FIX = (
    "creates a personal access token: remove it; CI authenticates by OIDC federation "
    "(DATABRICKS_AUTH_TYPE=github-oidc) and jobs run as the service principal"
)
RETRY_FIX = "set max_retries >= 1 on each task, or tag the job no_retry_reason with why a retry is unsafe"
CONSUMER_FIX = (
    "grants CAN_QUERY to no named consumer: add the groups or service principals that call the endpoint "
    "(serving.consumers in spec/config.py)"
)
QUERY_FIX = "grant it to named groups (group_name) or service principals (service_principal_name) only"

# rule -> fail fixture -> [(address, message)]: the exact violations expected, all of this rule.
APPROVERS_FIX = (
    "in prod, where promotions wait for approval: only the approvers group ml-engineers and the jobs' service "
    "principal may approve; remove these privileges or make that principal the approvers group (approvers_group in "
    "spec/config)"
)

EXPECTED: dict[str, dict[str, list[tuple[str, str]]]] = {
    "approvers_tag_models": {
        "fail": [
            (
                "databricks_grant.ci_tags",
                "databricks_grant.ci_tags lets ${databricks_service_principal.ci.application_id} set tags on model "
                f"versions (MANAGE) {APPROVERS_FIX}",
            ),
            (
                "databricks_grants.model",
                f"databricks_grants.model lets flight-ops set tags on model versions (APPLY_TAG) {APPROVERS_FIX}",
            ),
        ],
    },
    "data_scientists_read_only": {
        "fail": [
            (
                "databricks_grant.model",
                "databricks_grant.model grants data-scientists the write privileges APPLY_TAG on model "
                "databricks_registered_model.model in protected environment prod: grant that group only "
                f"{READ_ONLY} here and leave writes to the service principal's jobs",
            ),
            (
                "databricks_grants.catalog",
                "databricks_grants.catalog grants data-scientists the write privileges CREATE_TABLE, MODIFY on "
                f"catalog prod in protected environment prod: grant that group only {READ_ONLY} here and leave "
                "writes to the service principal's jobs",
            ),
        ],
    },
    "workspace_bindings": {
        "fail": [
            (
                "databricks_catalog.prod",
                "databricks_catalog.prod (catalog prod) is not bound read-only to the dev workspace 1111111111111111: "
                "add a databricks_workspace_binding with securable_name = prod, workspace_id = 1111111111111111 and "
                "binding_type = BINDING_TYPE_READ_ONLY (prod.read_only_from in spec/config.py)",
            ),
            (
                "databricks_workspace_binding.dev_write",
                "databricks_workspace_binding.dev_write binds catalog prod read-write to workspace 1111111111111111, "
                "which is not the prod workspace 3333333333333333: bind other workspaces with binding_type = "
                "BINDING_TYPE_READ_ONLY or remove the binding",
            ),
        ],
    },
    "owners_not_people": {
        "fail": [
            (
                "databricks_job.scoring",
                "databricks_job.scoring does not run as the prod service principal mlops-prod: "
                "set run_as.service_principal_name to its application_id",
            ),
            (
                "databricks_job.training",
                "databricks_job.training runs as the user bob@example.com: "
                "set run_as.service_principal_name to the service principal's application id instead",
            ),
            (
                "databricks_permissions.training",
                "databricks_permissions.training gives IS_OWNER to the person carol@example.com: "
                "give it to a group (group_name) or to the service principal (service_principal_name)",
            ),
            (
                "databricks_schema.ml",
                "databricks_schema.ml is owned by the person alice@example.com: "
                "set owner to a group or to the service principal's application id",
            ),
        ],
    },
    "job_reliability": {
        "fail": [
            (
                "databricks_job.backfill",
                "databricks_job.backfill has tasks without retries in protected environment prod (backfill, merge): "
                + RETRY_FIX,
            ),
            (
                "databricks_job.partly_exempt",
                "databricks_job.partly_exempt has tasks without retries in protected environment prod (backfill): "
                + RETRY_FIX,
            ),
            (
                "databricks_job.training",
                "databricks_job.training has tasks without retries in protected environment prod (train): " + RETRY_FIX,
            ),
            (
                "databricks_job.training",
                "databricks_job.training sends no failure notification: set email_notifications.on_failure or "
                "webhook_notifications.on_failure (the environment's alerts in spec/config.py)",
            ),
        ],
    },
    "serving_endpoints": {
        "fail": [
            (
                "databricks_model_serving.unlogged",
                "databricks_model_serving.unlogged has no databricks_permissions: declare one with "
                "serving_endpoint_id = databricks_model_serving.unlogged.serving_endpoint_id that grants CAN_QUERY "
                "to named groups or service principals",
            ),
            (
                "databricks_model_serving.unlogged",
                "databricks_model_serving.unlogged has no inference table: set "
                "ai_gateway.inference_table_config.enabled = true (with catalog_name and schema_name) so requests "
                "and responses reach the monitor",
            ),
            (
                "databricks_permissions.open",
                f"databricks_permissions.open {CONSUMER_FIX}",
            ),
            (
                "databricks_permissions.open",
                f"databricks_permissions.open grants CAN_QUERY to the group users: {QUERY_FIX}",
            ),
            (
                "databricks_permissions.open",
                f"databricks_permissions.open grants CAN_QUERY to the person alice@example.com: {QUERY_FIX}",
            ),
            ("databricks_permissions.unqueried", f"databricks_permissions.unqueried {CONSUMER_FIX}"),
        ],
    },
    "no_plaintext_secrets": {
        "fail": [
            ("databricks_obo_token.sp", f"databricks_obo_token.sp {TOKEN_FIX}"),
            (
                "databricks_secret.webhook",
                "databricks_secret.webhook has its string_value written in the code: pass it as a sensitive "
                "variable (TF_VAR_ from the CI secret store) or put it with databricks secrets put-secret outside "
                "Terraform",
            ),
            ("databricks_token.ci", f"databricks_token.ci {TOKEN_FIX}"),
            ("provider.databricks", f"provider.databricks sets token as a literal: {SECRET_FIX}"),
            (
                "provider.databricks.account",
                f"provider.databricks.account sets client_secret as a literal: {SECRET_FIX}",
            ),
        ],
    },
    "job_cluster_policy": {
        "fail": [
            (
                "databricks_job.training",
                "databricks_job.training starts clusters without a cluster policy (job_cluster shared, task train): "
                "set new_cluster.policy_id to the environment's databricks_cluster_policy, or run the task serverless",
            ),
        ],
    },
    "monitor_alerts": {
        "fail": [
            (
                "databricks_quality_monitor.predictions",
                "databricks_quality_monitor.predictions monitors dev.monitoring.predictions but no SQL alert reads it: "
                "add a databricks_alert_v2 whose query_text reads predictions_profile_metrics, "
                "predictions_drift_metrics or the table itself",
            ),
            (
                "databricks_alert_v2.silent",
                "databricks_alert_v2.silent notifies nobody: add evaluation.notification.subscriptions with the "
                "environment's notification destination or e-mails (alerts in spec/config.py)",
            ),
        ],
    },
}

RULES = engine.rule_names()
PASS_FIXTURES = sorted(str(p.relative_to(FIXTURES)) for rule in RULES for p in (FIXTURES / rule).glob("pass*.json"))
FAIL_CASES = [(rule, name) for rule, cases in EXPECTED.items() for name in cases]


def test_every_rule_has_a_passing_and_a_failing_fixture():
    assert len(RULES) >= 8
    assert sorted(EXPECTED) == sorted(RULES)
    for rule in RULES:
        assert sorted((FIXTURES / rule).glob("pass*.json")), f"{rule} has no passing fixture"
        fail_files = sorted(p.stem for p in (FIXTURES / rule).glob("fail*.json"))
        assert fail_files, f"{rule} has no failing fixture"
        assert fail_files == sorted(EXPECTED[rule]), f"{rule}: every failing fixture needs its expected messages"


@pytest.mark.parametrize("relative", PASS_FIXTURES)
def test_passing_fixture_has_no_violation(relative):
    assert engine.evaluate(fixture(relative)) == []


@pytest.mark.parametrize(("rule", "name"), FAIL_CASES)
def test_failing_fixture_reports_exactly_the_expected_messages(rule, name):
    violations = engine.evaluate(fixture(f"{rule}/{name}.json"))
    assert violations == sorted(engine.Violation(rule, address, message) for address, message in EXPECTED[rule][name])


@pytest.mark.parametrize(("rule", "name"), FAIL_CASES)
def test_each_message_names_its_address_first_and_a_fix(rule, name):
    violations = engine.evaluate(fixture(f"{rule}/{name}.json"))
    assert violations
    for v in violations:
        assert v.message.startswith(v.address + " "), v
        assert ": " in v.message, f"{v.message!r} says what is wrong but not what to do"


@pytest.mark.parametrize("rule", RULES)
def test_rule_file_opens_with_rule_why_good_bad_and_fix(rule):
    text = (engine.POLICY_DIR / f"{rule}.rego").read_text()
    header = text.split("\npackage ", 1)[0]
    assert all(line.startswith("#") for line in header.splitlines() if line.strip()), "must open with a comment"
    for section in ("# Rule:", "# Why:", "# Good", "# Bad", "# Fix:"):
        assert section in header, f"{rule}.rego has no {section!r} section"
    assert re.search(rf"^package mlops\.{rule}$", text, re.MULTILINE)
    assert "deny contains f.msg if some f in findings" in text, "conftest/opa read `deny`"
