"""mlops-score-batch: score a model's rows with the Champion into ``<catalog>.ml.<model>_predictions``.

Which rows: those of the model's scored raw table (``ModelPackage.scored_source``) whose event date lies in
``--start-date``..``--end-date``, or, without dates, every row of the table that has no batch prediction yet. The
model's ``scoring_rows`` gives each its features from the feature tables, through the same point-in-time join as
training. Rows that cannot be scored (a key part or a non-optional feature missing, or what the model's
``row_checks`` refuse) go to ``<model>_prediction_rejects`` with the reason.

A batch is named by its window (``batch-<start>-<end>``): running it again replaces its rows, in one Delta commit
per table (the rejects first, the predictions last), so the predictions table never shows half a batch and never
holds a batch twice. The Champion is resolved once, and its version is on every row.

While there is a Challenger, the same rows are scored with it too into ``<model>_shadow_predictions`` (shadow
scoring, ``jobs.scoring``), replaced by batch the same way, committed before the predictions: never published, never
served, the online decision's evidence.

Task values: ``batch_id``, ``model_version``, ``scored_rows``, ``rejected_rows``, ``shadow_version`` (empty without a
Challenger), ``shadow_rows``.
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
from jobs.scoring import (
    prediction_rows,
    reject_rows,
    resolve_challenger,
    resolve_champion,
    score,
    shadow_rows,
    split,
    stage_model,
)

logger = logging.getLogger("jobs.batch_inference")

SOURCE = "batch"


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    model_version: str
    scored_rows: int
    rejected_rows: int
    shadow_version: str | None = None
    shadow_rows: int = 0


def batch_id_of(start: date | None, end: date | None, now: datetime) -> str:
    """The window's batch id; an incremental run (no window) is named by its start time."""
    if start is not None and end is not None:
        return f"batch-{start.isoformat()}-{end.isoformat()}"
    return f"batch-new-{now:%Y%m%dT%H%M%S}"


def score_batch(platform: Platform, start: date | None, end: date | None, now: datetime | None = None) -> BatchResult:
    env, tables, model = platform.env, platform.tables, platform.model
    spec = model.spec
    now = now or datetime.now(UTC)
    if (start is None) != (end is None):
        raise JobError("give both --start-date and --end-date, or neither (every row not scored yet)")
    ref = resolve_champion(platform)
    needed = [(env.source_table(model.scored_source), "mlops-ingest")]
    needed += [(env.feature_table(name), "mlops-features") for name in spec.feature_tables]
    for table, job in needed:
        if not tables.exists(table):
            raise JobError(f"table {table!r} does not exist: run {job} --env {env.name} first")
    model_path = stage_model(platform, ref)
    challenger = resolve_challenger(platform, ref)
    batch_id = batch_id_of(start, end, now)

    filters = model.source_filters(start, end) if start is not None and end is not None else {}
    candidates = model.scoring_rows(
        tables.read(env.source_table(model.scored_source), filters=filters.get(model.scored_source)),
        {name: tables.read(env.feature_table(name), filters=filters.get(name)) for name in spec.feature_tables},
        start,
        end,
    )
    if start is None and tables.exists(env.predictions_table):
        done = tables.read(
            env.predictions_table, filters=[("source", "=", SOURCE)], columns=list(spec.key_names)
        ).distinct()
        candidates = candidates.join(done, on=list(spec.key_names), how="left_anti")
    valid, rejected = split(candidates, spec, model.row_checks())
    same_batch = f"batch_id = '{batch_id}'"
    rejects = tables.replace(
        reject_rows(rejected, spec, batch_id=batch_id, source=SOURCE, at=now), env.rejects_table, same_batch
    )
    shadow = None
    if challenger is not None:
        shadow_scored = score(valid, stage_model(platform, challenger), spec)
        shadow = tables.replace(
            shadow_rows(shadow_scored, spec, challenger, ref, batch_id=batch_id, source=SOURCE, at=now),
            env.shadow_predictions_table,
            same_batch,
        )
    scored = prediction_rows(score(valid, model_path, spec), spec, ref, batch_id=batch_id, source=SOURCE, at=now)
    predictions = tables.replace(scored, env.predictions_table, same_batch)
    result = BatchResult(
        batch_id,
        ref.version,
        predictions.rows,
        rejects.rows,
        challenger.version if challenger else None,
        shadow.rows if shadow else 0,
    )
    if result.scored_rows == 0 and result.rejected_rows == 0:
        logger.info("batch %s: no row to score%s", batch_id, "" if start else " (every row is scored)")
    logger.info(
        "batch %s: %s rows of %s scored with %s, %s rejected (%s, version %s)",
        batch_id,
        result.scored_rows,
        spec.name,
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
    values.set("shadow_version", result.shadow_version or "")
    values.set("shadow_rows", result.shadow_rows)
    if shadow is not None:
        logger.info("batch %s: %s rows shadow-scored with version %s", batch_id, shadow.rows, result.shadow_version)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-score-batch", "Score the model's rows with the champion into the predictions table.")
    parser.add_argument("--start-date", type=optional_iso_date, help="first event date (YYYY-MM-DD; empty: all new)")
    parser.add_argument("--end-date", type=optional_iso_date, help="last event date, inclusive (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    check_window(parser, args.start_date, args.end_date, "--start-date/--end-date:")
    if (args.start_date is None) != (args.end_date is None):
        parser.error("give both --start-date and --end-date, or neither (every row not scored yet)")
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
