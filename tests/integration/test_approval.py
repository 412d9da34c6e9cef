"""Manual approval end to end on the local engines, in prod (``promotion.approval`` is manual there by default): the
model workflow validates a Challenger, the model-deployment job (as its model trigger would start it) waits and
notifies, `mlops approve` records the verdict, and the next run promotes it; a rejected version stays a Challenger."""

from __future__ import annotations

import json

import pytest

from cli.main import main as mlops
from jobs.core import contract
from jobs.platform import build_platform
from jobs.platform.registry import CHALLENGER, CHAMPION, ModelRef
from local.paths import mlops_home
from local.runner import LocalRunner
from spec.config import ENVIRONMENTS

pytestmark = pytest.mark.integration

ENV = ENVIRONMENTS["prod"]
MODEL = ENV.registered_model


def approval_requests() -> list[dict]:
    path = mlops_home() / "notifications.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [e for e in events if e["event"] == "approval_requested"]


@pytest.fixture(scope="module")
def trained(spark, mlops_home) -> LocalRunner:
    assert ENV.promotion.approval == "manual"
    runner = LocalRunner(ENV)
    params = {
        "start_date": "2013-01-01",
        "end_date": "2013-03-10",
        "training_start": "2013-01-01",
        "training_end": "2013-03-10",
        "max_rows": "20000",
    }
    run = runner.run("model-training", params)
    assert run.status == "SUCCESS", run.failed_task
    # The model workflow ends at validation here: no deploy task, the model-deployment job deploys.
    assert "deploy" not in run.tasks
    assert build_platform(ENV).registry.alias_version(CHALLENGER) == "1"
    return runner


def test_a_challenger_waits_for_approval_and_the_next_run_promotes_it(trained, capsys):
    registry = build_platform(ENV).registry

    # when: the deployment job runs for the new Challenger (its trigger's start, locally on demand)
    waiting = trained.run("model-deployment", {})

    # then: it succeeds without promoting, tags the version as waiting and tells the destinations how to approve
    assert waiting.status == "SUCCESS"
    assert waiting.tasks["approval"].values == {
        "promoted": "false", "champion_version": "", "awaiting_approval": "true"
    }  # fmt: skip
    assert registry.alias_version(CHAMPION) is None
    tags = registry.version_tags(ModelRef(MODEL, "1"))
    assert tags[contract.PROMOTION_DECISION] == "awaiting approval"
    assert tags[contract.APPROVAL_REQUESTED_AT]
    [request] = approval_requests()
    details = request["details"]
    assert (details["model"], details["version"], details["approvers"]) == (MODEL, "1", ENV.approvers)
    assert details["approve_command"] == "mlops approve --env prod --model flight_delay --version 1"
    assert details["metrics"]["roc_auc"] > 0.5

    # when: it runs again before anyone approved: still waiting, and nobody is told twice
    assert trained.run("model-deployment", {}).tasks["approval"].values["awaiting_approval"] == "true"
    assert len(approval_requests()) == 1

    # when: a person approves version 1 (prod runs one model: --model may be left out)
    assert mlops(["approve", "--env", "prod", "--version", "1", "--reason", "checked the slices"]) == 0
    assert "flight_delay version 1: approved" in capsys.readouterr().out
    promoted = trained.run("model-deployment", {})

    # then: the next run promotes it
    assert promoted.status == "SUCCESS"
    assert promoted.tasks["approval"].values == {
        "promoted": "true", "champion_version": "1", "awaiting_approval": "false"
    }  # fmt: skip
    assert registry.alias_version(CHAMPION) == "1"
    assert registry.version_tags(ModelRef(MODEL, "1"))[contract.APPROVAL_REASON] == "checked the slices"

    # and: approving the Champion, or a version that does not exist, is refused with the reason
    assert mlops(["approve", "--env", "prod", "--version", "1"]) != 0
    assert "version 1 is the champion" in capsys.readouterr().err
    assert mlops(["approve", "--env", "prod", "--version", "99"]) != 0
    assert "does not exist" in capsys.readouterr().err


def test_a_rejected_version_stays_a_challenger(trained, capsys):
    # given: a Champion (the test above), and a second validated version of the same model, the Challenger (a copy of
    # the first, registered as the model workflow registers, with validation's tags and alias). As good: prod's
    # min_gain leaves it to the online decision, so the deployment job does not ask for approval; a person rejects it
    # all the same (from the UI, or after the online decision asked).
    registry = build_platform(ENV).registry
    if registry.alias_version(CHAMPION) is None:
        pytest.skip("needs the champion of test_a_challenger_waits_for_approval_and_the_next_run_promotes_it")
    first = registry.get_version(ModelRef(MODEL, "1"))
    copied = {k: v for k, v in (first.tags or {}).items() if not k.startswith(("approval", "promotion"))}
    second = str(registry.client.create_model_version(MODEL, first.source, run_id=first.run_id, tags=copied).version)
    registry.set_alias(CHALLENGER, second)

    # when: a person rejects it, and the deployment job runs again
    assert mlops(["approve", "--env", "prod", "--version", second, "--reject", "--reason", "bad slice"]) == 0
    run = trained.run("model-deployment", {})

    # then: it is not promoted, says why (the gate's reason, before any comparison), and stays the Challenger;
    # approving it now is refused
    assert run.tasks["approval"].values == {"promoted": "false", "champion_version": "1", "awaiting_approval": "false"}
    assert registry.alias_version(CHAMPION) == "1"
    assert registry.alias_version(CHALLENGER) == second
    tags = registry.version_tags(ModelRef(MODEL, second))
    assert tags[contract.PROMOTION_DECISION] == "not promoted"
    assert "was rejected by" in tags[contract.PROMOTION_REASON] and "bad slice" in tags[contract.PROMOTION_REASON]
    capsys.readouterr()
    assert mlops(["approve", "--env", "prod", "--version", second]) != 0
    assert "was rejected already" in capsys.readouterr().err
