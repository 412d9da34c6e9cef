"""mlops-score-batch: score flights with the Champion into ``<catalog>.ml.<model>_predictions``.

Which flights: those of the raw flights table scheduled in ``--start-date``..``--end-date``, or, without dates,
every flight of the table that has no batch prediction yet. Each gets its origin's weather at scheduled departure
from the feature table, through the same point-in-time join as training (``flight_features`` of the model).
Rows that cannot be scored (key or schedule features missing or malformed; the weather is optional) go to
``<model>_prediction_rejects`` with the reason.

A batch is named by its window (``batch-<start>-<end>``): running it again replaces its rows, in one Delta commit
per table (the rejects first, the predictions last), so the predictions table never shows half a batch and never
holds a batch twice. The Champion is resolved once, and its version is on every row.

Task values: ``batch_id``, ``model_version``, ``scored_rows``, ``rejected_rows``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from jobs.platform import Platform, build_platform
from jobs.platform.job import (
    JobError,
    check_window,
    exit_on_failure,
    job_environment,
    job_parser,
    optional_iso_date,
    run_job,
)
from jobs.scoring import prediction_rows, reject_rows, resolve_champion, score, split, stage_model
from models.flight_delay.columns import FLIGHT_KEY
from models.flight_delay.data import hours_around
from models.flight_delay.features import flight_features

logger = logging.getLogger("jobs.batch_inference")

SOURCE = "batch"


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    model_version: str
    scored_rows: int
    rejected_rows: int


def batch_id_of(start: date | None, end: date | None, now: datetime) -> str:
    """The window's batch id; an incremental run (no window) is named by its start time."""
    if start is not None and end is not None:
        return f"batch-{start.isoformat()}-{end.isoformat()}"
    return f"batch-new-{now:%Y%m%dT%H%M%S}"


def score_batch(platform: Platform, start: date | None, end: date | None, now: datetime | None = None) -> BatchResult:
    env, tables = platform.env, platform.tables
    now = now or datetime.now(UTC)
    if (start is None) != (end is None):
        raise JobError("give both --start-date and --end-date, or neither (every flight not scored yet)")
    ref = resolve_champion(platform)
    for table, job in ((env.flights_table, "mlops-ingest"), (env.weather_features_table, "mlops-features")):
        if not tables.exists(table):
            raise JobError(f"table {table!r} does not exist: run {job} --env {env.name} first")
    model_path = stage_model(platform, ref)
    batch_id = batch_id_of(start, end, now)

    window = hours_around(start, end) if start is not None and end is not None else None
    candidates = flight_features(
        tables.read(env.flights_table, filters=window),
        tables.read(env.weather_features_table, filters=window),
        start,
        end,
    )
    if start is None and tables.exists(env.predictions_table):
        done = tables.read(
            env.predictions_table, filters=[("source", "=", SOURCE)], columns=list(FLIGHT_KEY)
        ).distinct()
        candidates = candidates.join(done, on=list(FLIGHT_KEY), how="left_anti")
    valid, rejected = split(candidates)
    same_batch = f"batch_id = '{batch_id}'"
    rejects = tables.replace(
        reject_rows(rejected, batch_id=batch_id, source=SOURCE, at=now), env.rejects_table, same_batch
    )
    scored = prediction_rows(score(valid, model_path), ref, batch_id=batch_id, source=SOURCE, at=now)
    predictions = tables.replace(scored, env.predictions_table, same_batch)
    result = BatchResult(batch_id, ref.version, predictions.rows, rejects.rows)
    if result.scored_rows == 0 and result.rejected_rows == 0:
        logger.info("batch %s: no flight to score%s", batch_id, "" if start else " (every flight is scored)")
    logger.info(
        "batch %s: %s flights scored with %s, %s rejected (%s, version %s)",
        batch_id,
        result.scored_rows,
        ref.uri,
        result.rejected_rows,
        env.predictions_table,
        predictions.version,
    )
    values = platform.task_values
    values.set("batch_id", result.batch_id)
    values.set("model_version", result.model_version)
    values.set("scored_rows", result.scored_rows)
    values.set("rejected_rows", result.rejected_rows)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-score-batch", "Score flights with the champion into the predictions table.")
    parser.add_argument(
        "--start-date", type=optional_iso_date, help="first scheduled date (YYYY-MM-DD; empty: all new)"
    )
    parser.add_argument("--end-date", type=optional_iso_date, help="last scheduled date, inclusive (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    check_window(parser, args.start_date, args.end_date, "--start-date/--end-date:")
    if (args.start_date is None) != (args.end_date is None):
        parser.error("give both --start-date and --end-date, or neither (every flight not scored yet)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        score_batch(build_platform(job_environment(args)), args.start_date, args.end_date)
        return 0

    return run_job("mlops-score-batch", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-score-batch` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
