"""Delta tables on this machine: delta-rs (``deltalake``) tables under ``$MLOPS_HOME/warehouse/<catalog>/<schema>/
<table>``, exchanged with Spark through Arrow. A write is one Delta commit, as on Databricks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.platform.tables import TableWrite, WriteMode, check_mode, check_table_name
from local.paths import table_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)


class LocalTables:
    """delta-rs tables under the local warehouse; Spark reads and writes them through Arrow."""

    def __init__(self, spark: Callable[[], SparkSession]) -> None:
        self._spark = spark

    def read(self, full_name: str, version: int | None = None) -> DataFrame:
        from deltalake import DeltaTable

        table = DeltaTable(self._existing(full_name), version=version)
        return self._spark().createDataFrame(table.to_pyarrow_table())

    def write(self, df: DataFrame, full_name: str, mode: WriteMode = "overwrite") -> TableWrite:
        from deltalake import DeltaTable, write_deltalake

        mode = check_mode(mode)
        path = self.path(full_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrow = df.toArrow()
        # One commit; on overwrite the schema may change with the code that writes it.
        write_deltalake(str(path), arrow, mode=mode, schema_mode="overwrite" if mode == "overwrite" else None)
        written = TableWrite(full_name, DeltaTable(str(path)).version(), arrow.num_rows)
        logger.info("wrote %s rows to %s (%s, version %s)", written.rows, full_name, mode, written.version)
        return written

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
