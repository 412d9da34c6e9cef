"""`mlops policy`: per-environment lines and summaries, exit code 1 on any violation, plans, and the data file."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from cli.main import main
from policies import engine
from spec.config import ENVIRONMENTS
from tests.policies.conftest import FIXTURES

RULE_COUNT = len(engine.rule_names())


def summary_pattern(env: str, verdict: str) -> re.Pattern:
    return re.compile(rf"^{env}: {re.escape(verdict)} \(\d+ resources, {RULE_COUNT} rules\)$")


def test_clean_stacks_exit_0_with_one_summary_line_per_environment(synth_dir, capsys):
    assert main(["policy", "--stack-dir", str(synth_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(ENVIRONMENTS)
    for line, env in zip(lines, ENVIRONMENTS, strict=True):
        assert summary_pattern(env, "ok").match(line), line


def test_a_violation_is_printed_under_its_environment_and_exits_1(synth_dir, tmp_path, capsys):
    stacks = tmp_path / "cdktf.out"
    shutil.copytree(synth_dir, stacks)
    prod = stacks / "stacks" / "prod" / "cdk.tf.json"
    document = json.loads(prod.read_text())
    document["resource"]["databricks_token"] = {"laptop": {"comment": "mine"}}
    prod.write_text(json.dumps(document))

    assert main(["policy", "--stack-dir", str(stacks)]) == 1

    out = capsys.readouterr().out.splitlines()
    assert (
        "prod: no_plaintext_secrets databricks_token.laptop: databricks_token.laptop creates a personal access "
        "token: remove it; CI authenticates by OIDC federation (DATABRICKS_AUTH_TYPE=github-oidc) and jobs run as "
        "the service principal" in out
    )
    assert any(summary_pattern("prod", "1 violation(s)").match(line) for line in out)
    assert any(summary_pattern("staging", "ok").match(line) for line in out)


def test_without_arguments_it_synthesizes_and_checks_every_environment(capsys):
    assert main(["policy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == list(ENVIRONMENTS)


def test_a_failing_plan_exits_1(capsys):
    assert main(["policy", "--plan", str(FIXTURES / "plans" / "prod_fail.json")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[1] for line in out[:-1]] == [
        "data_scientists_read_only",
        "no_plaintext_secrets",
        "no_plaintext_secrets",
        "owners_not_people",
    ]
    assert summary_pattern("prod", "4 violation(s)").match(out[-1])


def test_a_passing_plan_named_explicitly_exits_0(capsys):
    assert main(["policy", "--plan", str(FIXTURES / "plans" / "prod_pass.json"), "--env", "prod"]) == 0
    assert summary_pattern("prod", "ok").match(capsys.readouterr().out.strip())


def test_write_data_writes_what_conftest_reads(tmp_path):
    target = tmp_path / "policy-data.json"
    assert main(["policy", "--write-data", str(target), "--env", "prod"]) == 0
    data = json.loads(target.read_text())
    assert data["mlops"]["config"] == engine.policy_config()
    assert data["mlops"]["environment"] == "prod"


def test_env_without_plan_is_a_usage_error():
    with pytest.raises(SystemExit, match="--env applies to --plan or --write-data"):
        main(["policy", "--env", "prod"])


def test_an_empty_stack_dir_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no \\*/cdk.tf.json under"):
        main(["policy", "--stack-dir", str(tmp_path)])


def test_an_unreadable_plan_is_a_clear_error(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text("not json")
    with pytest.raises(SystemExit, match="mlops policy: .*plan.json: cannot read a JSON document"):
        main(["policy", "--plan", str(plan)])
