"""The monitored rows as numpy arrays, and their groups: what every statistic reads.

``build_frame`` turns the current table's rows and the baseline's (Arrow) into one ``Frame``: per monitored column
the null and NaN masks and dense codes into its sorted distinct values. ``make_groups`` cuts a granularity's rows into
(slice spec, model version, window, slice value) groups, numbered in that order, so that every statistic is a
segment reduction over all groups at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from local.monitor.errors import MonitorError
from local.monitor.schema import CHANGE_COLUMNS, SPARK_TYPES, TIMESTAMP_TYPE
from local.monitor.windows import window_starts
from spec.monitoring import LABEL_COL, MODEL_ID_COL, MonitoredTable


@dataclass
class Column:
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
class Frame:
    """The current table's rows then the baseline's, as numpy arrays: what every window's metrics come from."""

    n_current: int
    ts: np.ndarray  # microseconds UTC; the baseline's may be -1 (no timestamp)
    ts_null: np.ndarray
    version: np.ndarray  # codes into versions
    versions: list[str]
    columns: dict[str, Column]
    slices: dict[str, tuple[np.ndarray, np.ndarray]]  # slice column -> (codes, -1 null; sorted values as strings)
    change_us: dict[str, np.ndarray]  # scored_at / labeled_at of the current rows, -1 when null
    label_known: np.ndarray

    @property
    def n(self) -> int:
        return len(self.ts)


def ts_us(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since the epoch (-1 where null) and the null mask."""
    array = column.combine_chunks()
    if not pa.types.is_timestamp(array.type):
        array = pc.cast(array, TIMESTAMP_TYPE)
    array = array.cast(pa.timestamp("us", tz=array.type.tz)).view(pa.int64())
    null = np.asarray(array.is_null(), dtype=bool)
    return np.asarray(array.fill_null(-1), dtype=np.int64), null


def encode_strings(array: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
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


def class_name(value: float) -> str:
    """A class as the metric tables name it: "1", not "1.0"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def encode_column(name: str, array: pa.ChunkedArray | pa.Array, *, is_class: bool = False) -> Column:
    """One monitored column: strings as categories, numbers as ranks (a class column, ``is_class``, as both)."""
    array = array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])
    arrow_type = array.type
    data_type = SPARK_TYPES.get(arrow_type, str(arrow_type))
    null = np.asarray(array.is_null(), dtype=bool)
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        code, categories = encode_strings(array)
        return Column(name, "categorical", data_type, null, code=code, categories=categories)
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
    column = Column(name, "numeric", data_type, null, nan=nan, rank=rank, uniq=uniq, zero_rank=zero_rank)
    if is_class:
        column.kind = "class"
        column.code = rank
        column.categories = np.asarray([class_name(v) for v in uniq], dtype=object)
    return column


def _change_times(current: pa.Table) -> dict[str, np.ndarray]:
    change = {}
    for name in CHANGE_COLUMNS:
        if name in current.column_names:
            values, null = ts_us(current.column(name))
            change[name] = np.where(null, -1, values)
    return change


def build_frame(current: pa.Table, baseline: pa.Table, slicing: Sequence[str], monitored: MonitoredTable) -> Frame:
    """The current rows then the baseline's, every monitored (``monitored.monitored_columns``) and slicing column
    encoded."""
    n_current = current.num_rows
    combined = {}
    for name in (monitored.timestamp_col, MODEL_ID_COL, *monitored.monitored_columns, *slicing):
        if name in combined:
            continue
        target = current.schema.field(name).type
        cur = current.column(name)
        base = baseline.column(name)
        if pa.types.is_string(target) or pa.types.is_large_string(target):
            cur, base = pc.cast(cur, pa.string()), pc.cast(base, pa.string())
        elif base.type != target:
            base = pc.cast(base, target)
        combined[name] = pa.chunked_array(cur.chunks + base.chunks, type=cur.type)

    ts, ts_null = ts_us(combined[monitored.timestamp_col])
    version, versions = encode_strings(combined[MODEL_ID_COL])
    columns = {
        name: encode_column(name, combined[name], is_class=name in monitored.class_columns)
        for name in monitored.monitored_columns
    }
    slices = {name: encode_strings(combined[name]) for name in slicing}
    label_known = ~columns[LABEL_COL].null[:n_current]
    return Frame(n_current, ts, ts_null, version, list(versions), columns, slices, _change_times(current), label_known)


def current_keys(current: pa.Table, timestamp_col: str) -> Frame:
    """The current rows' timestamps (``timestamp_col``), model versions, label presence and change times: all that
    fingerprints and plans need (no model inputs, no baseline)."""
    ts, ts_null = ts_us(current.column(timestamp_col))
    version, versions = encode_strings(current.column(MODEL_ID_COL))
    label_known = ~np.asarray(current.column(LABEL_COL).is_null(), dtype=bool)
    return Frame(current.num_rows, ts, ts_null, version, list(versions), {}, {}, _change_times(current), label_known)


# --- Groups: (model version, window, slice) -------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupCodec:
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
class Groups:
    """Every (slice spec, model version, window, slice value) group of one granularity's rows. A row is an entry of
    each slice spec (spec 0: the whole table; spec k: slicing expression k - 1); the baseline's rows sit in the
    window after the last (``baseline_window``)."""

    entry_row: np.ndarray
    entry_group: np.ndarray
    keys: np.ndarray  # sorted group keys (``codec``)
    codec: GroupCodec
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


def make_groups(frame: Frame, rows: np.ndarray, granularity: str, slicing: Sequence[str]) -> Groups:
    """The groups of ``rows`` (indices into ``frame``; those past ``n_current`` are the baseline's)."""
    is_base = rows >= frame.n_current
    starts_all = window_starts(frame.ts[rows[~is_base]], granularity)
    starts = np.unique(starts_all)
    window = np.full(len(rows), len(starts), dtype=np.int64)
    window[~is_base] = np.searchsorted(starts, starts_all)
    version = frame.version[rows]
    codec = GroupCodec(
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
    return Groups(
        np.tile(rows, len(entry_keys)),
        entry_group,
        keys,
        codec,
        starts,
        *codec.decode(keys),
        np.bincount(entry_group, minlength=len(keys)),
    )
