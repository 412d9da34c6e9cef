"""Scoring with the Champion, shared by the batch and streaming inference jobs (not an entry point).

- ``resolve_champion``: the alias ``champion`` read once per run, to a version written on every output row, so a new
  Champion is used by the next run without a code change;
- ``stage_model``: that version's artifacts copied once into the platform's work folder, which every Spark worker
  reads (a Unity Catalog volume on Databricks, a folder under ``$MLOPS_HOME`` here);
- ``score``: the features through the model with ``mapInPandas``: each Python worker loads the model once and scores
  Arrow batches with scikit-learn directly (no per-batch pyfunc schema enforcement: the frame is already in the
  signature's types, built by ``jobs.core.model.model_frame``): a classifier's class and probability, a regressor's
  value, in the predictions table's types (``ModelSpec.prediction_column_types``);
- ``split``: rows that cannot be scored go to the rejects table with their reason, never silently dropped;
- shadow scoring: while a Challenger exists (alias ``challenger``, another version than the Champion), the same
  valid rows are scored with it too (``resolve_challenger``, ``shadow_rows``) into the shadow predictions table
  (``Environment.shadow_predictions_table``): the key, the Challenger's outputs, its version and the Champion's, and
  the predictions row's batch and source, so each pairs with the Champion's row on (key, batch). A table of its own
  rather than columns of the predictions table: the predictions table's schema, its monitors (which profile every
  column) and what is published stay the Champion's alone, and the shadow rows come and go with a Challenger.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from jobs.core.inference import POSITIVE_ABOVE, reject_reason
from jobs.core.model import model_frame, predict_proba
from jobs.platform import Platform
from jobs.platform.job import JobError
from jobs.platform.registry import CHALLENGER, CHAMPION, ModelRef
from spec.columns import PREDICTION, PROBABILITY, REJECT_REASON, SHADOW_METADATA, SHADOW_METADATA_TYPES
from spec.model import SPARK_TYPES, ModelSpec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

logger = logging.getLogger("jobs.scoring")


def scored_columns(spec: ModelSpec) -> tuple[str, ...]:
    """What ``score`` returns: the key, the event time, the scored features and the outputs (a classifier's
    prediction and probability, a regressor's prediction)."""
    return (*spec.key_names, *spec.event_time_in_rows, *spec.scored_features, *spec.outputs)


def scored_schema(spec: ModelSpec) -> str:
    """``score``'s output schema as Spark DDL, in the predictions table's types (``ModelSpec.prediction_column_types``:
    a classifier's prediction an int, a regressor's a double)."""
    types = dict(spec.prediction_column_types)
    return ", ".join(f"{c} {SPARK_TYPES[types[c]]}" for c in scored_columns(spec))


# A staging folder's name says when it was made: ``.<version>.staging-<epoch seconds>-<hex>`` (a file system's folder
# times may not be kept, on a volume for one). One made more than STALE_STAGING ago was left by a download that was
# killed (its task timed out or its process was stopped, so its ``finally`` never ran): a job stages its model when it
# starts, and a download takes minutes. Folders named before the time was in the name are judged by their mtime.
STALE_STAGING = timedelta(hours=2)
_STAGING = re.compile(r"^\.[^.]+\.staging-(?:(\d+)-)?[0-9a-f]+(\.removing)?$")

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


def resolve_challenger(platform: Platform, champion: ModelRef) -> ModelRef | None:
    """The version the alias ``challenger`` points at, when it is not the Champion: what shadow scoring uses."""
    registry = platform.registry
    version = registry.alias_version(CHALLENGER)
    if version is None or version == champion.version:
        return None
    ref = ModelRef(registry.model_name, version)
    logger.info("shadow scoring with %s (alias %s) beside %s", ref.uri, CHALLENGER, champion.uri)
    return ref


def stage_model(platform: Platform, ref: ModelRef) -> str:
    """The version's artifacts in ``<work_dir>/models/<name>/<version>``, downloaded once (a model version is
    immutable); the folder every worker loads the model from. Jobs that stage the same version at once (the
    streaming and the batch job sharing a work folder) each download into a folder of their own; the first rename
    wins and the others drop their copy. Staging folders of the model's killed downloads are removed first
    (``remove_stale_staging``)."""
    import mlflow

    target = Path(platform.work_dir) / "models" / ref.name / ref.version
    if (target / "MLmodel").exists():
        return str(target)
    remove_stale_staging(target.parent)
    # A folder of this call's own, made as the target would be (mkdtemp's would be private to the driver's user).
    staging = target.with_name(f".{ref.version}.staging-{int(time.time())}-{uuid.uuid4().hex}")
    staging.mkdir(parents=True)
    try:
        mlflow.artifacts.download_artifacts(artifact_uri=ref.uri, dst_path=str(staging))
        if not (staging / "MLmodel").exists():
            raise JobError(f"{ref.uri} has no MLmodel file after download to {staging}: is it an MLflow model?")
        try:
            staging.rename(target)
        except OSError:
            if not (target / "MLmodel").exists():
                raise
            logger.info("%s was staged in %s by another job meanwhile", ref.uri, target)
            return str(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone once renamed; a failed or losing download's copy
    logger.info("staged %s in %s", ref.uri, target)
    return str(target)


def remove_stale_staging(folder: Path, now: float | None = None) -> list[Path]:
    """Remove the staging folders in ``folder`` (a model's staged versions) made more than ``STALE_STAGING`` ago; the
    ones removed. A newer one may be a download under way and is left alone. Each is renamed away before it is
    removed: a download still writing into it could then no longer rename it into place (its job fails and says so)
    rather than leave a partial copy as the version's folder. Removing is best effort: what fails is a warning."""
    now = time.time() if now is None else now
    removed = []
    try:
        found = sorted(folder.glob(".*.staging-*")) if folder.is_dir() else []
    except OSError as e:
        logger.warning("could not look for staging folders of killed downloads in %s: %s", folder, e)
        return []
    for staging in found:
        if not (match := _STAGING.match(staging.name)):
            continue
        try:
            made = int(match.group(1)) if match.group(1) else staging.stat().st_mtime
            if now - made <= STALE_STAGING.total_seconds():
                continue
            removing = staging if staging.name.endswith(".removing") else staging.with_name(staging.name + ".removing")
            staging.rename(removing)
            shutil.rmtree(removing)
        except FileNotFoundError:  # renamed into place, or removed by another job's cleanup, meanwhile
            continue
        except OSError as e:
            logger.warning("could not remove the staging folder %s of a killed download: %s", staging, e)
            continue
        removed.append(staging)
    if removed:
        logger.info("removed %s staging folders of killed downloads in %s", len(removed), folder)
    return removed


def _model(path: str):
    with _loading:
        if path not in _loaded:
            import mlflow.sklearn

            _loaded[path] = mlflow.sklearn.load_model(path)
        return _loaded[path]


@dataclass(frozen=True)
class _Scoring:
    """What each Python worker needs to score a batch: plain values, pickled into the ``mapInPandas`` function."""

    path: str
    passed: tuple[str, ...]  # the key and the event time, copied as they are
    scored_features: tuple[str, ...]
    classifier: bool
    spec: ModelSpec

    def batches(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = _model(self.path)
        for batch in batches:
            if batch.empty:
                continue
            frame = model_frame(self.spec, batch)
            out = batch[list(self.passed)].copy()
            for column in self.scored_features:
                out[column] = frame[column].to_numpy()
            if self.classifier:
                probability = predict_proba(model, frame)
                out[PREDICTION] = (probability > POSITIVE_ABOVE).astype("int32")
                out[PROBABILITY] = probability
            else:
                out[PREDICTION] = model.predict(frame).astype("float64")
            yield out


def split(candidates: DataFrame, spec: ModelSpec, row_checks: list[tuple[Column, str]]) -> tuple[DataFrame, DataFrame]:
    """(rows that can be scored, rows that cannot with their ``reason``): the platform's checks and the model's
    ``row_checks`` (``jobs.core.inference.reject_reason``)."""
    from pyspark.sql import functions as F

    checked = candidates.withColumn(REJECT_REASON, reject_reason(spec, row_checks))
    valid = checked.where(F.col(REJECT_REASON).isNull()).drop(REJECT_REASON)
    rejected = checked.where(F.col(REJECT_REASON).isNotNull())
    return valid, rejected


def score(valid: DataFrame, model_path: str, spec: ModelSpec) -> DataFrame:
    """Key, event time, the model's inputs and outputs of every row, the model loaded once per worker."""
    scoring = _Scoring(
        str(model_path), (*spec.key_names, *spec.event_time_in_rows), spec.scored_features, spec.is_classifier, spec
    )
    inputs = valid.select(*scoring.passed, *spec.scored_features)
    return inputs.mapInPandas(scoring.batches, scored_schema(spec))


def prediction_rows(
    scored: DataFrame, spec: ModelSpec, ref: ModelRef, *, batch_id: str, source: str, at: datetime
) -> DataFrame:
    """The predictions table's rows: the scores with the model version, alias, time, batch and source; the label
    columns null until the labels job sets them."""
    from pyspark.sql import functions as F

    types = dict(spec.prediction_column_types)
    return scored.select(
        *scored_columns(spec),
        F.lit(ref.name).alias("model_name"),
        F.lit(ref.version).alias("model_version"),
        F.lit(CHAMPION).alias("model_alias"),
        F.lit(at).cast("timestamp").alias("scored_at"),
        F.lit(batch_id).alias("batch_id"),
        F.lit(source).alias("source"),
        *[F.lit(None).cast(SPARK_TYPES[types[c]]).alias(c) for c in spec.label_columns],
    ).select(*spec.prediction_columns)


def reject_rows(rejected: DataFrame, spec: ModelSpec, *, batch_id: str, source: str, at: datetime) -> DataFrame:
    from pyspark.sql import functions as F

    return rejected.select(
        *spec.key_names,
        REJECT_REASON,
        F.lit(batch_id).alias("batch_id"),
        F.lit(source).alias("source"),
        F.lit(at).cast("timestamp").alias("rejected_at"),
    ).select(*spec.reject_columns)


def shadow_columns(spec: ModelSpec) -> tuple[str, ...]:
    """The shadow predictions table's columns: the key, the Challenger's outputs, and where they came from."""
    return (*spec.key_names, *spec.outputs, *SHADOW_METADATA)


def shadow_rows(
    scored: DataFrame,
    spec: ModelSpec,
    challenger: ModelRef,
    champion: ModelRef,
    *,
    batch_id: str,
    source: str,
    at: datetime,
) -> DataFrame:
    """The shadow predictions table's rows: the Challenger's scores (``score`` with its model) of the rows the
    Champion scored in the same batch, with both versions."""
    from pyspark.sql import functions as F

    types = {**dict(spec.prediction_column_types), **dict(SHADOW_METADATA_TYPES)}
    return scored.select(
        *spec.key_names,
        *spec.outputs,
        F.lit(challenger.name).alias("model_name"),
        F.lit(challenger.version).alias("model_version"),
        F.lit(champion.version).alias("champion_version"),
        F.lit(at).cast("timestamp").alias("scored_at"),
        F.lit(batch_id).alias("batch_id"),
        F.lit(source).alias("source"),
    ).select(*[F.col(c).cast(SPARK_TYPES[types[c]]).alias(c) for c in shadow_columns(spec)])
