"""Where a model's files land for the streaming job, and how a stream reads them.

Databricks: Auto Loader (``cloudFiles``) on the raw schema's landing volume (``Environment.landing_path``, declared by
the stack). Locally (``local.adapters.LocalLanding``): Spark's file source on a folder under
``$MLOPS_HOME/landing/<env>/``, fed by ``mlops land``. Both read Parquet files of the model's ``landing_columns``
(``ModelSpec.landing_schema``), at most ``max_files_per_trigger`` files per micro-batch.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


class Landing(Protocol):
    path: str

    def read_stream(self, spark: SparkSession, schema: StructType | str, max_files_per_trigger: int) -> DataFrame: ...

    def land(self, table: Any, name: str) -> Path:
        """Write the Arrow ``table`` as ``<name>.parquet`` in the folder, replacing a file of that name (a stream
        that read it once does not read it again); the file's path."""
        ...


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

    def land(self, table: Any, name: str) -> Path:
        """Through the volume's FUSE path on the driver; written under a hidden name first (Auto Loader skips names
        that start with a dot or an underscore), then renamed, so the stream never reads half a file."""
        import pyarrow.parquet as pq

        folder = Path(self.path)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.parquet"
        hidden = folder / f".{name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(table, hidden, coerce_timestamps="us", allow_truncated_timestamps=True)
        os.replace(hidden, target)
        return target
