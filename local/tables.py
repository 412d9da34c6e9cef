"""Delta tables on this machine: delta-rs (``deltalake``) tables under ``$MLOPS_HOME/warehouse/<catalog>/<schema>/
<table>``, exchanged with Spark through Arrow. A write is one Delta commit, as on Databricks; a task its local run
has given up on (``local.adapters.TaskContext``) commits nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.platform.job import JobError
from jobs.platform.tables import (
    Filters,
    TableContent,
    TableWrite,
    WriteMode,
    append_metadata,
    appended_by,
    check_filters,
    check_mode,
    check_table_name,
    parse_content,
)
from local.adapters import TaskContext, writing
from local.paths import table_path

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

_ARROW_OPERATORS = {
    "=": lambda f, v: f == v,
    "!=": lambda f, v: f != v,
    "<": lambda f, v: f < v,
    "<=": lambda f, v: f <= v,
    ">": lambda f, v: f > v,
    ">=": lambda f, v: f >= v,
    "is null": lambda f, v: f.is_null(),
}


def _without_empty_batches(table: pa.Table) -> pa.Table:
    """The same rows without zero-row record batches. A filtered dataset yields one per pruned file, and PySpark 4.1's
    ``createDataFrame`` silently drops every row of a table that starts with two of them (measured with pyspark
    4.1.1: batches of 0, 0 and 3 rows -> 0 rows)."""
    import pyarrow as pa

    return pa.Table.from_batches([b for b in table.to_batches() if b.num_rows], schema=table.schema)


class TableWriteError(JobError):
    """A write to a local Delta table failed (a full disk, a lost mount); the message says whether it committed."""


def _version(path: Path) -> int | None:
    from deltalake import DeltaTable

    return DeltaTable(str(path)).version() if DeltaTable.is_deltatable(str(path)) else None


@contextmanager
def _write_failures(full_name: str, path: Path, what: str) -> Iterator[None]:
    """A failure of delta-rs or of the file system during one write as a ``TableWriteError`` that names the table
    and says what the table holds now, read back from its log: a commit is all or nothing, so either the table
    stayed at its version (the next run writes it again) or the write committed before the failure."""
    from deltalake.exceptions import DeltaError

    before = _version(path)
    try:
        yield
    except (OSError, DeltaError) as error:
        after = _version(path)
        if after == before:
            kept = "it does not exist yet" if before is None else f"it stays at version {before}"
            outcome = f"nothing was committed ({kept}); run the step again once the cause is fixed"
        else:
            outcome = f"the write committed as version {after} before the failure"
        raise TableWriteError(f"writing table {full_name} ({what}) failed: {error}; {outcome}") from error


def _added_rows(commit: dict) -> int:
    """The rows a commit of the table's history wrote (delta-rs' ``num_added_rows`` metric; 0 when it has none)."""
    return int((commit.get("operationMetrics") or {}).get("num_added_rows", 0))


class LocalTables:
    """delta-rs tables under the local warehouse; Spark reads and writes them through Arrow. Each commit is made
    only while ``task`` (or else the thread's current runner task) is still running."""

    def __init__(self, spark: Callable[[], SparkSession], *, task: TaskContext | None = None) -> None:
        self._spark = spark
        self._task = task

    def read(
        self,
        full_name: str,
        version: int | None = None,
        filters: Filters | None = None,
        columns: Sequence[str] | None = None,
    ) -> DataFrame:
        """Loaded through Arrow: ``filters`` prune files and rows before anything reaches Spark."""
        import pyarrow.dataset as ds
        from deltalake import DeltaTable

        table = DeltaTable(self._existing(full_name), version=version)
        expression = None
        for column, op, value in check_filters(filters):
            condition = _ARROW_OPERATORS[op](ds.field(column), value)
            expression = condition if expression is None else expression & condition
        return self._spark().createDataFrame(
            _without_empty_batches(
                table.to_pyarrow_dataset().to_table(filter=expression, columns=list(columns) if columns else None)
            )
        )

    def write(
        self, df: DataFrame, full_name: str, mode: WriteMode = "overwrite", content: str | None = None
    ) -> TableWrite:
        from deltalake import CommitProperties, DeltaTable, write_deltalake

        mode = check_mode(mode)
        path = self.path(full_name)
        arrow = df.toArrow()
        properties = None if content is None else CommitProperties(custom_metadata={"userMetadata": content})
        with writing(f"table {full_name} ({mode})", self._task), _write_failures(full_name, path, mode):
            path.parent.mkdir(parents=True, exist_ok=True)
            # One commit; on overwrite the schema may change with the code that writes it.
            write_deltalake(
                str(path),
                arrow,
                mode=mode,
                schema_mode="overwrite" if mode == "overwrite" else None,
                commit_properties=properties,
            )
        written = TableWrite(full_name, DeltaTable(str(path)).version(), arrow.num_rows)
        logger.info("wrote %s rows to %s (%s, version %s)", written.rows, full_name, mode, written.version)
        return written

    def replace(self, df: DataFrame, full_name: str, where: str) -> TableWrite:
        from deltalake import DeltaTable, write_deltalake

        path = self.path(full_name)
        arrow = df.toArrow()
        with (
            writing(f"table {full_name} (replace where {where})", self._task),
            _write_failures(full_name, path, f"replace where {where}"),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            if DeltaTable.is_deltatable(str(path)):
                # delta-rs' predicate overwrite: the rows matching `where` are replaced in the same commit.
                write_deltalake(str(path), arrow, mode="overwrite", predicate=where)
            else:
                write_deltalake(str(path), arrow, mode="append")
        written = TableWrite(full_name, DeltaTable(str(path)).version(), arrow.num_rows)
        logger.info(
            "wrote %s rows to %s (replace where %s, version %s)", written.rows, full_name, where, written.version
        )
        return written

    def append_once(self, df: DataFrame, full_name: str, app_id: str, version: int) -> TableWrite | None:
        from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

        path = self.path(full_name)
        if DeltaTable.is_deltatable(str(path)):
            done = DeltaTable(str(path)).transaction_version(app_id)
            if done is not None and done >= version:
                logger.info("%s already holds %s version %s: skipped", full_name, app_id, version)
                return None
        arrow = df.toArrow()
        properties = CommitProperties(
            app_transactions=[Transaction(app_id=app_id, version=version)],
            custom_metadata={"userMetadata": append_metadata(app_id, version)},
        )
        with (
            writing(f"table {full_name} (append {app_id} {version})", self._task),
            _write_failures(full_name, path, f"append {app_id} {version}"),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_deltalake(str(path), arrow, mode="append", commit_properties=properties)
        written = TableWrite(full_name, DeltaTable(str(path)).version(), arrow.num_rows)
        logger.info(
            "wrote %s rows to %s (%s %s, version %s)", written.rows, full_name, app_id, version, written.version
        )
        return written

    def appended_since(self, full_name: str, app_id: str, after: int | None) -> dict[int, int]:
        from deltalake import DeltaTable

        if not self.exists(full_name):
            return {}
        table = DeltaTable(str(self.path(full_name)))
        # Only the commits after ``after``: the history's newest entries, not the whole log.
        newer = None if after is None else max(table.version() - after, 0)
        if newer == 0:
            return {}
        commits = [c for c in table.history(limit=newer) if after is None or int(c["version"]) > after]
        return appended_by(
            [(c.get("userMetadata"), _added_rows(c)) for c in commits],
            app_id,
        )

    def update_from(
        self, source: DataFrame, full_name: str, keys: tuple[str, ...], columns: tuple[str, ...], unset: str
    ) -> int:
        from deltalake import DeltaTable

        arrow = source.toArrow()
        if arrow.num_rows == 0:
            return 0
        table = DeltaTable(self._existing(full_name))
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        with (
            writing(f"table {full_name} (merge on {', '.join(keys)})", self._task),
            _write_failures(full_name, self.path(full_name), f"merge on {', '.join(keys)}"),
        ):
            metrics = (
                table.merge(arrow, predicate=f"{on} AND t.{unset} IS NULL", source_alias="s", target_alias="t")
                .when_matched_update({c: f"s.{c}" for c in columns})
                .execute()
            )
        updated = int(metrics.get("num_target_rows_updated", 0))
        logger.info("updated %s rows of %s from %s source rows", updated, full_name, arrow.num_rows)
        return updated

    def last_content(self, full_name: str) -> TableContent | None:
        from deltalake import DeltaTable

        if not self.exists(full_name):
            return None
        table = DeltaTable(str(self.path(full_name)))
        last = table.history(limit=1)[0]
        return parse_content(last.get("userMetadata"), table.version(), _added_rows(last))

    def version(self, full_name: str) -> int:
        from deltalake import DeltaTable

        return DeltaTable(self._existing(full_name)).version()

    def exists(self, full_name: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(str(self.path(full_name)))

    @staticmethod
    def path(full_name: str) -> Path:
        return table_path(check_table_name(full_name))

    def _existing(self, full_name: str) -> str:
        from deltalake import DeltaTable

        path = str(self.path(full_name))
        if not DeltaTable.is_deltatable(path):
            raise ValueError(f"table {full_name!r} does not exist (no Delta table at {path})")
        return path
