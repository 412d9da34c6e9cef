"""mlops-features: raw hourly weather -> the feature table ``<catalog>.features.weather_hourly``.

One row per (origin, time_hour) with temp, dewp, humid, wind_speed, precip, pressure, visib: duplicate readings
averaged, implausible wind speeds dropped, missing precipitation as 0, other gaps filled from the latest earlier
reading of the same airport (at most 6 hours back; never from a later hour). Overwritten on each run.

Task values: ``feature_table_version``, ``feature_rows``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, exit_on_failure, job_environment, job_parser, run_job
from models.flight_delay.features import weather_features

logger = logging.getLogger("jobs.features")


@dataclass(frozen=True)
class FeaturesResult:
    table: str
    version: int
    rows: int
    source_version: int


def build_features(platform: Platform) -> FeaturesResult:
    env = platform.env
    source, target = env.weather_table, env.weather_features_table
    if not platform.tables.exists(source):
        raise JobError(f"table {source!r} does not exist: run mlops-ingest --env {env.name} first")
    source_version = platform.tables.version(source)
    weather = platform.tables.read(source, version=source_version)
    if weather.isEmpty():
        raise JobError(f"table {source!r} (version {source_version}) has no weather rows; nothing was written")
    written = platform.tables.write(weather_features(weather), target)
    logger.info(
        "wrote %s feature rows to %s (version %s) from %s version %s",
        written.rows,
        target,
        written.version,
        source,
        source_version,
    )
    platform.task_values.set("feature_table_version", written.version)
    platform.task_values.set("feature_rows", written.rows)
    return FeaturesResult(target, written.version, written.rows, source_version)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-features", "Compute the hourly weather feature table from the raw weather.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        build_features(build_platform(job_environment(args)))
        return 0

    return run_job("mlops-features", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-features` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
