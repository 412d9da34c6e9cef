""".gitlab-ci.yml: the same promotion as the GitHub workflows and the Azure DevOps pipeline (merge request: lint,
tests, synth, policies, plan as a note; main: deploy staging, then the integration test; release/*: prod behind a
protected environment; nightly by a pipeline schedule), every Databricks sign-in by OIDC (`id_tokens`), images
pinned; valid against GitLab's CI schema (check-jsonschema, which ships it: no network). yamllint runs over it with
the other pipeline files (tests/ci/test_pipelines.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spec.config import ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[2]
GITLAB = ROOT / ".gitlab-ci.yml"
MR = '$CI_PIPELINE_SOURCE == "merge_request_event"'
MAIN_PUSH = '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'
RELEASE_PUSH = '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH =~ /^release\\//'
SCHEDULE = '$CI_PIPELINE_SOURCE == "schedule" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'


@pytest.fixture(scope="module")
def pipeline() -> dict:
    document = yaml.safe_load(GITLAB.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def jobs(pipeline: dict) -> dict[str, dict]:
    """The jobs GitLab runs: every top-level mapping that is not a keyword or a hidden (``.``) template."""
    keywords = {"workflow", "stages", "default", "variables", "include"}
    return {k: v for k, v in pipeline.items() if k not in keywords and not k.startswith(".")}


def resolved(pipeline: dict, name: str) -> dict:
    """A job with its ``extends`` templates merged in, as GitLab merges them (mappings deeply, the job winning)."""

    def merge(base: dict, over: dict) -> dict:
        out = dict(base)
        for key, value in over.items():
            both = isinstance(value, dict) and isinstance(out.get(key), dict)
            out[key] = merge(out[key], value) if both else value
        return out

    job = pipeline[name]
    merged: dict = {}
    for parent in job.get("extends", []):
        merged = merge(merged, resolved(pipeline, parent))
    return merge(merged, {k: v for k, v in job.items() if k != "extends"})


def commands(job: dict) -> list[str]:
    def flat(lines):
        for line in lines:
            yield from flat(line) if isinstance(line, list) else [line]

    return list(flat(job.get("script", [])))


def rules(job: dict) -> list[str]:
    return [rule["if"] for rule in job["rules"]]


def test_gitlab_s_ci_schema_accepts_the_pipeline():
    checker = Path(sys.executable).parent / "check-jsonschema"
    assert checker.exists(), "check-jsonschema is a dev dependency: run `make setup`"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.gitlab-ci", str(GITLAB)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_fails_on_a_misspelled_keyword(tmp_path):
    # The check above can fail: a keyword GitLab does not know is refused.
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(GITLAB.read_text().replace("  resource_group: prod", "  resource_groups: prod"))
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.gitlab-ci", str(broken)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and "'resource_groups' was unexpected" in result.stdout


def test_pipelines_run_for_merge_requests_main_release_branches_and_schedules(pipeline):
    assert rules(pipeline["workflow"]) == [MR, SCHEDULE, MAIN_PUSH, RELEASE_PUSH]
    assert pipeline["stages"] == ["validate", "plan", "deploy", "integration-test"]
    assert {name: rules(job) for name, job in jobs(pipeline).items()} == {
        "validate": [MR],
        "plan": [MR + " && $CI_MERGE_REQUEST_SOURCE_PROJECT_ID == $CI_PROJECT_ID"],
        "deploy-staging": [MAIN_PUSH],
        "integration-test-staging": [MAIN_PUSH],
        "nightly-integration-test": [SCHEDULE],
        "validate-release": [RELEASE_PUSH],
        "deploy-prod": [RELEASE_PUSH],
    }


def test_merge_requests_are_validated_and_both_plans_are_posted_as_notes(pipeline):
    validate = resolved(pipeline, "validate")
    assert commands(validate) == [
        "make lint",
        "make test-unit",
        "make test-integration",
        "make synth",
        ".venv/bin/mlops policy --stack-dir cdktf.out",
    ]
    assert validate["variables"]["EXTRA_PACKAGES"] == "openjdk-17-jre-headless", "PySpark needs Java"
    plan = resolved(pipeline, "plan")
    assert plan["needs"] == ["validate"]
    stacks = plan["parallel"]["matrix"][0]["STACK"]
    assert stacks == ["staging", "prod"] and set(stacks) <= set(ENVIRONMENTS)
    # Environments of their own: a plan never waits for prod's approval, and records no deployment.
    assert plan["environment"] == {"name": "$STACK-plan", "action": "prepare"}
    script = "\n".join(commands(plan))
    assert 'npx cdktn diff "$STACK" --no-color 2>&1 | tee diff.txt' in script
    assert '.venv/bin/mlops policy --plan "plan-$STACK.json" --env "$STACK"' in script
    (note,) = plan["after_script"]
    assert "merge_requests/$CI_MERGE_REQUEST_IID/notes" in note and "<!-- cdktn-diff:${STACK} -->" in note
    assert '-X PUT -H "PRIVATE-TOKEN: $MR_NOTE_TOKEN"' in note, "one note per environment, updated on each push"


def test_main_deploys_staging_then_runs_the_integration_test_as_the_ci_runner(pipeline):
    deploy = resolved(pipeline, "deploy-staging")
    script = commands(deploy)
    assert script[-1] == "npx cdktn deploy staging --auto-approve"
    assert script.index(".venv/bin/mlops policy --stack-dir cdktf.out") < len(script) - 1
    assert deploy["environment"] == {"name": "staging", "deployment_tier": "staging"}
    assert deploy["variables"]["DATABRICKS_CLIENT_ID"] == "$DATABRICKS_DEPLOYER_CLIENT_ID"

    test = resolved(pipeline, "integration-test-staging")
    assert test["needs"] == ["deploy-staging"] and test["stage"] == "integration-test"
    assert commands(test) == [
        ".venv/bin/mlops ci run-jobs --env staging --graph integration-test --timeout-minutes 270 "
        "--summary integration-test.md"
    ]
    # The command stops waiting (and cancels the runs) before GitLab stops the job.
    assert test["timeout"] == "5h" and 270 < 5 * 60
    assert test["environment"] == {"name": "staging", "action": "verify"}
    assert test["variables"]["DATABRICKS_CLIENT_ID"] == "$DATABRICKS_CI_CLIENT_ID"
    assert test["artifacts"]["when"] == "always" and test["artifacts"]["paths"] == ["integration-test.md"]
    assert deploy["resource_group"] == test["resource_group"] == "staging", "one deploy or test of staging at a time"


def test_the_nightly_schedule_runs_the_integration_test_alone(pipeline):
    nightly = resolved(pipeline, "nightly-integration-test")
    assert nightly["needs"] == []
    assert commands(nightly) == commands(resolved(pipeline, "integration-test-staging"))
    assert nightly["environment"] == {"name": "staging", "action": "verify"}
    assert nightly["variables"]["DATABRICKS_CLIENT_ID"] == "$DATABRICKS_CI_CLIENT_ID"
    # Only the schedule runs nothing else: every other job has a rule that a schedule does not match.
    others = [name for name, job in jobs(pipeline).items() if any("schedule" in rule for rule in rules(job))]
    assert others == ["nightly-integration-test"]


def test_release_branches_deploy_prod_behind_the_protected_environment(pipeline):
    deploy = resolved(pipeline, "deploy-prod")
    assert deploy["needs"] == ["validate-release"]
    assert deploy["environment"] == {"name": "prod", "deployment_tier": "production"}
    assert commands(deploy)[-1] == "npx cdktn deploy prod --auto-approve"
    assert deploy["interruptible"] is False and deploy["resource_group"] == "prod"
    assert "cdktn deploy" not in "\n".join(commands(resolved(pipeline, "validate-release")))


def test_every_databricks_sign_in_is_an_oidc_id_token_for_the_account(pipeline):
    signing_in = {name: resolved(pipeline, name) for name in jobs(pipeline)}
    signing_in = {name: job for name, job in signing_in.items() if "DATABRICKS_AUTH_TYPE" in job.get("variables", {})}
    assert sorted(signing_in) == [
        "deploy-prod",
        "deploy-staging",
        "integration-test-staging",
        "nightly-integration-test",
        "plan",
    ]
    for name, job in signing_in.items():
        variables = job["variables"]
        assert variables["DATABRICKS_AUTH_TYPE"] == "env-oidc", name
        # The Databricks SDKs, CLI and provider read the token from DATABRICKS_OIDC_TOKEN by default.
        assert job["id_tokens"]["DATABRICKS_OIDC_TOKEN"] == {"aud": "$DATABRICKS_ACCOUNT_ID"}, name
        terraform = "ARM_USE_OIDC" in variables
        expected = "$DATABRICKS_DEPLOYER_CLIENT_ID" if terraform else "$DATABRICKS_CI_CLIENT_ID"
        assert variables["DATABRICKS_CLIENT_ID"] == expected, name
        if terraform:
            assert job["id_tokens"]["ARM_OIDC_TOKEN"] == {"aud": "api://AzureADTokenExchange"}, name
            assert variables["TF_VAR_databricks_account_id"] == "$DATABRICKS_ACCOUNT_ID", name
        assert job["environment"]["name"], f"{name}: its variables come from the environment"
    text = GITLAB.read_text()
    for credential in ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "ARM_CLIENT_SECRET", "$DATABRICKS_CLIENT_ID"):
        assert credential not in text, f".gitlab-ci.yml mentions {credential}"


def test_the_image_is_pinned_to_an_exact_version_or_digest(pipeline):
    images = [pipeline["default"]["image"]] + [job["image"] for job in jobs(pipeline).values() if "image" in job]
    assert images
    for image in images:
        assert re.match(r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*|@sha256:[0-9a-f]{64})$", image), image
    major = pipeline["default"]["image"].split(":")[1].split(".")[0]
    assert major == "22", "the Node major package.json pins for cdktn"


def test_the_terraform_it_installs_is_checked_against_its_checksums(pipeline):
    (install,) = pipeline[".terraform"]
    assert "sha256sum -c -" in install
    azure = yaml.safe_load((ROOT / ".azure" / "pipelines" / "templates" / "setup.yml").read_text())
    assert pipeline["variables"]["TERRAFORM_VERSION"] == azure["parameters"][2]["default"]
