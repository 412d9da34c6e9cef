"""mlops-refresh-monitors: refresh every quality monitor of the environment and wait for the refreshes to end.

The daily-monitoring job runs it after the labels and before the alerts, so the alerts read metrics that include the
day's labels. A refresh that fails, is canceled or outlasts the task fails the job (the alerts do not run on stale
metrics).

Task values: ``refreshed_tables`` (comma-separated), ``refresh_seconds`` (the longest refresh).
"""

from __future__ import annotations

import argparse
import logging

from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, exit_on_failure, job_environment, job_parser, run_job
from spec.monitoring import monitored_tables

logger = logging.getLogger("jobs.refresh_monitors")


def refresh(platform: Platform) -> list[str]:
    if platform.monitors is None:
        raise JobError(f"the platform of {platform.env.name} has no quality monitors to refresh")
    tables = [m.table for m in monitored_tables(platform.env)]
    refreshed = platform.monitors.refresh(tables)
    for result in refreshed:
        logger.info("monitor of %s refreshed (%s) in %.1fs", result.table, result.refresh_id, result.seconds)
    platform.task_values.set("refreshed_tables", ",".join(r.table for r in refreshed))
    platform.task_values.set("refresh_seconds", max((r.seconds for r in refreshed), default=0.0))
    return [r.table for r in refreshed]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-refresh-monitors", "Refresh every quality monitor and wait until each has ended.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        refresh(build_platform(job_environment(args)))
        return 0

    return run_job("mlops-refresh-monitors", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-refresh-monitors` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
