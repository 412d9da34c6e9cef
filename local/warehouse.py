"""The local SQL warehouse: Databricks SQL over the local Delta tables, on DuckDB.

``LocalSql`` implements ``jobs.platform.sql.Sql``. It receives the text Databricks would run (an alert's
``query_text``, the retraining check's queries), parses it with sqlglot in the Databricks dialect, finds the
``catalog.schema.table`` names the query reads, and gives DuckDB each of them under the same three-part name: the
catalog is an in-memory database (``ATTACH ':memory:' AS <catalog>``), the schema is created in it, and the table is
a view over the Delta table's Arrow dataset (delta-rs; DuckDB's own delta extension would download itself at run
time). The text, transpiled to DuckDB's dialect, then runs unchanged otherwise.

Every query gets a fresh connection: the Delta tables are read at their latest version each time, and one
``LocalSql`` can be shared by threads. Rows come back as dicts of plain Python values: timestamps as ``datetime``
in UTC, decimals as ``float``, structs as dicts, arrays as lists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.paths import table_path
from spec.errors import MlopsError

if TYPE_CHECKING:
    import duckdb
    from sqlglot import exp

logger = logging.getLogger(__name__)


class WarehouseError(MlopsError, ValueError):
    """A query the local warehouse cannot run: not Databricks SQL, a table that is missing or unreadable, a failure
    in DuckDB; the message says which and, for a metric table, what to run. Also a ``ValueError``, which the alert
    verdict (``jobs.core.alert_verdict``) has always caught as a failed query."""


# Suffixes of the tables a quality monitor writes (spec.monitoring.MonitoredTable).
METRIC_TABLE_SUFFIXES = ("_profile_metrics", "_drift_metrics")
# Names DuckDB keeps for itself: a catalog of that name cannot be attached.
_RESERVED_CATALOGS = frozenset({"system", "temp", "main"})  # not the model's name: DuckDB's own catalogs
_QUOTED_LINES = 3


@dataclass(frozen=True)
class TableRef:
    """A table a query reads, by its Unity Catalog name (lower case, as Unity Catalog stores it)."""

    catalog: str
    schema: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.name}"

    @property
    def is_metric_table(self) -> bool:
        return self.schema == "monitoring" and self.name.endswith(METRIC_TABLE_SUFFIXES)


class LocalSql:
    """DuckDB over the Delta tables of the local warehouse (``$MLOPS_HOME/warehouse``).

    ``env_name`` only words the error of a missing metric table (which command creates it); ``locate`` maps a
    ``catalog.schema.table`` name to its Delta directory (``local.paths.table_path`` unless a test says otherwise).
    """

    def __init__(self, env_name: str | None = None, locate: Callable[[str], Path] = table_path) -> None:
        self.env_name = env_name
        self._locate = locate

    def query(self, text: str) -> list[dict[str, Any]]:
        statement = parse(text)
        tables = tables_read(statement)
        duckdb_text = to_duckdb(statement)
        logger.debug("local warehouse: %s", duckdb_text)
        import duckdb

        connection = duckdb.connect(":memory:")
        try:
            # Timestamps come back in UTC whatever the machine's zone, as Delta stores them.
            connection.execute("SET TimeZone = 'UTC'")
            for position, table in enumerate(tables):
                self._register(connection, table, f"__delta_{position}")
            try:
                cursor = connection.execute(duckdb_text)
                columns = [d[0] for d in cursor.description]
                rows = cursor.fetchall()
            except duckdb.Error as error:
                raise WarehouseError(
                    f"the query failed on the local warehouse (DuckDB): {error}\n"
                    f"Databricks SQL: {_head(text)}\nas DuckDB ran it: {_head(duckdb_text)}"
                ) from error
        finally:
            connection.close()
        return [{column: python_value(value) for column, value in zip(columns, row, strict=True)} for row in rows]

    def _register(self, connection: duckdb.DuckDBPyConnection, table: TableRef, alias: str) -> None:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        path = self._locate(table.full_name)
        try:
            dataset = DeltaTable(str(path)).to_pyarrow_dataset()
        except TableNotFoundError as error:
            raise WarehouseError(self._missing(table, path)) from error
        except DeltaError as error:
            raise WarehouseError(f"table {table.full_name} cannot be read (Delta table at {path}): {error}") from error
        if table.catalog in _RESERVED_CATALOGS:
            raise WarehouseError(f"catalog {table.catalog!r} of {table.full_name} is a name DuckDB reserves")
        attached = {row[0] for row in connection.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
        if table.catalog not in attached:
            connection.execute(f"ATTACH ':memory:' AS {_quote(table.catalog)}")
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(table.catalog)}.{_quote(table.schema)}")
        connection.register(alias, dataset)
        connection.execute(
            f"CREATE VIEW {_quote(table.catalog)}.{_quote(table.schema)}.{_quote(table.name)} AS "
            f"SELECT * FROM {_quote(alias)}"
        )

    def _missing(self, table: TableRef, path: Path) -> str:
        message = f"table {table.full_name} does not exist (no Delta table at {path})"
        if not table.is_metric_table:
            return message
        env = self.env_name or "ENV"
        monitored = self._monitored_by(table.full_name)
        if monitored is not None and not _is_delta_table(self._locate(monitored)):
            return (
                f"{message}: it is the quality monitor's metric table of {monitored}, which has no rows yet "
                f"(nothing scored or served there so far); mlops monitor --env {env} creates it once there are"
            )
        return f"{message}: it is a quality monitor's metric table, run mlops monitor --env {env} first"

    def _monitored_by(self, metric_table: str) -> str | None:
        """The monitored table whose metric table ``metric_table`` is (None when the environment is unknown)."""
        from spec.config import ENVIRONMENTS
        from spec.monitoring import monitored_tables

        if self.env_name not in ENVIRONMENTS:
            return None
        for monitored in monitored_tables(ENVIRONMENTS[self.env_name]):
            if metric_table in (monitored.profile_metrics_table, monitored.drift_metrics_table):
                return monitored.table
        return None


def _is_delta_table(path: Path) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(str(path))


def parse(text: str) -> exp.Expression:
    """The one statement of ``text`` in the Databricks dialect; a WarehouseError quoting sqlglot otherwise."""
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        statements = [s for s in sqlglot.parse(text, read="databricks") if s is not None]
    except ParseError as error:
        raise WarehouseError(f"the query is not valid Databricks SQL: {error}\nquery: {_head(text)}") from error
    if len(statements) != 1:
        raise WarehouseError(f"expected one SQL statement, got {len(statements)}: {_head(text)}")
    return statements[0]


def tables_read(statement: exp.Expression) -> list[TableRef]:
    """The tables ``statement`` reads, each once; CTEs and subqueries are not tables. A name
    that is not ``catalog.schema.table`` is a WarehouseError: the alert queries run on a warehouse with no current
    catalog to resolve a shorter one against."""
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    found: dict[str, TableRef] = {}
    for scope in traverse_scope(statement):
        for source in scope.sources.values():
            if not isinstance(source, exp.Table):
                continue
            if not (source.catalog and source.db):
                raise WarehouseError(f"table {source.sql(dialect='databricks')} must be named catalog.schema.table")
            ref = TableRef(source.catalog.lower(), source.db.lower(), source.name.lower())
            found.setdefault(ref.full_name, ref)
    return list(found.values())


def to_duckdb(statement: exp.Expression) -> str:
    """The statement in DuckDB's dialect; a construct DuckDB has no translation for is an error, not a guess."""
    from sqlglot.errors import ErrorLevel, UnsupportedError

    try:
        return statement.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as error:
        raise WarehouseError(f"the query cannot be translated to DuckDB: {error}") from error


def python_value(value: Any) -> Any:
    """DuckDB's Python value as a plain one: Decimal -> float, aware datetime -> UTC (``datetime.UTC``)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if isinstance(value, dict):
        return {k: python_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [python_value(v) for v in value]
    return value


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _head(text: str) -> str:
    """The query's first lines, enough to say which query it was."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    head = " | ".join(line.strip() for line in lines[:_QUOTED_LINES])
    return head + (" | ..." if len(lines) > _QUOTED_LINES else "")
