"""The local quality monitor (local.monitor) on small Delta tables built here: exact profile values, drift statistics
against scipy, model quality against scikit-learn, incremental refreshes, faults, and the SQL alerts of
spec.monitoring running on the metric tables through DuckDB."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from spec.config import ENVIRONMENTS
from spec.monitoring import TABLE_COLUMN, alerts, monitored_tables

# The flight-delay model's (prod's model): its monitored features, and the predictions table's columns.
MONITORED_FEATURES = ENVIRONMENTS["prod"].model.monitored
PREDICTION_COLUMNS = ENVIRONMENTS["prod"].model.prediction_columns

pytestmark = pytest.mark.integration

CARRIERS = ("AA", "B6", "DL", "UA")
ORIGINS = ("EWR", "JFK", "LGA")
DESTS = ("ATL", "BOS", "LAX", "MCO", "ORD")
WEEK1 = datetime(2013, 3, 4, tzinfo=UTC)  # a Monday
TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("sched_date", pa.date32()),
        ("carrier", pa.string()),
        ("flight", pa.int64()),
        ("origin", pa.string()),
        ("dest", pa.string()),
        ("time_hour", TS),
        ("sched_departure", TS),
        *[(c, pa.float64()) for c in MONITORED_FEATURES if c not in ("carrier", "origin", "dest")],
        ("prediction", pa.int32()),
        ("probability", pa.float64()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("model_alias", pa.string()),
        ("scored_at", TS),
        ("batch_id", pa.string()),
        ("source", pa.string()),
        ("label", pa.int32()),
        ("arr_delay", pa.float64()),
        ("labeled_at", TS),
    ]
)


def test_schema_is_the_predictions_table_layout():
    assert SCHEMA.names == list(PREDICTION_COLUMNS)


# --- Fixtures -------------------------------------------------------------------------------------------------------


def _env(catalog: str):
    """prod's monitoring configuration in a catalog of its own (its own tables and fingerprint state)."""
    return ENVIRONMENTS["prod"].replace(catalog=catalog)


def _flights(
    n: int,
    start: datetime,
    days: int,
    *,
    seed: int,
    version: str = "1",
    temp_mean: float = 5.0,
    labelled: bool = True,
    skill: float = 1.0,
) -> pd.DataFrame:
    """``n`` scored flights over ``days`` days from ``start``, in the predictions table's layout. ``temp_mean`` moves
    the weather (a later season: above 20 degrees, summer storms bring wind, rain and low visibility); ``skill`` 0
    makes the probabilities noise (a model that learnt nothing)."""
    rng = np.random.default_rng(seed)
    stormy = temp_mean > 20
    departure = pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.integers(0, days * 86_400, n)), "s"))
    late = rng.random(n) < 0.3
    signal = np.where(late, 0.75, 0.25) if skill else rng.random(n)
    probability = np.clip(signal + rng.normal(0, 0.2, n), 0.01, 0.99).round(3)
    at = pd.Timestamp("2013-12-31", tz="UTC")
    return pd.DataFrame(
        {
            "sched_date": departure.date,
            "carrier": rng.choice(CARRIERS, n),
            "flight": rng.integers(1, 3000, n),
            "origin": rng.choice(ORIGINS, n),
            "dest": rng.choice(DESTS, n),
            "time_hour": departure.floor("h"),
            "sched_departure": departure,
            "distance": rng.choice([200.0, 750.0, 1400.0, 2500.0], n),
            "sched_hour": departure.hour.astype(float),
            "month": departure.month.astype(float),
            "day_of_week": (departure.dayofweek + 1).astype(float),
            "temp": rng.normal(temp_mean, 5.0, n).round(1),
            "dewp": rng.normal(temp_mean - 8, 5.0, n).round(1),
            "humid": rng.uniform(30, 90, n).round(1),
            "wind_speed": rng.gamma(2.0, 10.0 if stormy else 5.0, n).round(1),
            "precip": np.where(rng.random(n) < (0.5 if stormy else 0.9), 0.0, rng.exponential(0.1, n)).round(2),
            "pressure": rng.normal(1015, 7, n).round(1),
            "visib": np.where(rng.random(n) < (0.4 if stormy else 0.8), 10.0, rng.uniform(0, 10, n)).round(1),
            "prediction": (probability > 0.5).astype("int32"),
            "probability": probability,
            "model_name": "prod.ml.flight_delay",
            "model_version": version,
            "model_alias": "champion",
            "scored_at": at,
            "batch_id": "batch-test",
            "source": "batch",
            "label": pd.array(np.where(late, 1, 0), dtype="Int32") if labelled else pd.array([None] * n, dtype="Int32"),
            "arr_delay": np.where(late, 40.0, -5.0) if labelled else np.nan,
            "labeled_at": pd.Series(at if labelled else pd.NaT, index=range(n), dtype="datetime64[ns, UTC]"),
        }
    )


def _write(full_name: str, frame: pd.DataFrame, mode: str = "overwrite") -> None:
    from deltalake import write_deltalake

    from local.paths import table_path

    path = table_path(full_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame[SCHEMA.names], preserve_index=False).cast(SCHEMA)
    write_deltalake(str(path), table, mode=mode)


def _read(full_name: str) -> pd.DataFrame:
    from deltalake import DeltaTable

    from local.paths import table_path

    frame = DeltaTable(str(table_path(full_name))).to_pandas()
    frame["start"] = [w["start"] for w in frame["window"]]
    return frame


def _one(frame: pd.DataFrame, **where) -> pd.Series:
    chosen = frame
    for name, value in where.items():
        chosen = chosen[chosen[name].isna()] if value is None else chosen[chosen[name] == value]
    assert len(chosen) == 1, f"{len(chosen)} rows match {where}"
    return chosen.iloc[0]


def _refresh(env, **kwargs):
    from local.monitor import refresh_monitor

    return refresh_monitor(env, monitored_tables(env)[0], **kwargs)


def _weekly_roc_auc(profile: pd.DataFrame, start: datetime) -> float:
    return _one(profile, column_name=TABLE_COLUMN, granularity="1 week", slice_key=None, start=start)["roc_auc_score"]


def _keys(keys, granularity: str) -> set[datetime]:
    return {k.start for k in keys if k.granularity == granularity}


# --- Profile: exact values ------------------------------------------------------------------------------------------


def test_profile_of_a_hand_computable_window(mlops_home):
    # Given four flights on Monday 2013-03-04, one without temperature and one without its label yet
    env = _env("monexact")
    flights = _flights(4, WEEK1, 1, seed=1)
    flights["carrier"] = ["AA", "AA", "UA", "DL"]
    flights["temp"] = [1.0, 2.0, np.nan, 0.0]
    flights["label"] = pd.array([1, 0, 1, None], dtype="Int32")
    flights["prediction"] = np.array([1, 0, 0, 1], dtype="int32")
    flights["probability"] = [0.9, 0.2, 0.4, 0.7]
    _write(env.predictions_table, flights)
    _write(env.baseline_table, _flights(50, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=2))

    # When the monitor refreshes
    result = _refresh(env)

    # Then the week's window starts on that Monday and ends a week later
    profile = _read(monitored_tables(env)[0].profile_metrics_table)
    temp = _one(profile, column_name="temp", granularity="1 week", log_type="INPUT", slice_key=None)
    assert temp["window"] == {"start": WEEK1, "end": WEEK1 + timedelta(days=7)}
    assert (temp["data_type"], temp["model_version"], temp["logging_table_commit_version"]) == ("double", "1", 0)
    # and the numbers are those of [1, 2, null, 0]
    assert (temp["count"], temp["num_nulls"], temp["num_zeros"], temp["distinct_count"]) == (4, 1, 1, 3)
    assert (temp["avg"], temp["min"], temp["max"], temp["median"], temp["stddev"]) == (1.0, 0.0, 2.0, 1.0, 1.0)
    assert temp["percent_null"] == 25.0
    np.testing.assert_allclose(temp["quantiles"], [0, 0.02, 0.1, 0.2, 0.5, 1, 1.5, 1.8, 1.9, 1.98, 2])
    carrier = _one(profile, column_name="carrier", granularity="1 day", log_type="INPUT", slice_key=None)
    assert [(i["item"], i["count"]) for i in carrier["frequent_items"]] == [("AA", 2), ("DL", 1), ("UA", 1)]
    assert (carrier["data_type"], carrier["distinct_count"], carrier["avg_length"]) == ("string", 3, 2.0)
    aa = _one(profile, column_name="temp", granularity="1 week", log_type="INPUT", slice_key="carrier",
              slice_value="AA")  # fmt: skip
    assert (aa["count"], aa["avg"]) == (2, 1.5)
    label = _one(profile, column_name="label", granularity="1 week", log_type="INPUT", slice_key=None)
    assert (label["count"] - label["num_nulls"], label["data_type"]) == (3, "int")

    # and the model quality is that of the three labelled flights
    from sklearn.metrics import log_loss

    table = _one(profile, column_name=TABLE_COLUMN, granularity="1 week", log_type="INPUT", slice_key=None)
    assert table["count"] == 4
    assert table["accuracy_score"] == pytest.approx(2 / 3)
    assert dict(table["precision"]["one_vs_all"]) == {"0": 0.5, "1": 1.0}
    assert (table["precision"]["macro"], table["recall"]["macro"]) == (0.75, 0.75)
    assert dict(table["recall"]["one_vs_all"]) == {"0": 1.0, "1": 0.5}
    assert table["f1_score"]["macro"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert table["roc_auc_score"] == 1.0
    assert table["log_loss"] == pytest.approx(log_loss([1, 0, 1], [0.9, 0.2, 0.4]), abs=1e-12)
    cells = {(c["prediction"], c["label"]): c["count"] for c in table["confusion_matrix"]}
    assert cells == {("0", "0"): 1, ("0", "1"): 1, ("1", "0"): 0, ("1", "1"): 1}
    # the baseline is profiled too, and the first refresh computed every window
    baseline = profile[(profile["log_type"] == "BASELINE") & (profile["column_name"] == TABLE_COLUMN)]
    assert set(baseline[baseline["slice_key"].isna()]["count"]) == {50}
    assert _keys(result.computed, "1 week") == {WEEK1} and _keys(result.computed, "1 day") == {WEEK1}


# --- Drift: scipy's statistics --------------------------------------------------------------------------------------


def _psi(current: np.ndarray, reference: np.ndarray) -> float:
    """PSI as docs/monitoring.md defines it: 10 bins cut at the reference's "lower" deciles, shares floored."""
    cuts = np.quantile(reference, np.arange(1, 10) / 10, method="lower")
    p = np.bincount(np.searchsorted(cuts, current, side="left"), minlength=10) / len(current)
    q = np.bincount(np.searchsorted(cuts, reference, side="left"), minlength=10) / len(reference)
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    return float(np.sum((p - q) * np.log(p / q)))


def test_drift_statistics_are_scipys(mlops_home):
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency, ks_2samp, kstwobign, wasserstein_distance

    # Given two weeks of predictions (the second one warmer) and a baseline, with ties in every column
    env = _env("monscipy")
    week1 = _flights(900, WEEK1, 7, seed=3)
    week2 = _flights(700, WEEK1 + timedelta(days=7), 7, seed=4, temp_mean=9.0)
    week2.loc[week2.index[:40], "temp"] = np.nan
    baseline = _flights(2000, datetime(2013, 1, 7, tzinfo=UTC), 28, seed=5)
    _write(env.predictions_table, pd.concat([week1, week2]))
    _write(env.baseline_table, baseline)

    # When the monitor refreshes
    _refresh(env)
    drift = _read(monitored_tables(env)[0].drift_metrics_table)
    drift = drift[drift["granularity"] == "1 week"]

    # Then every statistic of week 2 is scipy's, against week 1 (consecutive) and against the baseline, for the
    # whole table and for a slice
    comparisons = {"CONSECUTIVE": week1, "BASELINE": baseline}
    second = WEEK1 + timedelta(days=7)
    checked = 0
    for (drift_type, reference), (slice_key, slice_value) in (
        (pair, s) for pair in comparisons.items() for s in ((None, None), ("origin", "JFK"))
    ):
        current, ref = week2, reference
        if slice_key:
            current, ref = current[current[slice_key] == slice_value], ref[ref[slice_key] == slice_value]
        for column in ("temp", "probability", "precip"):
            row = _one(drift, column_name=column, drift_type=drift_type, slice_key=slice_key, slice_value=slice_value,
                       start=second)  # fmt: skip
            x, y = current[column].dropna().to_numpy(), ref[column].dropna().to_numpy()
            ks = ks_2samp(x, y)
            root = np.sqrt(len(x) * len(y) / (len(x) + len(y)))
            assert row["ks_test"]["statistic"] == pytest.approx(ks.statistic, abs=1e-12)
            assert row["ks_test"]["pvalue"] == pytest.approx(kstwobign.sf((root + 0.12 + 0.11 / root) * ks.statistic))
            assert abs(row["ks_test"]["pvalue"] - ks_2samp(x, y, method="asymp").pvalue) < 0.02
            assert row["wasserstein_distance"] == pytest.approx(wasserstein_distance(x, y), abs=1e-9)
            assert row["population_stability_index"] == pytest.approx(_psi(x, y), abs=1e-12)
            assert row["avg_delta"] == pytest.approx(x.mean() - y.mean())
            assert row["count_delta"] == len(current) - len(ref)
            checked += 1
        dest = _one(drift, column_name="dest", drift_type=drift_type, slice_key=slice_key, slice_value=slice_value,
                    start=second)  # fmt: skip
        table = pd.crosstab(pd.concat([current["dest"], ref["dest"]]), np.r_[np.zeros(len(current)), np.ones(len(ref))])
        statistic, pvalue, _, _ = chi2_contingency(table.to_numpy().T, correction=False)
        assert dest["chi_squared_test"]["statistic"] == pytest.approx(statistic)
        assert dest["chi_squared_test"]["pvalue"] == pytest.approx(pvalue)
        shares = table.to_numpy() / table.to_numpy().sum(axis=0)
        assert dest["js_distance"] == pytest.approx(jensenshannon(shares[:, 1], shares[:, 0]), abs=1e-12)
        assert dest["tv_distance"] == pytest.approx(0.5 * np.abs(shares[:, 0] - shares[:, 1]).sum())
        assert dest["l_infinity_distance"] == pytest.approx(np.abs(shares[:, 0] - shares[:, 1]).max())
        # the baseline's window is the span of its timestamps
        compared = WEEK1 if drift_type == "CONSECUTIVE" else baseline["sched_departure"].min()
        assert dest["window_cmp"]["start"] == compared
        checked += 1
    assert checked == 16
    # week 1 has no earlier week: no consecutive drift for it
    assert drift[(drift["drift_type"] == "CONSECUTIVE") & (drift["start"] == WEEK1)].empty


def test_a_later_season_drifts_and_stable_data_does_not(mlops_home):
    # Given a winter baseline, two winter-like weeks and then two July-like weeks
    env = _env("monseason")
    weeks = [
        _flights(600, WEEK1 + timedelta(days=7 * i), 7, seed=10 + i, temp_mean=5.0 if i < 2 else 27.0) for i in range(4)
    ]
    _write(env.predictions_table, pd.concat(weeks))
    _write(env.baseline_table, _flights(3000, datetime(2013, 1, 7, tzinfo=UTC), 42, seed=9))

    # When the monitor refreshes
    _refresh(env)

    # Then the temperature's PSI against the baseline is small for the winter weeks and large for the summer ones
    drift = _read(monitored_tables(env)[0].drift_metrics_table)
    psi = {
        week: _one(drift, column_name="temp", drift_type="BASELINE", granularity="1 week", slice_key=None, start=week)[
            "population_stability_index"
        ]
        for week in (WEEK1 + timedelta(days=7 * i) for i in range(4))
    }
    stable, summer = list(psi.values())[:2], list(psi.values())[2:]
    assert max(stable) < 0.1, psi
    assert min(summer) > 2.0, psi
    # and a feature that did not move stays small in every week
    weekly = drift[(drift["granularity"] == "1 week") & drift["slice_key"].isna() & (drift["drift_type"] == "BASELINE")]
    distance = weekly[weekly["column_name"] == "distance"]
    assert len(distance) == 4 and distance["population_stability_index"].max() < 0.1


def test_each_model_version_is_compared_with_its_own_baseline(mlops_home):
    # Given a week scored by two versions: version 1 trained on winter and scoring winter-like flights, version 2
    # trained on summer and scoring summer-like flights
    env = _env("monversions")
    _write(
        env.predictions_table,
        pd.concat([_flights(400, WEEK1, 7, seed=80), _flights(400, WEEK1, 7, seed=81, version="2", temp_mean=27.0)]),
    )
    _write(
        env.baseline_table,
        pd.concat(
            [
                _flights(2000, datetime(2013, 1, 7, tzinfo=UTC), 28, seed=82),
                _flights(2000, datetime(2012, 7, 2, tzinfo=UTC), 28, seed=83, version="2", temp_mean=27.0),
            ]
        ),
    )

    # When the monitor refreshes
    _refresh(env)

    # Then each version's week has its own rows, and its drift is measured against its own training data: none
    profile = _read(monitored_tables(env)[0].profile_metrics_table)
    drift = _read(monitored_tables(env)[0].drift_metrics_table)
    for version, baseline_start in (("1", datetime(2013, 1, 7, tzinfo=UTC)), ("2", datetime(2012, 7, 2, tzinfo=UTC))):
        table = _one(profile, column_name=TABLE_COLUMN, granularity="1 week", slice_key=None, log_type="INPUT",
                     model_version=version)  # fmt: skip
        assert table["count"] == 400
        temp = _one(drift, column_name="temp", granularity="1 week", slice_key=None, drift_type="BASELINE",
                    model_version=version)  # fmt: skip
        assert temp["population_stability_index"] < 0.1
        assert temp["window_cmp"]["start"] >= baseline_start
        assert temp["window_cmp"]["end"] < baseline_start + timedelta(days=28)


def test_a_window_without_labels_has_null_quality_not_zero(mlops_home):
    # Given a labelled week and a week whose labels have not arrived
    env = _env("monunlabelled")
    week1 = _flights(300, WEEK1, 7, seed=20)
    _write(
        env.predictions_table, pd.concat([week1, _flights(300, WEEK1 + timedelta(days=7), 7, seed=21, labelled=False)])
    )
    _write(env.baseline_table, _flights(500, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=22))

    # When the monitor refreshes
    _refresh(env)

    # Then the unlabelled week reports no model quality (null), the labelled one does
    profile = _read(monitored_tables(env)[0].profile_metrics_table)
    quality = ["accuracy_score", "precision", "recall", "f1_score", "roc_auc_score", "log_loss", "confusion_matrix"]
    for granularity in ("1 week", "1 day"):
        rows = profile[(profile["column_name"] == TABLE_COLUMN) & (profile["granularity"] == granularity)]
        unlabelled = rows[(rows["start"] >= WEEK1 + timedelta(days=7)) & (rows["log_type"] == "INPUT")]
        assert len(unlabelled) > 0
        assert unlabelled[quality].isna().all().all()
    labelled = _one(profile, column_name=TABLE_COLUMN, granularity="1 week", slice_key=None, start=WEEK1)
    assert 0.5 < labelled["roc_auc_score"] <= 1.0 and labelled["accuracy_score"] > 0.5
    # and its quality is scikit-learn's
    from sklearn import metrics

    y, scores = week1["label"].astype(int), week1["probability"]
    predicted = week1["prediction"]
    assert labelled["roc_auc_score"] == pytest.approx(metrics.roc_auc_score(y, scores), abs=1e-12)
    assert labelled["log_loss"] == pytest.approx(metrics.log_loss(y, scores), abs=1e-12)
    assert labelled["accuracy_score"] == pytest.approx(metrics.accuracy_score(y, predicted))
    for name, score in (("precision", metrics.precision_score), ("recall", metrics.recall_score),
                        ("f1_score", metrics.f1_score)):  # fmt: skip
        for average in ("macro", "weighted"):
            assert labelled[name][average] == pytest.approx(score(y, predicted, average=average)), (name, average)
        per_class = score(y, predicted, average=None)
        assert dict(labelled[name]["one_vs_all"]) == pytest.approx({"0": per_class[0], "1": per_class[1]})
    label = _one(profile, column_name="label", granularity="1 week", slice_key=None, start=WEEK1 + timedelta(days=7))
    assert label["count"] == label["num_nulls"] == 300
    # and its label drift is unknown rather than zero
    drift = _read(monitored_tables(env)[0].drift_metrics_table)
    late = _one(drift, column_name="label", granularity="1 week", slice_key=None, drift_type="BASELINE",
                start=WEEK1 + timedelta(days=7))  # fmt: skip
    assert late["chi_squared_test"] is None and np.isnan(late["js_distance"])


# --- Incremental refresh --------------------------------------------------------------------------------------------


def test_a_refresh_after_adding_a_week_recomputes_only_that_week(mlops_home):
    # Given two weeks, monitored once
    env = _env("monappend")
    _write(
        env.predictions_table,
        pd.concat([_flights(300, WEEK1, 7, seed=30), _flights(300, WEEK1 + timedelta(days=7), 7, seed=31)]),
    )
    _write(env.baseline_table, _flights(500, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=32))
    first = _refresh(env)
    assert _keys(first.computed, "1 week") == {WEEK1, WEEK1 + timedelta(days=7)}
    # and a refresh with nothing new recomputes nothing and writes nothing
    again = _refresh(env)
    assert (again.computed, again.consecutive_only, again.written) == ((), (), False)

    # When a third week is appended and the monitor refreshes
    week3 = WEEK1 + timedelta(days=14)
    _write(env.predictions_table, _flights(300, week3, 7, seed=33), mode="append")
    result = _refresh(env)

    # Then only that week and its days were computed; no earlier window needed its consecutive drift again
    assert _keys(result.computed, "1 week") == {week3}
    assert _keys(result.computed, "1 day") == {week3 + timedelta(days=d) for d in range(7)}
    assert result.consecutive_only == ()
    # and the earlier windows' rows are the first refresh's (table version 0), the new week's come from version 1
    profile = _read(monitored_tables(env)[0].profile_metrics_table)
    versions = profile[profile["log_type"] == "INPUT"].groupby("start")["logging_table_commit_version"].unique()
    assert {k: list(v) for k, v in versions.items() if k in (WEEK1, week3)} == {WEEK1: [0], week3: [1]}
    drift = _read(monitored_tables(env)[0].drift_metrics_table)
    weekly = drift[(drift["granularity"] == "1 week") & drift["slice_key"].isna() & (drift["column_name"] == "temp")]
    assert sorted(zip(weekly["drift_type"], weekly["start"], strict=True)) == sorted(
        [("BASELINE", WEEK1 + timedelta(days=7 * i)) for i in range(3)]
        + [("CONSECUTIVE", WEEK1 + timedelta(days=7 * i)) for i in (1, 2)]
    )
    # and --full recomputes everything
    assert len(_refresh(env, full=True).computed) == first.windows + 7 + 1


def test_labels_arriving_later_recompute_their_window(mlops_home):
    # Given two unlabelled weeks, monitored once
    env = _env("monlabels")
    week2 = WEEK1 + timedelta(days=7)
    flights = pd.concat(
        [_flights(400, WEEK1, 7, seed=40, labelled=False), _flights(400, week2, 7, seed=41, labelled=False)]
    )
    _write(env.predictions_table, flights)
    _write(env.baseline_table, _flights(500, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=42))
    _refresh(env)
    monitored = monitored_tables(env)[0]
    before = _read(monitored.profile_metrics_table)
    assert np.isnan(_weekly_roc_auc(before, WEEK1))

    # When the labels job fills the first week's labels and the monitor refreshes
    labelled = _flights(400, WEEK1, 7, seed=40)
    first_week = flights["sched_departure"] < week2
    for column in ("label", "arr_delay", "labeled_at"):
        flights.loc[first_week, column] = labelled[column].to_numpy()
    _write(env.predictions_table, flights)
    result = _refresh(env)

    # Then that week (and its days) is recomputed, and the next week only for its consecutive drift
    assert _keys(result.computed, "1 week") == {WEEK1}
    assert _keys(result.computed, "1 day") == {WEEK1 + timedelta(days=d) for d in range(7)}
    assert _keys(result.consecutive_only, "1 week") == {week2}
    assert _keys(result.consecutive_only, "1 day") == {week2}
    after = _read(monitored.profile_metrics_table)
    assert _weekly_roc_auc(after, WEEK1) > 0.5 and np.isnan(_weekly_roc_auc(after, week2))
    # and the state on disk holds the new fingerprint: labelled rows of week 1
    from local.monitor import state_path

    state = json.loads(state_path(monitored).read_text())
    key = f"1|{int(WEEK1.timestamp()) * 1_000_000}"
    assert state["windows"]["1 week"][key][:2] == [400, 400]


def _metric_rows(full_name: str) -> pd.DataFrame:
    """A metric table's rows in a stable order, without the columns that say when they were computed."""
    stamps = ["window", "logging_table_commit_version", "monitor_version"]
    frame = _read(full_name)
    frame = frame.drop(columns=[c for c in stamps if c in frame.columns])
    # Ordered by the columns that say which row it is (text, whole numbers, times), not by computed values: a sum
    # in another order can differ in the last bit and must not move a row.
    exact = (str, int, pd.Timestamp, type(None))
    keys = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, exact)).all()]
    return frame.sort_values(keys).reset_index(drop=True)


def test_an_incremental_refresh_gives_the_full_refreshs_tables_and_reads_one_baseline(mlops_home, monkeypatch):
    # Given weeks scored by two model versions, each with its own baseline, monitored once; the second week unlabelled
    env = _env("monincr")
    week2 = WEEK1 + timedelta(days=7)
    unlabelled = _flights(300, week2, 7, seed=51, version="2", labelled=False)
    _write(env.predictions_table, pd.concat([_flights(300, WEEK1, 7, seed=50, version="1"), unlabelled]))
    _write(
        env.baseline_table,
        pd.concat(
            [
                _flights(400, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=52, version="1"),
                _flights(400, datetime(2013, 2, 4, tzinfo=UTC), 7, seed=53, version="2", temp_mean=9.0),
            ]
        ),
    )
    _refresh(env)

    # When version 2's week gets its labels and the monitor refreshes incrementally
    _write(
        env.predictions_table,
        pd.concat([_flights(300, WEEK1, 7, seed=50, version="1"), _flights(300, week2, 7, seed=51, version="2")]),
    )
    from local.monitor import store

    baseline_reads = []
    read_baseline = store.read_baseline
    monkeypatch.setattr(
        store, "read_baseline", lambda *a: baseline_reads.append(a[2]) or read_baseline(*a), raising=True
    )
    monitored = monitored_tables(env)[0]
    metric_tables = (monitored.profile_metrics_table, monitored.drift_metrics_table)
    version_1_files = [_partition_files(name, "1") for name in metric_tables]
    incremental = _refresh(env)
    after_incremental = [_metric_rows(name) for name in metric_tables]

    # Then only version 2's week was recomputed, with version 2's baseline rows only
    assert {k.model_version for k in incremental.computed} == {"2"}
    assert baseline_reads == [{"2"}]
    # and only version 2's partition of each metric table was rewritten: version 1's files are the first refresh's
    assert [_partition_files(name, "1") for name in metric_tables] == version_1_files
    assert all(version_1_files) and incremental.profile_rows < len(after_incremental[0])
    # and the metric tables equal those of a full refresh of the same rows
    _refresh(env, full=True)
    assert baseline_reads[-1] == {"1", "2"}
    after_full = [_metric_rows(monitored.profile_metrics_table), _metric_rows(monitored.drift_metrics_table)]
    for incremental_rows, full_rows in zip(after_incremental, after_full, strict=True):
        pd.testing.assert_frame_equal(incremental_rows, full_rows)


def test_an_incremental_refresh_encodes_only_the_rows_of_the_windows_it_reads(mlops_home, monkeypatch):
    # Given four weeks of one model version, monitored once, the last week unlabelled
    env = _env("monrows")
    weeks = [WEEK1 + timedelta(days=7 * i) for i in range(4)]

    def scored(last_labelled: bool) -> pd.DataFrame:
        return pd.concat(
            [_flights(200, w, 7, seed=70 + i, labelled=i < 3 or last_labelled) for i, w in enumerate(weeks)]
        )

    _write(env.predictions_table, scored(last_labelled=False))
    _write(env.baseline_table, _flights(400, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=75))
    _refresh(env)

    # When the last week gets its labels and the monitor refreshes incrementally
    _write(env.predictions_table, scored(last_labelled=True))
    from local.monitor import refresh

    encoded = []
    build_frame = refresh.build_frame
    monkeypatch.setattr(refresh, "build_frame", lambda current, *a: encoded.append(current) or build_frame(current, *a))
    monitored = monitored_tables(env)[0]
    metric_tables = (monitored.profile_metrics_table, monitored.drift_metrics_table)
    _refresh(env)
    after_incremental = [_metric_rows(name) for name in metric_tables]

    # Then the frame held the rows of the last week and the week before it (its consecutive drift), not the first two
    first_read = min(datetime.fromisoformat(str(t)) for t in encoded[0].column("sched_departure").to_pylist())
    assert first_read >= weeks[2] and encoded[0].num_rows < 800
    # and the metric tables equal those of a full refresh of the same rows
    _refresh(env, full=True)
    assert encoded[-1].num_rows == 800
    for incremental_rows, name in zip(after_incremental, metric_tables, strict=True):
        pd.testing.assert_frame_equal(incremental_rows, _metric_rows(name))


def _partition_files(full_name: str, model_version: str) -> list[str]:
    from deltalake import DeltaTable

    from local.paths import table_path

    table = DeltaTable(str(table_path(full_name)))
    return sorted(table.file_uris(file_pruning_predicate=[("model_version", "=", model_version)]))


def test_metric_tables_of_an_earlier_layout_are_replaced_whole_then_written_by_model_version(mlops_home):
    # Given metric tables an earlier monitor wrote without partitions, and the monitor's state beside them
    from deltalake import DeltaTable, write_deltalake

    from local.paths import table_path

    env = _env("monlayout")
    _write(env.predictions_table, _flights(300, WEEK1, 7, seed=60))
    _write(env.baseline_table, _flights(400, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=61))
    _refresh(env)
    monitored = monitored_tables(env)[0]
    names = (monitored.profile_metrics_table, monitored.drift_metrics_table)
    expected = [_metric_rows(name) for name in names]
    for name in names:
        path = str(table_path(name))
        write_deltalake(path, DeltaTable(path).to_pyarrow_table(), mode="overwrite", schema_mode="overwrite",
                        partition_by=[])  # fmt: skip
        assert DeltaTable(path).metadata().partition_columns == []

    # When the monitor refreshes with no new rows
    result = _refresh(env)

    # Then it recomputed every window and wrote both tables partitioned by model version, with the same rows
    assert result.written and len(result.computed) == result.windows
    for name, rows in zip(names, expected, strict=True):
        assert DeltaTable(str(table_path(name))).metadata().partition_columns == ["model_version"]
        pd.testing.assert_frame_equal(_metric_rows(name), rows)


def test_replacing_some_model_versions_refuses_rows_of_another_before_writing(mlops_home):
    from local.monitor import store
    from local.monitor.schema import PROFILE_SCHEMA

    env = _env("monpartition")
    _write(env.predictions_table, _flights(300, WEEK1, 7, seed=62))
    _write(env.baseline_table, _flights(400, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=63))
    _refresh(env)
    name = monitored_tables(env)[0].profile_metrics_table
    rows = store.read_metrics(name, PROFILE_SCHEMA)
    before = _metric_rows(name)

    with pytest.raises(ValueError, match=r"rows of model versions \['1'\] outside the partitions replaced"):
        store.write_metrics(name, rows, {"2"})

    pd.testing.assert_frame_equal(_metric_rows(name), before)
    assert store.read_metrics(name, PROFILE_SCHEMA, {"2"}).num_rows == 0
    assert store.read_metrics(name, PROFILE_SCHEMA, {"1"}).num_rows == rows.num_rows


def test_mlops_monitor_prints_each_window(mlops_home, capsys):
    from cli.main import main

    # Given prod's predictions: a labelled week and a week without labels yet
    env = ENVIRONMENTS["prod"]
    week2 = WEEK1 + timedelta(days=7)
    _write(
        env.predictions_table,
        pd.concat([_flights(300, WEEK1, 7, seed=90), _flights(300, week2, 7, seed=91, labelled=False)]),
    )
    _write(env.baseline_table, _flights(500, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=92))

    # When `mlops monitor --env prod` runs, twice
    assert main(["monitor", "--env", "prod"]) == 0
    first = capsys.readouterr().out
    assert main(["monitor", "--env", "prod"]) == 0
    second = capsys.readouterr().out

    # Then it prints every week, the unlabelled one as such, and the second run found nothing to recompute
    assert "16 of 16 windows recomputed" in first
    lines = {line.split()[1]: line for line in first.splitlines() if line.startswith("│ 2013-")}
    assert set(lines) == {"2013-03-04", "2013-03-11"}
    assert "unlabelled" in lines["2013-03-11"] and "recomputed" in lines["2013-03-11"]
    assert "nothing changed since the last refresh (16 windows)" in second
    # and the served requests' table, which nothing wrote yet, is a clear error
    assert main(["monitor", "--env", "prod", "--table", "served"]) == 1
    assert re.search(r"^mlops monitor: .*flight_delay_served.*mlops run labels --env prod", capsys.readouterr().err)


# --- Faults ---------------------------------------------------------------------------------------------------------


def test_a_missing_monitored_table_says_what_to_run(mlops_home):
    from local.monitor import MonitorError

    env = _env("monnotable")
    with pytest.raises(MonitorError, match=r"monnotable\.ml\.flight_delay_predictions.*mlops run batch-inference"):
        _refresh(env)


def test_a_missing_baseline_says_train_first(mlops_home):
    from local.monitor import MonitorError

    env = _env("monnobaseline")
    _write(env.predictions_table, _flights(50, WEEK1, 7, seed=50))
    with pytest.raises(MonitorError, match=r"monnobaseline\.ml\.flight_delay_baseline.*train a model first"):
        _refresh(env)


def test_a_model_version_without_baseline_rows_is_named(mlops_home):
    from local.monitor import MonitorError

    env = _env("monnoversion")
    _write(
        env.predictions_table,
        pd.concat([_flights(50, WEEK1, 7, seed=60), _flights(50, WEEK1, 7, seed=61, version="3")]),
    )
    _write(env.baseline_table, _flights(50, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=62))
    with pytest.raises(MonitorError, match=r"model version\(s\) \['3'\].*no rows in the baseline table"):
        _refresh(env)


NOT_A_STATE = r"flight_delay_predictions\.json is not a state this monitor .*delete it"


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ('{"windows": {"1 week": {', r"monitor on .* at .*flight_delay_predictions\.json is not valid JSON"),
        ('["not", "a", "state"]', NOT_A_STATE),
        ('{"table": "x"}', NOT_A_STATE),
    ],
    ids=["cut", "list", "partial"],
)
def test_a_state_file_it_did_not_write_is_named_and_left_as_it_is(mlops_home, text, refusal):
    from local.monitor import state_path
    from spec.errors import MlopsError

    # Given a monitored table refreshed once, whose state file is then cut short or replaced by something else
    env = _env("monbadstate")
    _write(env.predictions_table, _flights(50, WEEK1, 7, seed=63))
    _write(env.baseline_table, _flights(50, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=64))
    first = _refresh(env, full=True)
    path = state_path(monitored_tables(env)[0])
    path.write_text(text)

    # When the monitor refreshes, then it stops with an error naming the file and what to do, and touches nothing
    with pytest.raises(MlopsError, match=refusal):
        _refresh(env)
    assert path.read_text() == text
    # and once the file is deleted, the next refresh recomputes every window
    path.unlink()
    assert len(_refresh(env).computed) == first.windows > 1


def _state(monitored) -> dict:
    """The refresh state of ``monitored`` without what names its catalog (the table, and the configuration's
    fingerprint, which holds the baseline table's name): the same rows in two catalogs give one state."""
    from local.monitor import state_path
    from local.monitor.plan import config_fingerprint

    state = json.loads(state_path(monitored).read_text())
    assert (state["table"], state["config"]) == (monitored.table, config_fingerprint(monitored))
    return {k: v for k, v in state.items() if k not in ("table", "config")}


def test_two_refreshes_of_one_table_at_once_give_what_one_after_the_other_gives(mlops_home, monkeypatch):
    import threading
    from contextlib import suppress

    import local.monitor as monitor
    from local.monitor import store

    # Given the same two scored weeks and baseline in two catalogs, one of them refreshed twice, one after the other
    together, apart = _env("monrace"), _env("monraceapart")
    for env in (together, apart):
        _write(
            env.predictions_table,
            pd.concat([_flights(300, WEEK1, 7, seed=70), _flights(300, WEEK1 + timedelta(days=7), 7, seed=71)]),
        )
        _write(env.baseline_table, _flights(500, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=72))
    one_after_the_other = [_refresh(apart), _refresh(apart)]

    # When two threads refresh the other catalog's table at once, each held (up to 2 s) once it has read the state
    # until the other has read it too: the moment an unserialized refresh plans from a state the other replaces
    both_read = threading.Barrier(2, timeout=2)
    read_baseline = store.read_baseline

    def held(*args):
        with suppress(threading.BrokenBarrierError):
            both_read.wait()
        return read_baseline(*args)

    monkeypatch.setattr(store, "read_baseline", held)
    results, errors = [], []

    def refresh() -> None:
        try:
            results.append(_refresh(together))
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    # Then neither failed, and one computed every window while the other found nothing to do, as one after the other
    assert errors == [] and len(results) == 2
    shape = sorted((len(r.computed), r.written) for r in results)
    assert shape == sorted((len(r.computed), r.written) for r in one_after_the_other)
    assert shape[0] == (0, False) and shape[1][0] == one_after_the_other[0].windows
    # and the metric tables and the state are those of one refresh after the other, with no staging file left over
    mine, theirs = monitored_tables(together)[0], monitored_tables(apart)[0]
    for name, reference in zip(
        (mine.profile_metrics_table, mine.drift_metrics_table),
        (theirs.profile_metrics_table, theirs.drift_metrics_table),
        strict=True,
    ):
        pd.testing.assert_frame_equal(_metric_rows(name), _metric_rows(reference))
    assert _state(mine) == _state(theirs)
    assert not [p.name for p in monitor.state_path(mine).parent.iterdir() if p.name.endswith(".tmp")]


def test_a_plan_that_recomputes_windows_it_read_no_rows_for_is_an_explicit_error(mlops_home, monkeypatch):
    from local.monitor import plan

    # Given a planner that asks for windows to be recomputed but for none of their rows (a bug: it cannot today)
    env = _env("monplanbug")
    _write(env.predictions_table, _flights(100, WEEK1, 7, seed=80))
    _write(env.baseline_table, _flights(100, datetime(2013, 1, 7, tzinfo=UTC), 7, seed=81))
    plan_windows = plan.plan_windows
    monkeypatch.setattr(plan, "plan_windows", lambda *args: replace(plan_windows(*args), rows=set()))

    # Then the refresh stops with an error naming the table and what is wrong, under python -O too (not an assert)
    with pytest.raises(RuntimeError, match=r"monplanbug\.ml\.flight_delay_predictions .*no rows were read"):
        _refresh(env)


# --- The SQL alerts on the metric tables ----------------------------------------------------------------------------


def _alert_results(env) -> dict[str, dict]:
    """Every alert query of ``env`` transpiled to DuckDB and run on the metric tables."""
    import duckdb
    import sqlglot
    from deltalake import DeltaTable

    from local.paths import table_path

    connection = duckdb.connect()
    connection.execute(f"ATTACH ':memory:' AS {env.catalog}")
    connection.execute(f"CREATE SCHEMA {env.catalog}.monitoring")
    monitored = monitored_tables(env)[0]
    for name in (monitored.profile_metrics_table, monitored.drift_metrics_table):
        arrow = DeltaTable(str(table_path(name))).to_pyarrow_dataset()
        connection.register("metrics", arrow)
        connection.execute(f"CREATE TABLE {name} AS SELECT * FROM metrics")
        connection.unregister("metrics")
    results = {}
    for alert in alerts(env):
        if alert.monitored != monitored:
            continue
        (query,) = sqlglot.transpile(alert.query_text, read="databricks", write="duckdb")
        cursor = connection.execute(query)
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        assert len(rows) == 1
        results[alert.kind] = dict(zip(columns, rows[0], strict=True))
    return results


@pytest.mark.parametrize("drifted", [True, False], ids=["later-season-bad-model", "stable-good-model"])
def test_alert_queries_run_on_the_metric_tables(mlops_home, drifted):
    # Given four weeks of 600 labelled flights: the last two July-like and scored by a model that learnt nothing
    # (drifted), or all like the baseline and well scored (stable)
    env = _env("monalertdrift" if drifted else "monalertstable")
    weeks = [
        _flights(
            600,
            WEEK1 + timedelta(days=7 * i),
            7,
            seed=70 + i,
            temp_mean=27.0 if drifted and i >= 2 else 5.0,
            skill=0.0 if drifted and i >= 2 else 1.0,
        )
        for i in range(4)
    ]
    _write(env.predictions_table, pd.concat(weeks))
    _write(env.baseline_table, _flights(3000, datetime(2013, 1, 7, tzinfo=UTC), 42, seed=79))
    _refresh(env)

    # When the alert queries run on the metric tables through DuckDB
    results = _alert_results(env)

    # Then drift and quality trigger for the drifted weeks, and neither does for the stable ones
    drift, quality = results["feature_drift"], results["model_quality"]
    assert (drift["windows"], quality["windows"]) == (4, 4)
    latest = drift["latest_window"]
    assert (latest.astimezone(UTC) if latest.tzinfo else latest.replace(tzinfo=UTC)) == WEEK1 + timedelta(days=21)
    if drifted:
        assert (drift["triggered"], drift["breaches"], quality["triggered"], quality["breaches"]) == (1, 2, 1, 2)
        assert drift["latest_worst_psi"] > env.monitoring.max_drift_psi
        assert quality["latest_roc_auc"] < env.monitoring.min_roc_auc
    else:
        assert (drift["triggered"], drift["breaches"], quality["triggered"], quality["breaches"]) == (0, 0, 0, 0)
        assert drift["latest_worst_psi"] < 0.1 and quality["latest_roc_auc"] > 0.8
