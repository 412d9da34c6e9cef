"""Scoring with the Champion, shared by the batch and streaming inference jobs (not an entry point).

- ``resolve_champion``: the alias ``champion`` read once per run, to a version written on every output row, so a new
  Champion is used by the next run without a code change;
- ``stage_model``: that version's artifacts copied once into the platform's work folder, which every Spark worker
  reads (a Unity Catalog volume on Databricks, a folder under ``$MLOPS_HOME`` here);
- ``score``: the features through the model with ``mapInPandas``: each Python worker loads the model once and scores
  Arrow batches with scikit-learn directly (no per-batch pyfunc schema enforcement: the frame is already in the
  signature's types, built by ``jobs.core.model.model_frame``);
- ``split``: rows that cannot be scored go to the rejects table with their reason, never silently dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from jobs.core.inference import LATE_ABOVE, reject_reason
from jobs.core.model import model_frame, predict_proba
from jobs.platform import Platform
from jobs.platform.job import JobError
from jobs.platform.registry import CHAMPION, ModelRef
from models.flight_delay.columns import (
    FLIGHT_KEY,
    PREDICTION_COLUMNS,
    REJECT_COLUMNS,
    SCHEDULED_DEPARTURE,
    SCORED_FEATURES,
    SPEC,
)
from spec.columns import PREDICTION, PROBABILITY, REJECT_REASON

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

logger = logging.getLogger("jobs.scoring")

SCORED_SCHEMA = (
    "sched_date date, carrier string, flight long, origin string, dest string, time_hour timestamp, "
    f"{SCHEDULED_DEPARTURE} timestamp, "
    + ", ".join(f"{c} double" for c in SCORED_FEATURES)
    + f", {PREDICTION} int, {PROBABILITY} double"
)

# Per Python worker: the models it has loaded, by staged path (Spark reuses its Python workers across tasks).
_loaded: dict[str, object] = {}
_loading = threading.Lock()


def resolve_champion(platform: Platform) -> ModelRef:
    """The version the alias ``champion`` points at now; a JobError naming the model and what to run first."""
    registry = platform.registry
    version = registry.alias_version(CHAMPION)
    if version is None:
        raise JobError(
            f"{registry.model_name} has no champion yet: nothing can be scored. Train and promote one first: "
            f"mlops run model-training --env {platform.env.name} (on Databricks: the [{platform.env.name}] "
            "model-training job)"
        )
    ref = ModelRef(registry.model_name, version)
    logger.info("scoring with %s (alias %s)", ref.uri, CHAMPION)
    return ref


def stage_model(platform: Platform, ref: ModelRef) -> str:
    """The version's artifacts in ``<work_dir>/models/<name>/<version>``, downloaded once (a model version is
    immutable); the folder every worker loads the model from."""
    import mlflow

    target = Path(platform.work_dir) / "models" / ref.name / ref.version
    if (target / "MLmodel").exists():
        return str(target)
    staging = target.with_name(f".{ref.version}.staging")
    staging.mkdir(parents=True, exist_ok=True)
    mlflow.artifacts.download_artifacts(artifact_uri=ref.uri, dst_path=str(staging))
    if not (staging / "MLmodel").exists():
        raise JobError(f"{ref.uri} has no MLmodel file after download to {staging}: is it an MLflow model?")
    staging.rename(target)
    logger.info("staged %s in %s", ref.uri, target)
    return str(target)


def _model(path: str):
    with _loading:
        if path not in _loaded:
            import mlflow.sklearn

            _loaded[path] = mlflow.sklearn.load_model(path)
        return _loaded[path]


def _score_batches(path: str, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    model = _model(path)
    for batch in batches:
        if batch.empty:
            continue
        frame = model_frame(SPEC, batch)
        probability = predict_proba(model, frame)
        out = batch[[*FLIGHT_KEY, SCHEDULED_DEPARTURE]].copy()
        for column in SCORED_FEATURES:
            out[column] = frame[column].to_numpy()
        out[PREDICTION] = (probability > LATE_ABOVE).astype("int32")
        out[PROBABILITY] = probability
        yield out


def split(candidates: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(rows that can be scored, rows that cannot with their ``reason``)."""
    from pyspark.sql import functions as F

    checked = candidates.withColumn(REJECT_REASON, reject_reason())
    valid = checked.where(F.col(REJECT_REASON).isNull()).drop(REJECT_REASON)
    rejected = checked.where(F.col(REJECT_REASON).isNotNull())
    return valid, rejected


def score(valid: DataFrame, model_path: str) -> DataFrame:
    """Key, scheduled departure, the model's inputs, prediction and probability of every row, the model loaded once
    per worker."""
    path = str(model_path)
    inputs = valid.select(*FLIGHT_KEY, SCHEDULED_DEPARTURE, *SCORED_FEATURES)
    return inputs.mapInPandas(lambda batches: _score_batches(path, batches), SCORED_SCHEMA)


def prediction_rows(scored: DataFrame, ref: ModelRef, *, batch_id: str, source: str, at: datetime) -> DataFrame:
    """The predictions table's rows: the scores with the model version, alias, time, batch and source."""
    from pyspark.sql import functions as F

    return scored.select(
        *FLIGHT_KEY,
        SCHEDULED_DEPARTURE,
        *SCORED_FEATURES,
        PREDICTION,
        PROBABILITY,
        F.lit(ref.name).alias("model_name"),
        F.lit(ref.version).alias("model_version"),
        F.lit(CHAMPION).alias("model_alias"),
        F.lit(at).cast("timestamp").alias("scored_at"),
        F.lit(batch_id).alias("batch_id"),
        F.lit(source).alias("source"),
        F.lit(None).cast("int").alias("label"),
        F.lit(None).cast("double").alias("arr_delay"),
        F.lit(None).cast("timestamp").alias("labeled_at"),
    ).select(*PREDICTION_COLUMNS)


def reject_rows(rejected: DataFrame, *, batch_id: str, source: str, at: datetime) -> DataFrame:
    from pyspark.sql import functions as F

    return rejected.select(
        *FLIGHT_KEY,
        REJECT_REASON,
        F.lit(batch_id).alias("batch_id"),
        F.lit(source).alias("source"),
        F.lit(at).cast("timestamp").alias("rejected_at"),
    ).select(*REJECT_COLUMNS)
