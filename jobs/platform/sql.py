"""SQL over the environment's tables by their Unity Catalog names: what the alert queries and the retraining check
run. On Databricks, Spark SQL on the job's compute (the SQL alerts themselves run on the environment's SQL
warehouse, with the same text). Locally (``local.warehouse``), DuckDB over the Delta tables, the text transpiled from
Databricks SQL by sqlglot."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class Sql(Protocol):
    def query(self, text: str) -> list[dict[str, Any]]:
        """The rows of ``text``; a ValueError saying what failed (a missing table, a syntax error)."""
        ...


class SparkSql:
    def __init__(self, spark: Callable[[], SparkSession]) -> None:
        self._spark = spark

    def query(self, text: str) -> list[dict[str, Any]]:
        from pyspark.errors import PySparkException

        try:
            return [row.asDict(recursive=True) for row in self._spark().sql(text).collect()]
        except PySparkException as error:
            raise ValueError(f"the query failed: {error}") from error
