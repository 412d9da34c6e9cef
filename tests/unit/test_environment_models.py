"""Several models in one environment: config lists them, each sees the environment with its own settings applied,
and every name derived for a model carries it, so two models never share a resource."""

from __future__ import annotations

import copy

import pytest

from jobs.platform.job import job_environment, job_parser
from models.flight_delay.spec import SPEC
from spec.config import ENVIRONMENTS, ConfigError, build_environments
from spec.config.environments import _BASE, _FLIGHTS, _OVERRIDES, MODELS
from spec.model import ModelSpec

SECOND = SPEC.replace(
    name="second_model",
    sources=("second_rows",),
    feature_tables=(),
    stream_source="second_rows",
)


@pytest.fixture
def second_model(monkeypatch):
    """A second model package (the flight model's declaration under another name, with sources of its own)."""
    import sys
    import types

    from spec.model import load_model_spec

    module = types.ModuleType("models.second_model.spec")
    module.SPEC = SECOND
    monkeypatch.setitem(sys.modules, "models.second_model", types.ModuleType("models.second_model"))
    monkeypatch.setitem(sys.modules, "models.second_model.spec", module)
    load_model_spec.cache_clear()
    yield SECOND
    load_model_spec.cache_clear()


def environments_with(models_of_prod: tuple[dict, ...]) -> dict:
    overrides = copy.deepcopy(_OVERRIDES)
    overrides["prod"]["models"] = models_of_prod
    return build_environments(_BASE, overrides)


def test_every_environment_runs_the_models_of_its_config_and_is_scoped_to_the_first():
    # (dev may run more: `mlops init model` adds a new model there.)
    assert ENVIRONMENTS["dev"].model_names[:2] == ("flight_delay", "airport_delay")
    assert (ENVIRONMENTS["staging"].model_names, ENVIRONMENTS["prod"].model_names) == (("flight_delay",),) * 2
    for env in ENVIRONMENTS.values():
        assert env.model_name == "flight_delay" and isinstance(env.model, ModelSpec)
        assert env.with_model("flight_delay") is env and env.with_model(None) is env
    airports = ENVIRONMENTS["dev"].with_model("airport_delay")
    assert (airports.model.problem_type, airports.monitoring.max_mean_absolute_error) == ("regression", 20.0)
    assert airports.with_model("flight_delay").model_dump(warnings=False) == ENVIRONMENTS["dev"].model_dump(
        warnings=False
    )


def test_each_model_sees_its_own_settings_and_its_own_names(second_model):
    envs = environments_with(
        (
            _FLIGHTS,
            {"name": "second_model", "serving": {"workload_size": "Medium"}, "validation": {"min_roc_auc": 0.7}},
        )
    )
    first, second = envs["prod"].scoped_models()
    assert (first.model_name, second.model_name) == ("flight_delay", "second_model")
    assert (first.serving.workload_size, second.serving.workload_size) == ("Small", "Medium")
    assert (first.validation.min_roc_auc, second.validation.min_roc_auc) == (0.62, 0.7)
    # Scoping again from a scoped value starts from the environment's own settings, not the other model's.
    assert second.with_model("flight_delay").model_dump(warnings=False) == first.model_dump(warnings=False)
    assert second.with_model("flight_delay").serving.workload_size == "Small"
    model_names = (
        "registered_model", "experiment_name", "endpoint_name", "online_table_name", "predictions_table",
        "rejects_table", "baseline_table", "served_table", "served_rejects_table", "publish_log_table",
        "inference_table",
    )  # fmt: skip
    for name in model_names:
        a, b = getattr(first, name), getattr(second, name)
        assert a != b, name
        assert "second" in b.replace("-", "_"), (name, b)
    assert (first.endpoint_name, second.endpoint_name) == ("flight-delay", "second-model")
    assert (first.online_table_name, second.online_table_name) == (
        "prod-flight-delay-predictions",
        "prod-second-model-predictions",
    )
    # What the environment has once is the same for both models.
    for name in ("catalog", "service_principal", "alert_history_table", "groups", "experiment_folder"):
        assert getattr(first, name) == getattr(second, name), name


def test_adding_a_model_changes_nothing_of_the_first(second_model):
    one = ENVIRONMENTS["prod"]
    # prod's own entry for the flight model (with its settings there), then a second model beside it.
    two = environments_with((MODELS["prod"][0], {"name": "second_model", "serving": {"consumers": ("flight-ops",)}}))[
        "prod"
    ]
    assert two.model_names == ("flight_delay", "second_model")
    assert two.replace(models=one.models).model_dump(warnings=False) == one.model_dump(warnings=False)


def test_a_model_setting_that_breaks_a_rule_names_the_model_entry(second_model):
    with pytest.raises(ConfigError) as caught:
        environments_with(({"name": "flight_delay"}, {"name": "second_model", "serving": {"workload_size": "Huge"}}))
    assert [f for f, _ in caught.value.problems] == ["models[1].serving.workload_size"]
    assert str(caught.value).startswith("environment 'prod': field 'models[1].serving.workload_size' must be")


def test_two_models_writing_the_same_raw_table_are_refused(monkeypatch, second_model):
    import sys
    import types

    from spec.model import load_model_spec

    clash = types.ModuleType("models.clash.spec")
    clash.SPEC = SPEC.replace(name="clash")
    monkeypatch.setitem(sys.modules, "models.clash", types.ModuleType("models.clash"))
    monkeypatch.setitem(sys.modules, "models.clash.spec", clash)
    load_model_spec.cache_clear()
    with pytest.raises(ConfigError, match=r"field 'models\[1\].name' model 'clash' declares the table raw.flights, "
                       r"which model 'flight_delay' writes too"):  # fmt: skip
        environments_with(({"name": "flight_delay"}, {"name": "clash"}))
    with pytest.raises(ConfigError, match=r"names a model more than once"):
        environments_with(({"name": "flight_delay"}, {"name": "flight_delay"}))


def test_a_job_takes_the_model_it_runs_for_and_refuses_one_the_environment_does_not_run(capsys):
    parser = job_parser("mlops-probe", "probe")
    args = parser.parse_args(["--env", "dev"])
    assert job_environment(args) is ENVIRONMENTS["dev"]
    assert job_environment(parser.parse_args(["--env", "dev", "--model", "flight_delay"])).model_name == "flight_delay"
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--env", "dev", "--model", "other_model"])
    assert exited.value.code == 2
    assert "environment 'dev' runs no model 'other_model'; it runs: flight_delay" in capsys.readouterr().err
