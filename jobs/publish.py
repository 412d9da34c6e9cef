"""mlops-publish: the latest prediction per key of ``<catalog>.ml.<model>_predictions`` -> the online store.

Reads the predictions table at its current Delta version, keeps the rows scored after the last successful publish's
watermark minus ``--lookback-minutes`` (below; ``--full`` reads every row), takes the latest row per online key (the
model's ``online_key``; ``scored_at``, ties broken by batch, source and model so that every run picks the same row),
writes them to the environment's DynamoDB table (``jobs.platform.online_store``: an item is never replaced by an older
prediction), then appends one row to ``<catalog>.ml.<model>_publish_log``: when, the new watermark (the latest
``scored_at`` published), the rows read, the items written, kept newer and unchanged, the predictions table version
read.

The watermark only moves once every item is written: a run that fails half-way leaves it where it was, and the next
run publishes the same rows again, which is idempotent (what the table already holds is not written again).

The lookback window re-reads rows scored shortly before the watermark. A scoring run stamps ``scored_at`` when it
scores and commits later (at most its timeout, an hour, later), so rows can land behind a watermark that a publish
in between already moved; re-reading them costs DynamoDB reads only (they come out "unchanged"), and it also
repairs the one race the store leaves open (see ``jobs.platform.online_store``). Nothing to do is a successful no-op
that writes nothing and logs why: no predictions table yet, no commit to it since the last publish, or no row in the
window.

Task values: ``published_items`` (inserted or replaced), ``kept_newer``, ``unchanged``, ``watermark`` (ISO 8601, ""
when nothing was ever published).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from jobs.core.inference import key_noun
from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, exit_on_failure, job_environment, job_parser, run_job, whole_number
from jobs.platform.online_store import Item, OnlineStoreError, WriteCounts, millis_fields, row_fields, to_item
from spec.columns import PREDICTION, PROBABILITY
from spec.model import ModelSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

logger = logging.getLogger("jobs.publish")

# A scoring task commits at most its timeout (an hour) after it stamped scored_at; twice that, for clock skew too.
DEFAULT_LOOKBACK_MINUTES = 120
# The latest first; on equal scored_at, every column the item shows, so each run keeps the same row.
_TIE_BREAK = ("batch_id", "source", "model_name", "model_version", "model_alias")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PublishResult:
    predictions_version: int | None
    since: datetime | None
    rows_read: int
    items: int
    counts: WriteCounts
    watermark: datetime | None
    logged: bool


def from_micros(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + timedelta(microseconds=int(micros))


def to_micros(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


def window_start(watermark: datetime | None, lookback: timedelta, full: bool) -> datetime | None:
    """The earliest ``scored_at`` to read (exclusive); None reads every row."""
    if full or watermark is None:
        return None
    return watermark - lookback


@dataclass(frozen=True)
class LastPublish:
    watermark: datetime
    predictions_version: int


def last_publish(platform: Platform) -> LastPublish | None:
    """The watermark and predictions table version of the last successful publish; None when there was none."""
    from pyspark.sql import functions as F

    log = platform.env.publish_log_table
    if not platform.tables.exists(log):
        return None
    published = platform.tables.read(log)
    # The watermark never moves back: the highest is the last one, whatever the clocks of the runs said.
    micros = published.agg(F.max(F.unix_micros("watermark"))).first()[0]
    last = published.orderBy(F.col("published_at").desc(), F.col("predictions_version").desc()).first()
    return None if last is None else LastPublish(from_micros(micros), int(last["predictions_version"]))


def window(platform: Platform, source: str, version: int, since: datetime | None) -> DataFrame:
    """Rows scored after ``since``, and rows with no scored_at (invalid: they must fail the run, not vanish), read
    as two narrowed reads so that only the window's files are loaded, not the whole history of predictions."""
    tables = platform.tables
    if since is None:
        return tables.read(source, version=version)
    after = tables.read(source, version=version, filters=[("scored_at", ">", since)])
    return after.unionByName(tables.read(source, version=version, filters=[("scored_at", "is null", None)]))


def _required(spec: ModelSpec) -> tuple[str, ...]:
    return (*spec.key_names, *spec.outputs, "model_name", "model_version", "scored_at")


def window_stats(rows: DataFrame, spec: ModelSpec) -> tuple[int, int, datetime | None]:
    """Rows, rows that cannot be published (a required value missing; a classifier's prediction not 0/1 or its
    probability outside [0, 1]; a regressor's prediction not a number) and the latest scored_at, in one pass."""
    from pyspark.sql import functions as F

    missing = [F.col(name).isNull() for name in _required(spec)]
    invalid = missing[0]
    for condition in missing[1:]:
        invalid = invalid | condition
    if spec.is_classifier:
        probability = F.col(PROBABILITY)
        invalid = invalid | ~F.col(PREDICTION).isin(0, 1) | F.isnan(probability) | (probability < 0) | (probability > 1)
    else:
        invalid = invalid | F.isnan(F.col(PREDICTION))
    stats = rows.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(invalid, 1).otherwise(0)).alias("invalid"),
        F.max(F.unix_micros("scored_at")).alias("latest"),
    ).first()
    return int(stats["rows"]), int(stats["invalid"] or 0), from_micros(stats["latest"])


def _invalid_what(spec: ModelSpec) -> str:
    outputs = ", ".join(spec.outputs)
    if spec.is_classifier:
        wrong = "a prediction other than 0/1 or a probability outside [0, 1]"
    else:
        wrong = "a prediction that is not a number"
    return f"a {key_noun(spec)} part, {outputs}, model or scored_at missing, {wrong}"


def latest_per_key(rows: DataFrame, spec: ModelSpec) -> DataFrame:
    """One row per online key: the latest scored_at, ties broken deterministically (by every column the item shows);
    instants as epoch millis."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    attributes = [c for c in spec.key_names if c not in spec.online_key]
    order = [F.col("scored_at").desc(), *(F.col(name).desc_nulls_last() for name in (*_TIE_BREAK, *attributes))]
    order += [F.col(name).desc() for name in reversed(spec.outputs)]
    ranked = rows.withColumn("_rank", F.row_number().over(Window.partitionBy(*spec.online_key).orderBy(*order)))
    millis = {f"{name}_ms": F.unix_millis(name) for name in millis_fields(spec)}
    columns = [millis[name].alias(name) if name in millis else F.col(name) for name in row_fields(spec)]
    return ranked.where(F.col("_rank") == 1).select(*columns)


def items(latest: DataFrame, spec: ModelSpec) -> Iterator[Item]:
    """The items, a partition at a time to the driver (never the whole table in one frame)."""
    for row in latest.toLocalIterator(prefetchPartitions=True):
        yield to_item(spec, row.asDict())


def publish(
    platform: Platform,
    full: bool = False,
    lookback: timedelta = timedelta(minutes=DEFAULT_LOOKBACK_MINUTES),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PublishResult:
    source, spec = platform.env.predictions_table, platform.env.model
    last = last_publish(platform)
    previous = last.watermark if last else None
    if not platform.tables.exists(source):
        logger.info("table %s does not exist yet: nothing to publish (the scoring jobs create it)", source)
        return _nothing(platform, None, None, previous)
    version = platform.tables.version(source)
    if not full and last is not None and version == last.predictions_version:
        logger.info("%s is at version %s, as at the last publish: nothing to publish", source, version)
        return _nothing(platform, version, None, previous)
    since = window_start(previous, lookback, full)
    rows = window(platform, source, version, since)
    count, invalid, latest = window_stats(rows, spec)
    if count == 0:
        logger.info("%s version %s has no rows scored %s: nothing to publish", source, version, _after(since))
        return _nothing(platform, version, since, previous)
    if invalid:
        raise JobError(
            f"{invalid} of {count} rows of {source} (version {version}) scored {_after(since)} cannot be published "
            f"({_invalid_what(spec)}): fix the scoring job's output; nothing was written"
        )
    counts = _write(platform, latest_per_key(rows, spec), previous)
    watermark = latest if previous is None else max(previous, latest)
    items_count = counts.written + counts.kept_newer + counts.unchanged
    result = PublishResult(version, since, count, items_count, counts, watermark, logged=True)
    _append_log(platform, result, full, clock())
    _log_published(platform, result)
    _set_task_values(platform, counts, watermark)
    return result


def _after(since: datetime | None) -> str:
    return "since the start" if since is None else f"after {since.isoformat()}"


def _log_published(platform: Platform, result: PublishResult) -> None:
    counts = result.counts
    logger.info(
        "published %s rows of %s version %s (scored %s) as %s items to %s: %s written (%s new), %s kept newer, "
        "%s unchanged; watermark %s",
        result.rows_read,
        platform.env.predictions_table,
        result.predictions_version,
        _after(result.since),
        result.items,
        platform.env.online_table_name,
        counts.written,
        counts.inserted,
        counts.kept_newer,
        counts.unchanged,
        result.watermark.isoformat() if result.watermark else "none",
    )


def _write(platform: Platform, latest_rows: DataFrame, previous: datetime | None) -> WriteCounts:
    """Every item to the store; any failure is a JobError that says the watermark did not move."""
    try:
        store = platform.online_store()
        store.ensure_table()
        return store.put_latest(items(latest_rows, platform.env.model))
    except (OnlineStoreError, ValueError) as e:
        kept = previous.isoformat() if previous else "none (nothing published yet)"
        raise JobError(
            f"publishing to the online store failed: {e}. Nothing was marked published (the watermark stays at "
            f"{kept}): the next run publishes these rows again"
        ) from e


def _nothing(
    platform: Platform, version: int | None, since: datetime | None, previous: datetime | None
) -> PublishResult:
    _set_task_values(platform, WriteCounts(), previous)
    return PublishResult(version, since, 0, 0, WriteCounts(), previous, False)


def _set_task_values(platform: Platform, counts: WriteCounts, watermark: datetime | None) -> None:
    platform.task_values.set("published_items", counts.written)
    platform.task_values.set("kept_newer", counts.kept_newer)
    platform.task_values.set("unchanged", counts.unchanged)
    platform.task_values.set("watermark", watermark.isoformat() if watermark else "")


def _append_log(platform: Platform, result: PublishResult, full: bool, published_at: datetime) -> None:
    from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType, TimestampType

    schema = StructType(
        [
            StructField("published_at", TimestampType(), False),
            StructField("watermark", TimestampType(), False),
            StructField("since", TimestampType(), True),
            StructField("full", BooleanType(), False),
            StructField("rows_read", LongType(), False),
            StructField("items", LongType(), False),
            StructField("items_written", LongType(), False),
            StructField("items_kept_newer", LongType(), False),
            StructField("items_unchanged", LongType(), False),
            StructField("predictions_version", LongType(), False),
            StructField("online_table", StringType(), False),
        ]
    )
    counts = result.counts
    row = (
        published_at,
        result.watermark,
        result.since,
        full,
        result.rows_read,
        result.items,
        counts.written,
        counts.kept_newer,
        counts.unchanged,
        result.predictions_version,
        platform.env.online_table_name,
    )
    platform.tables.write(platform.spark.createDataFrame([row], schema), platform.env.publish_log_table, "append")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-publish", "Publish the latest prediction per key to the online store (DynamoDB).")
    parser.add_argument("--full", action="store_true", help="republish every row, not only those since the watermark")
    parser.add_argument(
        "--lookback-minutes",
        type=whole_number(0, "minutes"),
        default=DEFAULT_LOOKBACK_MINUTES,
        help="also re-read rows scored this long before the watermark (late commits; idempotent)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        platform = build_platform(job_environment(args))
        publish(platform, full=args.full, lookback=timedelta(minutes=args.lookback_minutes))
        return 0

    return run_job("mlops-publish", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-publish` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
