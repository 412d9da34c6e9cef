"""Where a model's files land for the streaming job, and how a stream reads them.

Databricks: Auto Loader (``cloudFiles``) on the raw schema's landing volume (``Environment.landing_path``, declared by
the stack). Locally (``local.adapters.LocalLanding``): Spark's file source on a folder under
``$MLOPS_HOME/landing/<env>/``, fed by ``mlops land``. Both read Parquet files of the model's ``landing_columns``
(``ModelSpec.landing_schema``), at most ``max_files_per_trigger`` files per micro-batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


class Landing(Protocol):
    path: str

    def read_stream(self, spark: SparkSession, schema: StructType | str, max_files_per_trigger: int) -> DataFrame: ...


class DatabricksLanding:
    """Auto Loader: discovers new files incrementally and remembers them in the stream's checkpoint."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read_stream(self, spark: SparkSession, schema: StructType | str, max_files_per_trigger: int) -> DataFrame:
        return (
            spark.readStream.format("cloudFiles")
            .option("cloudFiles.format", "parquet")
            .option("cloudFiles.maxFilesPerTrigger", str(max_files_per_trigger))
            .schema(schema)
            .load(self.path)
        )
