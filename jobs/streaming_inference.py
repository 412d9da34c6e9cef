"""mlops-score-stream: score flights as their files land, with Spark Structured Streaming, into the predictions table.

The source is the landing volume (Auto Loader on Databricks, Spark's file source on this machine: see
``jobs.platform.landing``), one file of scheduled flights per day, at most ``inference.max_files_per_trigger`` files
per micro-batch. Each micro-batch is joined with the weather features as the batch job does, split into scorable
rows and rejects, scored with the Champion (resolved once when the stream starts: a new Champion is used from the
next run), and appended with Delta's transaction identifiers: the app id ``<env>.streaming-inference`` and the
micro-batch id as its version. When a stream is killed after a micro-batch was written but before Spark recorded it
in the checkpoint, the restarted stream replays that micro-batch, and the write is skipped: no row lost, none twice.

``--trigger available-now`` processes what has landed and stops (a scheduled job); ``--trigger continuous`` runs
until stopped, a micro-batch every ``--interval``.

Task values: ``batches``, ``scored_rows``, ``rejected_rows``, ``replayed_batches``, ``model_version``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from jobs.core.columns import LANDING_SCHEMA
from jobs.core.features import flight_features
from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, exit_on_failure, job_parser, run_job
from jobs.scoring import prediction_rows, reject_rows, resolve_champion, score, split, stage_model
from spec.config import get_environment

logger = logging.getLogger("jobs.streaming_inference")

SOURCE = "stream"
TRIGGERS = ("available-now", "continuous")


@dataclass
class StreamResult:
    model_version: str
    batches: int = 0
    scored_rows: int = 0
    rejected_rows: int = 0
    replayed_batches: list[int] = field(default_factory=list)


def app_id(platform: Platform) -> str:
    """The stream's transaction application id: one stream per environment writes the predictions table."""
    return f"{platform.env.name}.streaming-inference"


def checkpoint_location(platform: Platform) -> str:
    return f"{platform.work_dir}/checkpoints/streaming-inference"


def run_stream(platform: Platform, trigger: str = "available-now", interval: str = "1 minute") -> StreamResult:
    if trigger not in TRIGGERS:
        raise JobError(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
    env, tables = platform.env, platform.tables
    if not tables.exists(env.weather_features_table):
        raise JobError(
            f"table {env.weather_features_table!r} does not exist: run mlops-features --env {env.name} first"
        )
    ref = resolve_champion(platform)
    model_path = stage_model(platform, ref)
    spark = platform.spark
    # The weather features as of the stream's start; flights only ever use readings from before their departure.
    weather = tables.read(env.weather_features_table)
    result = StreamResult(ref.version)
    writer = app_id(platform)

    def on_batch(batch, batch_id: int) -> None:
        at = datetime.now(UTC)
        valid, rejected = split(flight_features(batch, weather))
        rejects = tables.append_once(
            reject_rows(rejected, batch_id=f"stream-{batch_id}", source=SOURCE, at=at),
            env.rejects_table,
            f"{writer}.rejects",
            batch_id,
        )
        scored = prediction_rows(score(valid, model_path), ref, batch_id=f"stream-{batch_id}", source=SOURCE, at=at)
        predictions = tables.append_once(scored, env.predictions_table, writer, batch_id)
        result.batches += 1
        if predictions is None:
            result.replayed_batches.append(batch_id)
            logger.warning("micro-batch %s was already written (a replay after a restart): skipped", batch_id)
            return
        result.scored_rows += predictions.rows
        result.rejected_rows += rejects.rows if rejects is not None else 0
        logger.info(
            "micro-batch %s: %s flights scored, %s rejected", batch_id, predictions.rows, rejects.rows if rejects else 0
        )

    source = platform.landing.read_stream(spark, LANDING_SCHEMA, env.inference.max_files_per_trigger)
    stream = (
        source.writeStream.foreachBatch(on_batch)
        .option("checkpointLocation", checkpoint_location(platform))
        .queryName(f"{env.name}_streaming_inference")
    )
    stream = (
        stream.trigger(availableNow=True) if trigger == "available-now" else stream.trigger(processingTime=interval)
    )
    query = stream.start()
    logger.info("stream %s started (%s) on %s with %s", query.id, trigger, platform.landing.path, ref.uri)
    try:
        query.awaitTermination()
    except KeyboardInterrupt:
        logger.info("stopping the stream (Ctrl-C): the current micro-batch finishes first")
        query.stop()
    except Exception as error:  # pyspark's StreamingQueryException: the micro-batch's own error is inside
        raise JobError(
            f"the stream stopped at a failed micro-batch; run it again to resume from the checkpoint "
            f"{checkpoint_location(platform)}: {error}"
        ) from error
    logger.info(
        "stream done: %s micro-batches, %s flights scored, %s rejected, %s replayed",
        result.batches,
        result.scored_rows,
        result.rejected_rows,
        len(result.replayed_batches),
    )
    values = platform.task_values
    values.set("model_version", result.model_version)
    values.set("batches", result.batches)
    values.set("scored_rows", result.scored_rows)
    values.set("rejected_rows", result.rejected_rows)
    values.set("replayed_batches", len(result.replayed_batches))
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-score-stream", "Score landed flight files with the champion as they arrive.")
    parser.add_argument("--trigger", choices=TRIGGERS, default="available-now", help="default: available-now")
    parser.add_argument("--interval", default="1 minute", help="micro-batch interval of a continuous stream")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        run_stream(build_platform(get_environment(args.env)), args.trigger, args.interval)
        return 0

    return run_job("mlops-score-stream", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-score-stream` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
