"""The monitor's Delta I/O, through delta-rs (``deltalake``): the monitored and baseline tables in, the metric tables
in and out. The only module of the monitor that touches Delta (an import contract keeps it so).

A metric table is partitioned by model version (Delta partitions, ``model_version``). A refresh that recomputes
some windows replaces only the model versions it touched, in one commit (``write_metrics`` with ``versions``):
``merge`` keeps the earlier rows of those versions that it did not recompute, named by ``partitions`` /
``baseline_partition``, and the other versions' files stay as they are. A full refresh replaces the whole table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from local.monitor.errors import MonitorError
from local.monitor.schema import CHANGE_COLUMNS, DRIFT_SCHEMA, PROFILE_SCHEMA
from local.monitor.windows import WindowKey
from local.paths import table_path
from spec.monitoring import BASELINE, MODEL_ID_COL, MonitoredTable

if TYPE_CHECKING:
    from deltalake import DeltaTable


def open_table(full_name: str, columns: Sequence[str], missing_hint: str) -> DeltaTable:
    """The Delta table ``full_name``; a MonitorError when it is missing or lacks any of ``columns``."""
    from deltalake import DeltaTable

    path = table_path(full_name)
    if not DeltaTable.is_deltatable(str(path)):
        raise MonitorError(f"table {full_name!r} does not exist (no Delta table at {path}): {missing_hint}")
    table = DeltaTable(str(path))
    names = {f.name for f in table.schema().fields}
    lacking = [c for c in columns if c not in names]
    if lacking:
        raise MonitorError(
            f"table {full_name!r} lacks the columns {lacking}: the monitor reads each row's timestamp, model version, "
            "model inputs, prediction, probability and label (rows written before the jobs wrote the model's inputs "
            "need rescoring, a baseline written before that needs retraining)"
        )
    return table


def read_table(full_name: str, columns: Sequence[str], missing_hint: str) -> tuple[pa.Table, int]:
    """``columns`` of the table (and the change columns it has) and the Delta version read."""
    table = open_table(full_name, columns, missing_hint)
    names = {f.name for f in table.schema().fields}
    wanted = [*columns, *(c for c in CHANGE_COLUMNS if c in names and c not in columns)]
    return table.to_pyarrow_table(columns=wanted), table.version()


def baseline_keys(table: DeltaTable, timestamp_col: str) -> pa.Table:
    """The baseline's timestamps (``timestamp_col``) and model versions: all its fingerprints need (two columns
    read)."""
    return table.to_pyarrow_table(columns=[timestamp_col, MODEL_ID_COL])


def read_baseline(table: DeltaTable, columns: list[str], versions: set[str], empty: pa.Table) -> pa.Table:
    """The baseline rows of ``versions`` (the filter is pushed down to delta-rs), the columns in ``columns``;
    ``empty`` (the current rows' schema, no rows) when no version is wanted."""
    if not versions:
        return empty
    return table.to_pyarrow_table(columns=columns, filters=[(MODEL_ID_COL, "in", sorted(versions))])


def metric_tables(monitored: MonitoredTable) -> tuple[tuple[str, pa.Schema], tuple[str, pa.Schema]]:
    return (monitored.profile_metrics_table, PROFILE_SCHEMA), (monitored.drift_metrics_table, DRIFT_SCHEMA)


# The metric tables' Delta partitioning: a refresh rewrites the model versions it recomputed, not the whole table.
PARTITION_BY = [MODEL_ID_COL]


def readable(full_name: str, schema: pa.Schema) -> bool:
    """The metric table exists with this monitor's columns and partitioning (else a refresh recomputes every window
    and replaces the table)."""
    from deltalake import DeltaTable

    path = str(table_path(full_name))
    if not DeltaTable.is_deltatable(path):
        return False
    table = DeltaTable(path)
    columns = [f.name for f in table.schema().fields]
    return columns == schema.names and table.metadata().partition_columns == PARTITION_BY


def read_metrics(full_name: str, schema: pa.Schema, versions: set[str] | None = None) -> pa.Table | None:
    """A metric table's rows (of ``versions`` only, when given: the other partitions are not read); None when it does
    not exist or has other columns than ``schema``."""
    from deltalake import DeltaTable

    path = table_path(full_name)
    if not DeltaTable.is_deltatable(str(path)):
        return None
    delta = DeltaTable(str(path))
    if [f.name for f in delta.schema().fields] != schema.names:
        return None
    if versions is None:
        return delta.to_pyarrow_table().cast(schema)
    if not versions:
        return schema.empty_table()
    return delta.to_pyarrow_table(filters=[(MODEL_ID_COL, "in", sorted(versions))]).cast(schema)


def write_metrics(full_name: str, table: pa.Table, versions: set[str] | None = None) -> None:
    """The metric table replaced whole (``versions`` None), or only the partitions of ``versions``, which ``table``
    holds all the rows of (a ValueError for a row of another version, before anything is written)."""
    from deltalake import write_deltalake

    path = table_path(full_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if versions is None:
        # A checkpoint every 10 commits keeps reading the table cheap.
        write_deltalake(
            str(path), table, mode="overwrite", schema_mode="overwrite", partition_by=PARTITION_BY,
            configuration={"delta.checkpointInterval": "10"},
        )  # fmt: skip
        return
    outside = set(pc.unique(table.column(MODEL_ID_COL)).to_pylist()) - versions
    if outside:
        raise ValueError(f"{full_name}: rows of model versions {sorted(outside)} outside the partitions replaced")
    if not versions:
        return
    listed = ", ".join(_sql_string(v) for v in sorted(versions))
    write_deltalake(str(path), table, mode="overwrite", predicate=f"{MODEL_ID_COL} IN ({listed})")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- Partitions: which earlier rows a refresh keeps -----------------------------------------------------------------


def partitions(keys: Iterable[WindowKey], kind: str) -> set[str]:
    """The partitions (granularity, model version, log or drift type ``kind``, window start) of ``keys``."""
    return {f"{k.granularity}|{k.model_version}|{kind}|{k.start_us}" for k in keys}


def baseline_partition(granularity: str, model_version: str) -> str:
    """The BASELINE profile rows of a model version, whatever their window (a prefix, see ``merge``)."""
    return f"{granularity}|{model_version}|{BASELINE}|"


def _partition_keys(table: pa.Table, kind_column: str) -> pa.Array:
    starts = pc.cast(pc.cast(pc.struct_field(table.column("window"), "start"), pa.int64()), pa.string())
    starts = pc.fill_null(starts, "")
    return pc.binary_join_element_wise(
        table.column("granularity"), table.column(MODEL_ID_COL), table.column(kind_column), starts, "|"
    )


def merge(old: pa.Table | None, new: list[pa.Table], schema: pa.Schema, kind_column: str, keep: set[str]) -> pa.Table:
    """The recomputed rows, and the earlier rows of every partition in ``keep`` (``partitions``); a key ending in "|"
    (``baseline_partition``) keeps a BASELINE partition whatever its window."""
    parts = [t for t in new if t.num_rows]
    if old is not None and old.num_rows and keep:
        keys = _partition_keys(old, kind_column)
        exact = pc.is_in(keys, value_set=pa.array(sorted(k for k in keep if not k.endswith("|")), type=pa.string()))
        prefixes = [k for k in keep if k.endswith("|")]
        mask = exact
        for prefix in prefixes:
            mask = pc.or_(mask, pc.starts_with(keys, prefix))
        parts.insert(0, old.filter(mask))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts).combine_chunks()
