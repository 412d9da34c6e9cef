"""mlops-labels: what happened to the rows that were scored, joined into the monitored tables.

1. The serving endpoint's inference table is unpacked into ``<catalog>.monitoring.<endpoint>_served``, one row per
   scored record, in the predictions table's layout: the request's features, the answer, the version that answered,
   and the row's key the caller named in ``client_request_id`` (``jobs.core.requests.key_id``). A classifier's
   endpoint answers with the class only; its probability is recomputed from the logged features with the version
   that answered (a deterministic replay of the same model), so ROC AUC can be monitored on served traffic.
   Requests without a key in their ``client_request_id`` are unpacked but cannot be labelled. A request that cannot
   be unpacked (a request or response body that does not parse, an answer that is not a class or a number, or not
   one answer per record) is written once to ``<catalog>.monitoring.<endpoint>_served_rejects`` with its request id,
   the reason and the time, and warned about once: the next runs skip it as they skip the requests already unpacked.
2. Labels: the model's ``labels`` gives the key, ``label`` and the label details of the events whose label is known;
   every row of the predictions and the served tables dated in the ``--lookback-days`` before ``--as-of`` and at
   least ``label_delay_days`` before it gets them and ``labeled_at``, once (a MERGE on the key that only sets rows
   without a label). A row whose label never comes (an event that did not happen) stays unlabelled: null, never 0; after
   the lookback it is not looked up again.

The predictions table is labelled on one thread while the served requests are unpacked and labelled on another: each
table is written by one of them only.

Task values: ``served_rows``, ``served_rejected``, ``labelled_predictions``, ``labelled_served``.
"""

from __future__ import annotations

import argparse
import contextvars
import logging
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from jobs.core.model import model_frame, predict_proba
from jobs.core.requests import parse_key_id, request_records, response_predictions
from jobs.platform import Platform, build_platform
from jobs.platform.job import exit_on_failure, job_environment, job_parser, optional_iso_date, run_job, whole_number
from jobs.platform.registry import ModelRef
from spec.columns import LABEL, LABELED_AT, PREDICTION, PROBABILITY
from spec.model import SPARK_TYPES, ModelSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from jobs.platform.tables import Tables

logger = logging.getLogger("jobs.labels")

SOURCE = "serving"
# A row still without a label this many days after its label was due (``label_delay_days`` after its event date)
# never gets one (its event did not happen): it is not looked up again, so a run reads the recent rows only, not every
# unlabelled row since the table began. The default lookback is the delay plus these days, less the day it is due.
LABEL_DUE_DAYS = 14
# A served request that cannot be unpacked: which one, why, and when it was found (written once, never re-read).
REQUEST_ID = "databricks_request_id"
SERVED_REJECT_TYPES = {
    REQUEST_ID: "string",
    "client_request_id": "string",
    "request_time": "timestamp",
    "reason": "string",
    "rejected_at": "timestamp",
}


def default_lookback_days(spec: ModelSpec) -> int:
    """How many days before ``--as-of`` a run looks for unlabelled rows: ``LABEL_DUE_DAYS`` of runs once the label
    is due (14 for a label known the next day)."""
    return spec.label_delay_days + LABEL_DUE_DAYS - 1


@dataclass(frozen=True)
class LabelsResult:
    served_rows: int
    labelled_predictions: int
    labelled_served: int
    served_rejected: int = 0


def unpack_request(request: Any, spec: ModelSpec) -> tuple[list[dict[str, Any]], list[int | float]]:
    """The records of one inference table row and the answer for each (a classifier's class, a regressor's value); a
    ValueError saying why the request cannot be unpacked."""
    answer_of = int if spec.is_classifier else float
    try:
        records = request_records(request.request)
        answers = [answer_of(answer) for answer in response_predictions(request.response)]
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
    spec = platform.env.model
    rows = []
    found_at = now or datetime.now(UTC)
    for request in payload.itertuples(index=False):
        try:
            records, answers = unpack_request(request, spec)
        except ValueError as error:
            logger.warning("served request %s: %s", request.databricks_request_id, error)
            if rejects is not None:
                rejects.append(served_reject(request, str(error), found_at))
            continue
        key = parse_key_id(spec, request.client_request_id) if len(records) == 1 else None
        for record, answer in zip(records, answers, strict=True):
            row = {**dict.fromkeys(spec.key_names), **(key or {}), **record}
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
        return pd.DataFrame(columns=list(spec.prediction_columns))
    frame = pd.DataFrame(rows)
    features = model_frame(spec, frame)
    if spec.is_classifier:
        _replay_probabilities(platform, frame, features)
    for column in spec.scored_features:
        frame[column] = features[column].to_numpy()
    for column in spec.event_time_in_rows:
        frame[column] = served_event_time(spec, frame)
    frame[PREDICTION] = frame[PREDICTION].astype("int32" if spec.is_classifier else "float64")
    frame["source"] = SOURCE
    for column in spec.label_columns:
        frame[column] = None
    return frame[list(spec.prediction_columns)]


def _replay_probabilities(platform: Platform, frame: pd.DataFrame, features: pd.DataFrame) -> None:
    """A classifier's probabilities, from the logged features with the version that answered each request."""
    import mlflow.sklearn

    from jobs.scoring import stage_model

    frame[PROBABILITY] = 0.0
    for (name, version), index in frame.groupby(["model_name", "model_version"]).groups.items():
        model = mlflow.sklearn.load_model(stage_model(platform, ModelRef(name, version)))
        frame.loc[index, PROBABILITY] = predict_proba(model, features.loc[index])


def served_event_time(spec: ModelSpec, frame: pd.DataFrame) -> pd.Series:
    """What a served answer is about, when the key does not carry the event time: the record's own value when the
    client sent it, else the key's first TIMESTAMP part (the hour the event was due, say), else the request's time."""
    if spec.event_time in frame.columns:
        return frame[spec.event_time]
    key_times = [c.name for c in spec.key if c.type == "TIMESTAMP"]
    return frame[key_times[0]] if key_times else frame["scored_at"]


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
    """Unpack the requests not yet unpacked nor rejected: (served rows written, requests rejected)."""
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
        logger.info("unpacked %s served rows into %s", written.rows, env.served_table)
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

    spec = platform.env.model
    types = dict(spec.prediction_column_types)
    df = platform.spark.createDataFrame(frame.drop(columns=list(spec.label_columns)))
    # Unpacked now, labelled later by apply_labels.
    for column in spec.label_columns:
        df = df.withColumn(column, F.lit(None).cast(SPARK_TYPES[types[column]]))
    # The predictions' columns in the types the stack declares for the monitored tables (ModelSpec).
    return df.select(*[F.col(c).cast(SPARK_TYPES[t]).alias(c) for c, t in spec.prediction_column_types])


class _Sources(Mapping[str, "DataFrame"]):
    """The model's raw tables, each read (narrowed by ``filters``) only when the model's ``labels`` asks for it."""

    def __init__(self, platform: Platform, filters: Mapping[str, Any]) -> None:
        self._platform = platform
        self._filters = filters
        self._read: dict[str, DataFrame] = {}

    def __getitem__(self, source: str) -> DataFrame:
        if source not in self._platform.env.model.sources:
            raise KeyError(source)
        if source not in self._read:
            tables: Tables = self._platform.tables
            name = self._platform.env.source_table(source)
            self._read[source] = tables.read(name, filters=self._filters.get(source))
        return self._read[source]

    def __iter__(self) -> Iterator[str]:
        return iter(self._platform.env.model.sources)

    def __len__(self) -> int:
        return len(self._platform.env.model.sources)


def apply_labels(platform: Platform, table: str, as_of: date, now: datetime, lookback_days: int | None = None) -> int:
    """Label the rows of ``table`` dated in the ``lookback_days`` before ``as_of`` whose label is due
    (``label_delay_days`` after their event date at the latest ``as_of``) and known; the rows updated."""
    from pyspark.sql import functions as F

    tables, model = platform.tables, platform.model
    spec = model.spec
    lookback = default_lookback_days(spec) if lookback_days is None else lookback_days
    # The last event date whose label is due by as_of.
    last = as_of - timedelta(days=spec.label_delay_days)
    if not tables.exists(table):
        return 0
    recent = [
        (spec.event_date, ">=", as_of - timedelta(days=lookback)),
        (spec.event_date, "<=", last),
        (LABEL, "is null", None),
    ]
    oldest = tables.read(table, filters=recent, columns=[spec.event_date]).agg(F.min(spec.event_date)).collect()[0][0]
    if oldest is None or oldest > last:
        return 0
    types = dict(spec.prediction_column_types)
    known = model.labels(_Sources(platform, model.source_filters(oldest, last)), oldest, last).select(
        *spec.key_names,
        *[F.col(c).cast(SPARK_TYPES[types[c]]).alias(c) for c in (LABEL, *spec.label_detail_names)],
        F.lit(now).cast("timestamp").alias(LABELED_AT),
    )
    return tables.update_from(known, table, spec.key_names, spec.label_columns, unset=LABEL)


def label(
    platform: Platform, as_of: date | None = None, now: datetime | None = None, lookback_days: int | None = None
) -> LabelsResult:
    env = platform.env
    now = now or datetime.now(UTC)
    as_of = as_of or now.date()

    def served_then_labelled() -> tuple[int, int, int]:
        unpacked, rejected = unpack_served(platform, now)
        return unpacked, rejected, apply_labels(platform, env.served_table, as_of, now, lookback_days)

    # Two chains of their own tables, at once (Spark runs the jobs of two threads side by side): the served requests
    # unpacked then labelled, and the predictions labelled. The platform's writes are fenced by the task it was built
    # in (the local runner's), from either thread; the served chain runs in a copy of this thread's context too.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="labels-served") as pool:
        chain = pool.submit(contextvars.copy_context().run, served_then_labelled)
        try:
            predictions = apply_labels(platform, env.predictions_table, as_of, now, lookback_days)
        except BaseException:
            if (error := chain.exception()) is not None:  # said, not lost behind the error that goes up
                logger.error("the served requests' chain failed too: %s", error, exc_info=error)
            raise
        served, rejected, labelled_served = chain.result()
    result = LabelsResult(served, predictions, labelled_served, rejected)
    logger.info(
        "labels as of %s: %s served rows unpacked (%s requests rejected), %s predictions and %s served rows labelled",
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
    parser = job_parser("mlops-labels", "Unpack served requests and join the labels into the monitored tables.")
    parser.add_argument(
        "--as-of",
        type=optional_iso_date,
        help="label the rows whose label is due by this day (default or empty: today)",
    )
    parser.add_argument(
        "--lookback-days",
        type=whole_number(1, "days"),
        help="look up rows dated at most this many days before --as-of (default: the model's label delay + "
        f"{LABEL_DUE_DAYS - 1})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        label(build_platform(job_environment(args)), args.as_of, lookback_days=args.lookback_days)
        return 0

    return run_job("mlops-labels", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-labels` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
