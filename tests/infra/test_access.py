"""The grants matrix and the deployer's prerequisites, as data (spec/access.py), and the docs that state them."""

from __future__ import annotations

from pathlib import Path

import pytest

from spec import access
from spec.config import ENVIRONMENTS, ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_the_docs_list_every_deployer_prerequisite(name):
    section = (ROOT / "docs" / "ci-cd.md").read_text().split("### Deployer prerequisites", 1)[1].split("\n## ", 1)[0]
    rows = access.deployer_prerequisites(ENVIRONMENTS[name])
    assert len(rows) == 6  # account admin, groups, CREATE_CATALOG, group member, workspace admin, storage
    env = ENVIRONMENTS[name]
    for row in rows:
        if row.grant.startswith("groups "):
            # The groups row names the environment-wide groups and describes the models' consumer groups (so that a
            # model added by `mlops init model`, with the default consumers, leaves the docs true).
            line = next(line for line in section.splitlines() if line.startswith("| account | groups "))
            named = (env.data_scientists_group, env.ml_engineers_group, "serving.consumers", "model-consumers")
            assert all(group in line for group in named), line
            assert all(g in line or g in consumers(env) for g in env.groups), (line, env.groups)
            continue
        assert f"| {row.grant} |" in section or f"| `{row.grant}` |" in section, row


def consumers(env) -> set[str]:
    return {group for scoped in env.scoped_models() for group in scoped.serving.consumers}


def test_a_storage_root_adds_the_external_location_prerequisite_and_a_bad_one_is_refused():
    env = ENVIRONMENTS["prod"].replace(storage_root="abfss://uc@mlopsprod.dfs.core.windows.net/prod")
    assert access.deployer_prerequisites(env)[-1] == access.Prerequisite(
        "external location of abfss://uc@mlopsprod.dfs.core.windows.net/prod",
        "CREATE_MANAGED_STORAGE",
        "the catalog prod keeps its managed tables there",
    )
    with pytest.raises(ConfigError, match=r"^environment 'prod': field 'storage_root' must be an abfss://"):
        ENVIRONMENTS["prod"].replace(storage_root="/mnt/prod")


@pytest.mark.parametrize(
    ("name", "jobs", "experiment"),
    [
        ("dev", [("data-scientists", "CAN_MANAGE_RUN"), ("ml-engineers", "CAN_MANAGE")], "CAN_EDIT"),
        ("staging", [("data-scientists", "CAN_VIEW"), ("ml-engineers", "CAN_MANAGE")], "CAN_READ"),
        ("prod", [("data-scientists", "CAN_VIEW"), ("ml-engineers", "CAN_MANAGE")], "CAN_READ"),
    ],
)
def test_data_scientists_see_protected_jobs_and_experiments_read_only(synthesized, name, jobs, experiment):
    stack = synthesized[name]
    permissions = [b for b in stack["resource"]["databricks_permissions"].values()]
    on_jobs = [p for p in permissions if "job_id" in p]
    assert len(on_jobs) == len(stack["resource"]["databricks_job"])
    for p in on_jobs:
        groups = [(a["group_name"], a["permission_level"]) for a in p["access_control"] if "group_name" in a]
        assert groups == jobs
        # The only principals besides the groups: the jobs' principal on run-job children, the CI runner on CI jobs.
        others = {a["permission_level"] for a in p["access_control"] if "group_name" not in a}
        assert others <= {"CAN_MANAGE_RUN"}
    on_experiments = [p for p in permissions if "experiment_id" in p]
    assert len(on_experiments) == len(ENVIRONMENTS[name].models)  # one experiment per model
    for on_experiment in on_experiments:
        levels = {
            a.get("group_name", "service principal"): a["permission_level"] for a in on_experiment["access_control"]
        }
        assert levels == {
            "data-scientists": experiment,
            "ml-engineers": "CAN_MANAGE",
            "service principal": "CAN_MANAGE",
        }


def test_a_storage_root_from_config_reaches_the_catalog():
    from infra.main import build_app

    env = ENVIRONMENTS["dev"].replace(storage_root="abfss://uc@mlopsdev.dfs.core.windows.net/dev")
    app = build_app({"dev": env}, code_version="0123456789ab")
    stack = app.node.find_child("dev")
    catalog = stack.governance.catalog
    assert catalog.storage_root_input == "abfss://uc@mlopsdev.dfs.core.windows.net/dev"
