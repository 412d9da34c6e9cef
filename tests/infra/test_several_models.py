"""Several models in one environment's stack: each model's resources live under a construct named after it, so adding
a model by config adds exactly its own resources and moves nothing of the others; the stack with two models still
applies on an empty workspace."""

from __future__ import annotations

import copy
import sys
import types

import pytest

from infra.constructs.jobs import job_name
from infra.main import build_app
from models.flight_delay.spec import SPEC
from spec import access
from spec.config import ENVIRONMENTS, build_environments
from spec.config.environments import _BASE, _FLIGHTS, _OVERRIDES
from spec.model import load_model_spec
from spec.workflows import job_graphs
from tests.support.apply_simulator import Prerequisites, simulate
from tests.support.stacks import CODE_VERSION, load_stacks

# Another model: the flight model's declaration under another name, with a raw table of its own.
SECOND = SPEC.replace(name="second_model", sources=("second_rows",), feature_tables=(), stream_source="second_rows")


@pytest.fixture(scope="module")
def two_model_prod(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        module = types.ModuleType("models.second_model.spec")
        module.SPEC = SECOND
        patch.setitem(sys.modules, "models.second_model", types.ModuleType("models.second_model"))
        patch.setitem(sys.modules, "models.second_model.spec", module)
        load_model_spec.cache_clear()
        overrides = copy.deepcopy(_OVERRIDES)
        overrides["prod"]["models"] = (
            _FLIGHTS,
            {"name": "second_model", "serving": {"workload_size": "Medium", "consumers": ("flight-ops",)}},
        )
        environments = build_environments(_BASE, overrides)
        env = environments["prod"]
        outdir = tmp_path_factory.mktemp("two-models")
        build_app(environments, outdir=str(outdir), code_version=CODE_VERSION).synth()
        yield env, load_stacks(outdir)["prod"]
    load_model_spec.cache_clear()


def _without_metadata(stack: dict) -> dict[tuple[str, str], dict]:
    return {
        (rtype, name): {k: v for k, v in body.items() if k != "//"}
        for rtype, found in stack["resource"].items()
        for name, body in found.items()
    }


def _path(stack: dict, rtype: str, name: str) -> str:
    return stack["resource"][rtype][name]["//"]["metadata"]["path"]


def test_adding_a_model_adds_only_its_own_resources(synthesized, two_model_prod):
    env, two = two_model_prod
    one_resources, two_resources = _without_metadata(synthesized["prod"]), _without_metadata(two)
    added = sorted(set(two_resources) - set(one_resources))
    assert added, "the second model added nothing"
    assert set(one_resources) <= set(two_resources)
    # (Its endpoint's consumers are a group the environment has already: a new group would be looked up, and whatever
    # names a principal would wait for that lookup too.)
    changed = [key for key in one_resources if one_resources[key] != two_resources[key]]
    assert changed == []
    assert all(_path(two, rtype, name).startswith("prod/second_model/") for rtype, name in added), added
    added_types = {rtype for rtype, _ in added}
    assert {"databricks_registered_model", "databricks_mlflow_experiment", "databricks_model_serving",
            "databricks_quality_monitor", "databricks_alert_v2", "databricks_job"} <= added_types  # fmt: skip
    jobs = {body["name"] for body in two["resource"]["databricks_job"].values()}
    # Eight graphs per model (prod has no integration test), and the model-deployment job of each (prod approves
    # promotions by hand).
    assert len(jobs) == 18 and {"[prod] second_model/model-training", "[prod] flight_delay/model-training"} <= jobs
    endpoints = {body["name"]: body for body in two["resource"]["databricks_model_serving"].values()}
    assert sorted(endpoints) == ["flight-delay", "second-model"]


def test_the_two_model_stack_applies_on_an_empty_workspace(two_model_prod):
    env, stack = two_model_prod
    ci_jobs = tuple(
        job_name(scoped, graphs[graph])
        for scoped in env.scoped_models()
        for graphs in (job_graphs(scoped),)
        for graph in access.CI_JOBS
        if graph in graphs
    )
    findings = simulate(stack, Prerequisites(ci_principal=f"sp:{env.ci_service_principal}", ci_jobs=ci_jobs))
    assert [str(f) for f in findings] == []


def test_every_environment_of_the_project_runs_its_configured_models(synthesized):
    for name, env in ENVIRONMENTS.items():
        registered = synthesized[name]["output"]["registered_models"]["value"]
        assert registered == [scoped.registered_model for scoped in env.scoped_models()]
