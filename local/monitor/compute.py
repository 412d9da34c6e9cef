"""The metric rows of one granularity: profile and drift rows as Arrow tables in the metric tables' schema.

``compute_granularity`` groups the rows (``frame.make_groups``), runs the statistics of ``stats`` on every column,
pairs each window with the window before it (CONSECUTIVE) and with its model version's baseline rows (BASELINE), and
lays the results out as ``PROFILE_SCHEMA`` and ``DRIFT_SCHEMA`` rows. No engine here: numpy and Arrow.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from local.monitor import stats
from local.monitor.frame import Frame, Groups, make_groups
from local.monitor.schema import (
    DRIFT_SCHEMA,
    PROFILE_QUANTILES,
    PROFILE_SCHEMA,
    TEST_TYPE,
    TIMESTAMP_TYPE,
    WINDOW_TYPE,
)
from local.monitor.stats import f64
from local.monitor.windows import shift_windows, window_codes
from spec.monitoring import BASELINE, CONSECUTIVE, INPUT, MODEL_ID_COL, TABLE_COLUMN, MonitoredTable

# Threads for the per-column work.
_THREADS = max(1, min(4, os.cpu_count() or 1))


def _window_structs(start: np.ndarray, end: np.ndarray) -> pa.Array:
    null = start < 0
    return pa.StructArray.from_arrays(
        [
            pa.array(start, type=pa.int64(), mask=null).cast(TIMESTAMP_TYPE),
            pa.array(end, type=pa.int64(), mask=null).cast(TIMESTAMP_TYPE),
        ],
        fields=list(WINDOW_TYPE),
    )


def _constant(value: object, n: int, arrow_type: pa.DataType) -> pa.Array:
    if value is None:
        return pa.nulls(n, type=arrow_type)
    return pa.array([value], type=arrow_type).take(pa.array(np.zeros(n, dtype=np.int64)))


def _test(statistic: np.ndarray, pvalue: np.ndarray) -> pa.Array:
    return pa.StructArray.from_arrays(
        [f64(statistic), f64(pvalue)], fields=list(TEST_TYPE), mask=pa.array(np.isnan(statistic))
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
            arrays.append(f64(value))
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


def _header(groups: Groups, frame: Frame, granularity: str, slicing: Sequence[str]) -> _Header:
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
        window=_window_structs(starts, ends),
        model_version=pa.array(np.asarray(frame.versions, dtype=object)[groups.version], type=pa.string()),
        slice_key=pa.array(keys, type=pa.string()),
        slice_value=pa.array(values, type=pa.string()),
        log_type=pa.array(np.where(baseline, BASELINE, INPUT), type=pa.string()),
    )


# --- One granularity ------------------------------------------------------------------------------------------------


def compute_granularity(
    frame: Frame,
    rows: np.ndarray,
    granularity: str,
    profile_windows: set[int],
    consecutive_windows: set[int],
    slicing: Sequence[str],
    stamp: dict[str, int],
    monitored: MonitoredTable,
) -> tuple[pa.Table, pa.Table]:
    """The profile and drift rows of one granularity over ``rows`` (current rows, then the baseline rows of their
    model versions): profile and BASELINE drift of the windows in ``profile_windows``, CONSECUTIVE drift of those
    in ``consecutive_windows`` (``windows.window_codes``), BASELINE profile rows of every model version. The whole
    table's rows carry the model quality of ``monitored``'s problem type."""
    groups = make_groups(frame, rows, granularity, slicing)
    header = _header(groups, frame, granularity, slicing)
    baseline = groups.window == groups.baseline_window
    start_of = np.append(groups.starts, -1)[groups.window]
    group_codes = window_codes(groups.version, start_of)

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
        measured: dict[str, object] = {}
        drift: dict[str, object] = {}
        if column.kind in ("numeric", "class"):
            s = stats.sort_column(groups, column, for_drift=column.kind == "numeric")
            measured.update(stats.numeric_profile(groups, column, s))
            drift["avg_delta"] = measured["avg"][pair_a] - measured["avg"][pair_b]
            drift["percent_zeros_delta"] = measured["percent_zeros"][pair_a] - measured["percent_zeros"][pair_b]
            if column.kind == "numeric":
                numeric = stats.numeric_drift(s, pair_a, pair_b)
                drift["ks_test"] = _test(numeric["ks_statistic"], numeric["ks_pvalue"])
                drift["wasserstein_distance"] = numeric["wasserstein"]
                drift["population_stability_index"] = numeric["psi"]
                drift["js_distance"] = numeric["js"]
        if column.kind in ("categorical", "class"):
            counts = stats.category_counts(groups, column)
            categorical = stats.categorical_profile(groups, column, counts)
            measured.update({k: v for k, v in categorical.items() if k not in measured or k == "frequent_items"})
            distances = stats.categorical_drift(counts, pair_a, pair_b)
            drift["chi_squared_test"] = _test(distances["chi2_statistic"], distances["chi2_pvalue"])
            drift["tv_distance"] = distances["tv"]
            drift["l_infinity_distance"] = distances["linf"]
            drift["js_distance"] = distances["js"]
        drift["count_delta"] = measured["count"][pair_a] - measured["count"][pair_b]
        drift["percent_null_delta"] = measured["percent_null"][pair_a] - measured["percent_null"][pair_b]
        drift["percent_distinct_delta"] = measured["percent_distinct"][pair_a] - measured["percent_distinct"][pair_b]
        row = {k: _take(v, profile_groups) for k, v in measured.items() if k != "quantiles"}
        if "quantiles" in measured:
            quantiles = measured["quantiles"][profile_groups]
            row["quantiles"] = pa.ListArray.from_arrays(
                pa.array(np.arange(0, quantiles.size + 1, len(PROFILE_QUANTILES), dtype=np.int32)),
                pa.array(np.nan_to_num(quantiles.ravel()), type=pa.float64()),
                mask=pa.array(np.isnan(quantiles[:, 0])),
            )
        return (
            _block(PROFILE_SCHEMA, len(profile_groups), profile_common(name, column.data_type) | row),
            _block(DRIFT_SCHEMA, len(pair_a), drift_common(name, column.data_type) | drift),
            measured["num_nulls"] < measured["count"],
        )

    # Columns are independent; numpy and Arrow release the GIL in their loops, so two threads overlap well.
    with ThreadPoolExecutor(_THREADS) as pool:
        done = list(pool.map(one_column, monitored.monitored_columns))
    profile_blocks = [profile for profile, _, _ in done]
    drift_blocks = [drift for _, drift, _ in done]
    non_null = np.stack([present for _, _, present in done], axis=1)

    names = np.asarray(monitored.monitored_columns, dtype=object)
    chosen = non_null[profile_groups]
    table_row: dict[str, object] = {
        "count": groups.rows[profile_groups],
        "non_null_columns": pa.ListArray.from_arrays(
            pa.array(np.concatenate([[0], np.cumsum(chosen.sum(axis=1))]).astype(np.int32)),
            pa.array(np.tile(names, len(profile_groups))[chosen.ravel()], type=pa.string()),
        ),
    }
    if monitored.is_classifier:
        quality = stats.quality(groups, frame)
        table_row |= {
            "accuracy_score": quality.accuracy[profile_groups],
            "roc_auc_score": quality.roc_auc[profile_groups],
            "log_loss": quality.log_loss[profile_groups],
            "confusion_matrix": _take(quality.confusion, profile_groups),
            **{name: _take(array, profile_groups) for name, array in quality.averaged.items()},
        }
    else:
        regression = stats.regression_quality(groups, frame)
        table_row |= {name: values[profile_groups] for name, values in regression.items()}
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
