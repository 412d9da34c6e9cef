"""mlops-land: a window of the model's streamed source (``ModelSpec.stream_source``) lands in the landing volume, one
Parquet file per day, for the streaming job to score. What an upstream system does in production; the integration
test runs it so that its streaming step has files to read, on Databricks (the landing volume) as on this machine (the
landing folder, as ``mlops land`` fills it).

The rows are the model's ``load_sources`` of the window, as ingest reads them; only the declared landing columns land
(``ModelSpec.landing_columns``), cast to their declared types. A package with ``landing_days(rows)`` has the window
read once and split by day; otherwise it is read a day at a time. A day landed again replaces its file (named by the
day), which a stream that read it does not read again.

Task values: ``landed_files``, ``landed_rows``.
"""

from __future__ import annotations

import argparse
import logging
from datetime import date

from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, check_window, exit_on_failure, iso_date, job_environment, job_parser, run_job
from jobs.platform.landing import daily_tables

logger = logging.getLogger("jobs.land")


def land(platform: Platform, start: date, end: date) -> tuple[int, int]:
    """One file per day of [start, end] with rows; the files and rows landed. A ``JobError`` when the model streams
    nothing or the window has no rows."""
    spec = platform.model.spec
    if spec.stream_source is None:
        raise JobError(f"model {spec.name!r} streams no source (no stream_source in its declaration): nothing lands")
    source = spec.stream_source
    files = rows = 0
    for day, table in daily_tables(platform.model, source, start, end):
        path = platform.landing.land(table, day.isoformat())
        files, rows = files + 1, rows + table.num_rows
        logger.info("landed %s rows of %s for %s at %s", table.num_rows, source, day, path)
    if not rows:
        raise JobError(f"model {spec.name!r} has no {source} rows between {start} and {end}: nothing landed")
    platform.task_values.set("landed_files", files)
    platform.task_values.set("landed_rows", rows)
    return files, rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-land", "Land a window of the model's streamed source for the streaming job.")
    parser.add_argument("--start-date", type=iso_date, required=True, help="first day to land (YYYY-MM-DD)")
    parser.add_argument("--end-date", type=iso_date, required=True, help="last day to land, inclusive")
    args = parser.parse_args(argv)
    check_window(parser, args.start_date, args.end_date, "landing window")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        land(build_platform(job_environment(args)), args.start_date, args.end_date)
        return 0

    return run_job("mlops-land", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-land` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
