"""The local monitor's numpy kernels (local.monitor.stats) on small arrays, against scipy and scikit-learn: no Delta, no
Spark. Each test builds the rows of two weekly windows and a baseline as Arrow arrays, groups them as a refresh does
(``frame.make_groups``) and checks the kernel's number for a window against the library's on the same values."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, kstwobign, wasserstein_distance
from sklearn import metrics

from local.monitor import stats
from local.monitor.frame import Frame, Groups, encode_column, make_groups
from local.monitor.schema import PROFILE_QUANTILES
from local.monitor.windows import window_starts
from spec.monitoring import LABEL_COL, PREDICTION_COL, PREDICTION_PROBA_COL

WEEK_US = 7 * 86_400 * 1_000_000
MONDAY_US = int(np.datetime64("2013-03-04", "us").astype(np.int64))


def _frame(
    window: np.ndarray, columns: dict[str, pa.Array], class_columns: tuple[str, ...] = (PREDICTION_COL, LABEL_COL)
) -> Frame:
    """Rows of one model version: ``window`` 0 and 1 are two consecutive weeks, -1 marks a baseline row (the rows
    are reordered current first, baseline after, as the refresh lays them out). ``class_columns``: a classifier's
    (a regressor has none)."""
    order = np.argsort(window < 0, kind="stable")
    window = window[order]
    n_current = int((window >= 0).sum())
    ts = np.where(window >= 0, MONDAY_US + window * WEEK_US + 3_600_000_000, -1).astype(np.int64)
    encoded = {
        name: encode_column(name, array.take(pa.array(order)), is_class=name in class_columns)
        for name, array in columns.items()
    }
    return Frame(
        n_current=n_current,
        ts=ts,
        ts_null=window < 0,
        version=np.zeros(len(window), dtype=np.int64),
        versions=["1"],
        columns=encoded,
        slices={},
        change_us={},
        label_known=np.ones(n_current, dtype=bool),
    )


def _groups(frame: Frame) -> Groups:
    assert window_starts(np.asarray([MONDAY_US]), "1 week")[0] == MONDAY_US, "a Monday"
    groups = make_groups(frame, np.arange(frame.n), "1 week", ())
    assert groups.size == 3, "two weekly windows and the baseline"
    return groups


def _group(groups: Groups, window: int | None) -> int:
    """The whole-table group of ``window`` (None: the baseline)."""
    wanted = groups.baseline_window if window is None else window
    (index,) = np.flatnonzero(groups.window == wanted)
    return int(index)


def _values(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    """Values with ties (one decimal), some zeros."""
    return np.round(rng.normal(shift, 1.0, n), 1)


def _split(n_week0: int, n_week1: int, n_base: int) -> np.ndarray:
    return np.concatenate([np.zeros(n_week0), np.ones(n_week1), -np.ones(n_base)]).astype(np.int64)


def _psi(current: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The bins' shares (current, reference) and the PSI, as docs/monitoring.md defines it: 10 bins cut at the
    reference's "lower" deciles, shares floored at 1e-4."""
    cuts = np.quantile(reference, np.arange(1, 10) / 10, method="lower")
    p = np.bincount(np.searchsorted(cuts, current, side="left"), minlength=10) / len(current)
    q = np.bincount(np.searchsorted(cuts, reference, side="left"), minlength=10) / len(reference)
    floored_p, floored_q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    return p, q, float(np.sum((floored_p - floored_q) * np.log(floored_p / floored_q)))


# --- Numeric columns ------------------------------------------------------------------------------------------------


def test_numeric_profile_is_numpys():
    # Given a week of values with nulls, NaNs and zeros, another week and a baseline
    rng = np.random.default_rng(1)
    week0 = _values(rng, 40, 0.0)
    week0[:3] = 0.0
    masked = np.zeros(40, dtype=bool)
    masked[5:8] = True  # nulls
    week0[10:12] = np.nan
    values = np.concatenate([week0, _values(rng, 30, 1.0), _values(rng, 50, 0.0)])
    null = np.concatenate([masked, np.zeros(80, dtype=bool)])
    frame = _frame(_split(40, 30, 50), {"temp": pa.array(values, mask=null)})
    groups = _groups(frame)
    column = frame.columns["temp"]

    # When the profile is computed for every group at once
    s = stats.sort_column(groups, column, for_drift=False)
    profile = stats.numeric_profile(groups, column, s)

    # Then week 0's numbers are numpy's on its valid values
    g = _group(groups, 0)
    valid = week0[~masked & ~np.isnan(week0)]
    assert len(valid) == 35
    assert (profile["count"][g], profile["num_nulls"][g], profile["num_nan"][g]) == (40, 3, 2)
    assert profile["num_zeros"][g] == int((valid == 0).sum()) >= 3
    assert profile["distinct_count"][g] == len(np.unique(valid))
    assert profile["avg"][g] == pytest.approx(valid.mean(), abs=1e-12)
    assert profile["stddev"][g] == pytest.approx(valid.std(ddof=1), abs=1e-12)
    assert (profile["min"][g], profile["max"][g]) == (valid.min(), valid.max())
    assert profile["median"][g] == pytest.approx(np.median(valid), abs=1e-12)
    np.testing.assert_allclose(profile["quantiles"][g], np.quantile(valid, PROFILE_QUANTILES), atol=1e-12)
    assert profile["percent_null"][g] == pytest.approx(100 * 3 / 40)
    assert profile["percent_distinct"][g] == pytest.approx(100 * len(np.unique(valid)) / 40)
    # and the baseline's too
    b = _group(groups, None)
    assert profile["avg"][b] == pytest.approx(values[70:].mean(), abs=1e-12)


def test_a_single_value_has_no_standard_deviation():
    frame = _frame(_split(1, 2, 3), {"temp": pa.array([4.0, 1.0, 2.0, 0.0, 0.0, 5.0])})
    groups = _groups(frame)
    s = stats.sort_column(groups, frame.columns["temp"], for_drift=False)
    profile = stats.numeric_profile(groups, frame.columns["temp"], s)
    g = _group(groups, 0)
    assert np.isnan(profile["stddev"][g])
    assert (profile["avg"][g], profile["median"][g], profile["min"][g], profile["max"][g]) == (4.0, 4.0, 4.0, 4.0)


@pytest.mark.parametrize(("n_current", "n_reference", "seed"), [(1, 3, 0), (7, 5, 1), (60, 200, 2), (300, 40, 3)])
def test_numeric_drift_is_scipys(n_current, n_reference, seed):
    # Given a week of values, the week before it and a baseline, with ties
    rng = np.random.default_rng(seed)
    before, week, baseline = _values(rng, 25, 0.0), _values(rng, n_current, 0.7), _values(rng, n_reference, 0.0)
    frame = _frame(_split(25, n_current, n_reference), {"temp": pa.array(np.concatenate([before, week, baseline]))})
    groups = _groups(frame)

    # When the week is compared with the week before (CONSECUTIVE) and with the baseline (BASELINE)
    s = stats.sort_column(groups, frame.columns["temp"], for_drift=True)
    a = np.asarray([_group(groups, 1), _group(groups, 1)])
    b = np.asarray([_group(groups, 0), _group(groups, None)])
    drift = stats.numeric_drift(s, a, b)

    # Then each statistic is scipy's on the same values
    for i, reference in enumerate((before, baseline)):
        ks = ks_2samp(week, reference)
        root = np.sqrt(len(week) * len(reference) / (len(week) + len(reference)))
        assert drift["ks_statistic"][i] == pytest.approx(ks.statistic, abs=1e-12)
        assert drift["ks_pvalue"][i] == pytest.approx(
            min(1.0, kstwobign.sf((root + 0.12 + 0.11 / root) * ks.statistic)), abs=1e-12
        )
        assert drift["wasserstein"][i] == pytest.approx(wasserstein_distance(week, reference), abs=1e-9)
        p, q, psi = _psi(week, reference)
        assert drift["psi"][i] == pytest.approx(psi, abs=1e-12)
        assert drift["js"][i] == pytest.approx(jensenshannon(q, p), abs=1e-12)


def test_numeric_drift_in_chunks_is_the_same(monkeypatch):
    # Given several weeks compared with a baseline, the drift computed in chunks of a few window values
    rng = np.random.default_rng(4)
    weeks = [_values(rng, n, shift) for n, shift in ((80, 0.0), (90, 0.5))]
    baseline = _values(rng, 120, 0.0)
    frame = _frame(_split(80, 90, 120), {"temp": pa.array(np.concatenate([*weeks, baseline]))})
    groups = _groups(frame)
    s = stats.sort_column(groups, frame.columns["temp"], for_drift=True)
    a = np.asarray([_group(groups, 0), _group(groups, 1), _group(groups, 1)])
    b = np.asarray([_group(groups, None), _group(groups, None), _group(groups, 0)])
    whole = stats.numeric_drift(s, a, b)

    monkeypatch.setattr(stats, "_CHUNK_VALUES", 7)
    chunked = stats.numeric_drift(s, a, b)

    # Then every pair's statistics are those of one pass, and scipy's
    for name in whole:
        np.testing.assert_array_equal(chunked[name], whole[name])
    assert chunked["wasserstein"][2] == pytest.approx(wasserstein_distance(weeks[1], weeks[0]), abs=1e-9)


def test_a_window_without_values_has_no_drift():
    # Given a week whose values are all null
    values = pa.array([1.0, 2.0, None, None, 1.0, 3.0, 2.0], mask=[False, False, True, True, False, False, False])
    frame = _frame(_split(2, 2, 3), {"temp": values})
    groups = _groups(frame)
    s = stats.sort_column(groups, frame.columns["temp"], for_drift=True)
    drift = stats.numeric_drift(s, np.asarray([_group(groups, 1)]), np.asarray([_group(groups, None)]))
    # Then every statistic is undefined (NaN, a null in the drift table), not zero
    assert all(np.isnan(v[0]) for v in drift.values())


# --- Categorical columns --------------------------------------------------------------------------------------------


def test_categorical_profile_and_drift_are_scipys():
    # Given a week of destinations (one null), the week before and a baseline with a category the week lacks
    week0 = ["ATL", "BOS", "BOS", "LAX", "ORD", "ATL"]
    week1 = ["BOS", "BOS", "BOS", "LAX", None, "MCO", "ATL"]
    baseline = ["ATL", "ATL", "BOS", "LAX", "ORD", "ORD", "SFO", "ATL", "MCO"]
    frame = _frame(_split(6, 7, 9), {"dest": pa.array(week0 + week1 + baseline, type=pa.string())})
    groups = _groups(frame)
    column = frame.columns["dest"]

    # When the categories are counted, profiled and compared
    counts = stats.category_counts(groups, column)
    profile = stats.categorical_profile(groups, column, counts)
    a = np.asarray([_group(groups, 1), _group(groups, 1)])
    b = np.asarray([_group(groups, 0), _group(groups, None)])
    drift = stats.categorical_drift(counts, a, b)

    # Then the profile is the week's counts, most frequent first (ties in category order)
    g = _group(groups, 1)
    assert (profile["count"][g], profile["num_nulls"][g], profile["distinct_count"][g]) == (7, 1, 4)
    items = profile["frequent_items"][g].as_py()
    assert [(i["item"], i["count"]) for i in items] == [("BOS", 3), ("ATL", 1), ("LAX", 1), ("MCO", 1)]
    assert profile["avg_length"][g] == 3.0
    # and the drift is chi2_contingency's (no continuity correction) and the distances of the category shares
    present = [c for c in week1 if c is not None]
    for i, reference in enumerate((week0, baseline)):
        categories = sorted(set(present) | set(reference))
        table = np.asarray([[present.count(c) for c in categories], [reference.count(c) for c in categories]])
        statistic, pvalue, _, _ = chi2_contingency(table, correction=False)
        assert drift["chi2_statistic"][i] == pytest.approx(statistic, abs=1e-12)
        assert drift["chi2_pvalue"][i] == pytest.approx(pvalue, abs=1e-12)
        p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
        assert drift["tv"][i] == pytest.approx(0.5 * np.abs(p - q).sum(), abs=1e-12)
        assert drift["linf"][i] == pytest.approx(np.abs(p - q).max(), abs=1e-12)
        assert drift["js"][i] == pytest.approx(jensenshannon(q, p), abs=1e-12)


def test_one_category_either_side_is_no_evidence_of_drift():
    frame = _frame(_split(2, 3, 2), {"dest": pa.array(["ATL"] * 7, type=pa.string())})
    groups = _groups(frame)
    counts = stats.category_counts(groups, frame.columns["dest"])
    drift = stats.categorical_drift(counts, np.asarray([_group(groups, 1)]), np.asarray([_group(groups, None)]))
    assert (drift["chi2_statistic"][0], drift["chi2_pvalue"][0], drift["tv"][0]) == (0.0, 1.0, 0.0)


# --- Model quality --------------------------------------------------------------------------------------------------


def test_model_quality_is_scikit_learns():
    # Given labelled predictions with tied probabilities, one row without its label yet
    rng = np.random.default_rng(5)
    n = 120
    label = (rng.random(n) < 0.35).astype(np.int32)
    probability = np.clip(np.round(np.where(label == 1, 0.65, 0.35) + rng.normal(0, 0.2, n), 2), 0.0, 1.0)
    prediction = (probability > 0.5).astype(np.int32)
    unlabelled = np.zeros(n, dtype=bool)
    unlabelled[3] = True
    frame = _frame(
        _split(60, 40, 20),
        {
            LABEL_COL: pa.array(label, mask=unlabelled),
            PREDICTION_COL: pa.array(prediction),
            PREDICTION_PROBA_COL: pa.array(probability),
        },
    )
    groups = _groups(frame)

    # When the model quality of every group is computed
    quality = stats.quality(groups, frame)

    # Then week 0's is scikit-learn's on its labelled rows
    g = _group(groups, 0)
    known = ~unlabelled[:60]
    y, p, scores = label[:60][known], prediction[:60][known], probability[:60][known]
    assert quality.labelled[g] == 59
    assert quality.roc_auc[g] == pytest.approx(metrics.roc_auc_score(y, scores), abs=1e-12)
    assert quality.log_loss[g] == pytest.approx(metrics.log_loss(y, scores), abs=1e-12)
    assert quality.accuracy[g] == pytest.approx(metrics.accuracy_score(y, p), abs=1e-12)
    for name, score in (("precision", metrics.precision_score), ("recall", metrics.recall_score),
                        ("f1_score", metrics.f1_score)):  # fmt: skip
        averaged = quality.averaged[name][g].as_py()
        for average in ("macro", "weighted"):
            assert averaged[average] == pytest.approx(score(y, p, average=average, zero_division=0), abs=1e-12)
        per_class = score(y, p, average=None, zero_division=0)
        assert dict(averaged["one_vs_all"]) == pytest.approx({"0": per_class[0], "1": per_class[1]}, abs=1e-12)
    cells = {(c["prediction"], c["label"]): c["count"] for c in quality.confusion[g].as_py()}
    matrix = metrics.confusion_matrix(y, p, labels=[0, 1])  # rows: label, columns: prediction
    assert cells == {(str(pr), str(lab)): int(matrix[lab, pr]) for pr in (0, 1) for lab in (0, 1)}


def test_a_group_of_one_class_has_no_roc_auc_and_no_labels_no_quality():
    # Given a week whose labelled flights were all on time, and a week without any label
    label = pa.array([0, 0, 0, None, None, 1, 0], type=pa.int32(), mask=[False] * 3 + [True] * 2 + [False] * 2)
    frame = _frame(
        _split(3, 2, 2),
        {
            LABEL_COL: label,
            PREDICTION_COL: pa.array([0, 1, 0, 1, 0, 1, 0], type=pa.int32()),
            PREDICTION_PROBA_COL: pa.array([0.1, 0.6, 0.3, 0.7, 0.2, 0.8, 0.4]),
        },
    )
    groups = _groups(frame)
    quality = stats.quality(groups, frame)
    one_class, unlabelled = _group(groups, 0), _group(groups, 1)
    # Then the ROC AUC is undefined where scikit-learn refuses it, while the accuracy is known
    assert np.isnan(quality.roc_auc[one_class]) and quality.accuracy[one_class] == pytest.approx(2 / 3)
    # and a week without labels has no quality at all (null, never 0)
    assert quality.labelled[unlabelled] == 0
    assert np.isnan(quality.accuracy[unlabelled]) and np.isnan(quality.log_loss[unlabelled])
    assert quality.confusion[unlabelled].as_py() is None and quality.averaged["precision"][unlabelled].as_py() is None


def test_regression_quality_is_scikit_learns():
    # Given a regressor's predictions of a delay in minutes (ties, negative labels, a zero label), one row without
    # its label yet and one without a prediction
    rng = np.random.default_rng(11)
    n = 120
    label = np.round(rng.normal(5.0, 30.0, n), 0)
    label[7] = 0.0
    prediction = np.round(label * 0.6 + rng.normal(0.0, 12.0, n), 1)
    unlabelled = np.zeros(n, dtype=bool)
    unlabelled[3] = True
    unscored = np.zeros(n, dtype=bool)
    unscored[10] = True
    frame = _frame(
        _split(60, 40, 20),
        {LABEL_COL: pa.array(label, mask=unlabelled), PREDICTION_COL: pa.array(prediction, mask=unscored)},
        class_columns=(),
    )
    groups = _groups(frame)

    # When the regression quality of every group is computed
    quality = stats.regression_quality(groups, frame)

    # Then each window's is scikit-learn's on its rows with both a label and a prediction
    for window, rows in ((0, slice(0, 60)), (1, slice(60, 100)), (None, slice(100, 120))):
        g = _group(groups, window)
        known = ~(unlabelled[rows] | unscored[rows])
        y, p = label[rows][known], prediction[rows][known]
        expected = {
            "mean_squared_error": metrics.mean_squared_error(y, p),
            "root_mean_squared_error": np.sqrt(metrics.mean_squared_error(y, p)),
            "mean_average_error": metrics.mean_absolute_error(y, p),
            "mean_absolute_percentage_error": metrics.mean_absolute_percentage_error(y, p),
            "r2_score": metrics.r2_score(y, p),
        }
        assert {name: quality[name][g] for name in expected} == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # and the zero label's percentage error is |error| / eps, as scikit-learn's (a huge number, not infinity)
    assert np.isfinite(quality["mean_absolute_percentage_error"][_group(groups, 0)])


def test_regression_quality_of_constant_labels_and_of_no_labels():
    # Given a week whose labels are all equal (one prediction off), a week of one exact prediction, and a baseline
    # without labels
    label = pa.array([10.0, 10.0, 10.0, 4.0, None, None], mask=[False] * 4 + [True] * 2)
    prediction = pa.array([10.0, 12.0, 10.0, 4.0, 1.0, 2.0])
    frame = _frame(_split(3, 1, 2), {LABEL_COL: label, PREDICTION_COL: prediction}, class_columns=())
    groups = _groups(frame)
    quality = stats.regression_quality(groups, frame)
    constant, single, unlabelled = _group(groups, 0), _group(groups, 1), _group(groups, None)
    # Then R² of constant labels is scikit-learn's (0.0 with an error), its errors are known
    assert quality["r2_score"][constant] == metrics.r2_score([10.0] * 3, [10.0, 12.0, 10.0]) == 0.0
    assert quality["mean_average_error"][constant] == pytest.approx(2 / 3)
    # R² of a single row is undefined (scikit-learn warns and answers NaN), its errors are 0
    assert np.isnan(quality["r2_score"][single]) and quality["mean_squared_error"][single] == 0.0
    # and a group without labels has no quality at all (null, never 0)
    assert all(np.isnan(values[unlabelled]) for values in quality.values())
