"""A model's declaration (spec.model.ModelSpec) and its package (jobs.platform.model.load_model): what breaks the
interface is refused when the model is loaded, naming the model, the field and what to write instead."""

from __future__ import annotations

import sys
import types

import pytest

from jobs.platform.model import REQUIRED, load_model
from models.flight_delay.spec import SPEC
from spec.config import ENVIRONMENTS, ConfigError
from spec.model import Column, Feature, ModelSpec, load_model_spec

# (changes to the flight-delay declaration, the field the error must name, words the message must hold)
RULES = [
    ({"key": ()}, "key", "must not be empty"),
    ({"name": "Flight-Delay"}, "name", "lowercase identifier"),
    ({"problem_type": "ranking"}, "problem_type", "'classification' or 'regression'"),
    ({"features": (*SPEC.features, Feature(name="arr_delay", kind="numeric"))}, "features", "label details"),
    ({"features": (*SPEC.features, Feature(name="label", kind="numeric"))}, "features", "platform's column names"),
    ({"key": (*SPEC.key, Column(name="prediction", type="INT"))}, "key", "platform's column names"),
    ({"features": (*SPEC.features, SPEC.features[0])}, "features", "more than once"),
    ({"event_date": "time_hour"}, "event_date", "DATE column of the key"),
    ({"event_date": "departure_day"}, "event_date", "DATE column of the key"),
    ({"event_time": "distance"}, "event_time", "not be a feature"),
    ({"event_time": "sched_date"}, "event_time", "must be a TIMESTAMP"),
    ({"validation": {"primary_metric": "r2_score"}}, "validation.primary_metric", "a classification model has"),
    ({"validation": {"thresholds": {"rmse": 3.0}}}, "validation.thresholds", "not metrics"),
    ({"validation": {"slices": ("distance",)}}, "validation.slices", "not columns of the key or a categorical"),
    ({"online_key": ("sched_date", "tailnum")}, "online_key", "not columns of the key"),
    ({"drift_features": ("label",)}, "drift_features", "not columns of the features or the outputs"),
    ({"slicing_exprs": ("temp",)}, "slicing_exprs", "not columns"),
    ({"monitored_features": ("arr_delay",)}, "monitored_features", "not columns of the features"),
    ({"request_example": {"carrier": "UA"}}, "request_example", "lacks the client's features"),
    ({"request_example": {**SPEC.request_example, "arr_delay": 3.0}}, "request_example", "a client does not send"),
    ({"stream_source": None}, "landing_columns", "exactly when stream_source is"),
    ({"stream_source": "planes"}, "stream_source", "one of the sources"),
    ({"sources": ("flights", "flights")}, "sources", "more than once"),
    ({"label_delay_days": -1}, "label_delay_days", ">= 0"),
    ({"features": ()}, "features", "must not be empty"),
    ({"features": (*SPEC.features, {"name": "gate", "kind": "ordinal"})}, "features[14].kind", "'categorical'"),
]


@pytest.mark.parametrize(("changes", "field", "words"), RULES, ids=[r[1] + ":" + r[2] for r in RULES])
def test_a_declaration_that_breaks_a_rule_is_refused_naming_the_model_and_the_field(changes, field, words):
    with pytest.raises(ConfigError) as caught:
        SPEC.replace(**changes)
    message = str(caught.value)
    fields = [f for f, _ in caught.value.problems]
    assert message.startswith("model 'flight_delay'") or message.startswith("model 'Flight-Delay'"), message
    assert field in fields, (fields, message)
    assert words in message, message


def test_the_flight_delay_declaration_derives_the_predictions_contract():
    assert SPEC.key_names == ("sched_date", "carrier", "flight", "origin", "dest", "time_hour")
    assert SPEC.scored_features == ("distance", "sched_hour", "month", "day_of_week", *SPEC.optional_features)
    assert SPEC.outputs == ("prediction", "probability")
    assert SPEC.label_columns == ("label", "arr_delay", "labeled_at")
    types = dict(SPEC.prediction_column_types)
    assert (types["prediction"], types["label"], types["flight"], types["sched_departure"]) == (
        "INT",
        "INT",
        "BIGINT",
        "TIMESTAMP",
    )
    assert SPEC.reject_columns[-4:] == ("reason", "batch_id", "source", "rejected_at")


def test_a_regressor_has_no_probability_and_a_double_label():
    regressor = SPEC.replace(
        problem_type="regression",
        validation={"primary_metric": "mean_absolute_error", "thresholds": {"mean_absolute_error": 20.0}},
        drift_features=("distance", "prediction"),
    )
    types = dict(regressor.prediction_column_types)
    assert regressor.outputs == ("prediction",)
    assert "probability" not in types
    assert (types["prediction"], types["label"]) == ("DOUBLE", "DOUBLE")


def test_an_unknown_model_is_refused_with_the_known_ones_and_how_to_start_one():
    expected = (
        r"model 'no_such_model': no model package models/no_such_model/spec.py; "
        r"create one with `mlops init model no_such_model`, or name one of: .*flight_delay"
    )
    with pytest.raises(ConfigError, match=expected):
        load_model_spec("no_such_model")
    with pytest.raises(ConfigError, match="lowercase identifier"):
        load_model_spec("../etc")


def test_an_environment_naming_an_unknown_model_is_refused_at_config_load():
    with pytest.raises(ConfigError) as caught:
        ENVIRONMENTS["prod"].replace(models=({"name": "flight_delay"}, {"name": "no_such_model"}))
    assert [f for f, _ in caught.value.problems] == ["models[1].name"]
    assert str(caught.value).startswith(
        "environment 'prod': field 'models[1].name' names no valid model: model 'no_such_model': no model package"
    )
    with pytest.raises(ConfigError, match=r"field 'model_name' must be one of the models \['flight_delay'\]"):
        ENVIRONMENTS["prod"].replace(model_name="no_such_model")


def _package(monkeypatch, name, spec, **members):
    module = types.ModuleType(f"models.{name}")
    for attr, value in members.items():
        setattr(module, attr, value)
    spec_module = types.ModuleType(f"models.{name}.spec")
    if spec is not None:
        spec_module.SPEC = spec
    monkeypatch.setitem(sys.modules, f"models.{name}", module)
    monkeypatch.setitem(sys.modules, f"models.{name}.spec", spec_module)
    load_model_spec.cache_clear()
    load_model.cache_clear()


def test_a_package_without_a_spec_or_with_another_name_is_refused(monkeypatch):
    _package(monkeypatch, "nospec", None)
    with pytest.raises(ConfigError, match=r"model 'nospec': models.nospec.spec must define SPEC = ModelSpec\(...\)"):
        load_model_spec("nospec")
    _package(monkeypatch, "renamed", SPEC)
    with pytest.raises(
        ConfigError, match="field 'name' of models.renamed.spec.SPEC must be 'renamed', got 'flight_delay'"
    ):
        load_model_spec("renamed")


def test_a_package_missing_a_callable_is_refused_naming_each_missing_one(monkeypatch):
    spec = SPEC.replace(name="partial")
    _package(monkeypatch, "partial", spec, HYPERPARAMETERS={}, load_sources=lambda start, end: {})
    with pytest.raises(ConfigError) as caught:
        load_model("partial")
    message = str(caught.value)
    assert message.startswith("model 'partial': models/partial/__init__.py must define ")
    missing = [name for name in REQUIRED if name not in ("HYPERPARAMETERS", "load_sources")]
    assert missing and all(f"{name} (" in message for name in missing), message
    assert "load_sources (" not in message


def test_the_flight_delay_package_satisfies_the_interface():
    load_model.cache_clear()
    model = load_model("flight_delay")
    assert model.spec is load_model_spec("flight_delay")
    assert model.scored_source == "flights"
    with pytest.raises(ValueError, match=r"unknown hyperparameters \['depth'\]"):
        model.build_estimator(0, depth=3)


def test_a_model_spec_is_plain_data():
    assert isinstance(SPEC, ModelSpec)
    assert ModelSpec.model_validate(SPEC.model_dump()) == SPEC
