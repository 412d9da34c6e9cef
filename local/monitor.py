"""The local quality monitor: Databricks Lakehouse Monitoring's ``inference_log`` metric tables, computed here.

``refresh_monitor(env, monitored)`` reads a monitored table (``spec.monitoring.monitored_tables``) and the baseline
table with delta-rs, and writes ``<table>_profile_metrics`` and ``<table>_drift_metrics`` as Delta tables, with
Lakehouse Monitoring's column names and meanings (docs/monitoring.md lists the schema and the differences). Metrics
are computed per granularity window, per model version and per slice (the whole table, and each value of each
slicing expression), for ``MONITORED_FEATURES`` plus the prediction, the probability and the label:

* profile rows (``log_type`` INPUT for the monitored table, BASELINE for the baseline table): counts, nulls, NaNs,
  zeros, distinct values, mean, standard deviation, quantiles, frequent items; on the ``:table`` rows the model
  quality of the labelled rows (null when the window has no label: unlabelled, never 0);
* drift rows: each window against the previous window (CONSECUTIVE) and against the baseline rows of the model
  version that scored it (BASELINE).

Windows are aligned in UTC: minutes, hours and days on the Unix epoch, weeks on Mondays (``WEEK_ORIGIN_US``), months on
calendar months. A refresh computes only the windows whose rows changed since the last refresh (new windows, and
windows whose labels arrived later), recognised by a per-window fingerprint kept in
``$MLOPS_HOME/monitoring/<table>.json``, plus the CONSECUTIVE drift of the window after each of them. Refreshes of one
table take turns (an exclusive lock, ``<table>.lock`` beside the state), and the state is replaced atomically.

Every statistic is computed for all windows and slices of a granularity at once (one sort per column, then segment
reductions), not per window: the formulas are scipy's, and tests/integration/test_monitor.py checks each against
scipy itself (``ks_2samp``, ``wasserstein_distance``, ``chi2_contingency(correction=False)``, ``jensenshannon``)
and scikit-learn (ROC AUC, log loss). See ``_numeric_drift`` for the KS p-value and the PSI's bins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from local.files import exclusive_lock, read_json, write_json_atomically
from local.paths import mlops_home, table_path
from spec.config import GRANULARITIES, Environment
from spec.monitoring import (
    DRIFT_ALERT_COLUMNS,
    LABEL_COL,
    MODEL_ID_COL,
    MONITORED_FEATURES,
    PREDICTION_COL,
    PREDICTION_PROBA_COL,
    TABLE_COLUMN,
    TIMESTAMP_COL,
    MonitoredTable,
)

if TYPE_CHECKING:
    import pandas as pd
    from deltalake import DeltaTable

logger = logging.getLogger(__name__)

# Bump when a metric's definition changes: the next refresh then recomputes every window (and monitor_version).
LOGIC_VERSION = 1
PROFILE_QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
# Population stability index: 10 bins cut at the reference's deciles (see ``_numeric_drift``).
PSI_BINS = 10
PSI_FLOOR = 1e-4
FREQUENT_ITEMS = 20
# Window values per chunk of the drift computation (see _numeric_drift).
_CHUNK_VALUES = 1 << 15
# Threads for the per-column work and the table reads and writes.
_THREADS = max(1, min(4, os.cpu_count() or 1))
# Weekly windows start on Mondays 00:00 UTC (1970-01-05 was a Monday), as Spark's date_trunc('week') does.
WEEK_ORIGIN_US = 4 * 86_400 * 1_000_000
INPUT, BASELINE = "INPUT", "BASELINE"
CONSECUTIVE = "CONSECUTIVE"
# Classes: profiled as numbers, compared as categories (drift by chi-squared and distances, frequent items).
CLASS_COLUMNS = (PREDICTION_COL, LABEL_COL)
MONITORED_COLUMNS = (*MONITORED_FEATURES, PREDICTION_COL, PREDICTION_PROBA_COL, LABEL_COL)
# Rows of the monitored table that say when they changed: a window's fingerprint takes their latest value.
CHANGE_COLUMNS = ("scored_at", "labeled_at")

_US = 1_000_000
_WINDOW_CODE_VERSION = 1 << 40  # seconds since 1970 stay below it until the year 36812
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400, "week": 7 * 86_400}
_GRANULARITY = re.compile(r"^(\d+) (minute|hour|day|week|month)s?$")
_TS = pa.timestamp("us", tz="UTC")
_SPARK_TYPES = {
    pa.string(): "string", pa.large_string(): "string", pa.float64(): "double", pa.float32(): "float",
    pa.int64(): "bigint", pa.int32(): "int", pa.int16(): "smallint", pa.int8(): "tinyint", pa.bool_(): "boolean",
}  # fmt: skip


class MonitorError(ValueError):
    """The monitor cannot refresh; the message names the table and what to run first."""


# --- The metric tables' schema -------------------------------------------------------------------------------------

WINDOW_TYPE = pa.struct([("start", _TS), ("end", _TS)])
AVERAGED_TYPE = pa.struct(
    [("one_vs_all", pa.map_(pa.string(), pa.float64())), ("macro", pa.float64()), ("weighted", pa.float64())]
)
TEST_TYPE = pa.struct([("statistic", pa.float64()), ("pvalue", pa.float64())])
PROFILE_SCHEMA = pa.schema(
    [
        ("window", WINDOW_TYPE),
        ("granularity", pa.string()),
        (MODEL_ID_COL, pa.string()),
        ("log_type", pa.string()),
        ("logging_table_commit_version", pa.int32()),
        ("monitor_version", pa.int64()),
        ("slice_key", pa.string()),
        ("slice_value", pa.string()),
        ("column_name", pa.string()),
        ("data_type", pa.string()),
        ("count", pa.int64()),
        ("num_nulls", pa.int64()),
        ("avg", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("stddev", pa.float64()),
        ("median", pa.float64()),
        ("quantiles", pa.list_(pa.float64())),
        ("distinct_count", pa.int64()),
        ("num_zeros", pa.int64()),
        ("num_nan", pa.int64()),
        ("min_length", pa.float64()),
        ("max_length", pa.float64()),
        ("avg_length", pa.float64()),
        ("percent_null", pa.float64()),
        ("percent_zeros", pa.float64()),
        ("percent_nan", pa.float64()),
        ("percent_distinct", pa.float64()),
        ("frequent_items", pa.list_(pa.struct([("item", pa.string()), ("count", pa.int64())]))),
        ("non_null_columns", pa.list_(pa.string())),
        ("accuracy_score", pa.float64()),
        ("precision", AVERAGED_TYPE),
        ("recall", AVERAGED_TYPE),
        ("f1_score", AVERAGED_TYPE),
        ("roc_auc_score", pa.float64()),
        ("log_loss", pa.float64()),
        (
            "confusion_matrix",
            pa.list_(pa.struct([("prediction", pa.string()), ("label", pa.string()), ("count", pa.int64())])),
        ),
    ]
)
DRIFT_SCHEMA = pa.schema(
    [
        ("window", WINDOW_TYPE),
        ("granularity", pa.string()),
        (MODEL_ID_COL, pa.string()),
        ("monitor_version", pa.int64()),
        ("slice_key", pa.string()),
        ("slice_value", pa.string()),
        ("column_name", pa.string()),
        ("data_type", pa.string()),
        ("window_cmp", WINDOW_TYPE),
        ("drift_type", pa.string()),
        ("count_delta", pa.int64()),
        ("avg_delta", pa.float64()),
        ("percent_null_delta", pa.float64()),
        ("percent_zeros_delta", pa.float64()),
        ("percent_distinct_delta", pa.float64()),
        ("non_null_columns_delta", pa.struct([("added", pa.int32()), ("missing", pa.int32())])),
        ("js_distance", pa.float64()),
        ("ks_test", TEST_TYPE),
        ("wasserstein_distance", pa.float64()),
        ("population_stability_index", pa.float64()),
        ("chi_squared_test", TEST_TYPE),
        ("tv_distance", pa.float64()),
        ("l_infinity_distance", pa.float64()),
    ]
)


# --- Results --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowKey:
    granularity: str
    model_version: str
    start: datetime


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did. ``computed``: windows whose profile and drift were recomputed; ``consecutive_only``:
    windows whose CONSECUTIVE drift alone was recomputed (the window before them changed)."""

    table: str
    table_version: int
    monitor_version: int
    profile_table: str
    drift_table: str
    windows: int
    computed: tuple[WindowKey, ...]
    consecutive_only: tuple[WindowKey, ...]
    removed: tuple[WindowKey, ...]
    profile_rows: int
    drift_rows: int
    written: bool
    seconds: float


@dataclass(frozen=True)
class WindowSummary:
    """One window of one model version, whole table: what `mlops monitor` prints."""

    granularity: str
    start: datetime
    model_version: str
    rows: int
    labelled_rows: int
    roc_auc: float | None
    worst_psi: float | None
    worst_psi_column: str | None


# --- Windows --------------------------------------------------------------------------------------------------------


def parse_granularity(text: str) -> tuple[int, str]:
    """ "1 day" -> (1, "day"); a clear error for anything Lakehouse Monitoring does not take."""
    match = _GRANULARITY.match(text.strip())
    if text not in GRANULARITIES or match is None:
        raise MonitorError(f"granularity {text!r} is not one of {', '.join(GRANULARITIES)}")
    return int(match.group(1)), match.group(2)


def window_starts(ts_us: np.ndarray, granularity: str) -> np.ndarray:
    """The start (microseconds since the epoch, UTC) of the window of each timestamp."""
    count, unit = parse_granularity(granularity)
    if unit == "month":
        months = ts_us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
        return ((months // count) * count).astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)
    step = count * _UNIT_SECONDS[unit] * _US
    origin = WEEK_ORIGIN_US if unit == "week" else 0
    return origin + ((ts_us - origin) // step) * step


def shift_windows(starts_us: np.ndarray, granularity: str, by: int) -> np.ndarray:
    """Window starts moved ``by`` windows (-1: the previous window, 1: the next)."""
    count, unit = parse_granularity(granularity)
    if unit == "month":
        months = starts_us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64) + by * count
        return months.astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)
    return starts_us + by * count * _UNIT_SECONDS[unit] * _US


# --- Reading --------------------------------------------------------------------------------------------------------


def _open_delta(full_name: str, columns: Sequence[str], missing_hint: str) -> DeltaTable:
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


def _read_delta(full_name: str, columns: Sequence[str], missing_hint: str) -> tuple[pa.Table, int]:
    table = _open_delta(full_name, columns, missing_hint)
    names = {f.name for f in table.schema().fields}
    wanted = [*columns, *(c for c in CHANGE_COLUMNS if c in names and c not in columns)]
    return table.to_pyarrow_table(columns=wanted), table.version()


def _missing_hint(env: Environment, monitored: MonitoredTable) -> str:
    if monitored.table == env.predictions_table:
        return f"score flights first: mlops run batch-inference --env {env.name} (or streaming-inference)"
    if monitored.table == env.served_table:
        return (
            f"the labels job writes it from the serving endpoint's inference table: serve requests (mlops serve "
            f"--env {env.name}), then run mlops run labels --env {env.name}"
        )
    return "create it first"


@dataclass
class _Column:
    """One monitored column over the rows of the current table followed by the baseline's."""

    name: str
    kind: str  # "numeric", "categorical" or "class"
    data_type: str
    null: np.ndarray  # missing (SQL NULL)
    nan: np.ndarray | None = None  # NaN values (numeric only)
    # Numeric (and class) columns: dense ranks into the sorted distinct values, -1 when null or NaN.
    rank: np.ndarray | None = None
    uniq: np.ndarray | None = None
    zero_rank: int = -1
    # Categorical (and class) columns: codes into the sorted categories, -1 when null.
    code: np.ndarray | None = None
    categories: np.ndarray | None = None


@dataclass
class _Frame:
    """The current table's rows then the baseline's, as numpy arrays: what every window's metrics come from."""

    n_current: int
    ts: np.ndarray  # microseconds UTC; the baseline's may be -1 (no timestamp)
    ts_null: np.ndarray
    version: np.ndarray  # codes into versions
    versions: list[str]
    columns: dict[str, _Column]
    slices: dict[str, tuple[np.ndarray, np.ndarray]]  # slice column -> (codes, -1 null; sorted values as strings)
    change_us: dict[str, np.ndarray]  # scored_at / labeled_at of the current rows, -1 when null
    label_known: np.ndarray

    @property
    def n(self) -> int:
        return len(self.ts)


def _ts_us(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    array = column.combine_chunks()
    if not pa.types.is_timestamp(array.type):
        array = pc.cast(array, _TS)
    array = array.cast(pa.timestamp("us", tz=array.type.tz)).view(pa.int64())
    null = np.asarray(array.is_null(), dtype=bool)
    return np.asarray(array.fill_null(-1), dtype=np.int64), null


def _encode_strings(array: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Codes into the sorted distinct values (-1 for null), in O(rows): Arrow's dictionary encoding, then sorting
    only the dictionary."""
    encoded = pc.dictionary_encode(pc.cast(array, pa.string())).combine_chunks()
    dictionary = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    indices = np.asarray(encoded.indices.fill_null(-1), dtype=np.int64)
    if len(dictionary) == 0:
        return indices, np.asarray([], dtype=object)
    order = np.argsort(dictionary.astype(str), kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    codes = np.where(indices >= 0, position[np.maximum(indices, 0)], -1)
    return codes, dictionary[order]


def _build_frame(current: pa.Table, baseline: pa.Table, slicing: Sequence[str]) -> _Frame:
    n_current = current.num_rows
    combined = {}
    for name in (TIMESTAMP_COL, MODEL_ID_COL, *MONITORED_COLUMNS, *slicing):
        if name in combined:
            continue
        target = current.schema.field(name).type
        cur = current.column(name)
        base = baseline.column(name)
        if pa.types.is_string(target) or pa.types.is_large_string(target):
            cur, base = pc.cast(cur, pa.string()), pc.cast(base, pa.string())
        elif base.type != target:
            base = pc.cast(base, target)
        combined[name] = (pa.chunked_array(cur.chunks + base.chunks, type=cur.type), target)

    ts, ts_null = _ts_us(combined[TIMESTAMP_COL][0])
    version, versions = _encode_strings(combined[MODEL_ID_COL][0])
    columns: dict[str, _Column] = {}
    for name in MONITORED_COLUMNS:
        array, arrow_type = combined[name]
        data_type = _SPARK_TYPES.get(arrow_type, str(arrow_type))
        null = np.asarray(array.is_null(), dtype=bool)
        if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
            code, categories = _encode_strings(array)
            columns[name] = _Column(name, "categorical", data_type, null, code=code, categories=categories)
            continue
        if not (pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)):
            raise MonitorError(f"column {name!r} has type {arrow_type}: the monitor profiles numbers and strings")
        values = np.asarray(pc.cast(array, pa.float64()).fill_null(np.nan), dtype=np.float64)
        nan = np.isnan(values) & ~null
        valid = ~(null | nan)
        uniq, inverse = np.unique(values[valid], return_inverse=True)
        rank = np.full(len(values), -1, dtype=np.int64)
        rank[valid] = inverse
        zero = np.searchsorted(uniq, 0.0)
        zero_rank = int(zero) if zero < len(uniq) and uniq[zero] == 0.0 else -1
        column = _Column(name, "numeric", data_type, null, nan=nan, rank=rank, uniq=uniq, zero_rank=zero_rank)
        if name in CLASS_COLUMNS:
            column.kind = "class"
            column.code = rank
            column.categories = np.asarray([_class_name(v) for v in uniq], dtype=object)
        columns[name] = column

    slices = {name: _encode_strings(combined[name][0]) for name in slicing}
    change = {}
    for name in CHANGE_COLUMNS:
        if name in current.column_names:
            values, null = _ts_us(current.column(name))
            change[name] = np.where(null, -1, values)
    label_known = ~columns[LABEL_COL].null[:n_current]
    return _Frame(n_current, ts, ts_null, version, list(versions), columns, slices, change, label_known)


def _class_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# --- Groups: (model version, window, slice) -------------------------------------------------------------------------


@dataclass(frozen=True)
class _GroupCodec:
    """(slice spec, model version, window, slice value) as one integer, ordered the same way."""

    n_versions: int
    n_windows: int  # the rows' windows, plus one for the baseline
    n_slices: int  # slice values, plus one for none (the whole table, or a null value)

    def encode(self, spec, version, window, slice_code) -> np.ndarray:
        return ((spec * self.n_versions + version) * self.n_windows + window) * self.n_slices + slice_code + 1

    def decode(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rest, slice_plus = np.divmod(keys, self.n_slices)
        rest, window = np.divmod(rest, self.n_windows)
        spec, version = np.divmod(rest, self.n_versions)
        return spec, version, window, slice_plus - 1


@dataclass
class _Groups:
    """Every (slice spec, model version, window, slice value) group of one granularity's rows. A row is an entry of
    each slice spec (spec 0: the whole table; spec k: slicing expression k - 1); the baseline's rows sit in the
    window after the last (``baseline_window``)."""

    entry_row: np.ndarray
    entry_group: np.ndarray
    keys: np.ndarray  # sorted group keys (``codec``)
    codec: _GroupCodec
    starts: np.ndarray  # window starts (microseconds)
    spec: np.ndarray
    version: np.ndarray
    window: np.ndarray
    slice_code: np.ndarray  # -1: the whole table, or a null slice value
    rows: np.ndarray  # rows per group

    @property
    def size(self) -> int:
        return len(self.keys)

    @property
    def baseline_window(self) -> int:
        return len(self.starts)

    def find(self, window: np.ndarray) -> np.ndarray:
        """Per group, the group of the same slice and model version in ``window`` (-1 where there is none)."""
        wanted = self.codec.encode(self.spec, self.version, window, self.slice_code)
        at = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return np.where((window >= 0) & (self.keys[at] == wanted), at, -1)


def _make_groups(frame: _Frame, rows: np.ndarray, granularity: str, slicing: Sequence[str]) -> _Groups:
    is_base = rows >= frame.n_current
    starts_all = window_starts(frame.ts[rows[~is_base]], granularity)
    starts = np.unique(starts_all)
    window = np.full(len(rows), len(starts), dtype=np.int64)
    window[~is_base] = np.searchsorted(starts, starts_all)
    version = frame.version[rows]
    codec = _GroupCodec(
        n_versions=max(len(frame.versions), 1),
        n_windows=len(starts) + 1,
        n_slices=max([len(frame.slices[s][1]) for s in slicing] + [0]) + 1,
    )
    entry_keys = [
        codec.encode(spec, version, window, np.full(len(rows), -1) if name is None else frame.slices[name][0][rows])
        for spec, name in enumerate([None, *slicing])
    ]
    keys, entry_group = np.unique(np.concatenate(entry_keys), return_inverse=True)
    entry_group = entry_group.astype(np.int64)
    return _Groups(
        np.tile(rows, len(entry_keys)),
        entry_group,
        keys,
        codec,
        starts,
        *codec.decode(keys),
        np.bincount(entry_group, minlength=len(keys)),
    )


# --- Statistics over all groups at once -----------------------------------------------------------------------------


@dataclass
class _Sorted:
    """The valid values of one numeric column, sorted by (group, value): the segments every statistic reads."""

    key: np.ndarray  # group * stride + rank, ascending
    group: np.ndarray
    rank: np.ndarray
    value: np.ndarray  # centred on ``center`` (prefix sums stay accurate)
    center: float
    start: np.ndarray  # per group: offset of its first value
    n: np.ndarray  # per group: number of valid values
    run_end: np.ndarray  # per entry: offset just past the last entry equal to it (same group, same value)
    run_last: np.ndarray  # offset of the last entry of each run (a run: one distinct value of one group)
    cums: np.ndarray  # prefix sums of ``value``, one longer
    stride: int


def _sort_column(groups: _Groups, column: _Column, for_drift: bool) -> _Sorted:
    """The column's valid values by (group, value). ``for_drift``: also what the numeric drift reads (run ends, prefix
    sums)."""
    rank = column.rank[groups.entry_row]
    valid = rank >= 0
    stride = len(column.uniq) + 1
    key = np.sort(groups.entry_group[valid] * stride + rank[valid])
    group = key // stride
    rank = key - group * stride
    center = float(column.uniq[len(column.uniq) // 2]) if len(column.uniq) else 0.0
    value = column.uniq[rank] - center
    n = np.bincount(group, minlength=groups.size)
    start = np.cumsum(n) - n
    new_run = np.ones(len(key), dtype=bool)
    np.not_equal(key[1:], key[:-1], out=new_run[1:])
    run_first = np.flatnonzero(new_run)
    ends = np.append(run_first[1:], len(key)).astype(np.int64)
    run_end = cums = np.empty(0)
    if for_drift:
        run_end = ends[np.cumsum(new_run) - 1] if len(key) else ends
        cums = np.zeros(len(key) + 1)
        np.cumsum(value, out=cums[1:])
    return _Sorted(key, group, rank, value, center, start, n, run_end, ends - 1, cums, stride)


def _nan_where(values: np.ndarray, undefined: np.ndarray) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).copy()
    out[undefined] = np.nan
    return out


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def _count_rows(groups: _Groups, rows_mask: np.ndarray) -> np.ndarray:
    """Per group, how many of its rows ``rows_mask`` marks."""
    if not rows_mask.any():
        return np.zeros(groups.size, dtype=np.int64)
    return np.bincount(groups.entry_group[rows_mask[groups.entry_row]], minlength=groups.size)


def _segment_sums(values: np.ndarray, s: _Sorted) -> np.ndarray:
    """Per group, the sum of ``values`` (aligned with the sorted entries) over its segment."""
    out = np.zeros(len(s.n))
    filled = np.flatnonzero(s.n)
    if len(filled):
        out[filled] = np.add.reduceat(values, s.start[filled])
    return out


def _numeric_profile(groups: _Groups, column: _Column, s: _Sorted) -> dict[str, np.ndarray]:
    size = groups.size
    count = groups.rows
    num_nulls = _count_rows(groups, column.null)
    num_nan = _count_rows(groups, column.nan)
    n = s.n
    has = n > 0
    mean_c = _divide(_segment_sums(s.value, s), n)
    deviation = s.value - np.nan_to_num(mean_c)[s.group]
    squares = _segment_sums(deviation * deviation, s)
    stddev = _nan_where(np.sqrt(squares / np.maximum(n - 1, 1)), n < 2)
    first = np.where(has, s.start, 0)
    last = np.where(has, s.start + n - 1, 0)
    uniq = column.uniq
    quantiles = np.full((size, len(PROFILE_QUANTILES)), np.nan)
    num_zeros = np.zeros(size, dtype=np.int64)
    if len(s.key):
        minimum, maximum = uniq[s.rank[first]], uniq[s.rank[last]]
        for i, q in enumerate(PROFILE_QUANTILES):
            quantiles[:, i] = _quantile(s, uniq, n, q)
        quantiles[~has] = np.nan
        distinct = np.bincount(s.group[s.run_last], minlength=size)
        if column.zero_rank >= 0:
            num_zeros = np.bincount(s.group[s.rank == column.zero_rank], minlength=size)
    else:
        minimum = maximum = np.full(size, np.nan)
        distinct = np.zeros(size, dtype=np.int64)
    return {
        "count": count,
        "num_nulls": num_nulls,
        "num_nan": num_nan,
        "avg": mean_c + s.center,
        "min": _nan_where(minimum, ~has),
        "max": _nan_where(maximum, ~has),
        "stddev": stddev,
        "median": _quantile(s, uniq, n, 0.5) if len(s.key) else np.full(size, np.nan),
        "quantiles": quantiles,
        "distinct_count": distinct.astype(np.int64),
        "num_zeros": num_zeros.astype(np.int64),
        "percent_null": 100.0 * _divide(num_nulls, count),
        "percent_zeros": 100.0 * _divide(num_zeros, count),
        "percent_nan": 100.0 * _divide(num_nan, count),
        "percent_distinct": 100.0 * _divide(distinct, count),
    }


def _quantile(s: _Sorted, uniq: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """numpy's default ("linear") quantile of each group's values."""
    position = q * np.maximum(n - 1, 0)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(n - 1, 0))
    base = np.where(n > 0, s.start, 0)
    lo_value = uniq[s.rank[np.minimum(base + low, len(s.rank) - 1)]]
    hi_value = uniq[s.rank[np.minimum(base + high, len(s.rank) - 1)]]
    return _nan_where(lo_value + (position - low) * (hi_value - lo_value), n == 0)


def _numeric_drift(s: _Sorted, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Kolmogorov-Smirnov, Wasserstein-1, population stability index and Jensen-Shannon distance of each group
    ``a[i]`` (the window) against the group ``b[i]`` (the previous window, or the baseline), over valid values.

    * ``ks_test``: the two-sample statistic sup|F_a - F_b|, exactly ``scipy.stats.ks_2samp``'s, and its two-sided
      p-value from the limiting Kolmogorov distribution with Stephens' small-sample correction,
      ``scipy.stats.kstwobign.sf((sqrt(e) + 0.12 + 0.11 / sqrt(e)) * D)`` with e = n m / (n + m) (what
      ``ks_2samp`` returned before scipy 1.5). Its current methods (exact, or ``kstwo`` for "asymp") cost
      milliseconds per window, and a refresh has thousands of windows; the p-values differ by less than 0.02.
    * ``wasserstein_distance``: the integral of |F_a - F_b|, as ``scipy.stats.wasserstein_distance``, in the
      column's units. Both are evaluated at the window's distinct values only, against prefix sums of the sorted
      reference, so a window costs O(its values x log(reference)), not O(reference).
    * ``population_stability_index``: sum over bins of (p_a - p_b) * ln(p_a / p_b). The bins are cut at the
      reference's deciles (``PSI_BINS`` = 10 bins; cut points are reference values, numpy's "lower" quantiles
      at 0.1 .. 0.9, a bin is (cut_{i-1}, cut_i]); shares below ``PSI_FLOOR`` count as ``PSI_FLOOR``. Repeated cut
      points (a column with few distinct values) leave empty bins, which add nothing.
    * ``js_distance``: ``scipy.spatial.distance.jensenshannon`` (natural log) of the same bins' shares.
    """
    n_pairs = len(a)
    out = {k: np.full(n_pairs, np.nan) for k in ("ks_statistic", "ks_pvalue", "wasserstein", "psi", "js")}
    ok = np.flatnonzero((s.n[a] > 0) & (s.n[b] > 0))
    if not len(ok):
        return out
    runs_n = np.bincount(s.group[s.run_last], minlength=len(s.n))
    runs_start = np.cumsum(runs_n) - runs_n
    # Decile cut points of every group, as sort keys (group * stride + rank) and as counts of values <= them.
    fractions = np.arange(1, PSI_BINS) / PSI_BINS
    has = s.n > 0
    cut_at = s.start[:, None] + np.floor(fractions[None, :] * np.maximum(s.n - 1, 0)[:, None]).astype(np.int64)
    cut_at = np.where(has[:, None], cut_at, 0)
    cut_keys = np.where(has[:, None], s.key[cut_at], np.arange(len(s.n))[:, None] * s.stride).ravel()
    cut_le = np.where(has[:, None], s.run_end[cut_at] - s.start[:, None], 0)
    # Pairs in chunks of about _CHUNK_VALUES window values: the temporaries stay in cache whatever the table's size.
    chunk = np.cumsum(runs_n[a[ok]]) // _CHUNK_VALUES
    bounds = np.flatnonzero(np.diff(chunk)) + 1
    for part in np.split(ok, bounds):
        stats = _numeric_drift_chunk(s, a[part], b[part], runs_start, runs_n, cut_keys, cut_le)
        for name, values in stats.items():
            out[name][part] = values
    return out


def _numeric_drift_chunk(
    s: _Sorted,
    a: np.ndarray,
    b: np.ndarray,
    runs_start: np.ndarray,
    runs_n: np.ndarray,
    cut_keys: np.ndarray,
    cut_le: np.ndarray,
) -> dict[str, np.ndarray]:
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import kstwobign

    na, mb = s.n[a], s.n[b]
    count = runs_n[a]
    offsets = np.cumsum(count) - count
    pair = np.repeat(np.arange(len(a)), count)
    position = s.run_last[runs_start[a][pair] + np.arange(len(pair)) - offsets[pair]]
    x = s.value[position]
    rho = s.rank[position]
    k = position - s.start[a][pair] + 1  # values of the window <= x
    multiplicity = np.diff(k, prepend=0)
    multiplicity[offsets] = k[offsets]
    n_a = na[pair]
    ref = b[pair]
    m = mb[pair]
    ref_start = s.start[ref]
    query = ref * s.stride + rho
    le = np.searchsorted(s.key, query, side="right") - ref_start  # reference values <= x
    lt = np.searchsorted(s.key, query, side="left") - ref_start  # reference values < x
    last = np.zeros(len(pair), dtype=bool)
    last[offsets + count - 1] = True
    nxt = np.minimum(np.arange(len(pair)) + 1, len(pair) - 1)
    out = {}

    f_a = k / n_a
    above = np.abs(f_a - le / m)
    below_next = np.where(last, 0.0, np.abs(f_a - lt[nxt] / m))
    statistic = np.maximum(np.maximum.reduceat(np.maximum(above, below_next), offsets), lt[offsets] / mb)
    root = np.sqrt(na * mb / (na + mb))
    out["ks_statistic"] = statistic
    out["ks_pvalue"] = np.clip(kstwobign.sf((root + 0.12 + 0.11 / root) * statistic), 0.0, 1.0)

    def prefix(c: np.ndarray) -> np.ndarray:
        return s.cums[ref_start + c] - s.cums[ref_start]

    # I(x) = integral of F_b up to x; between two distinct window values F_a is constant (f_a), and |f_a - F_b| is
    # (f_a - F_b) plus twice its positive part beyond the first reference value where F_b exceeds f_a.
    integral = (le * x - prefix(le)) / m
    x_next, integral_next = x[nxt], integral[nxt]
    j = np.minimum((k * m) // n_a, m - 1)  # F_b > f_a from the reference's (j+1)-th value on
    cross = ref_start + j
    cross_value = s.value[cross]
    cross_le = s.run_end[cross] - ref_start
    cross_integral = (cross_le * cross_value - prefix(cross_le)) / m
    later = cross_value > x
    a_value = np.where(later, cross_value, x)
    a_integral = np.where(later, cross_integral, integral)
    linear = f_a * (x_next - x) - (integral_next - integral)
    excess = np.where(a_value < x_next, (integral_next - a_integral) - f_a * (x_next - a_value), 0.0)
    tail = (prefix(m) - prefix(le) - (m - le) * x) / m
    pieces = np.where(last, tail, linear + 2.0 * excess)
    out["wasserstein"] = np.add.reduceat(pieces, offsets) + integral[offsets]

    bins = np.searchsorted(cut_keys, query, side="left") - (PSI_BINS - 1) * ref
    current = np.bincount(pair * PSI_BINS + bins, weights=multiplicity, minlength=len(a) * PSI_BINS)
    p_current = current.reshape(len(a), PSI_BINS) / na[:, None]
    reference_cum = np.concatenate([np.zeros((len(a), 1)), cut_le[b], mb[:, None]], axis=1)
    p_reference = np.diff(reference_cum, axis=1) / mb[:, None]
    cur_f, ref_f = np.maximum(p_current, PSI_FLOOR), np.maximum(p_reference, PSI_FLOOR)
    out["psi"] = np.sum((cur_f - ref_f) * np.log(cur_f / ref_f), axis=1)
    out["js"] = jensenshannon(p_reference, p_current, axis=1)
    return out


def _category_counts(groups: _Groups, column: _Column) -> np.ndarray:
    code = column.code[groups.entry_row]
    valid = code >= 0
    n_categories = max(len(column.categories), 1)
    flat = np.bincount(
        groups.entry_group[valid] * n_categories + code[valid], minlength=groups.size * n_categories
    ).astype(np.int64)
    return flat.reshape(groups.size, n_categories)


def _categorical_profile(groups: _Groups, column: _Column, counts: np.ndarray) -> dict[str, object]:
    count = groups.rows
    num_nulls = _count_rows(groups, column.null)
    present = counts > 0
    distinct = present.sum(axis=1)
    top = np.argsort(-counts, axis=1, kind="stable")[:, :FREQUENT_ITEMS]
    top_counts = np.take_along_axis(counts, top, axis=1)
    keep = top_counts > 0
    items = pa.StructArray.from_arrays(
        [pa.array(column.categories[top[keep]], type=pa.string()), pa.array(top_counts[keep], type=pa.int64())],
        names=["item", "count"],
    )
    offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    profile: dict[str, object] = {
        "count": count,
        "num_nulls": num_nulls,
        "distinct_count": distinct.astype(np.int64),
        "percent_null": 100.0 * _divide(num_nulls, count),
        "percent_distinct": 100.0 * _divide(distinct, count),
        "frequent_items": pa.ListArray.from_arrays(pa.array(offsets), items),
    }
    if column.kind == "categorical":
        lengths = np.asarray([len(str(c)) for c in column.categories], dtype=np.float64)
        if len(lengths):
            nonnull = counts.sum(axis=1)
            profile["min_length"] = _nan_where(np.where(present, lengths, np.inf).min(axis=1), nonnull == 0)
            profile["max_length"] = _nan_where(np.where(present, lengths, -np.inf).max(axis=1), nonnull == 0)
            profile["avg_length"] = _divide(counts @ lengths, nonnull)
    return profile


def _categorical_drift(counts: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Chi-squared test of homogeneity of the 2 x categories table (window, reference), as
    ``scipy.stats.chi2_contingency(table, correction=False)`` over the categories either side has; total
    variation, L-infinity and Jensen-Shannon (natural log) distances of the category shares."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2

    n_pairs = len(a)
    out = {k: np.full(n_pairs, np.nan) for k in ("chi2_statistic", "chi2_pvalue", "tv", "linf", "js")}
    observed_a, observed_b = counts[a].astype(np.float64), counts[b].astype(np.float64)
    na, nb = observed_a.sum(axis=1), observed_b.sum(axis=1)
    ok = (na > 0) & (nb > 0)
    if not ok.any():
        return out
    observed_a, observed_b, na, nb = observed_a[ok], observed_b[ok], na[ok], nb[ok]
    p, q = observed_a / na[:, None], observed_b / nb[:, None]
    difference = np.abs(p - q)
    out["tv"][ok] = 0.5 * difference.sum(axis=1)
    out["linf"][ok] = difference.max(axis=1)
    out["js"][ok] = jensenshannon(q, p, axis=1)
    column_total = observed_a + observed_b
    present = column_total > 0
    total = (na + nb)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_a = na[:, None] * column_total / total
        expected_b = nb[:, None] * column_total / total
        cells = np.where(
            present,
            (observed_a - expected_a) ** 2 / expected_a + (observed_b - expected_b) ** 2 / expected_b,
            0.0,
        )
    statistic = cells.sum(axis=1)
    dof = present.sum(axis=1) - 1
    out["chi2_statistic"][ok] = np.where(dof > 0, statistic, 0.0)
    out["chi2_pvalue"][ok] = np.where(dof > 0, chi2.sf(statistic, np.maximum(dof, 1)), 1.0)
    return out


@dataclass
class _Quality:
    labelled: np.ndarray
    accuracy: np.ndarray
    averaged: dict[str, pa.Array]
    roc_auc: np.ndarray
    log_loss: np.ndarray
    confusion: pa.Array


def _quality(groups: _Groups, frame: _Frame) -> _Quality:
    """Model quality of the labelled rows of each group (label and prediction both known), as scikit-learn computes
    it: accuracy; precision, recall and F1 per class (one_vs_all, a class's value is 0 when undefined, as
    ``zero_division=0``), their macro and support-weighted means over the classes the group has; the confusion
    matrix; for two classes, the ROC AUC of ``probability`` (P(class 1)) and the log loss (probabilities clipped to
    [eps, 1 - eps])."""
    label, prediction = frame.columns[LABEL_COL], frame.columns[PREDICTION_COL]
    probability = frame.columns[PREDICTION_PROBA_COL]
    classes = np.union1d(label.uniq, prediction.uniq)
    n_classes = max(len(classes), 1)
    rows = groups.entry_row
    label_code = _class_codes(label, rows, classes)
    pred_code = _class_codes(prediction, rows, classes)
    known = (label_code >= 0) & (pred_code >= 0)
    g = groups.entry_group[known]
    size = groups.size
    cells = n_classes * n_classes
    confusion = np.bincount(
        g * cells + pred_code[known] * n_classes + label_code[known], minlength=size * cells
    ).reshape(size, n_classes, n_classes)
    labelled = confusion.sum(axis=(1, 2))
    none = labelled == 0
    true_positive = np.diagonal(confusion, axis1=1, axis2=2).astype(np.float64)
    predicted = confusion.sum(axis=2).astype(np.float64)
    actual = confusion.sum(axis=1).astype(np.float64)
    has_class = (predicted + actual) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        metrics = {
            "precision": np.where(predicted > 0, true_positive / np.where(predicted > 0, predicted, 1), 0.0),
            "recall": np.where(actual > 0, true_positive / np.where(actual > 0, actual, 1), 0.0),
        }
        f1_denominator = 2 * true_positive + (predicted - true_positive) + (actual - true_positive)
        metrics["f1_score"] = np.where(
            f1_denominator > 0, 2 * true_positive / np.where(f1_denominator > 0, f1_denominator, 1), 0.0
        )
    averaged = {name: _averaged(values, has_class, actual, none, classes) for name, values in metrics.items()}
    accuracy = _nan_where(_divide(true_positive.sum(axis=1), labelled), none)

    roc_auc = np.full(size, np.nan)
    log_loss = np.full(size, np.nan)
    if len(classes) == 2:
        scored = known & (probability.rank[rows] >= 0)
        stride = len(probability.uniq) + 1
        # Sorted by (group, probability), the label riding in the lowest bit of the sort key.
        packed = np.sort(
            ((groups.entry_group[scored] * stride + probability.rank[rows][scored]) << 1) | (label_code[scored] == 1)
        )
        positive = (packed & 1).astype(bool)
        key = packed >> 1
        g = key // stride
        p_rank = key - g * stride
        n = np.bincount(g, minlength=size)
        start = np.cumsum(n) - n
        new_run = np.ones(len(key), dtype=bool)
        new_run[1:] = key[1:] != key[:-1]
        run_first = np.flatnonzero(new_run)
        run_last = np.append(run_first[1:], len(key)) - 1
        run_id = np.cumsum(new_run) - 1
        # Ranks within the group, ties at their average rank (Mann-Whitney U).
        average_rank = (run_first[run_id] + run_last[run_id]) / 2.0 - start[g] + 1.0
        n_pos = np.bincount(g, weights=positive, minlength=size)
        n_neg = n - n_pos
        rank_sum = np.bincount(g, weights=average_rank * positive, minlength=size)
        roc_auc = _nan_where(_divide(rank_sum - n_pos * (n_pos + 1) / 2.0, n_pos * n_neg), (n_pos == 0) | (n_neg == 0))
        eps = np.finfo(np.float64).eps
        p = np.clip(probability.uniq[p_rank], eps, 1 - eps)
        losses = -np.where(positive, np.log(p), np.log1p(-p))
        log_loss = _nan_where(_divide(np.bincount(g, weights=losses, minlength=size), n), n == 0)

    names = np.asarray([_class_name(c) for c in classes], dtype=object)
    values = pa.StructArray.from_arrays(
        [
            pa.array(np.tile(np.repeat(names, n_classes), size), type=pa.string()),
            pa.array(np.tile(np.tile(names, n_classes), size), type=pa.string()),
            pa.array(confusion.reshape(size, cells).ravel(), type=pa.int64()),
        ],
        names=["prediction", "label", "count"],
    )
    offsets = pa.array(np.arange(0, size * cells + 1, cells, dtype=np.int32))
    confusion_array = pa.ListArray.from_arrays(offsets, values, mask=pa.array(none))
    return _Quality(labelled, accuracy, averaged, roc_auc, log_loss, confusion_array)


def _class_codes(column: _Column, rows: np.ndarray, classes: np.ndarray) -> np.ndarray:
    rank = column.rank[rows]
    return np.where(rank >= 0, np.searchsorted(classes, column.uniq[np.maximum(rank, 0)]), -1)


def _averaged(
    values: np.ndarray, has_class: np.ndarray, support: np.ndarray, none: np.ndarray, classes: np.ndarray
) -> pa.Array:
    n_classes = values.shape[1]
    macro = _nan_where(_divide((values * has_class).sum(axis=1), has_class.sum(axis=1)), none)
    weighted = _nan_where(_divide((values * support).sum(axis=1), support.sum(axis=1)), none)
    names = np.asarray([_class_name(c) for c in classes], dtype=object)
    keep = has_class.ravel()
    keys = pa.array(np.tile(names, len(values))[keep], type=pa.string()) if n_classes else pa.array([], pa.string())
    items = pa.array(values.ravel()[keep], type=pa.float64())
    offsets = pa.array(np.concatenate([[0], np.cumsum(has_class.sum(axis=1))]).astype(np.int32))
    one_vs_all = pa.MapArray.from_arrays(offsets, keys, items)
    return pa.StructArray.from_arrays(
        [one_vs_all, _f64(macro), _f64(weighted)],
        fields=list(AVERAGED_TYPE),
        mask=pa.array(none),
    )


# --- Arrow rows -----------------------------------------------------------------------------------------------------


def _f64(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=np.float64)
    return pa.array(values, type=pa.float64(), mask=np.isnan(values))


def _windows(start: np.ndarray, end: np.ndarray) -> pa.Array:
    null = start < 0
    return pa.StructArray.from_arrays(
        [
            pa.array(start, type=pa.int64(), mask=null).cast(_TS),
            pa.array(end, type=pa.int64(), mask=null).cast(_TS),
        ],
        fields=list(WINDOW_TYPE),
    )


def _constant(value: object, n: int, arrow_type: pa.DataType) -> pa.Array:
    if value is None:
        return pa.nulls(n, type=arrow_type)
    return pa.array([value], type=arrow_type).take(pa.array(np.zeros(n, dtype=np.int64)))


def _test(statistic: np.ndarray, pvalue: np.ndarray) -> pa.Array:
    return pa.StructArray.from_arrays(
        [_f64(statistic), _f64(pvalue)], fields=list(TEST_TYPE), mask=pa.array(np.isnan(statistic))
    )


def _block(schema: pa.Schema, n: int, values: dict[str, object]) -> pa.Table:
    arrays = []
    for f in schema:
        value = values.get(f.name)
        if value is None:
            arrays.append(pa.nulls(n, type=f.type))
        elif isinstance(value, pa.Array | pa.ChunkedArray):
            arrays.append(value if value.type == f.type else value.cast(f.type))
        elif pa.types.is_floating(f.type):
            arrays.append(_f64(value))
        else:
            arrays.append(pa.array(np.asarray(value), type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _take(value: object, index: np.ndarray) -> object:
    if isinstance(value, pa.Array):
        return value.take(pa.array(index, type=pa.int64()))
    return np.asarray(value)[index]


@dataclass
class _Header:
    """Per group: the columns every metric row of that group repeats."""

    window: pa.Array
    model_version: pa.Array
    slice_key: pa.Array
    slice_value: pa.Array
    log_type: pa.Array


def _header(groups: _Groups, frame: _Frame, granularity: str, slicing: Sequence[str]) -> _Header:
    baseline = groups.window == groups.baseline_window
    starts = np.append(groups.starts, -1)[groups.window]
    ends = np.append(shift_windows(groups.starts, granularity, 1), -1)[groups.window]
    # The baseline's window: the span of its timestamps, per model version.
    base_rows = np.arange(frame.n_current, frame.n)
    for version in np.unique(groups.version[baseline]):
        mine = base_rows[(frame.version[base_rows] == version) & ~frame.ts_null[base_rows]]
        at = baseline & (groups.version == version)
        if len(mine):
            starts[at], ends[at] = frame.ts[mine].min(), frame.ts[mine].max()
    keys = np.asarray([None, *slicing], dtype=object)[groups.spec]
    values = np.full(groups.size, None, dtype=object)
    for spec, name in enumerate(slicing, start=1):
        at = (groups.spec == spec) & (groups.slice_code >= 0)
        values[at] = frame.slices[name][1][groups.slice_code[at]]
    return _Header(
        window=_windows(starts, ends),
        model_version=pa.array(np.asarray(frame.versions, dtype=object)[groups.version], type=pa.string()),
        slice_key=pa.array(keys, type=pa.string()),
        slice_value=pa.array(values, type=pa.string()),
        log_type=pa.array(np.where(baseline, BASELINE, INPUT), type=pa.string()),
    )


# --- One granularity ------------------------------------------------------------------------------------------------


def _compute_granularity(
    frame: _Frame,
    rows: np.ndarray,
    granularity: str,
    profile_windows: set[int],
    consecutive_windows: set[int],
    slicing: Sequence[str],
    stamp: dict[str, int],
) -> tuple[pa.Table, pa.Table]:
    """The profile and drift rows of one granularity over ``rows`` (current rows, then the baseline rows of their
    model versions): profile and BASELINE drift of the windows in ``profile_windows``, CONSECUTIVE drift of those
    in ``consecutive_windows`` (``_window_codes``), BASELINE profile rows of every model version."""
    groups = _make_groups(frame, rows, granularity, slicing)
    header = _header(groups, frame, granularity, slicing)
    baseline = groups.window == groups.baseline_window
    start_of = np.append(groups.starts, -1)[groups.window]
    group_codes = _window_codes(groups.version, start_of)

    def marked(wanted: set[int]) -> np.ndarray:
        return ~baseline & np.isin(group_codes, np.asarray(sorted(wanted), dtype=np.int64))

    input_groups = marked(profile_windows)
    profile_groups = np.flatnonzero(input_groups | baseline)
    # The window just before each window, when the rows have it (an empty window has no consecutive drift).
    before = shift_windows(groups.starts, granularity, -1)
    at = np.minimum(np.searchsorted(groups.starts, before), len(groups.starts) - 1)
    previous = np.where(groups.starts[at] == before, at, -1) if len(groups.starts) else at
    prev_group = groups.find(np.append(previous, -1)[groups.window])
    base_group = groups.find(np.full(groups.size, groups.baseline_window))
    consecutive = np.flatnonzero(marked(consecutive_windows) & (prev_group >= 0))
    against_baseline = np.flatnonzero(input_groups & (base_group >= 0))
    pair_a = np.concatenate([consecutive, against_baseline])
    pair_b = np.concatenate([prev_group[consecutive], base_group[against_baseline]])
    drift_types = np.concatenate(
        [np.full(len(consecutive), CONSECUTIVE, dtype=object), np.full(len(against_baseline), BASELINE, dtype=object)]
    )

    def profile_common(column_name: str, data_type: str | None) -> dict[str, object]:
        n = len(profile_groups)
        return {
            "window": _take(header.window, profile_groups),
            "granularity": _constant(granularity, n, pa.string()),
            MODEL_ID_COL: _take(header.model_version, profile_groups),
            "log_type": _take(header.log_type, profile_groups),
            "logging_table_commit_version": _constant(stamp["table_version"], n, pa.int32()),
            "monitor_version": _constant(stamp["monitor_version"], n, pa.int64()),
            "slice_key": _take(header.slice_key, profile_groups),
            "slice_value": _take(header.slice_value, profile_groups),
            "column_name": _constant(column_name, n, pa.string()),
            "data_type": _constant(data_type, n, pa.string()),
        }

    def drift_common(column_name: str, data_type: str | None) -> dict[str, object]:
        n = len(pair_a)
        return {
            "window": _take(header.window, pair_a),
            "granularity": _constant(granularity, n, pa.string()),
            MODEL_ID_COL: _take(header.model_version, pair_a),
            "monitor_version": _constant(stamp["monitor_version"], n, pa.int64()),
            "slice_key": _take(header.slice_key, pair_a),
            "slice_value": _take(header.slice_value, pair_a),
            "column_name": _constant(column_name, n, pa.string()),
            "data_type": _constant(data_type, n, pa.string()),
            "window_cmp": _take(header.window, pair_b),
            "drift_type": pa.array(drift_types, type=pa.string()),
        }

    def one_column(name: str) -> tuple[pa.Table, pa.Table, np.ndarray]:
        column = frame.columns[name]
        stats: dict[str, object] = {}
        drift: dict[str, object] = {}
        if column.kind in ("numeric", "class"):
            s = _sort_column(groups, column, for_drift=column.kind == "numeric")
            stats.update(_numeric_profile(groups, column, s))
            drift["avg_delta"] = stats["avg"][pair_a] - stats["avg"][pair_b]
            drift["percent_zeros_delta"] = stats["percent_zeros"][pair_a] - stats["percent_zeros"][pair_b]
            if column.kind == "numeric":
                numeric = _numeric_drift(s, pair_a, pair_b)
                drift["ks_test"] = _test(numeric["ks_statistic"], numeric["ks_pvalue"])
                drift["wasserstein_distance"] = numeric["wasserstein"]
                drift["population_stability_index"] = numeric["psi"]
                drift["js_distance"] = numeric["js"]
        if column.kind in ("categorical", "class"):
            counts = _category_counts(groups, column)
            categorical = _categorical_profile(groups, column, counts)
            stats.update({k: v for k, v in categorical.items() if k not in stats or k == "frequent_items"})
            distances = _categorical_drift(counts, pair_a, pair_b)
            drift["chi_squared_test"] = _test(distances["chi2_statistic"], distances["chi2_pvalue"])
            drift["tv_distance"] = distances["tv"]
            drift["l_infinity_distance"] = distances["linf"]
            drift["js_distance"] = distances["js"]
        drift["count_delta"] = stats["count"][pair_a] - stats["count"][pair_b]
        drift["percent_null_delta"] = stats["percent_null"][pair_a] - stats["percent_null"][pair_b]
        drift["percent_distinct_delta"] = stats["percent_distinct"][pair_a] - stats["percent_distinct"][pair_b]
        row = {k: _take(v, profile_groups) for k, v in stats.items() if k != "quantiles"}
        if "quantiles" in stats:
            quantiles = stats["quantiles"][profile_groups]
            row["quantiles"] = pa.ListArray.from_arrays(
                pa.array(np.arange(0, quantiles.size + 1, len(PROFILE_QUANTILES), dtype=np.int32)),
                pa.array(np.nan_to_num(quantiles.ravel()), type=pa.float64()),
                mask=pa.array(np.isnan(quantiles[:, 0])),
            )
        return (
            _block(PROFILE_SCHEMA, len(profile_groups), profile_common(name, column.data_type) | row),
            _block(DRIFT_SCHEMA, len(pair_a), drift_common(name, column.data_type) | drift),
            stats["num_nulls"] < stats["count"],
        )

    # Columns are independent; numpy and Arrow release the GIL in their loops, so two threads overlap well.
    with ThreadPoolExecutor(_THREADS) as pool:
        done = list(pool.map(one_column, MONITORED_COLUMNS))
    profile_blocks = [profile for profile, _, _ in done]
    drift_blocks = [drift for _, drift, _ in done]
    non_null = np.stack([present for _, _, present in done], axis=1)

    quality = _quality(groups, frame)
    names = np.asarray(MONITORED_COLUMNS, dtype=object)
    chosen = non_null[profile_groups]
    table_row: dict[str, object] = {
        "count": groups.rows[profile_groups],
        "non_null_columns": pa.ListArray.from_arrays(
            pa.array(np.concatenate([[0], np.cumsum(chosen.sum(axis=1))]).astype(np.int32)),
            pa.array(np.tile(names, len(profile_groups))[chosen.ravel()], type=pa.string()),
        ),
        "accuracy_score": quality.accuracy[profile_groups],
        "roc_auc_score": quality.roc_auc[profile_groups],
        "log_loss": quality.log_loss[profile_groups],
        "confusion_matrix": _take(quality.confusion, profile_groups),
        **{name: _take(array, profile_groups) for name, array in quality.averaged.items()},
    }
    profile_blocks.append(_block(PROFILE_SCHEMA, len(profile_groups), profile_common(TABLE_COLUMN, None) | table_row))
    added = (non_null[pair_a] & ~non_null[pair_b]).sum(axis=1)
    missing = (~non_null[pair_a] & non_null[pair_b]).sum(axis=1)
    table_drift = {
        "count_delta": groups.rows[pair_a] - groups.rows[pair_b],
        "non_null_columns_delta": pa.StructArray.from_arrays(
            [pa.array(added, type=pa.int32()), pa.array(missing, type=pa.int32())], names=["added", "missing"]
        ),
    }
    drift_blocks.append(_block(DRIFT_SCHEMA, len(pair_a), drift_common(TABLE_COLUMN, None) | table_drift))
    return pa.concat_tables(profile_blocks), pa.concat_tables(drift_blocks)


# --- Refresh --------------------------------------------------------------------------------------------------------


def state_path(monitored: MonitoredTable) -> Path:
    return mlops_home() / "monitoring" / f"{monitored.table}.json"


def lock_path(monitored: MonitoredTable) -> Path:
    """Beside the state: held by one refresh of ``monitored`` at a time."""
    return state_path(monitored).with_name(f"{monitored.table}.lock")


def _config_fingerprint(monitored: MonitoredTable) -> str:
    config = {
        "logic": LOGIC_VERSION,
        "granularities": list(monitored.granularities),
        "slicing": list(monitored.slicing_exprs),
        "columns": list(MONITORED_COLUMNS),
        "baseline": monitored.baseline_table,
        "quantiles": list(PROFILE_QUANTILES),
    }
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def _fingerprints(frame: _Frame, starts: np.ndarray, keep: np.ndarray) -> dict[str, list[int]]:
    """Per (model version, window) of the current rows: [rows, labelled rows, latest scored_at, latest labeled_at]."""
    code = _window_codes(frame.version[: frame.n_current][keep], starts[keep])
    if not len(code):
        return {}
    order = np.argsort(code, kind="stable")
    code = code[order]
    first = np.flatnonzero(np.concatenate([[True], code[1:] != code[:-1]]))
    rows = np.diff(np.append(first, len(code)))
    labelled = np.add.reduceat(frame.label_known[keep][order].astype(np.int64), first)
    latest = [
        np.maximum.reduceat(frame.change_us[name][keep][order], first)
        if name in frame.change_us
        else np.full(len(first), -1)
        for name in CHANGE_COLUMNS
    ]
    version, seconds = np.divmod(code[first], _WINDOW_CODE_VERSION)
    return {
        f"{frame.versions[v]}|{t * _US}": [int(r), int(lab), int(sc), int(lb)]
        for v, t, r, lab, sc, lb in zip(version, seconds, rows, labelled, *latest, strict=True)
    }


def _window_key(granularity: str, key: str) -> WindowKey:
    version, start = key.rsplit("|", 1)
    return WindowKey(granularity, version, datetime.fromtimestamp(int(start) / _US, tz=UTC))


def _partition_keys(table: pa.Table, kind_column: str) -> pa.Array:
    starts = pc.cast(pc.cast(pc.struct_field(table.column("window"), "start"), pa.int64()), pa.string())
    starts = pc.fill_null(starts, "")
    return pc.binary_join_element_wise(
        table.column("granularity"), table.column(MODEL_ID_COL), table.column(kind_column), starts, "|"
    )


def _read_metrics(full_name: str, schema: pa.Schema) -> pa.Table | None:
    from deltalake import DeltaTable

    path = table_path(full_name)
    if not DeltaTable.is_deltatable(str(path)):
        return None
    table = DeltaTable(str(path)).to_pyarrow_table()
    if table.schema.names != schema.names:
        return None
    return table.cast(schema)


def _write_metrics(full_name: str, table: pa.Table) -> None:
    from deltalake import write_deltalake

    path = table_path(full_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Every refresh is a commit that replaces the table: a checkpoint every 10 keeps reading it cheap.
    write_deltalake(
        str(path), table, mode="overwrite", schema_mode="overwrite", configuration={"delta.checkpointInterval": "10"}
    )


@dataclass(frozen=True)
class _WindowPlan:
    """Window keys ("<model version>|<start in microseconds>") of one granularity: ``dirty`` windows are recomputed,
    ``consecutive`` ones (dirty, and the window after a dirty or removed one) get new CONSECUTIVE drift, ``rows``
    are the windows whose rows that takes, ``removed`` had rows at the last refresh and have none now."""

    dirty: set[str]
    consecutive: set[str]
    rows: set[str]
    removed: set[str]


def _plan(
    granularity: str, fingerprints: dict[str, list[int]], before: dict[str, list[int]], baseline_changed: set[str]
) -> _WindowPlan:
    def moved(keys: Iterable[str], by: int) -> set[str]:
        out = set()
        for key in keys:
            version, start = key.rsplit("|", 1)
            shifted = int(shift_windows(np.asarray([int(start)], dtype=np.int64), granularity, by)[0])
            out.add(f"{version}|{shifted}")
        return out

    existing = set(fingerprints)
    dirty = {k for k, fp in fingerprints.items() if before.get(k) != fp or k.rsplit("|", 1)[0] in baseline_changed}
    removed = set(before) - existing
    consecutive = dirty | (moved(dirty | removed, 1) & existing)
    return _WindowPlan(dirty, consecutive, (consecutive | moved(consecutive, -1)) & existing, removed)


def _codes(keys: Iterable[str], version_index: dict[str, int]) -> set[int]:
    """Window keys as the integers ``_window_codes`` gives rows."""
    out = set()
    for key in keys:
        version, start = key.rsplit("|", 1)
        out.add(int(_window_codes(np.int64(version_index[version]), np.int64(int(start)))))
    return out


def _window_codes(version: np.ndarray, start_us: np.ndarray) -> np.ndarray:
    """(model version code, window start) as one integer: the version above the start's seconds."""
    return version * _WINDOW_CODE_VERSION + start_us // _US


def _partitions(granularity: str, keys: Iterable[str], kind: str) -> set[str]:
    return {f"{granularity}|{k.rsplit('|', 1)[0]}|{kind}|{k.rsplit('|', 1)[1]}" for k in keys}


def refresh_monitor(env: Environment, monitored: MonitoredTable, *, full: bool = False) -> RefreshResult:
    """Recompute the metric tables of ``monitored`` for the windows whose rows changed since the last refresh (every
    window with ``full``, on the first refresh, when the monitor's configuration changed, or when a metric table is
    missing).

    Refreshes of one table run one at a time (an exclusive lock beside the state, see ``lock_path``): two at once
    would plan from the same state and each replace the other's metric tables and state. The second waits for the
    first, then finds what the first wrote."""
    with exclusive_lock(lock_path(monitored), f"the refresh of the monitor on {monitored.table}"):
        return _refresh(env, monitored, full=full)


def _refresh(env: Environment, monitored: MonitoredTable, *, full: bool) -> RefreshResult:
    """``refresh_monitor`` under the table's lock."""
    started = time.perf_counter()
    for granularity in monitored.granularities:
        parse_granularity(granularity)
    slicing = tuple(monitored.slicing_exprs)
    for expression in slicing:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", expression):
            raise MonitorError(f"slicing expression {expression!r}: the local monitor slices by column names only")
    needed = list(dict.fromkeys((TIMESTAMP_COL, MODEL_ID_COL, *MONITORED_COLUMNS, *slicing)))
    current, table_version = _read_delta(monitored.table, needed, _missing_hint(env, monitored))
    # The plan needs the current rows only; the baseline's model inputs are read for the versions it recomputes.
    light = _current_keys(current)
    n_current = light.n_current
    usable = ~light.ts_null & (light.version >= 0)
    if not usable.all():
        logger.warning("%s: %s rows without %s or %s are not monitored", monitored.table, int((~usable).sum()),
                       TIMESTAMP_COL, MODEL_ID_COL)  # fmt: skip
    current_names = {light.versions[v] for v in np.unique(light.version[usable])}
    # One snapshot of the baseline for its fingerprints and its rows.
    baseline_table = _open_delta(monitored.baseline_table, needed, _train_first(env))
    baseline_fp = _baseline_fingerprints(env, monitored, baseline_table, current_names)

    path = state_path(monitored)
    previous = read_json(path, f"the state of the monitor on {monitored.table}") if path.exists() else None
    config = _config_fingerprint(monitored)
    monitor_version = 0 if previous is None else int(previous["monitor_version"])
    if previous is not None and previous.get("config") != config:
        logger.info("%s: the monitor's configuration changed: every window is recomputed", monitored.table)
        monitor_version += 1
        full = True
    if not full and not all(_readable(name, schema) for name, schema in _metric_tables(monitored)):
        full = True
    old_windows: dict[str, dict[str, list[int]]] = {} if full or previous is None else previous["windows"]
    old_baseline: dict[str, list[int]] = {} if full or previous is None else previous.get("baseline", {})
    baseline_changed = {v for v, fp in baseline_fp.items() if old_baseline.get(v) != fp}

    new_windows: dict[str, dict[str, list[int]]] = {}
    plans: dict[str, _WindowPlan] = {}
    window_starts_by: dict[str, np.ndarray] = {}  # per granularity: each current row's window start (-1: unusable)
    for granularity in monitored.granularities:
        starts = window_starts_by[granularity] = np.where(
            usable, window_starts(np.where(usable, light.ts, 0), granularity), -1
        )
        new_windows[granularity] = _fingerprints(light, starts, usable)
        plans[granularity] = _plan(
            granularity, new_windows[granularity], old_windows.get(granularity, {}), baseline_changed
        )
    wanted_versions = {key.rsplit("|", 1)[0] for plan in plans.values() for key in plan.rows}
    baseline = _read_baseline(baseline_table, needed, wanted_versions, current.select(needed).slice(0, 0))
    frame = _build_frame(current, baseline, slicing) if wanted_versions else None

    stamp = {"table_version": table_version, "monitor_version": monitor_version}
    profiles, drifts = [], []
    computed: list[WindowKey] = []
    consecutive_only: list[WindowKey] = []
    removed: list[WindowKey] = []
    keep_profile: set[str] = set()
    keep_drift: set[str] = set()
    for granularity, plan in plans.items():
        fingerprints = new_windows[granularity]
        computed += [_window_key(granularity, k) for k in sorted(plan.dirty)]
        consecutive_only += [_window_key(granularity, k) for k in sorted(plan.consecutive - plan.dirty)]
        removed += [_window_key(granularity, k) for k in sorted(plan.removed)]
        keep_profile |= _partitions(granularity, set(fingerprints) - plan.dirty, INPUT)
        keep_drift |= _partitions(granularity, set(fingerprints) - plan.dirty, BASELINE)
        keep_drift |= _partitions(granularity, set(fingerprints) - plan.consecutive, CONSECUTIVE)
        recomputed: set[str] = set()
        if plan.consecutive:
            if frame is None:  # plan.rows holds plan.consecutive, so their versions' rows were read: a planner bug
                first = _window_key(granularity, min(plan.consecutive))
                raise RuntimeError(
                    f"{monitored.table} {granularity}: {len(plan.consecutive)} windows are to be recomputed (the "
                    f"first: model version {first.model_version}, from {first.start:%Y-%m-%d %H:%M} UTC) but no rows "
                    f"were read for them: the refresh plan lists {len(plan.rows)} windows to read, and these must "
                    "include every window it recomputes"
                )
            version_index = {name: i for i, name in enumerate(frame.versions)}
            base_rows = np.arange(n_current, frame.n)
            starts = window_starts_by[granularity]
            codes = np.asarray(sorted(_codes(plan.rows, version_index)), dtype=np.int64)
            selected = usable & np.isin(_window_codes(frame.version[:n_current], starts), codes)
            versions_used = np.unique(frame.version[:n_current][selected])
            recomputed = {frame.versions[v] for v in versions_used}
            rows = np.concatenate(
                [np.flatnonzero(selected), base_rows[np.isin(frame.version[base_rows], versions_used)]]
            )
            profile, drift = _compute_granularity(
                frame, rows, granularity, _codes(plan.dirty, version_index),
                _codes(plan.consecutive, version_index), slicing, stamp,
            )  # fmt: skip
            profiles.append(profile)
            drifts.append(drift)
        # A version's baseline profile rows are rewritten with its recomputed windows, and kept otherwise.
        keep_profile |= {f"{granularity}|{v}|{BASELINE}|" for v in current_names - recomputed}
        logger.info(
            "%s %s: %s windows, %s recomputed, %s with their consecutive drift only",
            monitored.table, granularity, len(fingerprints), len(plan.dirty), len(plan.consecutive - plan.dirty),
        )  # fmt: skip

    written = bool(computed or consecutive_only or removed) or full
    profile_rows = drift_rows = 0
    if written:
        tables = []
        for (name, schema), new, keep, kind in zip(
            _metric_tables(monitored), (profiles, drifts), (keep_profile, keep_drift), ("log_type", "drift_type"),
            strict=True,
        ):  # fmt: skip
            tables.append((name, _merge(None if full else _read_metrics(name, schema), new, schema, kind, keep)))
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda named: _write_metrics(*named), tables))
        profile_rows, drift_rows = (table.num_rows for _, table in tables)
        state = {
            "table": monitored.table,
            "config": config,
            "monitor_version": monitor_version,
            "table_version": table_version,
            "baseline": baseline_fp,
            "windows": new_windows,
        }
        _save_state(path, state)
    result = RefreshResult(
        table=monitored.table,
        table_version=table_version,
        monitor_version=monitor_version,
        profile_table=monitored.profile_metrics_table,
        drift_table=monitored.drift_metrics_table,
        windows=sum(len(w) for w in new_windows.values()),
        computed=tuple(computed),
        consecutive_only=tuple(consecutive_only),
        removed=tuple(removed),
        profile_rows=profile_rows,
        drift_rows=drift_rows,
        written=written,
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "%s (version %s): %s of %s windows recomputed, %s, %.2fs",
        monitored.table, table_version, len(computed), result.windows,
        f"{profile_rows} profile rows and {drift_rows} drift rows written" if written else "metric tables unchanged",
        result.seconds,
    )  # fmt: skip
    return result


def _current_keys(current: pa.Table) -> _Frame:
    """The current rows' timestamps, model versions, label presence and change times: all that fingerprints and
    plans need (no model inputs, no baseline)."""
    ts, ts_null = _ts_us(current.column(TIMESTAMP_COL))
    version, versions = _encode_strings(current.column(MODEL_ID_COL))
    change = {}
    for name in CHANGE_COLUMNS:
        if name in current.column_names:
            values, null = _ts_us(current.column(name))
            change[name] = np.where(null, -1, values)
    label_known = ~np.asarray(current.column(LABEL_COL).is_null(), dtype=bool)
    return _Frame(current.num_rows, ts, ts_null, version, list(versions), {}, {}, change, label_known)


def _train_first(env: Environment) -> str:
    return f"train a model first: it writes the baseline (mlops run model-training --env {env.name})"


def _baseline_fingerprints(
    env: Environment, monitored: MonitoredTable, table: DeltaTable, versions: set[str]
) -> dict[str, list[int]]:
    """Per model version of the current rows: [baseline rows, latest baseline timestamp] (microseconds, -1 when
    none), from a read of two columns; a MonitorError when a version has no baseline rows."""
    keys = table.to_pyarrow_table(columns=[TIMESTAMP_COL, MODEL_ID_COL])
    ts, _ = _ts_us(keys.column(TIMESTAMP_COL))
    code, names = _encode_strings(keys.column(MODEL_ID_COL))
    lacking = sorted(versions - set(names.tolist()))
    if lacking:
        raise MonitorError(
            f"model version(s) {lacking} scored rows of {monitored.table!r} but have no rows in the baseline table "
            f"{monitored.baseline_table!r}: training writes each version's baseline (mlops run model-training "
            f"--env {env.name}); a version trained before that has none: retrain it"
        )
    index = {name: i for i, name in enumerate(names.tolist())}
    fingerprints = {}
    for version in sorted(versions):
        mine = code == index[version]
        fingerprints[version] = [int(mine.sum()), int(ts[mine].max())]
    return fingerprints


def _read_baseline(table: DeltaTable, columns: list[str], versions: set[str], empty: pa.Table) -> pa.Table:
    """The baseline rows of ``versions`` (the filter is pushed down to delta-rs), the columns in ``columns``;
    ``empty`` (the current rows' schema, no rows) when no version is wanted."""
    if not versions:
        return empty
    return table.to_pyarrow_table(columns=columns, filters=[(MODEL_ID_COL, "in", sorted(versions))])


def _metric_tables(monitored: MonitoredTable) -> tuple[tuple[str, pa.Schema], tuple[str, pa.Schema]]:
    return (monitored.profile_metrics_table, PROFILE_SCHEMA), (monitored.drift_metrics_table, DRIFT_SCHEMA)


def _readable(full_name: str, schema: pa.Schema) -> bool:
    """The metric table exists with this monitor's columns (else a refresh recomputes every window)."""
    from deltalake import DeltaTable

    path = str(table_path(full_name))
    return DeltaTable.is_deltatable(path) and [f.name for f in DeltaTable(path).schema().fields] == schema.names


def _save_state(path: Path, state: dict) -> None:
    """Written whole or not at all (under a temporary name of its own, then renamed): a refresh interrupted before
    this point recomputes its windows next time."""
    write_json_atomically(path, state)


def _merge(old: pa.Table | None, new: list[pa.Table], schema: pa.Schema, kind_column: str, keep: set[str]) -> pa.Table:
    """The recomputed rows, and the earlier rows of every partition (granularity, model version, log or drift type,
    window start) in ``keep``. A key ending in "|" keeps a BASELINE partition whatever its window."""
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


# --- Reading the metric tables back --------------------------------------------------------------------------------


def window_summaries(monitored: MonitoredTable, granularity: str) -> list[WindowSummary]:
    """Per window and model version (whole table, ``granularity``): rows, labelled rows, ROC AUC (None when
    unlabelled) and the largest baseline PSI of the drift alert's features."""
    import pandas as pd

    profile = _read_metrics(monitored.profile_metrics_table, PROFILE_SCHEMA)
    drift = _read_metrics(monitored.drift_metrics_table, DRIFT_SCHEMA)
    if profile is None:
        raise MonitorError(f"{monitored.profile_metrics_table} does not exist yet: run mlops monitor first")
    frame = _rows(profile, granularity, "log_type", INPUT)
    table_rows = frame[frame["column_name"] == TABLE_COLUMN]
    labels = frame[frame["column_name"] == LABEL_COL].set_index(["start", MODEL_ID_COL])
    psi = None
    if drift is not None:
        d = _rows(drift, granularity, "drift_type", BASELINE)
        d = d[d["column_name"].isin(DRIFT_ALERT_COLUMNS) & d["population_stability_index"].notna()]
        if len(d):
            psi = d.loc[d.groupby(["start", MODEL_ID_COL])["population_stability_index"].idxmax()]
            psi = psi.set_index(["start", MODEL_ID_COL])
    out = []
    for row in table_rows.sort_values(["start", MODEL_ID_COL]).to_dict(orient="records"):
        key = (row["start"], row[MODEL_ID_COL])
        label = labels.loc[key] if key in labels.index else None
        worst = psi.loc[key] if psi is not None and key in psi.index else None
        out.append(
            WindowSummary(
                granularity=granularity,
                start=row["start"].to_pydatetime(),
                model_version=key[1],
                rows=int(row["count"]),
                labelled_rows=int(label["count"] - label["num_nulls"]) if label is not None else 0,
                roc_auc=None if pd.isna(row["roc_auc_score"]) else float(row["roc_auc_score"]),
                worst_psi=None if worst is None else float(worst["population_stability_index"]),
                worst_psi_column=None if worst is None else str(worst["column_name"]),
            )
        )
    return out


def _rows(table: pa.Table, granularity: str, kind_column: str, kind: str) -> pd.DataFrame:
    mask = pc.and_(
        pc.and_(pc.equal(table.column("granularity"), granularity), pc.equal(table.column(kind_column), kind)),
        pc.is_null(table.column("slice_key")),
    )
    chosen = table.filter(mask)
    frame = chosen.drop_columns(["window"]).to_pandas()
    frame["start"] = chosen.column("window").combine_chunks().field("start").to_pandas()
    return frame
