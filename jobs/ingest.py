"""mlops-ingest: load the model's sources into its raw tables (``<catalog>.raw.<source>``, one per source).

The model package's ``load_sources`` delivers a window of its data, one frame per source its declaration names;
each run overwrites every raw table (one Delta commit each), so running it again gives the same tables. With
``--start-date`` / ``--end-date`` only the events of that window (inclusive) are loaded, with what their features
need from around it (the model package decides that).

Task values: ``<source>_rows`` and ``<source>_version`` for each source.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import date

from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, check_window, exit_on_failure, iso_date, job_environment, job_parser, run_job

logger = logging.getLogger("jobs.ingest")


@dataclass(frozen=True)
class SourceWrite:
    table: str
    rows: int
    version: int


@dataclass(frozen=True)
class IngestResult:
    """What was written, by source (in the declaration's order)."""

    sources: dict[str, SourceWrite]


def ingest(platform: Platform, start: date | None, end: date | None) -> IngestResult:
    model = platform.model
    frames = model.load_sources(start, end)
    # The first source holds the events (the scored rows, unless the model streams another): without any, the window
    # holds nothing to train on or to score.
    events = model.scored_source
    if frames[events].empty:
        raise JobError(
            f"model {model.name!r}: its source {events!r} has no events between {start or 'the start'} and "
            f"{end or 'the end'}; nothing was written"
        )
    spark, env, values = platform.spark, platform.env, platform.task_values
    written: dict[str, SourceWrite] = {}
    for source in model.spec.sources:
        table = env.source_table(source)
        result = platform.tables.write(spark.createDataFrame(frames[source]), table)
        written[source] = SourceWrite(table, result.rows, result.version)
        logger.info("ingested %s rows of %s into %s (version %s)", result.rows, source, table, result.version)
    for source, write in written.items():
        values.set(f"{source}_rows", write.rows)
        values.set(f"{source}_version", write.version)
    return IngestResult(written)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-ingest", "Load the model's sources into the raw Delta tables.")
    parser.add_argument("--start-date", type=iso_date, help="first event date to load (YYYY-MM-DD)")
    parser.add_argument("--end-date", type=iso_date, help="last event date to load, inclusive (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    check_window(parser, args.start_date, args.end_date, "--start-date/--end-date:")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        ingest(build_platform(job_environment(args)), args.start_date, args.end_date)
        return 0

    return run_job("mlops-ingest", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-ingest` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
