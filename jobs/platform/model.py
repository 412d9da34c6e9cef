"""The behaviour half of a model's interface: the callables of a model package (``models/<name>/__init__.py``) the
jobs run, beside its declaration (``spec.model.ModelSpec``, in ``models/<name>/spec.py``).

A model package defines, at module level:

``HYPERPARAMETERS``
    the estimator's hyperparameters and their defaults (a mapping; training may override any of them by name).
``load_sources(start, end) -> {source: pandas.DataFrame}``
    the model's raw data of events in [start, end] (either may be None: unbounded), one frame per ``SPEC.sources``
    entry: what the ingest job writes to the raw tables, as delivered.
``source_filters(start, end) -> {table: [(column, op, value), ...]}``
    a narrowing of what to read of each source and feature table for the events of [start, end] (the tables port's
    ``filters``); the exact window is applied by the functions below. A table not named is read whole.
``build_features(sources) -> {feature_table: DataFrame}``
    the feature tables (``SPEC.feature_tables``) from the raw tables (Spark DataFrames by source name).
``examples(sources, features, start, end) -> DataFrame``
    labelled examples of the events of [start, end] whose label is known: the key, ``event_time``, the features,
    ``label`` and the label details, with features known at ``event_time`` only (point in time).
``scoring_rows(rows, features, start, end) -> DataFrame``
    what is scored: raw or landed rows of the scored source (``stream_source``, else the first source) -> the key,
    ``event_time`` and the features, without a label; events of [start, end] when both are given.
``labels(sources, start, end) -> DataFrame``
    the key, ``label`` and the label details of the events of [start, end] whose label is known.
``row_checks() -> [(failed: Column, reason: str), ...]``
    what makes a row unscorable beyond what the platform checks (a key part or a non-optional feature missing):
    each row for which ``failed`` holds is rejected with ``reason``.
``build_estimator(seed, **hyperparameters)``
    an unfitted scikit-learn estimator taking the model frame (``jobs.core.model.model_frame``): a classifier with
    ``predict_proba`` for classification, a regressor for regression.

``load_model`` imports the package and checks each of these is there, so a package that misses one fails at once,
naming the model and what to add, before anything is trained or scored.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

from spec.config import ConfigError
from spec.model import MODELS_PACKAGE, ModelSpec, load_model_spec

if TYPE_CHECKING:
    from datetime import date

    import pandas as pd
    from pyspark.sql import DataFrame

# What a model package must define, and what each is (for the error that names a missing one).
REQUIRED = {
    "HYPERPARAMETERS": "a mapping of the estimator's hyperparameters to their defaults",
    "load_sources": "load_sources(start, end) -> {source: pandas.DataFrame}",
    "source_filters": "source_filters(start, end) -> {table: [(column, op, value), ...]}",
    "build_features": "build_features(sources) -> {feature_table: DataFrame}",
    "examples": "examples(sources, features, start, end) -> DataFrame",
    "scoring_rows": "scoring_rows(rows, features, start, end) -> DataFrame",
    "labels": "labels(sources, start, end) -> DataFrame",
    "row_checks": "row_checks() -> [(failed: pyspark Column, reason: str), ...]",
    "build_estimator": "build_estimator(seed, **hyperparameters) -> an unfitted scikit-learn estimator",
}


@dataclass(frozen=True)
class ModelPackage:
    """A loaded model: its declaration and its callables (see the module's docstring)."""

    spec: ModelSpec
    module: ModuleType

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def hyperparameters(self) -> Mapping[str, Any]:
        return self.module.HYPERPARAMETERS

    def load_sources(self, start: date | None, end: date | None) -> Mapping[str, pd.DataFrame]:
        frames = self.module.load_sources(start, end)
        _check_names(self.spec, "load_sources", frames, self.spec.sources)
        return frames

    def source_filters(self, start: date, end: date) -> Mapping[str, list[tuple[str, str, Any]]]:
        return self.module.source_filters(start, end)

    def build_features(self, sources: Mapping[str, DataFrame]) -> Mapping[str, DataFrame]:
        tables = self.module.build_features(sources)
        _check_names(self.spec, "build_features", tables, self.spec.feature_tables)
        return tables

    def examples(
        self, sources: Mapping[str, DataFrame], features: Mapping[str, DataFrame], start: date, end: date
    ) -> DataFrame:
        return self.module.examples(sources, features, start, end)

    def scoring_rows(
        self, rows: DataFrame, features: Mapping[str, DataFrame], start: date | None = None, end: date | None = None
    ) -> DataFrame:
        return self.module.scoring_rows(rows, features, start, end)

    def labels(self, sources: Mapping[str, DataFrame], start: date, end: date) -> DataFrame:
        return self.module.labels(sources, start, end)

    def row_checks(self) -> list[tuple[Any, str]]:
        return list(self.module.row_checks())

    def build_estimator(self, seed: int = 0, **hyperparameters: object) -> Any:
        unknown = sorted(set(hyperparameters) - set(self.hyperparameters))
        if unknown:
            raise ValueError(
                f"model {self.name!r}: unknown hyperparameters {unknown}; known: {sorted(self.hyperparameters)}"
            )
        return self.module.build_estimator(seed, **{**self.hyperparameters, **hyperparameters})

    @property
    def scored_source(self) -> str:
        """The raw table scored by the batch job (and landing, for the stream): ``stream_source`` or the first."""
        return self.spec.stream_source or self.spec.sources[0]


def _check_names(spec: ModelSpec, what: str, got: Mapping[str, object], expected: tuple[str, ...]) -> None:
    if set(got) != set(expected):
        raise ValueError(f"model {spec.name!r}: {what} returned {sorted(got)}, its declaration says {list(expected)}")


@cache
def load_model(name: str) -> ModelPackage:
    """Model ``name``: its checked declaration and its callables; a ``ConfigError`` naming the model and what is
    missing otherwise."""
    spec = load_model_spec(name)
    module = importlib.import_module(f"{MODELS_PACKAGE}.{name}")
    missing = [f"{attr} ({what})" for attr, what in REQUIRED.items() if not hasattr(module, attr)]
    if missing:
        raise ConfigError(f"model {name!r}: {MODELS_PACKAGE}/{name}/__init__.py must define " + "; ".join(missing))
    not_callable = [attr for attr in REQUIRED if attr != "HYPERPARAMETERS" and not callable(getattr(module, attr))]
    if not_callable or not isinstance(module.HYPERPARAMETERS, Mapping):
        raise ConfigError(
            f"model {name!r}: {not_callable or ['HYPERPARAMETERS']} of {MODELS_PACKAGE}/{name}/__init__.py must be "
            "functions (HYPERPARAMETERS a mapping)"
        )
    return ModelPackage(spec, module)


Loader = Callable[[str], ModelPackage]
