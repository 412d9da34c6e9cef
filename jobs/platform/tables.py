"""Delta tables by their Unity Catalog name ``catalog.schema.table``.

On Databricks they are Unity Catalog tables read and written by Spark. Locally they are delta-rs tables under
``.mlops/warehouse/<catalog>/<schema>/<table>``, exchanged with Spark through Arrow. Either way a write is one
Delta commit: readers see the old version or the new one, never half of it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

WriteMode = Literal["overwrite", "append"]
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


def check_table_name(full_name: str) -> str:
    """``full_name`` when it is ``catalog.schema.table`` of lowercase identifiers, else a ValueError naming it."""
    if not _TABLE_NAME.match(full_name):
        raise ValueError(f"table name must be catalog.schema.table of lowercase identifiers, got {full_name!r}")
    return full_name


def _check_mode(mode: str) -> WriteMode:
    if mode not in ("overwrite", "append"):
        raise ValueError(f"write mode must be 'overwrite' or 'append', got {mode!r}")
    return mode  # type: ignore[return-value]


class Tables(Protocol):
    """What the jobs need from the lakehouse."""

    def read(self, full_name: str, version: int | None = None) -> DataFrame:
        """The table (at ``version`` when given) as a Spark DataFrame; ValueError when it does not exist."""
        ...

    def write(self, df: DataFrame, full_name: str, mode: WriteMode = "overwrite") -> int:
        """Write ``df`` as one Delta commit and return the table's new version."""
        ...

    def version(self, full_name: str) -> int:
        """The table's current Delta version, recorded as lineage."""
        ...

    def exists(self, full_name: str) -> bool: ...


class LocalTables:
    """delta-rs tables under the local warehouse; Spark reads and writes them through Arrow."""

    def __init__(self, spark: Callable[[], SparkSession]) -> None:
        self._spark = spark

    def read(self, full_name: str, version: int | None = None) -> DataFrame:
        from deltalake import DeltaTable

        table = DeltaTable(self._existing(full_name), version=version)
        return self._spark().createDataFrame(table.to_pyarrow_table())

    def write(self, df: DataFrame, full_name: str, mode: WriteMode = "overwrite") -> int:
        from deltalake import DeltaTable, write_deltalake

        mode = _check_mode(mode)
        path = self._path(full_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrow = df.toArrow()
        # One commit; on overwrite the schema may change with the code that writes it.
        write_deltalake(str(path), arrow, mode=mode, schema_mode="overwrite" if mode == "overwrite" else None)
        version = DeltaTable(str(path)).version()
        logger.info("wrote %s rows to %s (%s, version %s)", arrow.num_rows, full_name, mode, version)
        return version

    def version(self, full_name: str) -> int:
        from deltalake import DeltaTable

        return DeltaTable(self._existing(full_name)).version()

    def exists(self, full_name: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(str(self._path(full_name)))

    @staticmethod
    def _path(full_name: str) -> Path:
        from jobs.local.paths import table_path

        return table_path(check_table_name(full_name))

    def _existing(self, full_name: str) -> str:
        from deltalake import DeltaTable

        path = str(self._path(full_name))
        if not DeltaTable.is_deltatable(path):
            raise ValueError(f"table {full_name!r} does not exist (no Delta table at {path})")
        return path


class DatabricksTables:
    """Unity Catalog tables through the cluster's Spark session."""

    def __init__(self, spark: Callable[[], SparkSession]) -> None:
        self._spark = spark

    def read(self, full_name: str, version: int | None = None) -> DataFrame:
        check_table_name(full_name)
        if not self.exists(full_name):
            raise ValueError(f"table {full_name!r} does not exist")
        if version is None:
            return self._spark().table(full_name)
        return self._spark().sql(f"SELECT * FROM {full_name} VERSION AS OF {int(version)}")

    def write(self, df: DataFrame, full_name: str, mode: WriteMode = "overwrite") -> int:
        check_table_name(full_name)
        mode = _check_mode(mode)
        writer = df.write.format("delta").mode(mode)
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        writer.saveAsTable(full_name)
        version = self.version(full_name)
        logger.info("wrote %s (%s, version %s)", full_name, mode, version)
        return version

    def version(self, full_name: str) -> int:
        check_table_name(full_name)
        rows = self._spark().sql(f"DESCRIBE HISTORY {full_name} LIMIT 1").collect()
        if not rows:
            raise ValueError(f"table {full_name!r} has no Delta history")
        return int(rows[0]["version"])

    def exists(self, full_name: str) -> bool:
        return bool(self._spark().catalog.tableExists(check_table_name(full_name)))
