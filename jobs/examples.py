"""What the training, validation and deployment jobs share: the labelled examples of a window read from the Delta
tables (with their lineage), the frame a model is evaluated on, and the registered version a job acts on.

Not an entry point: the entry points import this module, never each other.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

from jobs.core import contract
from jobs.core.model import labels, model_frame
from jobs.platform import Platform
from jobs.platform.job import JobError
from jobs.platform.registry import ModelRef
from spec.columns import LABEL

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from pyspark.sql import DataFrame


class PinnedTables(Mapping[str, "DataFrame"]):
    """The model's tables by name (its sources or its feature tables), each read when first asked for, at the
    Delta version current then (or the one ``versions`` gives it, by full name), narrowed by the model's
    ``source_filters``.

    What the model's ``examples`` asks for is exactly what its examples come from: ``read`` records each table it
    read with its version (the lineage), and a table the model never asks for is never read."""

    def __init__(
        self,
        platform: Platform,
        names: tuple[str, ...],
        full_name: Any,
        job: str,
        filters: Mapping[str, list[tuple[str, str, Any]]],
        read: dict[str, int],
        versions: Mapping[str, int] | None = None,
    ) -> None:
        self._platform, self._names, self._full_name, self._job = platform, names, full_name, job
        self._filters, self._read, self._versions = filters, read, versions or {}
        self._frames: dict[str, DataFrame] = {}

    def __getitem__(self, name: str) -> DataFrame:
        if name not in self._names:
            raise KeyError(f"model {self._platform.model.name!r} has no table {name!r} here (it has {self._names})")
        if name not in self._frames:
            tables, table = self._platform.tables, self._full_name(name)
            if not tables.exists(table):
                raise JobError(f"table {table!r} does not exist: run {self._job} --env {self._platform.env.name} first")
            version = self._versions.get(table)
            version = tables.version(table) if version is None else version
            self._frames[name] = tables.read(table, version=version, filters=self._filters.get(name))
            self._read[table] = version
        return self._frames[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def read_examples(platform: Platform, start: date, end: date) -> tuple[DataFrame, dict[str, str]]:
    """The labelled examples of [start, end] (Spark, lazy) and the lineage of the tables they come from: one tag
    per table read (``contract.lineage_tag``) with its Delta version."""
    env, model = platform.env, platform.model
    filters = model.source_filters(start, end)
    read: dict[str, int] = {}
    sources = PinnedTables(platform, model.spec.sources, env.source_table, "mlops-ingest", filters, read)
    features = PinnedTables(platform, model.spec.feature_tables, env.feature_table, "mlops-features", filters, read)
    examples = model.examples(sources, features, start, end)
    if not read:
        raise JobError(f"model {model.name!r}: examples() read none of its tables: its examples come from nowhere")
    lineage = {contract.lineage_tag(t): contract.lineage_value(t, v) for t, v in read.items()}
    return examples, lineage


def describe_lineage(lineage: Mapping[str, str]) -> str:
    """The tables of a lineage with their versions, for a message: ``cat.raw.a@v3, cat.features.b@v1``."""
    return ", ".join(lineage[k] for k in sorted(lineage))


def evaluation_period(tags: dict[str, str], start: date | None, end: date | None, uri: str) -> tuple[date, date]:
    """The explicit period, else the version's held-out period from its tags."""
    try:
        start = start or date.fromisoformat(tags[contract.TEST_START])
        end = end or date.fromisoformat(tags[contract.TEST_END])
    except (KeyError, ValueError) as e:
        raise JobError(
            f"{uri} has no valid {contract.TEST_START}/{contract.TEST_END} tags ({e}); pass --eval-start and --eval-end"
        ) from e
    if start > end:
        raise JobError(f"evaluation period start {start} is after its end {end}")
    return start, end


def evaluation_frame(platform: Platform, start: date, end: date) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """The examples of [start, end] as the model's input frame plus the label column; the columns the model's
    slices are cut by (``ModelSpec.validation.slices``: features or key columns), row for row; their lineage."""
    spec = platform.model.spec
    examples, lineage = read_examples(platform, start, end)
    frame = examples.toPandas()
    if frame.empty:
        raise JobError(
            f"no labelled examples of model {spec.name!r} between {start} and {end} in {describe_lineage(lineage)}: "
            "nothing to evaluate on"
        )
    data = model_frame(spec, frame)
    data[LABEL] = labels(spec, frame)
    if spec.is_classifier and data[LABEL].nunique() < 2:
        raise JobError(f"the examples of {start}..{end} hold one class only: roc_auc is undefined")
    if not spec.is_classifier and len(data) < 2:
        raise JobError(f"the examples of {start}..{end} hold {len(data)} row: r2_score is undefined")
    slices = frame[list(spec.validation.slices)].reset_index(drop=True)
    return data, slices, lineage


def environment_version(platform: Platform, ref: ModelRef) -> ModelVersion:
    """The registered version ``ref`` of the environment's own model, with the experiment made active; a JobError
    naming the URI for another environment's model or a version that does not exist."""
    registry = platform.registry
    if ref.name != registry.model_name:
        raise JobError(f"{ref.uri} is not a version of {registry.model_name}, the model of {platform.env.name}")
    registry.use_experiment()
    try:
        return registry.get_version(ref)
    except ValueError as e:
        raise JobError(str(e)) from e
