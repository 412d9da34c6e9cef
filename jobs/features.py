"""mlops-features: the model's raw tables -> its feature tables (``<catalog>.features.<name>``, one per name its
declaration lists in ``feature_tables``), computed by the model package's ``build_features``.

Each run reads the raw tables the features are computed from, at their current Delta versions, and overwrites every
feature table (one commit each). The commit records a fingerprint of what the rows were computed from
(``inputs_fingerprint``: the Delta version of each of the model's raw tables, the model package's source files and
the project's version). With ``--skip-unchanged`` (the feature-pipeline graph's setting), a run whose inputs have the
fingerprint every feature table's latest commit recorded writes nothing: those tables hold what it would compute.
A model without feature tables has nothing to compute: the job says so and writes nothing.

Task values: ``<feature table>_version`` and ``<feature table>_rows`` for each feature table.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from jobs.examples import PinnedTables
from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, code_version, exit_on_failure, job_environment, job_parser, run_job
from jobs.platform.tables import content_metadata

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


def package_fingerprint(module: ModuleType) -> str:
    """A digest of a model package's source: every ``.py`` file under its folder, by path and content (a model that is
    one module: that file)."""
    file = Path(module.__file__ or "")
    root = file.parent if hasattr(module, "__path__") else None
    digest = hashlib.blake2b(digest_size=20)
    for path in sorted(root.rglob("*.py")) if root is not None else [file]:
        digest.update(f"{path.relative_to(root) if root else path.name}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def inputs_fingerprint(platform: Platform) -> tuple[str, dict[str, int]] | None:
    """A digest of what the feature tables are computed from, and the raw tables' versions in it: the current Delta
    version of each of the model's raw tables, the model package's source and the project's version. None while a raw
    table does not exist (the run then fails as it says)."""
    env, model, tables = platform.env, platform.model, platform.tables
    names = [env.source_table(name) for name in model.spec.sources]
    if not all(tables.exists(name) for name in names):
        return None
    versions = {name: tables.version(name) for name in names}
    digest = hashlib.blake2b(digest_size=20)
    parts = [f"model {model.name} {package_fingerprint(model.module)}", f"code {code_version()}"]
    digest.update("\n".join([*parts, *(f"{name}@{v}" for name, v in sorted(versions.items()))]).encode())
    return digest.hexdigest(), versions


def unchanged(platform: Platform, fingerprint: str) -> dict[str, FeatureTableWrite] | None:
    """Every feature table as its latest commit left it, when that commit recorded ``fingerprint``; else None."""
    env, tables = platform.env, platform.tables
    held: dict[str, FeatureTableWrite] = {}
    for name in platform.model.spec.feature_tables:
        content = tables.last_content(env.feature_table(name))
        if content is None or content.fingerprint != fingerprint:
            return None
        held[name] = FeatureTableWrite(env.feature_table(name), content.version, content.rows)
    return held


def build_features(platform: Platform, skip_unchanged: bool = False) -> FeaturesResult:
    env, model = platform.env, platform.model
    if not model.spec.feature_tables:
        logger.info("model %r declares no feature tables: nothing to compute", model.name)
        return FeaturesResult({}, {})
    inputs = inputs_fingerprint(platform)
    held = unchanged(platform, inputs[0]) if skip_unchanged and inputs is not None else None
    if inputs is not None and held is not None:
        for write in held.values():
            logger.info("%s (version %s) was computed from these inputs (%s): not computed again", write.table,
                        write.version, ", ".join(f"{t}@v{v}" for t, v in inputs[1].items()))  # fmt: skip
        _set_task_values(platform, held)
        return FeaturesResult(held, inputs[1])
    # Only the raw tables the model's features are computed from are read, each at the version fingerprinted.
    read: dict[str, int] = {}
    pinned = inputs[1] if inputs is not None else None
    sources = PinnedTables(platform, model.spec.sources, env.source_table, "mlops-ingest", {}, read, pinned)
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
        content = None if inputs is None else content_metadata(inputs[0])
        result = platform.tables.write(computed[name], target, content=content)
        written[name] = FeatureTableWrite(target, result.version, result.rows)
        logger.info(
            "wrote %s feature rows to %s (version %s) from %s",
            result.rows,
            target,
            result.version,
            ", ".join(f"{t}@v{v}" for t, v in read.items()),
        )
    _set_task_values(platform, written)
    return FeaturesResult(written, read)


def _set_task_values(platform: Platform, tables: dict[str, FeatureTableWrite]) -> None:
    for name, write in tables.items():
        platform.task_values.set(f"{name}_version", write.version)
        platform.task_values.set(f"{name}_rows", write.rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-features", "Compute the model's feature tables from its raw tables.")
    parser.add_argument(
        "--skip-unchanged",
        action="store_true",
        help="leave the feature tables when their latest commits recorded these inputs (raw table versions, the "
        "model package's source, the project's version)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        build_features(build_platform(job_environment(args)), args.skip_unchanged)
        return 0

    return run_job("mlops-features", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-features` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
