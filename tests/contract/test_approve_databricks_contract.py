"""`mlops approve --target databricks`: the real registry adapter (MLflow's ``databricks-uc`` store) against a
stand-in workspace over HTTP (``tests.support.fake_workspace``): no workspace can be reached from here, so the test
checks the REST calls the command makes (the approval tag on the version in Unity Catalog) and the refusals it makes
before writing anything."""

from __future__ import annotations

import pytest

from cli.main import main as mlops
from spec.config import ENVIRONMENTS
from tests.support.fake_workspace import FakeWorkspace, RegisteredModel, signed_in

pytestmark = pytest.mark.contract

ENV = ENVIRONMENTS["prod"]
MODEL = ENV.registered_model
UC = "/api/2.0/mlflow/unity-catalog"


@pytest.fixture
def workspace(monkeypatch):
    fake = FakeWorkspace()
    fake.models[MODEL] = RegisteredModel(
        MODEL,
        aliases={"champion": "5", "challenger": "6"},
        versions={
            "5": {"model_validation_status": "PASSED"},
            "6": {"model_validation_status": "PASSED", "promotion_decision": "awaiting approval"},
            "7": {"model_validation_status": "FAILED", "model_validation_reasons": "roc_auc 0.55 < 0.62"},
        },
    )
    with signed_in(fake, monkeypatch):
        yield fake


def _writes(workspace: FakeWorkspace) -> list[tuple[str, str, dict | None]]:
    return [(m, p, b) for m, p, b in workspace.api_calls() if m != "GET"]


def test_approve_sets_the_approval_tag_on_the_version_in_unity_catalog(workspace, capsys, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "ana")
    assert mlops(["approve", "--env", "prod", "--version", "6", "--reason", "ok", "--target", "databricks"]) == 0

    assert workspace.models[MODEL].versions["6"]["approval"] == "approved"
    tag = f"{UC}/model-versions/set-tag"
    assert _writes(workspace) == [
        ("POST", tag, {"name": MODEL, "version": "6", "key": "approval", "value": "approved"}),
        ("POST", tag, {"name": MODEL, "version": "6", "key": "approval_reason", "value": "ok"}),
        ("POST", tag, {"name": MODEL, "version": "6", "key": "approval_by", "value": "ana"}),
    ]
    assert "run the job '[prod] flight_delay/model-deployment' with model_version=6" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("version", "why"),
    [
        ("7", "version 7 has validation status FAILED (roc_auc 0.55 < 0.62)"),
        ("5", "version 5 is the champion"),
        ("9", "does not exist"),
    ],
)
def test_a_refused_approval_writes_nothing_and_says_why(workspace, capsys, version, why):
    assert mlops(["approve", "--env", "prod", "--version", version, "--target", "databricks"]) != 0

    assert why in capsys.readouterr().err
    assert _writes(workspace) == []
