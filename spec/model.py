"""What the platform knows about a model: the declaration every model package makes (``models/<name>/spec.py``).

A model is a package of its own (``models/<name>/``): this module is the typed, declarative half of its interface,
plain data the stacks, the monitors, the config and the jobs read without importing Spark or scikit-learn. The
behaviour half (ingest, features, labels, the estimator) is a module of callables the jobs load
(``jobs.platform.model``). The platform names no model's column: everything about a model's data comes from here.

The column contract of the tables the platform writes for a model (predictions, rejects, served requests, the
monitors' baseline) is derived from the declaration (``ModelSpec.prediction_columns`` ...), with the platform's own
columns (``spec.columns``) beside the model's key and features.

A declaration that breaks a rule fails when it is loaded (``load_model_spec``), with a ``ConfigError`` naming the
model, the field and what to write instead; nothing is synthesized, trained or deployed with it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, model_validator

from spec.base import IDENTIFIER, ConfigError, ConfigModel, Problems
from spec.columns import (
    LABEL,
    LABELED_AT,
    PREDICTION,
    PREDICTION_METADATA,
    PREDICTION_METADATA_TYPES,
    PROBABILITY,
    REJECT_METADATA,
    REJECT_REASON,
)

ProblemType = Literal["classification", "regression"]
PROBLEM_TYPES: tuple[str, ...] = get_args(ProblemType)
SqlType = Literal["STRING", "BIGINT", "INT", "DOUBLE", "DATE", "TIMESTAMP", "BOOLEAN"]
FeatureKind = Literal["categorical", "numeric"]

# The quality metrics each problem type has, by the names Databricks data profiling gives them in its profile metric
# table (and the validation job logs): higher is better for each, except where ``LOWER_IS_BETTER`` says otherwise.
METRICS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "classification": ("roc_auc", "accuracy", "log_loss", "positive_rate"),
        "regression": ("mean_absolute_error", "mean_squared_error", "root_mean_squared_error", "r2_score"),
    }
)
LOWER_IS_BETTER = frozenset({"log_loss", "mean_absolute_error", "mean_squared_error", "root_mean_squared_error"})
# The SQL type of the label and of the prediction, by problem type.
LABEL_TYPES = MappingProxyType({"classification": "INT", "regression": "DOUBLE"})
# The package the platform imports a model from: models/<name>/spec.py declares SPEC, models/<name>/__init__.py holds
# the callables (jobs.platform.model).
MODELS_PACKAGE = "models"

Identifier = Annotated[str, Field(pattern=IDENTIFIER)]


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"names {duplicates} more than once: list each once")
    return names


class Column(ConfigModel):
    """A column of the model's rows: its name and its SQL type (what the stacks declare, the jobs cast to)."""

    name: Identifier
    type: SqlType


class Feature(ConfigModel):
    """One input of the estimator.

    ``categorical`` features reach the estimator as strings, ``numeric`` ones as float64 (missing = NaN).
    ``sent_by_client``: a caller of the endpoint sends it; otherwise the jobs look it up in the model's feature
    tables before scoring. ``optional``: it may be missing (no reading in time), which the estimator handles."""

    name: Identifier
    kind: FeatureKind
    sent_by_client: bool = True
    optional: bool = False

    @property
    def type(self) -> str:
        return "STRING" if self.kind == "categorical" else "DOUBLE"


class ValidationSpec(ConfigModel):
    """How a new version is judged before it may become the Challenger: the metric it is compared on (with the
    Champion and the thresholds), the slices it must hold up on, and thresholds per metric. Config may tighten the
    thresholds per environment; the metric names are the problem type's (``METRICS``)."""

    primary_metric: str
    # Metric name -> the bound it must meet: a minimum for higher-is-better metrics, a maximum otherwise.
    thresholds: Mapping[str, float] = Field(default_factory=dict)
    slices: tuple[Identifier, ...] = ()
    min_slice_rows: Annotated[int, Field(ge=1)] = 500


class ModelSpec(ConfigModel):
    """The declaration of one model: everything about it the platform reads.

    Rows are keyed by ``key`` (predictions, labels, samples, the online store). ``event_date`` (a DATE column of the
    key) places a row in a window (training, scoring, labelling, monitoring), ``event_time`` (a TIMESTAMP the rows
    carry) is the instant the prediction is about: the monitors' timestamp, the point-in-time join's time. The label
    of a row is known ``label_delay_days`` after its ``event_date``; ``label_details`` ride along with it (the measured
    value the label comes from, say)."""

    name: Identifier
    problem_type: ProblemType
    description: str = Field(min_length=1)
    # Raw tables (the environment's raw schema) the ingest job writes from the model's sources, and the feature
    # tables (features schema) the features job computes from them.
    sources: Annotated[tuple[Identifier, ...], Field(min_length=1), AfterValidator(_unique)]
    feature_tables: Annotated[tuple[Identifier, ...], AfterValidator(_unique)] = ()
    key: Annotated[tuple[Column, ...], Field(min_length=1)]
    # What one value of the key is called: the online store's partition key attribute, and the platform's messages
    # about it ("order_key": "order key incomplete", "order key part 'store' must be ...").
    key_name: Identifier = "row_key"
    event_date: Identifier
    event_time: Identifier
    features: Annotated[tuple[Feature, ...], Field(min_length=1)]
    label_details: tuple[Column, ...] = ()
    label_delay_days: Annotated[int, Field(ge=0)]
    validation: ValidationSpec
    # Features the monitors profile (default: all) and those the drift alert watches (prediction or probability may
    # be among them).
    monitored_features: tuple[Identifier, ...] | None = None
    drift_features: Annotated[tuple[Identifier, ...], Field(min_length=1)]
    slicing_exprs: tuple[Identifier, ...] = ()
    # The online store's key: key columns a lookup knows.
    online_key: Annotated[tuple[Identifier, ...], Field(min_length=1)]
    # The streamed source: files of this raw table land in the landing volume, read with ``landing_columns``.
    stream_source: Identifier | None = None
    landing_columns: tuple[Column, ...] = ()
    # One record as a client sends it to the endpoint (the endpoint's example, the smoke test's request).
    request_example: Mapping[str, Any]

    @classmethod
    def _subject(cls, data: Mapping[str, Any]) -> str:
        return f"model {data.get('name')!r}"

    @model_validator(mode="after")
    def _rules(self) -> ModelSpec:
        problems = Problems()
        keys = self.key_names
        features = self.feature_names
        self._check_names(problems, keys, features)
        key_types = {c.name: c.type for c in self.key}
        if key_types.get(self.event_date) != "DATE":
            problems.add("event_date", f"must name a DATE column of the key {list(keys)}, got {self.event_date!r}")
        if self.event_time in features or self.event_time in {c.name for c in self.label_details}:
            problems.add("event_time", f"must not be a feature or a label detail, got {self.event_time!r}")
        if self.event_time in key_types and key_types[self.event_time] != "TIMESTAMP":
            problems.add("event_time", f"is a key column of type {key_types[self.event_time]}, must be a TIMESTAMP")
        for field, names, allowed, what in (
            ("online_key", self.online_key, keys, "the key"),
            ("slicing_exprs", self.slicing_exprs, (*keys, *self.categorical_features), "the key or a categorical"),
            (
                "validation.slices",
                self.validation.slices,
                (*keys, *self.categorical_features),
                "the key or a categorical",
            ),
            ("monitored_features", self.monitored_features or (), features, "the features"),
            ("drift_features", self.drift_features, (*features, *self.outputs), "the features or the outputs"),
        ):
            unknown = [n for n in names if n not in allowed]
            if unknown:
                problems.add(field, f"names {unknown}, which are not columns of {what} ({list(allowed)})")
        self._check_metrics(problems)
        self._check_example(problems)
        if (self.stream_source is None) != (not self.landing_columns):
            problems.add("landing_columns", "must be given exactly when stream_source is (the landed files' schema)")
        if self.stream_source is not None and self.stream_source not in self.sources:
            problems.add(
                "stream_source", f"must be one of the sources {list(self.sources)}, got {self.stream_source!r}"
            )
        problems.raise_any()
        return self

    def _check_names(self, problems: Problems, keys: tuple[str, ...], features: tuple[str, ...]) -> None:
        for field, names in (("key", keys), ("features", features), ("label_details", self.label_detail_names)):
            if len(set(names)) != len(names):
                problems.add(field, f"names a column more than once: {list(names)}")
        reserved = {PREDICTION, PROBABILITY, LABEL, LABELED_AT, REJECT_REASON, *PREDICTION_METADATA}
        for field, names in (("key", keys), ("features", features), ("label_details", self.label_detail_names)):
            clash = sorted(reserved & set(names))
            if clash:
                problems.add(field, f"uses the platform's column names {clash}: rename them in the model")
        leaks = sorted(set(self.label_detail_names) & set(features))
        if leaks:
            problems.add(
                "features",
                f"include the label details {leaks}: what the label is made of is known only after the event, so it "
                "cannot be an input; drop them from the features",
            )
        clash = sorted(set(self.label_detail_names) & set(keys))
        if clash:
            problems.add("label_details", f"name key columns {clash}: a label detail is known later than the key")
        if self.key_name in {*keys, *features, self.event_time, *reserved}:
            problems.add(
                "key_name",
                f"is {self.key_name!r}, a column of the model's rows: the online store's items carry both; name the "
                "key something else (say '<entity>_key')",
            )

    def _check_metrics(self, problems: Problems) -> None:
        known = METRICS[self.problem_type]
        hint = f"a {self.problem_type} model has {list(known)}"
        if self.validation.primary_metric not in known:
            problems.add("validation.primary_metric", f"is {self.validation.primary_metric!r}, not a metric: {hint}")
        unknown = [m for m in self.validation.thresholds if m not in known]
        if unknown:
            problems.add("validation.thresholds", f"name {unknown}, not metrics: {hint}")

    def _check_example(self, problems: Problems) -> None:
        sent = {f.name for f in self.features if f.sent_by_client}
        required = {f.name for f in self.features if f.sent_by_client and not f.optional}
        missing = sorted(required - set(self.request_example))
        unknown = sorted(set(self.request_example) - sent)
        if missing:
            problems.add("request_example", f"lacks the client's features {missing}")
        if unknown:
            problems.add("request_example", f"has {unknown}, which a client does not send (sent: {sorted(sent)})")

    # The column contract derived from the declaration.
    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.key)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def categorical_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind == "categorical")

    @property
    def numeric_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind == "numeric")

    @property
    def client_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.sent_by_client)

    @property
    def lookup_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if not f.sent_by_client)

    @property
    def optional_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.optional)

    @property
    def label_detail_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.label_details)

    @property
    def is_classifier(self) -> bool:
        return self.problem_type == "classification"

    @property
    def outputs(self) -> tuple[str, ...]:
        """What the model answers: the prediction, and for a classifier the probability of the positive class."""
        return (PREDICTION, PROBABILITY) if self.is_classifier else (PREDICTION,)

    @property
    def scored_features(self) -> tuple[str, ...]:
        """The inputs the predictions table keeps beside the key (those in the key are there already)."""
        return tuple(f for f in self.feature_names if f not in self.key_names)

    @property
    def event_time_in_rows(self) -> tuple[str, ...]:
        """``event_time`` when the key does not carry it: the rows keep it beside the key."""
        return () if self.event_time in self.key_names else (self.event_time,)

    @property
    def label_columns(self) -> tuple[str, ...]:
        """Set by the labels job once the label is known (null until then)."""
        return (LABEL, *self.label_detail_names, LABELED_AT)

    @property
    def prediction_columns(self) -> tuple[str, ...]:
        return (
            *self.key_names,
            *self.event_time_in_rows,
            *self.scored_features,
            *self.outputs,
            *PREDICTION_METADATA,
            *self.label_columns,
        )

    @property
    def prediction_column_types(self) -> tuple[tuple[str, str], ...]:
        """The predictions' columns with their SQL types: the stack declares the monitored tables with them, the jobs
        write Spark values of these types."""
        types = {
            **{c.name: c.type for c in self.key},
            self.event_time: "TIMESTAMP",
            **{f.name: f.type for f in self.features},
            PREDICTION: LABEL_TYPES[self.problem_type],
            PROBABILITY: "DOUBLE",
            **dict(PREDICTION_METADATA_TYPES),
            LABEL: LABEL_TYPES[self.problem_type],
            **{c.name: c.type for c in self.label_details},
            LABELED_AT: "TIMESTAMP",
        }
        return tuple((name, types[name]) for name in self.prediction_columns)

    @property
    def reject_columns(self) -> tuple[str, ...]:
        """Rows that could not be scored: the key, what was wrong, and the batch that met them."""
        return (*self.key_names, REJECT_REASON, *REJECT_METADATA)

    @property
    def monitored(self) -> tuple[str, ...]:
        return self.monitored_features or self.feature_names

    @property
    def landing_schema(self) -> str:
        """The landed files' schema as Spark DDL (the streaming job reads them with it)."""
        return ", ".join(f"{c.name} {SPARK_TYPES[c.type]}" for c in self.landing_columns)


# Spark DDL of each SQL type the declaration uses.
SPARK_TYPES = {
    "STRING": "string",
    "BIGINT": "long",
    "INT": "int",
    "DOUBLE": "double",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
}


@cache
def load_model_spec(name: str) -> ModelSpec:
    """The declaration of model ``name`` (``models/<name>/spec.py``, its ``SPEC``), checked: a ``ConfigError`` that
    names the model and says what is missing when there is no such package or it declares no valid ``SPEC``."""
    if not isinstance(name, str) or not _is_identifier(name):
        raise ConfigError(f"model {name!r}: a model's name must be {_IDENTIFIER_MEANING}")
    module_name = f"{MODELS_PACKAGE}.{name}.spec"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name not in (MODELS_PACKAGE, f"{MODELS_PACKAGE}.{name}", module_name):
            raise
        raise ConfigError(
            f"model {name!r}: no model package {MODELS_PACKAGE}/{name}/spec.py; create one with "
            f"`mlops init model {name}`, or name one of: {', '.join(known_models()) or 'none'}"
        ) from None
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, ModelSpec):
        raise ConfigError(f"model {name!r}: {module_name} must define SPEC = ModelSpec(...), got {type(spec).__name__}")
    if spec.name != name:
        raise ConfigError(f"model {name!r}: field 'name' of {module_name}.SPEC must be {name!r}, got {spec.name!r}")
    return spec


def known_models() -> tuple[str, ...]:
    """The model packages of this project (``models/<name>/spec.py``), by name."""
    try:
        package = importlib.import_module(MODELS_PACKAGE)
    except ModuleNotFoundError:
        return ()
    from pathlib import Path

    found = []
    for root in getattr(package, "__path__", ()):
        found += [p.parent.name for p in Path(root).glob("*/spec.py") if _is_identifier(p.parent.name)]
    return tuple(sorted(set(found)))


_IDENTIFIER_MEANING = "a lowercase identifier (letters, digits and underscores, starting with a letter)"


def _is_identifier(name: str) -> bool:
    import re

    return re.fullmatch(IDENTIFIER, name) is not None
