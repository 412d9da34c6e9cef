"""Delta tables by their Unity Catalog name ``catalog.schema.table``.

On Databricks they are Unity Catalog tables read and written by Spark. Locally (``local.tables``) they are delta-rs
tables under ``.mlops/warehouse/<catalog>/<schema>/<table>``, exchanged with Spark through Arrow. Either way a write
is one Delta commit: readers see the old version or the new one, never half of it.
"""

from __future__ import annotations

import logging
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

logger = logging.getLogger(__name__)

WriteMode = Literal["overwrite", "append"]
# (column, operator, value) conditions, all of which a row meets: ("event_hour", ">=", datetime(...)). A read may
# return more rows than they select (they narrow what is loaded); the caller applies its exact condition.
Filters = Sequence[tuple[str, str, Any]]
_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "is null")
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


def check_table_name(full_name: str) -> str:
    """``full_name`` when it is ``catalog.schema.table`` of lowercase identifiers, else a ValueError naming it."""
    if not _TABLE_NAME.match(full_name):
        raise ValueError(f"table name must be catalog.schema.table of lowercase identifiers, got {full_name!r}")
    return full_name


def check_filters(filters: Filters | None) -> list[tuple[str, str, Any]]:
    checked = list(filters or [])
    for column, op, value in checked:
        if op not in _OPERATORS:
            raise ValueError(f"filter on {column!r}: operator must be one of {', '.join(_OPERATORS)}, got {op!r}")
        if (op == "is null") != (value is None):
            raise ValueError(f"filter on {column!r}: None goes with the operator 'is null' only, got {op!r} {value!r}")
    return checked


def _condition(column, op: str, value: Any):
    if op == "is null":
        return column.isNull()
    return {
        "=": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }[op](column, value)


def check_mode(mode: str) -> WriteMode:
    if mode not in ("overwrite", "append"):
        raise ValueError(f"write mode must be 'overwrite' or 'append', got {mode!r}")
    return mode  # type: ignore[return-value]


# What ``append_once`` records on its commit (Delta's ``userMetadata``), so that a writer can count its appends from the
# table's history without reading its rows: ``mlops-append <app_id> <version>``.
_APPEND_METADATA = re.compile(r"^mlops-append (\S+) ([0-9]+)$")


def append_metadata(app_id: str, version: int) -> str:
    """The commit's ``userMetadata`` of an ``append_once`` of ``app_id`` at transaction ``version``."""
    if not app_id or any(c.isspace() for c in app_id):
        raise ValueError(f"app id must be a non-empty string without spaces, got {app_id!r}")
    return f"mlops-append {app_id} {version}"


def appended_by(commits: Sequence[tuple[str | None, int]], app_id: str) -> dict[int, int]:
    """Rows per transaction version of ``app_id`` in ``commits``, (userMetadata, rows added) pairs of a history."""
    rows: dict[int, int] = {}
    for metadata, added in commits:
        match = _APPEND_METADATA.match(metadata or "")
        if match and match.group(1) == app_id:
            rows[int(match.group(2))] = rows.get(int(match.group(2)), 0) + int(added)
    return rows


# What a ``write`` with ``content`` records on its commit (Delta's ``userMetadata``): a fingerprint of what the writer
# computed its rows from, so that a writer can tell from the history alone that the table already holds exactly these
# rows: ``mlops-content <fingerprint>``; their number is the commit's own metric. Commits of an earlier version
# recorded the number after the fingerprint, which is taken for them.
_CONTENT_METADATA = re.compile(r"^mlops-content ([0-9a-f]+)(?: ([0-9]+))?$")


@dataclass(frozen=True)
class TableContent:
    """What an overwrite with ``content`` recorded: the fingerprint of its rows, their number (the commit's metric), its
    Delta version."""

    fingerprint: str
    rows: int
    version: int


def content_metadata(fingerprint: str) -> str:
    """The commit's ``userMetadata`` of a ``write`` whose rows have ``fingerprint`` (lowercase hex). The writer needs
    no count of its rows (on Databricks, counting a DataFrame computes it once more): the commit counts them."""
    if not re.fullmatch(r"[0-9a-f]+", fingerprint):
        raise ValueError(f"content needs a lowercase hex fingerprint, got {fingerprint!r}")
    return f"mlops-content {fingerprint}"


def parse_content(metadata: str | None, version: int, rows: int) -> TableContent | None:
    """The content a commit's ``userMetadata`` records, with the rows the commit wrote (``rows``, its metric, unless
    the metadata recorded them); None for any other commit (no content recorded)."""
    match = _CONTENT_METADATA.match(metadata or "")
    if not match:
        return None
    return TableContent(match.group(1), rows if match.group(2) is None else int(match.group(2)), version)


@dataclass(frozen=True)
class TableWrite:
    """One committed write: the table's new Delta version and the rows written."""

    table: str
    version: int
    rows: int


class Tables(Protocol):
    """What the jobs need from the lakehouse."""

    def read(
        self,
        full_name: str,
        version: int | None = None,
        filters: Filters | None = None,
        columns: Sequence[str] | None = None,
    ) -> DataFrame:
        """The table (at ``version`` when given) as a Spark DataFrame, narrowed by ``filters`` and to ``columns``
        (default: all); ValueError when it does not exist."""
        ...

    def write(
        self, df: DataFrame, full_name: str, mode: WriteMode = "overwrite", content: str | None = None
    ) -> TableWrite:
        """Write ``df`` as one Delta commit; the table's new version and the number of rows written. ``content``
        (``content_metadata``) is recorded as the commit's ``userMetadata``, for ``last_content``."""
        ...

    def last_content(self, full_name: str) -> TableContent | None:
        """The content the table's latest commit recorded (``write`` with ``content``): the table holds exactly those
        rows. None when the table does not exist or its latest commit recorded none (any other write since)."""
        ...

    def replace(self, df: DataFrame, full_name: str, where: str) -> TableWrite:
        """Replace the rows matching the SQL predicate ``where`` with ``df`` (whose rows all match it) in one commit,
        creating the table when missing: a re-run of a batch replaces its rows, and no reader sees half a batch."""
        ...

    def append_once(self, df: DataFrame, full_name: str, app_id: str, version: int) -> TableWrite | None:
        """Append ``df`` in one commit that records the transaction (``app_id``, ``version``), unless the table
        already holds that version or a later one of ``app_id``: a replayed micro-batch is not written twice
        (Delta's txnAppId/txnVersion). None when skipped. The commit's ``userMetadata`` is ``append_metadata``."""
        ...

    def appended_since(self, full_name: str, app_id: str, after: int | None) -> dict[int, int]:
        """Rows per transaction version of the ``append_once`` commits of ``app_id`` after the table's version
        ``after`` (every one when None), read from the table's history, not its rows; {} when the table does not
        exist. A commit of no row counts (0): the transaction ran."""
        ...

    def update_from(
        self, source: DataFrame, full_name: str, keys: tuple[str, ...], columns: tuple[str, ...], unset: str
    ) -> int:
        """MERGE: the target rows matching a ``source`` row on ``keys`` whose column ``unset`` is still null get
        ``columns`` from it, in one commit (a row set once is never set again). The number of rows updated."""
        ...

    def version(self, full_name: str) -> int:
        """The table's current Delta version, recorded as lineage."""
        ...

    def exists(self, full_name: str) -> bool: ...


def _output_rows(commit: Row) -> int:
    """The rows a commit of ``DESCRIBE HISTORY`` wrote (Delta's ``numOutputRows`` metric; 0 when it has none)."""
    return int((commit["operationMetrics"] or {}).get("numOutputRows", 0))


class DatabricksTables:
    """Unity Catalog tables through the cluster's Spark session."""

    def __init__(self, spark: Callable[[], SparkSession]) -> None:
        self._spark = spark

    def read(
        self,
        full_name: str,
        version: int | None = None,
        filters: Filters | None = None,
        columns: Sequence[str] | None = None,
    ) -> DataFrame:
        from pyspark.sql import functions as F

        check_table_name(full_name)
        if not self.exists(full_name):
            raise ValueError(f"table {full_name!r} does not exist")
        if version is None:
            df = self._spark().table(full_name)
        else:
            df = self._spark().sql(f"SELECT * FROM {full_name} VERSION AS OF {int(version)}")
        for column, op, value in check_filters(filters):
            df = df.where(_condition(F.col(column), op, F.lit(value)))
        return df.select(*columns) if columns else df

    def write(
        self, df: DataFrame, full_name: str, mode: WriteMode = "overwrite", content: str | None = None
    ) -> TableWrite:
        check_table_name(full_name)
        mode = check_mode(mode)
        writer = df.write.format("delta").mode(mode)
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        if content is not None:
            writer = writer.option("userMetadata", content)
        writer.saveAsTable(full_name)
        return self._last_write(full_name, mode)

    def replace(self, df: DataFrame, full_name: str, where: str) -> TableWrite:
        check_table_name(full_name)
        writer = df.write.format("delta").mode("overwrite")
        if self.exists(full_name):
            writer = writer.option("replaceWhere", where)
        writer.saveAsTable(full_name)
        return self._last_write(full_name, f"replace where {where}")

    def append_once(self, df: DataFrame, full_name: str, app_id: str, version: int) -> TableWrite | None:
        check_table_name(full_name)
        before = self.version(full_name) if self.exists(full_name) else None
        (
            df.write.format("delta")
            .mode("append")
            .option("txnAppId", app_id)
            .option("txnVersion", version)
            .option("userMetadata", append_metadata(app_id, version))
            .saveAsTable(full_name)
        )
        if before is not None and self.version(full_name) == before:
            logger.info("%s already holds %s version %s: skipped", full_name, app_id, version)
            return None
        return self._last_write(full_name, f"append {app_id} {version}")

    def appended_since(self, full_name: str, app_id: str, after: int | None) -> dict[int, int]:
        from pyspark.sql import functions as F

        if not self.exists(full_name):
            return {}
        history = self._spark().sql(f"DESCRIBE HISTORY {full_name}")
        if after is not None:
            history = history.where(F.col("version") > after)
        commits = history.select("userMetadata", F.col("operationMetrics")["numOutputRows"].alias("rows")).collect()
        return appended_by([(c["userMetadata"], int(c["rows"] or 0)) for c in commits], app_id)

    def update_from(
        self, source: DataFrame, full_name: str, keys: tuple[str, ...], columns: tuple[str, ...], unset: str
    ) -> int:
        check_table_name(full_name)
        view = f"_update_source_{full_name.replace('.', '_')}"
        source.createOrReplaceTempView(view)
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        sets = ", ".join(f"{c} = s.{c}" for c in columns)
        self._spark().sql(
            f"MERGE INTO {full_name} t USING {view} s ON {on} AND t.{unset} IS NULL WHEN MATCHED THEN UPDATE SET {sets}"
        )
        last = self._latest_commit(full_name)
        return int((last["operationMetrics"] or {}).get("numTargetRowsUpdated", 0))

    def _latest_commit(self, full_name: str) -> Row:
        """The table's latest entry of ``DESCRIBE HISTORY`` (version, operation metrics, userMetadata)."""
        rows = self._spark().sql(f"DESCRIBE HISTORY {check_table_name(full_name)} LIMIT 1").collect()
        if not rows:
            raise ValueError(f"table {full_name!r} has no Delta history")
        return rows[0]

    def _last_write(self, full_name: str, what: str) -> TableWrite:
        """The commit just made: its version, and the rows it wrote from Delta's operation metrics."""
        last = self._latest_commit(full_name)
        rows = _output_rows(last)
        written = TableWrite(full_name, int(last["version"]), rows)
        logger.info("wrote %s rows to %s (%s, version %s)", rows, full_name, what, written.version)
        return written

    def last_content(self, full_name: str) -> TableContent | None:
        if not self.exists(full_name):
            return None
        last = self._latest_commit(full_name)
        return parse_content(last["userMetadata"], int(last["version"]), _output_rows(last))

    def version(self, full_name: str) -> int:
        return int(self._latest_commit(full_name)["version"])

    def exists(self, full_name: str) -> bool:
        return bool(self._spark().catalog.tableExists(check_table_name(full_name)))
