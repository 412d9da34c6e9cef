"""What the training, validation and deployment jobs share: the labelled examples of a window read from the Delta
tables (with their lineage), the frame a model is evaluated on, and the registered version a job acts on.

Not an entry point: the entry points import this module, never each other.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from jobs.core import contract
from jobs.core.model import labels, model_frame
from jobs.platform import Platform
from jobs.platform.job import JobError
from jobs.platform.registry import ModelRef
from models.flight_delay.data import hours_around
from models.flight_delay.features import flight_examples
from spec.columns import LABEL

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from pyspark.sql import DataFrame


def read_examples(platform: Platform, start: date, end: date) -> tuple[DataFrame, dict[str, str]]:
    """The labelled examples of [start, end] (Spark, lazy) and the lineage of the tables they come from."""
    env = platform.env
    flights_table, features_table = env.flights_table, env.weather_features_table
    for table, job in ((flights_table, "mlops-ingest"), (features_table, "mlops-features")):
        if not platform.tables.exists(table):
            raise JobError(f"table {table!r} does not exist: run {job} --env {env.name} first")
    flights_version = platform.tables.version(flights_table)
    features_version = platform.tables.version(features_table)
    window = hours_around(start, end)
    examples = flight_examples(
        platform.tables.read(flights_table, version=flights_version, filters=window),
        platform.tables.read(features_table, version=features_version, filters=window),
        start,
        end,
    )
    lineage = {
        contract.LINEAGE_FLIGHTS_TABLE: flights_table,
        contract.LINEAGE_FLIGHTS_VERSION: str(flights_version),
        contract.LINEAGE_FEATURES_TABLE: features_table,
        contract.LINEAGE_FEATURES_VERSION: str(features_version),
    }
    return examples, lineage


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


def evaluation_frame(platform: Platform, start: date, end: date) -> tuple[pd.DataFrame, dict[str, str]]:
    """The examples of [start, end] as the model's input frame plus the label column, and their lineage."""
    examples, lineage = read_examples(platform, start, end)
    frame = examples.toPandas()
    if frame.empty:
        raise JobError(f"no flights that arrived were scheduled between {start} and {end}: nothing to evaluate on")
    data = model_frame(frame)
    data[LABEL] = labels(frame)
    if data[LABEL].nunique() < 2:
        raise JobError(f"the flights of {start}..{end} hold one class only: roc_auc is undefined")
    return data, lineage


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
