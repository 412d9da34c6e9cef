"""`mlops rollback --target databricks`: the real registry adapter (MLflow's ``databricks-uc`` store) and the real
serving adapter (databricks-sdk) against a stand-in workspace over HTTP (``tests.support.fake_workspace``): no
workspace can be reached from here, so the test checks the REST calls the command makes and the state they leave."""

from __future__ import annotations

import pytest

from cli.main import main as mlops
from spec.config import ENVIRONMENTS
from tests.support.fake_workspace import Endpoint, FakeWorkspace, RegisteredModel, signed_in

pytestmark = pytest.mark.contract

ENV = ENVIRONMENTS["prod"]
MODEL = ENV.registered_model
UC = "/api/2.0/mlflow/unity-catalog"


@pytest.fixture
def workspace(monkeypatch):
    fake = FakeWorkspace()
    fake.models[MODEL] = RegisteredModel(
        MODEL,
        aliases={"champion": "5", "previous_champion": "4"},
        versions={"3": {}, "4": {"previous_champion_version": "3"}, "5": {"previous_champion_version": "4"}},
    )
    fake.endpoints[ENV.endpoint_name] = Endpoint(ENV.endpoint_name)
    with signed_in(fake, monkeypatch):
        yield fake


def test_rollback_moves_champion_back_in_unity_catalog_and_redeploys_the_endpoint(workspace, capsys):
    assert mlops(["rollback", "--env", "prod", "--target", "databricks"]) == 0

    model = workspace.models[MODEL]
    assert model.aliases == {"champion": "4", "previous_champion": "3"}
    assert model.versions["5"]["rolled_back_to"] == "4"
    writes = [(m, p, b) for m, p, b in workspace.api_calls() if m != "GET"]
    assert writes == [
        ("POST", f"{UC}/registered-models/alias", {"name": MODEL, "alias": "champion", "version": "4"}),
        (
            "POST",
            f"{UC}/model-versions/set-tag",
            {"name": MODEL, "version": "5", "key": "rolled_back_to", "value": "4"},
        ),
        ("POST", f"{UC}/registered-models/alias", {"name": MODEL, "alias": "previous_champion", "version": "3"}),
        (
            "PUT",
            "/api/2.0/serving-endpoints/flight-delay/config",
            {
                "served_entities": [
                    {
                        "name": "champion",
                        "entity_name": MODEL,
                        "entity_version": "4",
                        "workload_size": "Small",
                        "scale_to_zero_enabled": True,
                    }
                ],
                "traffic_config": {"routes": [{"served_entity_name": "champion", "traffic_percentage": 100}]},
            },
        ),
    ]
    assert capsys.readouterr().out.strip() == f"{MODEL}: champion is version 4 again"


def test_rollback_without_a_previous_champion_changes_nothing_in_the_workspace(workspace, capsys):
    workspace.models[MODEL].aliases = {"champion": "5"}

    code = mlops(["rollback", "--env", "prod", "--target", "databricks"])

    assert code == 1
    assert capsys.readouterr().err == f"mlops rollback: no previous champion of {MODEL} to roll back to\n"
    assert [c for c in workspace.api_calls() if c[0] != "GET"] == []
