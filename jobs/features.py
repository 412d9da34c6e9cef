"""mlops-features: the model's raw tables -> its feature tables (``<catalog>.features.<name>``, one per name its
declaration lists in ``feature_tables``), computed by the model package's ``build_features``.

Each run reads the raw tables the features are computed from, at their current Delta versions, and overwrites every
feature table (one commit each).
A model without feature tables has nothing to compute: the job says so and writes nothing.

Task values: ``<feature table>_version`` and ``<feature table>_rows`` for each feature table.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from jobs.examples import PinnedTables
from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, exit_on_failure, job_environment, job_parser, run_job

logger = logging.getLogger("jobs.features")


@dataclass(frozen=True)
class FeatureTableWrite:
    table: str
    version: int
    rows: int


@dataclass(frozen=True)
class FeaturesResult:
    """The feature tables written, by name, and the Delta versions of the raw tables they were computed from."""

    tables: dict[str, FeatureTableWrite]
    source_versions: dict[str, int]


def build_features(platform: Platform) -> FeaturesResult:
    env, model = platform.env, platform.model
    if not model.spec.feature_tables:
        logger.info("model %r declares no feature tables: nothing to compute", model.name)
        return FeaturesResult({}, {})
    # Only the raw tables the model's features are computed from are read (each at its current version).
    read: dict[str, int] = {}
    sources = PinnedTables(platform, model.spec.sources, env.source_table, "mlops-ingest", {}, read)
    computed = model.build_features(sources)
    empty = [
        f"{name} ({env.source_table(name)} version {read[env.source_table(name)]})"
        for name in model.spec.sources
        if env.source_table(name) in read and sources[name].isEmpty()
    ]
    if empty:
        raise JobError(f"model {model.name!r}: the sources {', '.join(empty)} have no rows; nothing was written")
    written: dict[str, FeatureTableWrite] = {}
    for name in model.spec.feature_tables:
        target = env.feature_table(name)
        result = platform.tables.write(computed[name], target)
        written[name] = FeatureTableWrite(target, result.version, result.rows)
        logger.info(
            "wrote %s feature rows to %s (version %s) from %s",
            result.rows,
            target,
            result.version,
            ", ".join(f"{t}@v{v}" for t, v in read.items()),
        )
    for name, write in written.items():
        platform.task_values.set(f"{name}_version", write.version)
        platform.task_values.set(f"{name}_rows", write.rows)
    return FeaturesResult(written, read)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-features", "Compute the model's feature tables from its raw tables.")
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
