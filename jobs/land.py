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
from datetime import date, timedelta
from typing import TYPE_CHECKING

from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, check_window, exit_on_failure, iso_date, job_environment, job_parser, run_job

if TYPE_CHECKING:
    import pyarrow as pa

    from spec.model import ModelSpec

logger = logging.getLogger("jobs.land")


def landing_arrow_schema(model: ModelSpec) -> pa.Schema:
    """The model's landing columns as the Arrow schema the files are written with (what the stream reads back with
    ``ModelSpec.landing_schema``)."""
    import pyarrow as pa

    types = {
        "STRING": pa.string(),
        "BIGINT": pa.int64(),
        "INT": pa.int32(),
        "DOUBLE": pa.float64(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "BOOLEAN": pa.bool_(),
    }
    return pa.schema([pa.field(c.name, types[c.type]) for c in model.landing_columns])


def land(platform: Platform, start: date, end: date) -> tuple[int, int]:
    """One file per day of [start, end] with rows; the files and rows landed. A ``JobError`` when the model streams
    nothing or the window has no rows."""
    import pyarrow as pa

    package = platform.model
    spec = package.spec
    if spec.stream_source is None:
        raise JobError(f"model {spec.name!r} streams no source (no stream_source in its declaration): nothing lands")
    source = spec.stream_source
    schema = landing_arrow_schema(spec)
    columns = [c.name for c in spec.landing_columns]
    landing_days = getattr(package.module, "landing_days", None)
    window = package.load_sources(start, end)[source] if landing_days is not None else None
    days = landing_days(window) if landing_days is not None else None
    files = rows = 0
    day = start
    while day <= end:
        frame = package.load_sources(day, day)[source] if window is None else window[days == day]
        if not frame.empty:
            table = pa.Table.from_pandas(frame[columns].reset_index(drop=True), preserve_index=False)
            path = platform.landing.land(table.cast(schema), day.isoformat())
            files, rows = files + 1, rows + len(frame)
            logger.info("landed %s rows of %s for %s at %s", len(frame), source, day, path)
        day += timedelta(days=1)
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
