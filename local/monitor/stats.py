"""The statistics: every profile and drift metric of every group of a granularity at once, in numpy.

Each statistic is a segment reduction over the groups of ``frame.make_groups`` (one sort per column, then
``bincount`` / ``reduceat``), not a loop over windows. The formulas are scipy's and scikit-learn's, and
tests/unit/test_monitor_stats.py checks each kernel against them on small arrays (``ks_2samp``,
``wasserstein_distance``, ``chi2_contingency(correction=False)``, ``jensenshannon``, ``roc_auc_score``, ``log_loss``,
precision, recall, F1 and the confusion matrix; a regressor's errors and R²); ``numeric_drift`` says how the KS
p-value and the PSI's bins are defined.
No engine here: numpy, scipy and the Arrow arrays of the metric tables' nested columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from local.monitor.frame import Column, Frame, Groups, class_name
from local.monitor.schema import AVERAGED_TYPE, FREQUENT_ITEMS, PROFILE_QUANTILES, PSI_BINS, PSI_FLOOR
from spec.monitoring import LABEL_COL, PREDICTION_COL, PREDICTION_PROBA_COL

# Window values per chunk of the drift computation (see numeric_drift).
_CHUNK_VALUES = 1 << 15


def f64(values: np.ndarray) -> pa.Array:
    """Doubles with NaN as null (the metric tables' "undefined")."""
    values = np.asarray(values, dtype=np.float64)
    return pa.array(values, type=pa.float64(), mask=np.isnan(values))


@dataclass
class Sorted:
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


def sort_column(groups: Groups, column: Column, for_drift: bool) -> Sorted:
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
    return Sorted(key, group, rank, value, center, start, n, run_end, ends - 1, cums, stride)


def _nan_where(values: np.ndarray, undefined: np.ndarray) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).copy()
    out[undefined] = np.nan
    return out


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def _count_rows(groups: Groups, rows_mask: np.ndarray) -> np.ndarray:
    """Per group, how many of its rows ``rows_mask`` marks."""
    if not rows_mask.any():
        return np.zeros(groups.size, dtype=np.int64)
    return np.bincount(groups.entry_group[rows_mask[groups.entry_row]], minlength=groups.size)


def _segment_sums(values: np.ndarray, s: Sorted) -> np.ndarray:
    """Per group, the sum of ``values`` (aligned with the sorted entries) over its segment."""
    out = np.zeros(len(s.n))
    filled = np.flatnonzero(s.n)
    if len(filled):
        out[filled] = np.add.reduceat(values, s.start[filled])
    return out


def numeric_profile(groups: Groups, column: Column, s: Sorted) -> dict[str, np.ndarray]:
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
            quantiles[:, i] = quantile(s, uniq, n, q)
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
        "median": quantile(s, uniq, n, 0.5) if len(s.key) else np.full(size, np.nan),
        "quantiles": quantiles,
        "distinct_count": distinct.astype(np.int64),
        "num_zeros": num_zeros.astype(np.int64),
        "percent_null": 100.0 * _divide(num_nulls, count),
        "percent_zeros": 100.0 * _divide(num_zeros, count),
        "percent_nan": 100.0 * _divide(num_nan, count),
        "percent_distinct": 100.0 * _divide(distinct, count),
    }


def quantile(s: Sorted, uniq: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """numpy's default ("linear") quantile of each group's values."""
    position = q * np.maximum(n - 1, 0)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(n - 1, 0))
    base = np.where(n > 0, s.start, 0)
    lo_value = uniq[s.rank[np.minimum(base + low, len(s.rank) - 1)]]
    hi_value = uniq[s.rank[np.minimum(base + high, len(s.rank) - 1)]]
    return _nan_where(lo_value + (position - low) * (hi_value - lo_value), n == 0)


def numeric_drift(s: Sorted, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Kolmogorov-Smirnov, Wasserstein-1, population stability index and Jensen-Shannon (``js_distance``) of each group
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
    * ``js_distance``: scipy's ``jensenshannon`` (natural log) of the same bins' shares.
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
    s: Sorted,
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


def category_counts(groups: Groups, column: Column) -> np.ndarray:
    code = column.code[groups.entry_row]
    valid = code >= 0
    n_categories = max(len(column.categories), 1)
    flat = np.bincount(
        groups.entry_group[valid] * n_categories + code[valid], minlength=groups.size * n_categories
    ).astype(np.int64)
    return flat.reshape(groups.size, n_categories)


def categorical_profile(groups: Groups, column: Column, counts: np.ndarray) -> dict[str, object]:
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


def categorical_drift(counts: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
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
class Quality:
    labelled: np.ndarray
    accuracy: np.ndarray
    averaged: dict[str, pa.Array]
    roc_auc: np.ndarray
    log_loss: np.ndarray
    confusion: pa.Array


def quality(groups: Groups, frame: Frame) -> Quality:
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

    names = np.asarray([class_name(c) for c in classes], dtype=object)
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
    return Quality(labelled, accuracy, averaged, roc_auc, log_loss, confusion_array)


def _class_codes(column: Column, rows: np.ndarray, classes: np.ndarray) -> np.ndarray:
    rank = column.rank[rows]
    return np.where(rank >= 0, np.searchsorted(classes, column.uniq[np.maximum(rank, 0)]), -1)


def _averaged(
    values: np.ndarray, has_class: np.ndarray, support: np.ndarray, none: np.ndarray, classes: np.ndarray
) -> pa.Array:
    n_classes = values.shape[1]
    macro = _nan_where(_divide((values * has_class).sum(axis=1), has_class.sum(axis=1)), none)
    weighted = _nan_where(_divide((values * support).sum(axis=1), support.sum(axis=1)), none)
    names = np.asarray([class_name(c) for c in classes], dtype=object)
    keep = has_class.ravel()
    keys = pa.array(np.tile(names, len(values))[keep], type=pa.string()) if n_classes else pa.array([], pa.string())
    items = pa.array(values.ravel()[keep], type=pa.float64())
    offsets = pa.array(np.concatenate([[0], np.cumsum(has_class.sum(axis=1))]).astype(np.int32))
    one_vs_all = pa.MapArray.from_arrays(offsets, keys, items)
    return pa.StructArray.from_arrays(
        [one_vs_all, f64(macro), f64(weighted)],
        fields=list(AVERAGED_TYPE),
        mask=pa.array(none),
    )


def regression_quality(groups: Groups, frame: Frame) -> dict[str, np.ndarray]:
    """A regressor's quality on the labelled rows of each group (label and prediction both known), by the profile
    metric table's names, as scikit-learn computes it: ``mean_squared_error``, ``root_mean_squared_error``,
    ``mean_average_error`` (the mean absolute error), ``mean_absolute_percentage_error`` (|error| / max(|label|,
    eps), as a fraction) and ``r2_score`` (1 - residual / total sum of squares; with constant labels 1.0 when every
    prediction is exact, else 0.0; undefined under two rows). NaN (null) for a group without labelled rows."""
    label, prediction = frame.columns[LABEL_COL], frame.columns[PREDICTION_COL]
    rows = groups.entry_row
    label_rank, prediction_rank = label.rank[rows], prediction.rank[rows]
    known = (label_rank >= 0) & (prediction_rank >= 0)
    g = groups.entry_group[known]
    y = label.uniq[label_rank[known]]
    error = prediction.uniq[prediction_rank[known]] - y
    size = groups.size
    n = np.bincount(g, minlength=size).astype(np.float64)
    none = n == 0

    def mean(values: np.ndarray) -> np.ndarray:
        return _nan_where(_divide(np.bincount(g, weights=values, minlength=size), n), none)

    mse = mean(error * error)
    y_mean = np.nan_to_num(mean(y))
    residual = np.bincount(g, weights=error * error, minlength=size)
    total = np.bincount(g, weights=(y - y_mean[g]) ** 2, minlength=size)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), np.where(residual == 0, 1.0, 0.0))
    return {
        "mean_squared_error": mse,
        "root_mean_squared_error": np.sqrt(mse),
        "mean_average_error": mean(np.abs(error)),
        "mean_absolute_percentage_error": mean(np.abs(error) / np.maximum(np.abs(y), np.finfo(np.float64).eps)),
        "r2_score": _nan_where(r2, n < 2),
    }
