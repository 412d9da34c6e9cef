"""mlops-labels: what happened to the flights that were scored, joined into the monitored tables.

1. The serving endpoint's inference table is unpacked into ``<catalog>.monitoring.<endpoint>_served``, one row per
   scored flight, in the predictions table's layout: the request's features, the answer (the class), the version
   that answered, and the flight the caller named in ``client_request_id`` (``jobs.core.requests.flight_key_id``).
   The endpoint answers with the class only; the probability is recomputed from the logged features with the
   version that answered (a deterministic replay of the same model), so ROC AUC can be monitored on served traffic.
   Requests without a flight key in their ``client_request_id`` are unpacked but cannot be labelled. A request that
   cannot be unpacked (a request or response body that does not parse, an answer that is not a class, or not one
   answer per record) is written once to ``<catalog>.monitoring.<endpoint>_served_rejects`` with its request id, the
   reason and the time, and warned about once: the next runs skip it as they skip the requests already unpacked.
2. Labels: every flight of the raw flights table scheduled in the ``--lookback-days`` before ``--as-of`` that
   arrived gets ``arr_delay``, ``label`` (arrival delay > 15 minutes) and ``labeled_at`` in the predictions and the
   served tables, once (a MERGE on the flight key that only sets rows without a label). A flight that never arrived
   (cancelled, diverted) stays unlabelled: null, never 0; after the lookback it is not looked up again.

Task values: ``served_rows``, ``served_rejected``, ``labelled_predictions``, ``labelled_served``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from jobs.core.model import model_frame, predict_proba
from jobs.core.requests import parse_flight_key_id, request_records, response_predictions
from jobs.platform import Platform, build_platform
from jobs.platform.job import exit_on_failure, job_parser, optional_iso_date, run_job, whole_number
from jobs.platform.registry import ModelRef
from models.flight_delay.columns import (
    FLIGHT_KEY,
    PREDICTION_COLUMN_TYPES,
    PREDICTION_COLUMNS,
    SCHEDULED_DATE,
    SCHEDULED_DEPARTURE,
    SCORED_FEATURES,
    SPEC,
)
from models.flight_delay.data import flight_labels
from spec.columns import LABEL, PREDICTION, PROBABILITY
from spec.config import get_environment

logger = logging.getLogger("jobs.labels")

SOURCE = "serving"
LABEL_VALUES = (LABEL, "arr_delay", "labeled_at")
# A flight still without an arrival this many days after its scheduled day never arrived (cancelled, diverted): it is
# not looked up again, so a run reads the recent rows only, not every unlabelled row since the table began.
LOOKBACK_DAYS = 14
# A served request that cannot be unpacked: which one, why, and when it was found (written once, never re-read).
REQUEST_ID = "databricks_request_id"
SERVED_REJECT_TYPES = {
    REQUEST_ID: "string",
    "client_request_id": "string",
    "request_time": "timestamp",
    "reason": "string",
    "rejected_at": "timestamp",
}


@dataclass(frozen=True)
class LabelsResult:
    served_rows: int
    labelled_predictions: int
    labelled_served: int
    served_rejected: int = 0


def unpack_request(request: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """The records of one inference table row and the class answered for each; a ValueError saying why the request
    cannot be unpacked."""
    try:
        records = request_records(request.request)
        answers = [int(answer) for answer in response_predictions(request.response)]
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"cannot be unpacked: {type(error).__name__}: {error}") from error
    if len(records) != len(answers):
        raise ValueError(f"{len(records)} records but {len(answers)} answers")
    return records, answers


def served_rows(
    platform: Platform,
    payload: pd.DataFrame,
    rejects: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The successful requests of ``payload`` (inference table rows) as rows of the served table; each request that
    cannot be unpacked is appended to ``rejects`` (a row of the served rejects table, found at ``now``), with a
    warning."""
    import mlflow.sklearn

    from jobs.scoring import stage_model

    rows = []
    found_at = now or datetime.now(UTC)
    for request in payload.itertuples(index=False):
        try:
            records, answers = unpack_request(request)
        except ValueError as error:
            logger.warning("served request %s: %s", request.databricks_request_id, error)
            if rejects is not None:
                rejects.append(served_reject(request, str(error), found_at))
            continue
        key = parse_flight_key_id(request.client_request_id) if len(records) == 1 else None
        for record, answer in zip(records, answers, strict=True):
            row = {**dict.fromkeys(FLIGHT_KEY), **(key or {}), **record}
            row.update(
                prediction=answer,
                model_name=request.model_name,
                model_version=str(request.model_version),
                model_alias=request.served_entity_name,
                scored_at=pd.Timestamp(request.request_time),
                batch_id=request.databricks_request_id,
            )
            rows.append(row)
    if not rows:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    frame = pd.DataFrame(rows)
    features = model_frame(SPEC, frame)
    frame[PROBABILITY] = 0.0
    for (name, version), index in frame.groupby(["model_name", "model_version"]).groups.items():
        model = mlflow.sklearn.load_model(stage_model(platform, ModelRef(name, version)))
        frame.loc[index, PROBABILITY] = predict_proba(model, features.loc[index])
    for column in SCORED_FEATURES:
        frame[column] = features[column].to_numpy()
    frame[SCHEDULED_DEPARTURE] = frame["time_hour"]  # the key's scheduled hour: what the answer is about
    frame[PREDICTION] = frame[PREDICTION].astype("int32")
    frame["source"] = SOURCE
    for column in LABEL_VALUES:
        frame[column] = None
    return frame[list(PREDICTION_COLUMNS)]


def served_reject(request: Any, reason: str, at: datetime) -> dict[str, Any]:
    """The served rejects table's row for ``request`` (an inference table row)."""
    request_time = pd.Timestamp(request.request_time) if pd.notna(request.request_time) else None
    return {
        REQUEST_ID: request.databricks_request_id,
        "client_request_id": request.client_request_id if isinstance(request.client_request_id, str) else None,
        "request_time": request_time.to_pydatetime() if request_time is not None else None,
        "reason": reason,
        "rejected_at": at,
    }


def unpack_served(platform: Platform, now: datetime | None = None) -> tuple[int, int]:
    """Unpack the requests not yet unpacked nor rejected: (served flights written, requests rejected)."""
    from pyspark.sql import functions as F

    env, tables = platform.env, platform.tables
    if not tables.exists(env.inference_table):
        logger.info("no inference table %s yet: nothing served to unpack", env.inference_table)
        return 0, 0
    payload = tables.read(env.inference_table).where(F.col("status_code") == 200)
    # Every request is met once: unpacked into the served table, or rejected with its reason.
    if tables.exists(env.served_table):
        unpacked = tables.read(env.served_table, columns=["batch_id"]).select(F.col("batch_id").alias(REQUEST_ID))
        payload = payload.join(unpacked.distinct(), on=REQUEST_ID, how="left_anti")
    if tables.exists(env.served_rejects_table):
        rejected = tables.read(env.served_rejects_table, columns=[REQUEST_ID])
        payload = payload.join(rejected.distinct(), on=REQUEST_ID, how="left_anti")
    rejects: list[dict[str, Any]] = []
    frame = served_rows(platform, payload.toPandas(), rejects, now)
    served = 0
    if not frame.empty:
        written = tables.write(
            _typed(platform, frame), env.served_table, mode="append" if tables.exists(env.served_table) else "overwrite"
        )
        logger.info("unpacked %s served flights into %s", written.rows, env.served_table)
        served = written.rows
    if rejects:
        exists = tables.exists(env.served_rejects_table)
        reject_frame = platform.spark.createDataFrame(
            [tuple(r[c] for c in SERVED_REJECT_TYPES) for r in rejects],
            schema=", ".join(f"{c} {t}" for c, t in SERVED_REJECT_TYPES.items()),
        )
        tables.write(reject_frame, env.served_rejects_table, mode="append" if exists else "overwrite")
        logger.warning(
            "%s served requests cannot be unpacked: recorded with the reason in %s (not read again)",
            len(rejects),
            env.served_rejects_table,
        )
    return served, len(rejects)


def _typed(platform: Platform, frame: pd.DataFrame):
    """The served rows as a Spark frame with the predictions table's column types."""
    from pyspark.sql import functions as F

    df = platform.spark.createDataFrame(frame.drop(columns=list(LABEL_VALUES)))
    # Unpacked now, labelled later by apply_labels.
    df = (
        df.withColumn(LABEL, F.lit(None).cast("int"))
        .withColumn("arr_delay", F.lit(None).cast("double"))
        .withColumn("labeled_at", F.lit(None).cast("timestamp"))
    )
    # The predictions' columns in the types the stack declares for the monitored tables (spec.columns).
    return df.select(*[F.col(c).cast(sql_type.lower()).alias(c) for c, sql_type in PREDICTION_COLUMN_TYPES])


def apply_labels(platform: Platform, table: str, as_of: date, now: datetime, lookback_days: int = LOOKBACK_DAYS) -> int:
    """Label the rows of ``table`` scheduled in the ``lookback_days`` before ``as_of`` whose flights arrived; the
    rows updated."""
    from pyspark.sql import functions as F

    tables = platform.tables
    if not tables.exists(table):
        return 0
    recent = [
        (SCHEDULED_DATE, ">=", as_of - timedelta(days=lookback_days)),
        (SCHEDULED_DATE, "<", as_of),
        (LABEL, "is null", None),
    ]
    oldest = tables.read(table, filters=recent, columns=[SCHEDULED_DATE]).agg(F.min(SCHEDULED_DATE)).collect()[0][0]
    if oldest is None or oldest >= as_of:
        return 0
    loaded = [
        ("time_hour", ">=", datetime.combine(oldest - timedelta(days=1), datetime.min.time(), UTC)),
        ("time_hour", "<", datetime.combine(as_of + timedelta(days=1), datetime.min.time(), UTC)),
    ]
    arrivals = (
        flight_labels(tables.read(platform.env.flights_table, filters=loaded))
        .where(F.col(SCHEDULED_DATE).between(F.lit(oldest), F.lit(as_of) - F.expr("INTERVAL 1 DAY")))
        .select(
            *FLIGHT_KEY,
            F.col(LABEL).cast("int").alias(LABEL),
            "arr_delay",
            F.lit(now).cast("timestamp").alias("labeled_at"),
        )
    )
    return tables.update_from(arrivals, table, FLIGHT_KEY, LABEL_VALUES, unset=LABEL)


def label(
    platform: Platform, as_of: date | None = None, now: datetime | None = None, lookback_days: int = LOOKBACK_DAYS
) -> LabelsResult:
    env = platform.env
    now = now or datetime.now(UTC)
    as_of = as_of or now.date()
    served, rejected = unpack_served(platform, now)
    result = LabelsResult(
        served,
        apply_labels(platform, env.predictions_table, as_of, now, lookback_days),
        apply_labels(platform, env.served_table, as_of, now, lookback_days),
        rejected,
    )
    logger.info(
        "labels as of %s: %s served flights unpacked (%s requests rejected), %s predictions and %s served flights "
        "labelled",
        as_of,
        result.served_rows,
        result.served_rejected,
        result.labelled_predictions,
        result.labelled_served,
    )
    values = platform.task_values
    values.set("served_rows", result.served_rows)
    values.set("served_rejected", result.served_rejected)
    values.set("labelled_predictions", result.labelled_predictions)
    values.set("labelled_served", result.labelled_served)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-labels", "Unpack served requests and join arrival delays into the monitored tables.")
    parser.add_argument(
        "--as-of", type=optional_iso_date, help="label flights scheduled before this day (default, or empty: today)"
    )
    parser.add_argument(
        "--lookback-days",
        type=whole_number(1, "days"),
        default=LOOKBACK_DAYS,
        help=f"look up flights scheduled at most this many days before --as-of (default {LOOKBACK_DAYS})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        label(build_platform(get_environment(args.env)), args.as_of, lookback_days=args.lookback_days)
        return 0

    return run_job("mlops-labels", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-labels` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
