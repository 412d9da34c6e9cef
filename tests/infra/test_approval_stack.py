"""Manual approval in the synthesized stacks: prod's model-deployment job starts on its model trigger (the new
Challenger), after the registered model exists; its approvers group may tag the model's versions, and no one else but
the jobs' service principal (the model's owner) holds a privilege that lets them."""

from __future__ import annotations

from spec import access
from spec.config import ENVIRONMENTS
from tests.support.stacks import address, at_path, resources

PROD = ENVIRONMENTS["prod"]


def test_prods_deployment_job_starts_on_the_model_trigger_of_its_registered_model(synthesized):
    stack = synthesized["prod"]
    jobs = {body["name"]: (name, body) for name, body in resources(stack, "databricks_job").items()}
    name, job = jobs[f"[prod] {PROD.model_name}/model-deployment"]
    assert job["trigger"] == {
        "pause_status": "UNPAUSED",
        "model": {
            "condition": "MODEL_ALIAS_SET",
            "securable_name": PROD.registered_model,
            "aliases": ["challenger"],
            "min_time_between_triggers_seconds": 60,
        },
    }
    assert [t["task_key"] for t in job["task"]] == ["approval"]
    assert job["parameter"] == [{"name": "model_version", "default": ""}]
    # The Jobs API refuses a trigger on a model that does not exist: the job waits for it.
    model = address(stack, "databricks_registered_model", "ml/registered_model")
    assert model in stack["resource"]["databricks_job"][name]["depends_on"]
    # dev and staging promote automatically: no deployment job waits there.
    for env in ("dev", "staging"):
        names = [body["name"] for body in resources(synthesized[env], "databricks_job").values()]
        assert names and not [n for n in names if n.endswith("/model-deployment")]


def test_only_the_approvers_group_may_tag_prods_model_versions(synthesized):
    stack = synthesized["prod"]
    _, grants = at_path(stack, "databricks_grants", "ml/model_grants")
    tagging = {
        g["principal"]: sorted(set(g["privileges"]) & access.TAGGING_PRIVILEGES)
        for g in grants["grant"]
        if set(g["privileges"]) & access.TAGGING_PRIVILEGES
    }
    assert tagging == {PROD.approvers: ["ALL_PRIVILEGES"]}
    # A distinct approvers group gets exactly APPLY_TAG (and EXECUTE) on the model, and the way to it on the catalog.
    other = PROD.replace(approvers_group="model-approvers")
    assert access.model_grants(other)[-1] == access.CatalogGrant(
        "approvers", "model-approvers", ("APPLY_TAG", "EXECUTE")
    )
    assert access.catalog_grants(other, "sp")[-1] == access.CatalogGrant(
        "approvers", "model-approvers", ("USE_CATALOG", "USE_SCHEMA")
    )
    assert "model-approvers" in other.groups
