"""mlops-ingest: load the model's sources into its raw tables (``<catalog>.raw.<source>``, one per source).

The model package's ``load_sources`` delivers a window of its data, one frame per source its declaration names;
each run overwrites every raw table (one Delta commit each), so running it again gives the same tables. Each write
records a fingerprint of its rows in the commit (``content_metadata``). With ``--skip-unchanged`` (the
feature-pipeline job's ingest) a table whose last commit recorded the fingerprint of what this run loaded already
holds exactly these rows: it is not written again and keeps its Delta version, which the lineage tags of the model
versions trained on it name. Without it every run commits (the integration test checks that its ingest did). With
``--start-date`` / ``--end-date`` only the events of that window (inclusive) are loaded, with what their features
need from around it (the model package decides that).

Task values: ``<source>_rows`` and ``<source>_version`` for each source.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, check_window, exit_on_failure, iso_date, job_environment, job_parser, run_job
from jobs.platform.tables import content_metadata

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("jobs.ingest")


@dataclass(frozen=True)
class SourceWrite:
    table: str
    rows: int
    version: int
    # False when the table already held exactly these rows: nothing was committed.
    written: bool = True


@dataclass(frozen=True)
class IngestResult:
    """What was written, by source (in the declaration's order)."""

    sources: dict[str, SourceWrite]


def ingest(platform: Platform, start: date | None, end: date | None, skip_unchanged: bool = False) -> IngestResult:
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
        table, frame = env.source_table(source), frames[source]
        digest = fingerprint(frame)
        held = platform.tables.last_content(table) if skip_unchanged and digest is not None else None
        if held is not None and held.fingerprint == digest:
            written[source] = SourceWrite(table, held.rows, held.version, written=False)
            logger.info("%s already holds these %s rows of %s (version %s): not written again", table, held.rows,
                        source, held.version)  # fmt: skip
            continue
        content = None if digest is None else content_metadata(digest)
        result = platform.tables.write(spark.createDataFrame(frame), table, content=content)
        written[source] = SourceWrite(table, result.rows, result.version)
        logger.info("ingested %s rows of %s into %s (version %s)", result.rows, source, table, result.version)
    for source, write in written.items():
        values.set(f"{source}_rows", write.rows)
        values.set(f"{source}_version", write.version)
    return IngestResult(written)


def fingerprint(frame: pd.DataFrame) -> str | None:
    """A digest of the frame's column names and types and of its rows in order (pandas' hash of each row): equal
    fingerprints mean the same rows, a changed value, row, column or type changes it. None when a column holds values
    pandas cannot hash (lists, say): such a frame is always written."""
    import hashlib

    import pandas as pd

    try:
        rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    except TypeError as e:
        logger.info("the rows cannot be fingerprinted (%s): the table is written whatever it holds", e)
        return None
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr([(str(name), str(kind)) for name, kind in frame.dtypes.items()]).encode())
    digest.update(rows.tobytes())
    return digest.hexdigest()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-ingest", "Load the model's sources into the raw Delta tables.")
    parser.add_argument("--start-date", type=iso_date, help="first event date to load (YYYY-MM-DD)")
    parser.add_argument("--end-date", type=iso_date, help="last event date to load, inclusive (YYYY-MM-DD)")
    parser.add_argument(
        "--skip-unchanged",
        action="store_true",
        help="leave a raw table that already holds exactly the rows loaded (the fingerprint its last ingest recorded)",
    )
    args = parser.parse_args(argv)
    check_window(parser, args.start_date, args.end_date, "--start-date/--end-date:")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        ingest(build_platform(job_environment(args)), args.start_date, args.end_date, args.skip_unchanged)
        return 0

    return run_job("mlops-ingest", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-ingest` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
