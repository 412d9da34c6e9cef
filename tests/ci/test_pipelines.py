"""The CI/CD definitions: valid YAML with the expected triggers, jobs, permissions, OIDC auth and pinned actions
(GitHub Actions), the stages (Azure Pipelines); the CDK Terrain CLI (`npx cdktn`) on the Node that package.json pins;
the deployer for Terraform, the CI runner for the integration test after the staging deploy and nightly; yamllint
and zizmor (GitHub Actions security) pass. GitLab CI/CD: tests/ci/test_gitlab_ci.py."""

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
GITLAB = ROOT / ".gitlab-ci.yml"
# What CI runs against a deployed environment (cli/commands/ci.py), in every CI system.
CI_RUN = re.compile(r"mlops ci run-jobs --env (\S+) --graph (\S+)")
INTEGRATION_TEST = ("staging", "integration-test")
WAIT = re.compile(r"--timeout-minutes (\d+)")
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
PIPELINE_FILES = GITHUB_FILES + AZURE_FILES + [GITLAB]
# Who signs in, by the variable that holds the client id: Terraform (plan, deploy) as the deployer; the steps that
# run jobs as the CI runner (`mlops-<env>-ci`). No step signs in as the jobs' principal: it is only their run_as.
DEPLOYER = "DATABRICKS_DEPLOYER_CLIENT_ID"
CI_RUNNER = "DATABRICKS_CI_CLIENT_ID"


def test_the_workflows_exist():
    assert sorted(p.stem for p in WORKFLOWS.glob("*.yml")) == ["main", "nightly", "pr", "release"]


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


@pytest.mark.parametrize("name", ["pr", "main", "release", "nightly"])
def test_workflow_token_is_read_only_by_default(name):
    assert workflow(name)["permissions"] == {"contents": "read"}


def databricks_jobs(document: dict) -> dict[str, dict]:
    return {k: j for k, j in document["jobs"].items() if "DATABRICKS_AUTH_TYPE" in j.get("env", {})}


@pytest.mark.parametrize("name", ["pr", "main", "release", "nightly"])
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


def ci_runs(commands: str) -> list[tuple[str, str]]:
    return CI_RUN.findall(commands)


def gitlab_commands(job: dict) -> str:
    """A GitLab job's script lines, with the lists that YAML anchors nest in it flattened (as GitLab does)."""

    def flat(lines):
        for line in lines:
            yield from flat(line) if isinstance(line, list) else [line]

    return "\n".join(flat(job.get("script", [])))


def test_main_deploys_staging_then_runs_the_integration_test_of_every_model():
    document = workflow("main")
    assert triggers(document) == {"push": {"branches": ["main"]}}
    deploy = document["jobs"]["deploy-staging"]
    assert deploy["environment"] == "staging"
    assert "npx cdktn deploy staging --auto-approve" in runs(deploy)
    assert runs(deploy).index("mlops policy") < runs(deploy).index("cdktn deploy")
    assert deploy["env"]["DATABRICKS_CLIENT_ID"] == f"${{{{ vars.{DEPLOYER} }}}}"
    assert "model-workflow-staging" not in document["jobs"], "the lone model-training run is replaced"
    test = document["jobs"]["integration-test-staging"]
    assert test["needs"] == "deploy-staging"
    assert ci_runs(runs(test)) == [INTEGRATION_TEST]
    assert '--summary "$GITHUB_STEP_SUMMARY"' in runs(test), "the run links and results on the run's page"
    # The CI runner starts the runs; the jobs themselves run as the jobs' principal (their run_as).
    assert test["env"]["DATABRICKS_CLIENT_ID"] == "${{ vars.DATABRICKS_CI_CLIENT_ID }}"
    assert test["permissions"] == {"contents": "read", "id-token": "write"}


def test_main_posts_the_integration_test_result_on_the_commit_from_a_job_without_databricks():
    report = workflow("main")["jobs"]["report-staging"]
    assert report["needs"] == "integration-test-staging"
    assert report["if"] == "always()", "a failed or skipped test is reported too"
    assert report["permissions"] == {"statuses": "write"}, "only the status, and no Databricks token in this job"
    assert "env" not in report or "DATABRICKS_AUTH_TYPE" not in report["env"]
    (step,) = steps(report)
    assert step["env"]["RESULT"] == "${{ needs.integration-test-staging.result }}"
    assert 'gh api --method POST "repos/$REPOSITORY/statuses/$SHA"' in step["run"]
    assert '-f target_url="$RUN_URL"' in step["run"] and 'context="mlops/integration-test (staging)"' in step["run"]
    for result, state in (("success", "success"), ("failure", "failure")):
        assert f"{result}) state={state};" in step["run"]


def test_nightly_runs_the_integration_test_on_staging_and_tracks_failures_in_one_issue():
    document = workflow("nightly")
    schedule = triggers(document)["schedule"]
    assert len(schedule) == 1 and len(schedule[0]["cron"].split()) == 5
    minute, hour, *every_day = schedule[0]["cron"].split()
    assert every_day == ["*", "*", "*"] and minute.isdigit() and hour.isdigit(), "nightly"
    assert "workflow_dispatch" in triggers(document)
    assert document["concurrency"]["group"] == workflow("main")["concurrency"]["group"], "never during a deploy"
    test = document["jobs"]["integration-test"]
    assert test["environment"] == "staging"
    assert ci_runs(runs(test)) == [INTEGRATION_TEST]
    assert "cdktn" not in runs(test), "nightly deploys nothing"
    notify = document["jobs"]["notify"]
    assert notify["needs"] == "integration-test" and notify["if"] == "always()"
    assert notify["permissions"] == {"issues": "write"}
    (script,) = [s["with"]["script"] for s in steps(notify)]
    for call in ("issues.create(", "issues.createComment(", "state: 'closed'", "result === 'success'"):
        assert call in script


def test_every_ci_system_runs_a_graph_every_model_of_the_environment_has_and_may_run():
    from infra.constructs.jobs import job_name
    from spec import access

    github = ci_runs("\n".join(runs(job) for name in ("main", "nightly") for job in workflow(name)["jobs"].values()))
    azure_runs = ci_runs("\n".join(step["script"] for step in azure_scripts(azure())))
    gitlab_runs = ci_runs("\n".join(gitlab_commands(job) for job in load(GITLAB).values() if isinstance(job, dict)))
    assert github == azure_runs == gitlab_runs == [INTEGRATION_TEST, INTEGRATION_TEST], "after the deploy, nightly"
    # Each waits less than its CI job may run, so that the command, not the CI system, cancels the runs and reports.
    github_jobs = [job for name in ("main", "nightly") for job in workflow(name)["jobs"].values() if ci_runs(runs(job))]
    assert [int(m) for job in github_jobs for m in WAIT.findall(runs(job))] == [270, 270]
    assert all(job["timeout-minutes"] > 270 for job in github_jobs)
    azure_jobs = [
        job
        for stage in azure()["stages"]
        for job in stage["jobs"]
        if ci_runs("\n".join(s["script"] for s in azure_scripts(job)))
    ]
    assert [int(m) for job in azure_jobs for s in azure_scripts(job) for m in WAIT.findall(s["script"])] == [270, 270]
    assert all(job["timeoutInMinutes"] > 270 for job in azure_jobs)
    env_name, graph = INTEGRATION_TEST
    env = ENVIRONMENTS[env_name]
    if graph not in job_graphs(env):
        pytest.skip(f"the {graph!r} job graph is not in spec/workflows.py yet (the integration-test part of issue 18)")
    for model in env.model_names:
        scoped = env.with_model(model)
        assert graph in job_graphs(scoped), model
        assert job_name(scoped, job_graphs(scoped)[graph]) == f"[{env_name}] {model}/{graph}"
    assert graph in access.CI_JOBS, "the CI runner needs CAN_MANAGE_RUN on the jobs CI runs"


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


def test_azure_has_the_stages_in_order():
    pipeline = azure()
    assert [s["stage"] for s in pipeline["stages"]] == ["Validate", "Staging", "Prod", "Nightly"]
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


def test_azure_runs_the_integration_test_after_the_staging_deploy_and_publishes_its_summary():
    stages = {s["stage"]: s for s in azure()["stages"]}
    (job,) = stages["Staging"]["jobs"]
    deploy_steps = job["strategy"]["runOnce"]["deploy"]["steps"]
    scripts = [s.get("script", "") for s in deploy_steps]
    deploy = next(i for i, text in enumerate(scripts) if "npx cdktn deploy staging" in text)
    (test,) = [i for i, text in enumerate(scripts) if ci_runs(text)]
    assert deploy < test and ci_runs(scripts[test]) == [INTEGRATION_TEST]
    assert '--summary "$(Build.ArtifactStagingDirectory)/integration-test.md"' in scripts[test]
    assert deploy_steps[test + 1] == {"template": "templates/integration-test-report.yml"}
    report = load(AZURE / "templates" / "integration-test-report.yml")["steps"]
    assert all(step["condition"] == "succeededOrFailed()" for step in report), "a failed test is reported too"
    assert "##vso[task.uploadsummary]" in report[0]["script"]
    assert report[1]["publish"] == "$(Build.ArtifactStagingDirectory)/integration-test.md"
    assert "databricks jobs run-now" not in (AZURE / "azure-pipelines.yml").read_text()


def test_azure_runs_the_integration_test_nightly_on_main_alone_and_tracks_failures():
    pipeline = azure()
    (schedule,) = pipeline["schedules"]
    assert schedule["branches"] == {"include": ["main"]}
    assert schedule["always"] is True, "a night without a push must still run"
    minute, hour, *every_day = schedule["cron"].split()
    assert every_day == ["*", "*", "*"] and minute.isdigit() and hour.isdigit()
    variables = pipeline["variables"]
    assert variables["isScheduled"] == "$[eq(variables['Build.Reason'], 'Schedule')]"
    assert "'Schedule'" in variables["isMain"], "a scheduled run does not deploy staging"
    stages = {s["stage"]: s for s in pipeline["stages"]}
    assert stages["Validate"]["condition"] == "eq(variables.isScheduled, false)"
    nightly = stages["Nightly"]
    assert nightly["dependsOn"] == [] and nightly["condition"] == "eq(variables.isScheduled, true)"
    assert nightly["variables"] == [{"group": "mlops-staging"}]
    (job,) = nightly["jobs"]
    scripts = [s.get("script", "") for s in job["steps"]]
    assert [ci_runs(text) for text in scripts if ci_runs(text)] == [[INTEGRATION_TEST]]
    assert not any("cdktn" in text for text in scripts), "nightly deploys nothing"
    (tracker,) = [s for s in job["steps"] if "_apis/wit" in s.get("script", "")]
    assert tracker["condition"] == "always()"
    assert "workitems/\\$${WORK_ITEM_TYPE}" in tracker["script"] and "System.State" in tracker["script"]


def test_azure_signs_in_as_the_deployer_for_terraform_and_as_the_ci_runner_for_the_staging_run():
    steps_with_auth = [s for s in azure_scripts(azure()) if "DATABRICKS_AUTH_TYPE" in s.get("env", {})]
    assert steps_with_auth, "the pipeline never reaches Databricks"
    for step in steps_with_auth:
        env = step["env"]
        assert env["DATABRICKS_AUTH_TYPE"] == "azure-devops-oidc", step["displayName"]
        assert env["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)", step["displayName"]
        expected = DEPLOYER if "ARM_USE_OIDC" in env else CI_RUNNER
        assert env["DATABRICKS_CLIENT_ID"] == f"$({expected})", step["displayName"]
    ci = [s for s in azure_scripts(azure()) if ci_runs(s["script"])]
    assert len(ci) == 2, "after the staging deploy, and nightly"
    for run in ci:
        assert run["env"]["DATABRICKS_CLIENT_ID"] == "$(DATABRICKS_CI_CLIENT_ID)", "the runs start as the CI runner"
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
    assert len(PIPELINE_FILES) >= 9
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
    assert len(PIPELINE_FILES) >= 9 and GITLAB in PIPELINE_FILES
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
