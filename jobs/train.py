"""mlops-train: train the environment's model on a window of event dates and register it.

Spark builds the labelled examples (the model package's ``examples``: its features known at each event's time, from
its raw and feature tables). The last part of the window (about 20 % of its rows, whole days of ``event_date``) is
held out as the test period. scikit-learn fits the model package's estimator on the rest; MLflow records params
(the hyperparameters by name), metrics (the problem type's), signature, input example, lineage (every table read
and its Delta version), git commit and code version, and registers the model as ``<catalog>.ml.<model>`` with a
description and version tags.

Task values: ``model_uri``, ``model_name``, ``model_version``, ``test_start``, ``test_end``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from jobs.core import contract
from jobs.core.evaluation import quality_metrics
from jobs.core.model import (
    labels,
    model_frame,
    model_signature,
    predictions,
    scores,
    shuffled,
)
from jobs.core.split import deterministic_sample, held_out_start
from jobs.examples import describe_lineage, read_examples
from jobs.platform import Platform, build_platform
from jobs.platform.job import (
    JobError,
    check_window,
    code_version,
    exit_on_failure,
    git_commit,
    iso_date,
    job_environment,
    job_parser,
    positive_int,
    run_job,
)
from jobs.platform.registry import ModelRef, logged_model_name, model_requirements
from spec.columns import LABEL, LABELED_AT, PREDICTION, PROBABILITY

logger = logging.getLogger("jobs.train")

TEST_FRACTION = 0.2
SEED = 42
MODEL_ARTIFACT = "model"


def model_description(platform: Platform, lineage: dict[str, str]) -> str:
    """What the registered model is, from its declaration: what it answers, from what, and what predict returns."""
    spec = platform.model.spec
    answer = "1 = positive, 0 = negative" if spec.is_classifier else "the predicted value"
    return (
        f"{spec.description.rstrip('.')}. A {spec.problem_type} model {spec.name!r} of the features "
        f"{', '.join(spec.feature_names)}, trained on the tables {describe_lineage(lineage)}. "
        f"Output of predict: {answer}."
    )


@dataclass(frozen=True)
class TrainingData:
    """Examples of one window, split in time, with the Delta versions they were read from."""

    train: pd.DataFrame
    test: pd.DataFrame
    test_start: date
    test_end: date
    lineage: dict[str, str]


@dataclass(frozen=True)
class TrainResult:
    model: ModelRef
    run_id: str
    test_metrics: dict[str, float]
    test_start: date
    test_end: date


def load_training_data(
    platform: Platform, start: date, end: date, max_rows: int | None, seed: int = SEED
) -> TrainingData:
    spec = platform.model.spec
    examples, lineage = read_examples(platform, start, end)
    # One pass over the window (no cache: serverless compute does not support it): the held-out period is found on
    # the rows that are trained and tested on, a deterministic sample of the window when --max-rows is given.
    sampled = deterministic_sample(examples, max_rows, seed, spec.key_names) if max_rows else examples
    frame = sampled.toPandas()
    daily = frame.groupby(spec.event_date).size().to_dict()
    if not daily:
        raise JobError(
            f"no labelled examples of model {spec.name!r} between {start} and {end} in {describe_lineage(lineage)}: "
            "nothing was trained or registered"
        )
    try:
        test_start = held_out_start(daily, TEST_FRACTION)
    except ValueError as e:
        raise JobError(f"training window {start}..{end} is too small to hold out a test period: {e}") from e
    in_test = frame[spec.event_date] >= test_start
    train, test = frame[~in_test].reset_index(drop=True), frame[in_test].reset_index(drop=True)
    if train.empty or test.empty:
        raise JobError(f"--max-rows {max_rows} leaves no rows for training or for the test period from {test_start}")
    if spec.is_classifier and train[LABEL].nunique() < 2:
        raise JobError(f"the training rows of {start}..{end} hold one class only: nothing to learn")
    logger.info(
        "examples %s..%s: %s training rows, %s test rows from %s",
        start,
        end,
        len(train),
        len(test),
        test_start,
    )
    return TrainingData(train, test, test_start, max(daily), lineage)


def train(
    platform: Platform,
    start: date,
    end: date,
    max_rows: int | None = None,
    shuffle_labels: bool = False,
    seed: int = SEED,
) -> TrainResult:
    import mlflow

    env, package = platform.env, platform.model
    spec = package.spec
    data = load_training_data(platform, start, end, max_rows, seed)
    x_train, y_train = model_frame(spec, data.train), labels(spec, data.train)
    x_test, y_test = model_frame(spec, data.test), labels(spec, data.test)
    if shuffle_labels:
        logger.warning("training on SHUFFLED labels (--shuffle-labels): this model is deliberately bad")
        y_train = shuffled(y_train, seed)
    model = package.build_estimator(seed).fit(x_train, y_train)
    # Scored once: the metrics below and the monitors' baseline (``write_baseline``) are both made of these.
    train_scores, test_scores = scores(spec, model, x_train), scores(spec, model, x_test)
    train_metrics = quality_metrics(spec.problem_type, y_train, train_scores)
    test_metrics = quality_metrics(spec.problem_type, y_test, test_scores)
    logger.info("test metrics: %s", {k: round(v, 4) for k, v in test_metrics.items()})

    commit = git_commit()
    version_tags = {
        contract.TRAINING_START: start.isoformat(),
        contract.TRAINING_END: end.isoformat(),
        contract.TEST_START: data.test_start.isoformat(),
        contract.TEST_END: data.test_end.isoformat(),
        contract.CODE_VERSION: code_version(),
        contract.GIT_COMMIT: commit or "unknown",
        contract.SHUFFLED_LABELS: str(shuffle_labels).lower(),
        **data.lineage,
    }
    platform.registry.use_experiment()
    with mlflow.start_run(run_name=f"train {start}..{end}") as run:
        mlflow.set_tags({**version_tags, "env": env.name, "job": "mlops-train"})
        if commit:
            mlflow.set_tag("mlflow.source.git.commit", commit)
        mlflow.log_params(
            {
                **version_tags,
                "test_fraction": TEST_FRACTION,
                "max_rows": max_rows or "all",
                "seed": seed,
                "train_rows": len(data.train),
                "test_rows": len(data.test),
                "model": estimator_name(model),
                "problem_type": spec.problem_type,
                **package.hyperparameters,
            }
        )
        mlflow.log_metrics({f"test_{k}": v for k, v in test_metrics.items()})
        mlflow.log_metrics({f"train_{k}": v for k, v in train_metrics.items()})
        if platform.on_databricks:
            _log_delta_inputs(data.lineage)
        example = x_train.dropna().head(5) if not x_train.dropna().empty else x_train.head(5)
        signature = model_signature(spec)
        info = mlflow.sklearn.log_model(
            model,
            **logged_model_name(MODEL_ARTIFACT),
            signature=signature,
            input_example=example,
            registered_model_name=env.registered_model,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pip_requirements=model_requirements(),
        )
    ref = ModelRef(env.registered_model, str(info.registered_model_version))
    registry = platform.registry
    primary = spec.validation.primary_metric
    description = model_description(platform, data.lineage)
    registry.client.update_model_version(
        ref.name,
        ref.version,
        description=(
            description + f" Trained on {start}..{end} (held out {data.test_start}..{data.test_end}); "
            f"test {primary} {test_metrics[primary]:.4f}."
        ),
    )
    registry.set_version_tags(ref, {**version_tags, contract.TRAINING_RUN_ID: run.info.run_id})
    if not (registry.client.get_registered_model(ref.name).description or "").strip():
        registry.client.update_registered_model(ref.name, description=description)
    logger.info("registered %s (run %s)", ref.uri, run.info.run_id)
    examples = pd.concat([data.train, data.test], ignore_index=True)
    write_baseline(platform, ref, examples, np.concatenate([train_scores, test_scores]))

    values = platform.task_values
    values.set("model_uri", ref.uri)
    values.set("model_name", ref.name)
    values.set("model_version", ref.version)
    values.set("test_start", data.test_start.isoformat())
    values.set("test_end", data.test_end.isoformat())
    return TrainResult(ref, run.info.run_id, test_metrics, data.test_start, data.test_end)


def estimator_name(model: Any) -> str:
    """The estimator's kind, for the run's params: a pipeline's steps joined by ``+``."""
    steps = getattr(model, "steps", None)
    if steps:
        return "+".join(type(step).__name__ for _, step in steps)
    return type(model).__name__


def baseline_rows(
    platform: Platform, ref: ModelRef, examples: pd.DataFrame, scored: np.ndarray, at: datetime
) -> pd.DataFrame:
    """The training window's examples with the new version's scores of them (``scores``, row for row), in the
    predictions table's layout: what the quality monitors compare this version's production windows with (baseline
    drift, per model version). The label details stay empty (``write_baseline`` gives them their types)."""
    spec = platform.model.spec
    if len(scored) != len(examples):
        raise ValueError(f"the baseline needs a score per example: {len(scored)} scores for {len(examples)} examples")
    frame = model_frame(spec, examples)
    rows = examples[[*spec.key_names, *spec.event_time_in_rows]].reset_index(drop=True).copy()
    for column in spec.scored_features:
        rows[column] = frame[column]
    if spec.is_classifier:
        rows[PREDICTION] = predictions(spec, scored).astype("int32")
        rows[PROBABILITY] = scored
    else:
        rows[PREDICTION] = predictions(spec, scored)
    rows["model_name"], rows["model_version"], rows["model_alias"] = ref.name, ref.version, "training"
    rows["scored_at"] = pd.Timestamp(at)
    rows["batch_id"], rows["source"] = f"baseline-v{ref.version}", "training"
    label = labels(spec, examples)
    rows[LABEL] = label.astype("int32") if spec.is_classifier else label
    for column in spec.label_detail_names:
        rows[column] = None
    rows[LABELED_AT] = pd.Timestamp(at)
    return rows[list(spec.prediction_columns)]


def write_baseline(platform: Platform, ref: ModelRef, examples: pd.DataFrame, scored: np.ndarray) -> None:
    from pyspark.sql import functions as F

    rows = baseline_rows(platform, ref, examples, scored, datetime.now(UTC))
    frame = platform.spark.createDataFrame(rows.drop(columns=list(platform.model.spec.label_detail_names)))
    for column in platform.model.spec.label_details:
        frame = frame.withColumn(column.name, F.lit(None).cast(column.type))
    frame = frame.select(*platform.model.spec.prediction_columns)
    written = platform.tables.replace(frame, platform.env.baseline_table, f"model_version = '{ref.version}'")
    logger.info("baseline of %s: %s rows in %s", ref.uri, written.rows, platform.env.baseline_table)


def _log_delta_inputs(lineage: dict[str, str]) -> None:
    """On Databricks, record the Delta tables as run inputs: Unity Catalog then shows table -> model lineage."""
    import mlflow

    for table, version in contract.lineage_tables(lineage).items():
        dataset = mlflow.data.load_delta(table_name=table, version=version)
        mlflow.log_input(dataset, context="training")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-train", "Train the environment's model on a window and register it.")
    parser.add_argument("--training-start", type=iso_date, required=True, help="first event date (YYYY-MM-DD)")
    parser.add_argument("--training-end", type=iso_date, required=True, help="last event date, inclusive")
    parser.add_argument("--max-rows", type=positive_int, help="train on a deterministic sample of this many rows")
    # For tests and demos: a model that must fail validation.
    parser.add_argument("--shuffle-labels", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_window(parser, args.training_start, args.training_end, "training window:")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        platform = build_platform(job_environment(args))
        train(platform, args.training_start, args.training_end, args.max_rows, args.shuffle_labels)
        return 0

    return run_job("mlops-train", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-train` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
