"""`mlops rollback --target databricks`: the Unity Catalog registry and the serving endpoint of a real workspace,
both replaced here by fakes (no workspace can be reached): the test checks which calls the command makes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from infra.config import ENVIRONMENTS
from jobs.cli import main as mlops

pytestmark = pytest.mark.contract

ENV = ENVIRONMENTS["prod"]
MODEL = ENV.registered_model


class FakeUcClient:
    """The MlflowClient calls the registry adapter makes, over an in-memory model with aliases and tags."""

    def __init__(self, aliases: dict[str, str], tags: dict[str, dict[str, str]]) -> None:
        self.aliases = dict(aliases)
        self.tags = tags
        self.calls: list[tuple] = []

    def get_registered_model(self, name):
        assert name == MODEL
        return SimpleNamespace(aliases=dict(self.aliases))

    def get_model_version(self, name, version):
        return SimpleNamespace(version=version, tags=self.tags.get(version, {}))

    def set_registered_model_alias(self, name, alias, version):
        self.calls.append(("set_alias", alias, version))
        self.aliases[alias] = version

    def delete_registered_model_alias(self, name, alias):
        self.calls.append(("delete_alias", alias))
        self.aliases.pop(alias)

    def set_model_version_tag(self, name, version, key, value):
        self.calls.append(("tag", version, key, value))


@pytest.fixture
def workspace(monkeypatch):
    from jobs.platform import registry as registry_module
    from jobs.serving import databricks as serving_module

    uc = FakeUcClient({"champion": "5", "previous_champion": "4"}, {"4": {"previous_champion_version": "3"}})
    monkeypatch.setattr(registry_module.Registry, "__init__", _init_with(uc))
    deployed = []
    monkeypatch.setattr(serving_module.DatabricksServing, "deploy", lambda self, entities: deployed.append(entities))
    monkeypatch.setattr("databricks.sdk.WorkspaceClient", lambda: SimpleNamespace())
    return uc, deployed


def _init_with(client):
    def init(self, env, config):
        assert (config.tracking_uri, config.registry_uri) == ("databricks", "databricks-uc")
        self.env, self.config, self._client = env, config, client

    return init


def test_rollback_moves_champion_back_in_unity_catalog_and_redeploys_the_endpoint(workspace, capsys):
    uc, deployed = workspace
    assert mlops(["rollback", "--env", "prod", "--target", "databricks"]) == 0
    assert uc.aliases == {"champion": "4", "previous_champion": "3"}
    assert ("tag", "5", "rolled_back_to", "4") in uc.calls
    assert [[(e.name, e.model_version) for e in entities] for entities in deployed] == [[("champion", "4")]]
    assert capsys.readouterr().out.strip() == f"{MODEL}: champion is version 4 again"
