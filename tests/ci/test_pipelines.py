"""The CI/CD definitions: valid YAML with the expected triggers, jobs, permissions, OIDC auth and pinned actions
(GitHub Actions), the three stages (Azure Pipelines); the CDK Terrain CLI (`npx cdktn`) on the Node that package.json
pins; the deployer for Terraform, the CI runner for the staging run; yamllint and zizmor (GitHub Actions security)
pass."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spec.config import ENVIRONMENTS
from spec.workflows import job_graphs

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
AZURE = ROOT / ".azure" / "pipelines"
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
YAMLLINT_CONFIG = """
extends: default
rules:
  line-length: {max: 120}
  document-start: disable
  truthy: {check-keys: false}
  comments: {min-spaces-from-content: 1}
"""


def load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    return document


def workflow(name: str) -> dict:
    return load(WORKFLOWS / f"{name}.yml")


def triggers(document: dict) -> dict:
    # YAML 1.1 reads the key `on` as True.
    return document.get("on", document.get(True))


def steps(job: dict) -> list[dict]:
    assert job.get("steps"), "a job without steps"
    return job["steps"]


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def all_uses(document: dict) -> list[str]:
    found = []

    def visit(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "uses" and isinstance(value, str):
                    found.append(value)
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(document)
    return found


GITHUB_FILES = sorted(WORKFLOWS.glob("*.yml")) + sorted(ACTIONS.glob("*/action.yml"))
AZURE_FILES = sorted(AZURE.rglob("*.yml"))
PIPELINE_FILES = GITHUB_FILES + AZURE_FILES
# Who signs in, by the variable that holds the client id: Terraform (plan, deploy) as the deployer; the steps that
# run jobs as the CI runner (`mlops-<env>-ci`). No step signs in as the jobs' principal: it is only their run_as.
DEPLOYER = "DATABRICKS_DEPLOYER_CLIENT_ID"
CI_RUNNER = "DATABRICKS_CI_CLIENT_ID"


def test_the_three_workflows_exist():
    assert sorted(p.stem for p in WORKFLOWS.glob("*.yml")) == ["main", "pr", "release"]


@pytest.mark.parametrize("path", GITHUB_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_third_party_action_is_pinned_to_a_full_commit_sha(path):
    uses = all_uses(load(path))
    assert uses, f"{path.name} uses no action"
    for ref in uses:
        if ref.startswith("./"):
            assert (ROOT / ref / "action.yml").is_file(), f"local action {ref} does not exist"
            continue
        assert PINNED.match(ref), f"{path.name}: {ref!r} is not pinned to a 40-hex commit SHA"
    text = path.read_text()
    for line in text.splitlines():
        if "uses:" in line and "@" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d", line), f"{path.name}: say which release the SHA is: {line}"


@pytest.mark.parametrize("name", ["pr", "main", "release"])
def test_workflow_token_is_read_only_by_default(name):
    assert workflow(name)["permissions"] == {"contents": "read"}


def databricks_jobs(document: dict) -> dict[str, dict]:
    return {k: j for k, j in document["jobs"].items() if "DATABRICKS_AUTH_TYPE" in j.get("env", {})}


@pytest.mark.parametrize("name", ["pr", "main", "release"])
def test_databricks_is_reached_by_oidc_federation_with_no_stored_token(name):
    document = workflow(name)
    jobs = databricks_jobs(document)
    assert jobs, f"{name}.yml never reaches Databricks"
    for key, job in jobs.items():
        env = job["env"]
        assert env["DATABRICKS_AUTH_TYPE"] == "github-oidc", key
        assert env["DATABRICKS_HOST"] == "${{ vars.DATABRICKS_HOST }}", key
        expected = DEPLOYER if "ARM_USE_OIDC" in env else CI_RUNNER
        assert env["DATABRICKS_CLIENT_ID"] == f"${{{{ vars.{expected} }}}}", key
        if "ARM_USE_OIDC" in env:
            assert env["TF_VAR_databricks_account_id"] == "${{ vars.DATABRICKS_ACCOUNT_ID }}", key
        assert job["permissions"]["id-token"] == "write", key
        assert job["environment"], f"{key}: the OIDC subject names the environment"
    text = (WORKFLOWS / f"{name}.yml").read_text()
    for credential in ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "ARM_CLIENT_SECRET", "secrets.DATABRICKS"):
        assert credential not in text, f"{name}.yml mentions {credential}"
    assert "vars.DATABRICKS_CLIENT_ID" not in text, f"{name}.yml signs in as the jobs' principal"


def test_pr_validates_plans_both_protected_environments_and_comments():
    document = workflow("pr")
    assert "pull_request" in triggers(document)
    assert "pull_request_target" not in triggers(document), "PR code must not run with the base repo's secrets"
    validate = document["jobs"]["validate"]
    commands = runs(validate)
    for command in ("make lint", "make test-unit", "make test-integration", "make synth", "mlops policy"):
        assert command in commands, f"validate does not run {command!r}"
    plan = document["jobs"]["plan"]
    assert plan["needs"] == "validate"
    stacks = plan["strategy"]["matrix"]["stack"]
    assert stacks == ["staging", "prod"]
    assert set(stacks) <= set(ENVIRONMENTS)
    assert plan["environment"] == "${{ matrix.stack }}-plan", "plans must not wait for the prod approval gate"
    assert plan["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    plan_commands = runs(plan)
    assert 'npx cdktn diff "$STACK"' in plan_commands
    assert 'mlops policy --plan "plan-$STACK.json" --env "$STACK"' in plan_commands
    comment = [s for s in steps(plan) if s.get("uses", "").startswith("actions/github-script@")]
    assert len(comment) == 1 and "createComment" in comment[0]["with"]["script"]


def test_main_deploys_staging_then_runs_the_model_workflow_on_a_small_slice():
    document = workflow("main")
    assert triggers(document) == {"push": {"branches": ["main"]}}
    deploy = document["jobs"]["deploy-staging"]
    assert deploy["environment"] == "staging"
    assert "npx cdktn deploy staging --auto-approve" in runs(deploy)
    assert runs(deploy).index("mlops policy") < runs(deploy).index("cdktn deploy")
    assert deploy["env"]["DATABRICKS_CLIENT_ID"] == f"${{{{ vars.{DEPLOYER} }}}}"
    smoke = document["jobs"]["model-workflow-staging"]
    assert smoke["needs"] == "deploy-staging"
    assert "databricks jobs run-now" in runs(smoke)
    # The CI runner starts the run; the job itself runs as the jobs' principal (its run_as).
    assert smoke["env"]["DATABRICKS_CLIENT_ID"] == "${{ vars.DATABRICKS_CI_CLIENT_ID }}"


def test_the_staging_run_names_a_real_job_and_real_parameters():
    from infra.constructs.jobs import job_name

    env = ENVIRONMENTS["staging"]
    graph = job_graphs(env)["model-training"]
    smoke_env = workflow("main")["jobs"]["model-workflow-staging"]["env"]
    assert smoke_env["MODEL_JOB_NAME"] == job_name(env, graph)
    parameters = yaml.safe_load(smoke_env["SMOKE_JOB_PARAMETERS"])
    assert parameters and set(parameters) <= set(graph.parameters)
    assert int(parameters["max_rows"]) < int(graph.parameters["max_rows"]), "a small slice"


def test_release_deploys_prod_behind_the_prod_environment():
    document = workflow("release")
    assert triggers(document) == {"push": {"branches": ["release/**"]}}
    deploy = document["jobs"]["deploy-prod"]
    assert deploy["environment"] == "prod"
    assert deploy["needs"] == "validate"
    assert "npx cdktn deploy prod --auto-approve" in runs(deploy)
    assert "cdktn deploy" not in runs(document["jobs"]["validate"])


def azure() -> dict:
    return load(AZURE / "azure-pipelines.yml")


def azure_scripts(node) -> list[dict]:
    """Every `script` step of the pipeline, however deep (stages, jobs, deployment strategies, template loops)."""
    if isinstance(node, dict):
        found = [node] if isinstance(node.get("script"), str) else []
        return found + [step for value in node.values() for step in azure_scripts(value)]
    if isinstance(node, list):
        return [step for item in node for step in azure_scripts(item)]
    return []


def test_azure_has_the_three_stages_in_order():
    pipeline = azure()
    assert [s["stage"] for s in pipeline["stages"]] == ["Validate", "Staging", "Prod"]
    assert pipeline["trigger"]["branches"]["include"] == ["main", "release/*"]
    assert "main" in pipeline["pr"]["branches"]["include"]


def test_azure_deploys_staging_on_main_and_prod_on_release_with_an_environment_approval():
    stages = {s["stage"]: s for s in azure()["stages"]}
    assert "isMain" in stages["Staging"]["condition"] and "isRelease" in stages["Prod"]["condition"]
    for stage, env in (("Staging", "staging"), ("Prod", "prod")):
        (job,) = stages[stage]["jobs"]
        assert job["environment"] == env, "a deployment job on the environment carries its approvals"
        deploy_steps = job["strategy"]["runOnce"]["deploy"]["steps"]
        scripts = "\n".join(s.get("script", "") for s in deploy_steps)
        assert f"npx cdktn deploy {env} --auto-approve" in scripts
        for step in deploy_steps:
            if "cdktn deploy" in step.get("script", ""):
                assert step["env"]["DATABRICKS_AUTH_TYPE"] == "azure-devops-oidc"
                assert step["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"
    assert "databricks jobs run-now" in (AZURE / "azure-pipelines.yml").read_text()


def test_azure_signs_in_as_the_deployer_for_terraform_and_as_the_ci_runner_for_the_staging_run():
    steps_with_auth = [s for s in azure_scripts(azure()) if "DATABRICKS_AUTH_TYPE" in s.get("env", {})]
    assert steps_with_auth, "the pipeline never reaches Databricks"
    for step in steps_with_auth:
        env = step["env"]
        assert env["DATABRICKS_AUTH_TYPE"] == "azure-devops-oidc", step["displayName"]
        assert env["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)", step["displayName"]
        expected = DEPLOYER if "ARM_USE_OIDC" in env else CI_RUNNER
        assert env["DATABRICKS_CLIENT_ID"] == f"$({expected})", step["displayName"]
    (run,) = [s for s in azure_scripts(azure()) if "databricks jobs run-now" in s["script"]]
    assert run["env"]["DATABRICKS_CLIENT_ID"] == "$(DATABRICKS_CI_CLIENT_ID)", "the run starts as the CI runner"
    assert run["env"]["MODEL_JOB_NAME"] == workflow("main")["jobs"]["model-workflow-staging"]["env"]["MODEL_JOB_NAME"]
    assert "$(DATABRICKS_CLIENT_ID)" not in (AZURE / "azure-pipelines.yml").read_text(), "the jobs' principal"


def test_azure_validate_stage_runs_the_checks_and_the_diffs():
    validate = next(s for s in azure()["stages"] if s["stage"] == "Validate")
    checks = validate["jobs"][0]
    scripts = "\n".join(s.get("script", "") for s in checks["steps"])
    for command in ("make lint", "make test-unit", "make test-integration", "make synth", "mlops policy"):
        assert command in scripts
    text = (AZURE / "azure-pipelines.yml").read_text()
    assert "npx cdktn diff ${{ stack }}" in text and "split('staging,prod', ',')" in text
    assert "DATABRICKS_TOKEN" not in text and "CLIENT_SECRET" not in text


def test_azure_templates_exist():
    pipeline_text = (AZURE / "azure-pipelines.yml").read_text()
    templates = set(re.findall(r"template: (\S+)", pipeline_text))
    assert templates
    for template in templates:
        assert load(AZURE / template)["steps"]


def test_no_pipeline_runs_the_cdktf_cli():
    # cdktn keeps cdktf's file names: the output directory cdktf.out and the config cdktf.json.
    assert len(PIPELINE_FILES) >= 6
    for path in PIPELINE_FILES:
        text = path.read_text().replace("cdktf.out", "").replace("cdktf.json", "")
        assert "cdktf" not in text.lower(), f"{path.relative_to(ROOT)} still names cdktf"
    commands = "\n".join(path.read_text() for path in PIPELINE_FILES)
    assert re.findall(r"npx (cdkt\w+) (?:diff|deploy)", commands), "no pipeline runs the CDK Terrain CLI"
    assert set(re.findall(r"npx (cdkt\w+)", commands)) == {"cdktn"}


def pinned_node_major() -> str:
    package = json.loads((ROOT / "package.json").read_text())
    return package["devDependencies"]["node"].split(".")[0]


def test_ci_installs_the_node_major_that_package_json_pins_for_cdktn():
    major = pinned_node_major()
    assert major == "22", "cdktn-cli 0.24.0 needs Node >= 22.19"
    (node,) = [s for s in load(ACTIONS / "setup" / "action.yml")["runs"]["steps"] if "setup-node@" in s.get("uses", "")]
    assert node["with"]["node-version"] == major
    (tool,) = [s for s in load(AZURE / "templates" / "setup.yml")["steps"] if s.get("task") == "NodeTool@0"]
    assert tool["inputs"]["versionSpec"] == f"{major}.x"


def test_yamllint_accepts_every_pipeline_file():
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    config = YamlLintConfig(YAMLLINT_CONFIG)
    assert len(PIPELINE_FILES) >= 6
    problems = [
        f"{path.relative_to(ROOT)}:{p.line}: {p.message}"
        for path in PIPELINE_FILES
        for p in linter.run(path.read_text(), config, str(path))
    ]
    assert problems == []


def test_zizmor_finds_no_security_issue_in_the_workflows():
    zizmor = Path(sys.executable).parent / "zizmor"
    assert zizmor.exists(), "zizmor is a dev dependency: run `make setup`"
    result = subprocess.run(
        [str(zizmor), "--offline", "--no-progress", "--config", str(ROOT / ".github" / "zizmor.yml"), ".github"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
