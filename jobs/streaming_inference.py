"""mlops-score-stream: score a model's rows as their files land, with Spark Structured Streaming, into the predictions
table.

The source is the landing volume (Auto Loader on Databricks, Spark's file source on this machine: see
``jobs.platform.landing``): files of the model's ``stream_source`` read with its ``landing_columns``, at most
``inference.max_files_per_trigger`` files per micro-batch. Each micro-batch goes through the model's ``scoring_rows``
with its feature tables as the batch job does, split into scorable rows and rejects, scored with the Champion (resolved
once when the stream starts: a new Champion is used from the next run), and appended with Delta's transaction
identifiers: the app id ``<env>.streaming-inference`` and the micro-batch id as its version. When a stream is killed
after a micro-batch was written but before Spark recorded it in the checkpoint, the restarted stream replays that
micro-batch, and the write is skipped: no row lost, none twice.

While there is a Challenger when the stream starts, each micro-batch's valid rows are scored with it too into
``<model>_shadow_predictions`` (shadow scoring, ``jobs.scoring``), appended once the same way under the app id
``<env>.streaming-inference.shadow``, before the predictions: a replayed micro-batch writes each table at most once.

``--trigger available-now`` processes what has landed and stops (a scheduled job); ``--trigger continuous`` runs
until stopped, a micro-batch every ``--interval``.

Task values: ``batches``, ``scored_rows``, ``rejected_rows``, ``replayed_batches``, ``model_version``,
``shadow_version`` (empty without a Challenger), ``shadow_rows``. They are read
back after the stream stops, from the commits its micro-batches made (the tables' histories: ``append_once`` records
the app id and micro-batch on each commit), never counted inside the micro-batch function: on
Databricks serverless (Spark Connect) Spark pickles that function and calls it in another Python process, so nothing
it changes reaches the job's own process.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, exit_on_failure, job_environment, job_parser, run_job
from jobs.platform.model import load_model
from jobs.platform.registry import ModelRef
from jobs.platform.tables import Tables
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
from spec.config import Environment

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.streaming import StreamingQuery

logger = logging.getLogger("jobs.streaming_inference")

SOURCE = "stream"
TRIGGERS = ("available-now", "continuous")
# How often the running query's progress is read while it runs. Spark keeps only its latest updates (100 by default:
# one per micro-batch, one per 10 s when idle); one is lost only if more than that many arrive between two reads.
PROGRESS_POLL_SECONDS = 10.0


@dataclass(frozen=True)
class StreamResult:
    model_version: str
    batches: int
    scored_rows: int
    rejected_rows: int
    replayed_batches: list[int]
    shadow_version: str | None = None
    shadow_rows: int = 0


@dataclass(frozen=True)
class ScoreMicroBatch:
    """What Spark calls with each micro-batch: score it and append its rows exactly once.

    On Databricks serverless (Spark Connect) Spark pickles this object and calls it in a Python process of its own,
    so it holds values that survive pickling (no DataFrame of the job's session: the feature tables are read by
    version in each call) and returns nothing; what it wrote is read back from the tables' histories
    (``Tables.appended_since``)."""

    tables: Tables
    env: Environment
    writer: str
    # The version of each feature table as the stream started: (name, version) pairs.
    feature_versions: tuple[tuple[str, int], ...]
    model_path: str
    ref: ModelRef
    # The Challenger as the stream started, scored in shadow beside the Champion: (staged path, version) or None.
    shadow: tuple[str, ModelRef] | None = None

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        env, tables = self.env, self.tables
        model = load_model(env.model_name)
        spec = model.spec
        at = datetime.now(UTC)
        # The features as of the stream's start; the model's point-in-time join only uses readings before each event.
        features = {name: tables.read(env.feature_table(name), version=v) for name, v in self.feature_versions}
        valid, rejected = split(model.scoring_rows(batch, features), spec, model.row_checks())
        rejects = tables.append_once(
            reject_rows(rejected, spec, batch_id=f"{SOURCE}-{batch_id}", source=SOURCE, at=at),
            env.rejects_table,
            f"{self.writer}.rejects",
            batch_id,
        )
        if self.shadow is not None:
            shadow_path, challenger = self.shadow
            tables.append_once(
                shadow_rows(
                    score(valid, shadow_path, spec),
                    spec,
                    challenger,
                    self.ref,
                    batch_id=f"{SOURCE}-{batch_id}",
                    source=SOURCE,
                    at=at,
                ),
                env.shadow_predictions_table,
                f"{self.writer}.shadow",
                batch_id,
            )
        scored = prediction_rows(
            score(valid, self.model_path, spec), spec, self.ref, batch_id=f"{SOURCE}-{batch_id}", source=SOURCE, at=at
        )
        predictions = tables.append_once(scored, env.predictions_table, self.writer, batch_id)
        if predictions is None:
            logger.warning("micro-batch %s was already written (a replay after a restart): skipped", batch_id)
            return
        logger.info(
            "micro-batch %s: %s rows scored, %s rejected", batch_id, predictions.rows, rejects.rows if rejects else 0
        )


def app_id(platform: Platform) -> str:
    """The stream's transaction application id: one stream per environment writes the predictions table."""
    return f"{platform.env.name}.streaming-inference"


def checkpoint_location(platform: Platform) -> str:
    """One checkpoint per model: each model's stream reads its own landing folder into its own predictions table."""
    return f"{platform.work_dir}/checkpoints/{platform.env.model_name}/streaming-inference"


def _versions(tables: Tables, names: tuple[str, ...]) -> dict[str, int | None]:
    """Each table's Delta version (None when it does not exist yet): what the stream's counts start after."""
    return {name: tables.version(name) if tables.exists(name) else None for name in names}


def _batches_run(query: StreamingQuery) -> set[int]:
    """The ids of the micro-batches in the query's retained progress that ran: those that reached the sink
    (``addBatch``). Not ``numInputRows``: a replay skipped before its rows are read counts none; an idle trigger
    reports the next id without running it."""
    return {int(p["batchId"]) for p in query.recentProgress if "addBatch" in p["durationMs"]}


def run_stream(platform: Platform, trigger: str = "available-now", interval: str = "1 minute") -> StreamResult:
    if trigger not in TRIGGERS:
        raise JobError(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
    env, tables, spec = platform.env, platform.tables, platform.model.spec
    if spec.stream_source is None:
        raise JobError(
            f"model {spec.name!r} declares no stream_source: it has no files to stream; declare stream_source and "
            "landing_columns in its spec.py, or score it with mlops-score-batch"
        )
    for name in spec.feature_tables:
        if not tables.exists(env.feature_table(name)):
            raise JobError(
                f"table {env.feature_table(name)!r} does not exist: run mlops-features --env {env.name} first"
            )
    ref = resolve_champion(platform)
    challenger = resolve_challenger(platform, ref)
    on_batch = ScoreMicroBatch(
        tables=tables,
        env=env,
        writer=app_id(platform),
        feature_versions=tuple((name, tables.version(env.feature_table(name))) for name in spec.feature_tables),
        model_path=stage_model(platform, ref),
        ref=ref,
        shadow=(stage_model(platform, challenger), challenger) if challenger is not None else None,
    )
    # The tables' versions before this run: what it wrote is the stream's commits after them.
    writer = on_batch.writer
    appends = {
        env.predictions_table: writer,
        env.rejects_table: f"{writer}.rejects",
        env.shadow_predictions_table: f"{writer}.shadow",
    }
    before = _versions(tables, tuple(appends))
    source = platform.landing.read_stream(platform.spark, spec.landing_schema, env.inference.max_files_per_trigger)
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
    ran: set[int] = set()
    try:
        while not query.awaitTermination(PROGRESS_POLL_SECONDS):
            ran |= _batches_run(query)
    except KeyboardInterrupt:
        logger.info("stopping the stream (Ctrl-C): the current micro-batch finishes first")
        query.stop()
    except Exception as error:  # pyspark's StreamingQueryException: the micro-batch's own error is inside
        raise JobError(
            f"the stream stopped at a failed micro-batch; run it again to resume from the checkpoint "
            f"{checkpoint_location(platform)}: {error}"
        ) from error
    ran |= _batches_run(query)
    written = {name: tables.appended_since(name, app, before[name]) for name, app in appends.items()}
    scored, rejected = written[env.predictions_table], written[env.rejects_table]
    # A replay is a micro-batch that ran and committed nothing now: the run before had written it (append_once
    # skipped it), and Spark had not recorded it in the checkpoint. Every micro-batch that writes commits its
    # predictions, even of no row.
    result = StreamResult(
        model_version=ref.version,
        batches=len(ran | scored.keys() | rejected.keys()),
        scored_rows=sum(scored.values()),
        rejected_rows=sum(rejected.values()),
        replayed_batches=sorted(ran - scored.keys() - rejected.keys()),
        shadow_version=challenger.version if challenger else None,
        shadow_rows=sum(written[env.shadow_predictions_table].values()),
    )
    logger.info(
        "stream done: %s micro-batches, %s rows scored, %s rejected, %s replayed",
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
    values.set("shadow_version", result.shadow_version or "")
    values.set("shadow_rows", result.shadow_rows)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-score-stream", "Score the model's landed files with the champion as they arrive.")
    parser.add_argument("--trigger", choices=TRIGGERS, default="available-now", help="default: available-now")
    parser.add_argument("--interval", default="1 minute", help="micro-batch interval of a continuous stream")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        run_stream(build_platform(job_environment(args)), args.trigger, args.interval)
        return 0

    return run_job("mlops-score-stream", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-score-stream` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
