"""Where a model's files land for the streaming job, and how a stream reads them.

Databricks: Auto Loader (``cloudFiles``) on the raw schema's landing volume (``Environment.landing_path``, declared by
the stack). Locally (``local.adapters.LocalLanding``): Spark's file source on a folder under
``$MLOPS_HOME/landing/<env>/``, fed by ``mlops land``. Both read Parquet files of the model's ``landing_columns``
(``ModelSpec.landing_schema``), at most ``max_files_per_trigger`` files per micro-batch.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from jobs.platform.model import ModelPackage
    from spec.model import ModelSpec


def landing_arrow_schema(model: ModelSpec) -> pa.Schema:
    """The model's landing columns as the Arrow schema the files are written with (what the stream reads back with
    ``ModelSpec.landing_schema``): one mapping of the declared SQL types, for every writer of landed files."""
    import pyarrow as pa

    types = {
        "STRING": pa.string(),
        "BIGINT": pa.int64(),
        "INT": pa.int32(),
        "DOUBLE": pa.float64(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "BOOLEAN": pa.bool_(),
    }
    return pa.schema([pa.field(c.name, types[c.type]) for c in model.landing_columns])


def daily_tables(package: ModelPackage, source: str, start: date, end: date) -> Iterator[tuple[date, pa.Table]]:
    """The rows of the package's streamed ``source`` (its ``stream_source``, which the caller checked) over
    [start, end], a day at a time, as the Arrow table of that day that lands: only the landing columns, cast to their
    declared types. A day without rows yields nothing. A package with ``landing_days(rows)`` has the window read once
    and split by day; otherwise it is read a day at a time."""
    import pyarrow as pa

    spec = package.spec
    schema = landing_arrow_schema(spec)
    columns = [c.name for c in spec.landing_columns]
    landing_days = getattr(package.module, "landing_days", None)
    window = package.load_sources(start, end)[source] if landing_days is not None else None
    days = landing_days(window) if landing_days is not None else None
    day = start
    while day <= end:
        rows = package.load_sources(day, day)[source] if window is None else window[days == day]
        if not rows.empty:
            table = pa.Table.from_pandas(rows[columns].reset_index(drop=True), preserve_index=False)
            yield day, table.cast(schema)
        day += timedelta(days=1)


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
