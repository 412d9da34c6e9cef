"""A regression model under the local monitor and its alerts, with no change to platform code: a regressor declared
in the tests (tests/support/regression_model.py) scores rides; the monitor's whole-table rows carry the regression
quality metrics by data profiling's names (scikit-learn's values), its prediction and label are profiled and drift as
numbers, and the model-quality alert's SQL (mean absolute error above ``monitoring.max_mean_absolute_error``) runs on
the local warehouse (DuckDB) over a profile table made here by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn import metrics

from spec.config import ENVIRONMENTS
from spec.monitoring import TABLE_COLUMN, alerts, monitored_tables
from tests.support.regression_model import REGRESSOR

pytestmark = pytest.mark.integration

WEEK1 = datetime(2013, 3, 4, tzinfo=UTC)  # a Monday
TS = pa.timestamp("us", tz="UTC")
ARROW_TYPES = {
    "DATE": pa.date32(),
    "STRING": pa.string(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "TIMESTAMP": TS,
}
SCHEMA = pa.schema([(name, ARROW_TYPES[sql]) for name, sql in REGRESSOR.prediction_column_types])
STATIONS = ("S1", "S2", "S3")


def _env(catalog: str, max_mae: float = 6.0):
    return ENVIRONMENTS["prod"].replace(catalog=catalog, monitoring={"max_mean_absolute_error": max_mae})


def _rides(n: int, start: datetime, days: int, *, seed: int, version: str = "1", noise: float = 3.0) -> pd.DataFrame:
    """``n`` scored rides over ``days`` days from ``start`` in the predictions table's layout (the regressor's); the
    predictions miss the minutes by about ``noise``; the last 10 rides have no label yet."""
    rng = np.random.default_rng(seed)
    started = pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.integers(0, days * 86_400, n)), "s"))
    distance = rng.gamma(2.0, 1.5, n).round(2)
    minutes = (4.0 * distance + rng.normal(0.0, 2.0, n)).round(1)
    labelled = np.arange(n) < n - 10
    at = pd.Timestamp("2013-12-31", tz="UTC")
    return pd.DataFrame(
        {
            "ride_date": started.date,
            "station": rng.choice(STATIONS, n),
            "ride_id": np.arange(n, dtype=np.int64) + seed * 100_000,
            "started_at": started,
            "bike_type": rng.choice(["classic", "electric"], n),
            "distance_km": distance,
            "hour": started.hour.astype(float),
            "temperature": np.where(rng.random(n) < 0.1, np.nan, rng.normal(12.0, 4.0, n).round(1)),
            "prediction": (minutes + rng.normal(0.0, noise, n)).round(1),
            "model_name": "prod.ml.ride_minutes",
            "model_version": version,
            "model_alias": "champion",
            "scored_at": at,
            "batch_id": "batch-test",
            "source": "batch",
            "label": np.where(labelled, minutes, np.nan),
            "ended_at": pd.Series(
                np.where(labelled, started + pd.to_timedelta(minutes, "m"), pd.NaT), dtype="datetime64[ns, UTC]"
            ),
            "labeled_at": pd.Series(np.where(labelled, at, pd.NaT), dtype="datetime64[ns, UTC]"),
        }
    )


def _write(full_name: str, table: pa.Table) -> None:
    from deltalake import write_deltalake

    from local.paths import table_path

    path = table_path(full_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(path), table, mode="overwrite")


def _read(full_name: str) -> pd.DataFrame:
    from deltalake import DeltaTable

    from local.paths import table_path

    frame = DeltaTable(str(table_path(full_name))).to_pandas()
    frame["start"] = [w["start"] for w in frame["window"]]
    return frame


def test_a_regressors_monitor_profiles_it_and_measures_its_errors(mlops_home):
    from local.monitor import refresh_monitor, window_summaries

    # Given two weeks of scored rides, the second scored worse, and the regressor's baseline
    env = _env("monregression")
    weeks = [_rides(400, WEEK1 + timedelta(days=7 * i), 7, seed=30 + i, noise=3.0 if i == 0 else 9.0) for i in (0, 1)]
    rows = pd.concat(weeks, ignore_index=True)
    _write(env.predictions_table, pa.Table.from_pandas(rows[SCHEMA.names], preserve_index=False).cast(SCHEMA))
    baseline = _rides(1500, datetime(2013, 1, 7, tzinfo=UTC), 42, seed=39)
    _write(env.baseline_table, pa.Table.from_pandas(baseline[SCHEMA.names], preserve_index=False).cast(SCHEMA))
    monitored = monitored_tables(env, REGRESSOR)[0]

    # When the monitor refreshes
    result = refresh_monitor(env, monitored)

    # Then each week's whole-table row has scikit-learn's regression metrics of its labelled rides
    profile = _read(monitored.profile_metrics_table)
    assert result.computed and set(profile["column_name"]) == {TABLE_COLUMN, *monitored.monitored_columns}
    for i, week in enumerate(weeks):
        [row] = profile[
            (profile["column_name"] == TABLE_COLUMN) & (profile["granularity"] == "1 week")
            & profile["slice_key"].isna() & (profile["log_type"] == "INPUT")
            & (profile["start"] == pd.Timestamp(WEEK1 + timedelta(days=7 * i)))
        ].to_dict(orient="records")  # fmt: skip
        known = week[week["label"].notna()]
        y, p = known["label"].to_numpy(), known["prediction"].to_numpy()
        assert row["count"] == 400
        assert row["mean_average_error"] == pytest.approx(metrics.mean_absolute_error(y, p), rel=1e-9)
        assert row["mean_squared_error"] == pytest.approx(metrics.mean_squared_error(y, p), rel=1e-9)
        assert row["root_mean_squared_error"] == pytest.approx(np.sqrt(metrics.mean_squared_error(y, p)), rel=1e-9)
        assert row["r2_score"] == pytest.approx(metrics.r2_score(y, p), rel=1e-9)
        assert row["mean_absolute_percentage_error"] == pytest.approx(
            metrics.mean_absolute_percentage_error(y, p), rel=1e-9
        )
        # no classification metric on a regressor's rows
        assert pd.isna(row["roc_auc_score"]) and pd.isna(row["accuracy_score"]) and row["confusion_matrix"] is None
    # and its prediction and label are profiled as numbers: quantiles, no frequent items; numeric drift (PSI)
    label = profile[(profile["column_name"] == "label") & (profile["granularity"] == "1 week")].iloc[0]
    assert label["quantiles"] is not None and label["frequent_items"] is None
    drift = _read(monitored.drift_metrics_table)
    predicted = drift[(drift["column_name"] == "prediction") & (drift["drift_type"] == "BASELINE")]
    assert len(predicted) and predicted["population_stability_index"].notna().all()
    # and `mlops monitor`'s summaries carry the mean absolute error, no ROC AUC
    [first, second] = window_summaries(monitored, "1 week")
    assert first.roc_auc is None and first.mean_absolute_error < 4.0 < 6.0 < second.mean_absolute_error
    assert first.labelled_rows == 390


# --- The quality alert on a hand-made profile table -----------------------------------------------------------------

PROFILE = pa.schema(
    [
        ("window", pa.struct([("start", TS), ("end", TS)])),
        ("granularity", pa.string()),
        ("model_version", pa.string()),
        ("log_type", pa.string()),
        ("slice_key", pa.string()),
        ("slice_value", pa.string()),
        ("column_name", pa.string()),
        ("count", pa.int64()),
        ("num_nulls", pa.int64()),
        ("mean_average_error", pa.float64()),
    ]
)


def _profile(weekly_mae: list[tuple[float, float | None]], labels: int) -> pa.Table:
    """Per week: (the Champion's mean absolute error, a Challenger's or None), the Champion with ``labels``
    labelled rows of 1,000, the Challenger with 600 of 600."""
    rows = []
    for i, (mae, challenger) in enumerate(weekly_mae):
        start = WEEK1 + timedelta(days=7 * i)
        window = {"start": start, "end": start + timedelta(days=7)}
        for version, error, count, labelled in (("1", mae, 1000, labels), ("2", challenger, 600, 600)):
            if error is None:
                continue
            base = {"window": window, "granularity": "1 week", "model_version": version, "log_type": "INPUT",
                    "slice_key": None, "slice_value": None}  # fmt: skip
            rows.append(
                {**base, "column_name": TABLE_COLUMN, "count": count, "num_nulls": 0, "mean_average_error": error}
            )
            rows.append({**base, "column_name": "label", "count": count, "num_nulls": count - labelled,
                         "mean_average_error": None})  # fmt: skip
            # a slice's error is not the model's: the alert reads the whole table only
            rows.append({**base, "slice_key": "station", "slice_value": "S1", "column_name": TABLE_COLUMN,
                         "count": count // 3, "num_nulls": 0, "mean_average_error": 99.0})  # fmt: skip
    return pa.Table.from_pylist(rows, schema=PROFILE)


def _quality_verdict(env, profile: pa.Table) -> dict:
    from local.warehouse import LocalSql

    [alert] = [a for a in alerts(env, REGRESSOR) if a.kind == "model_quality" and a.starts_retraining]
    _write(alert.monitored.profile_metrics_table, profile)
    [row] = LocalSql(env.name).query(alert.query_text)
    return row


@pytest.mark.parametrize(
    ("weekly_mae", "labels", "expected"),
    [
        # the latest two of four weeks above 6.0: triggered
        ([(4.0, None), (4.5, None), (7.5, None), (8.0, 2.0)], 900, (4, 2, 1, 8.0)),
        # above the threshold once, then back under it: not triggered (the latest window must breach)
        ([(4.0, None), (7.5, None), (8.0, None), (5.0, None)], 900, (4, 2, 0, 5.0)),
        # the same errors on too few labels (under monitoring.min_labelled_rows): no window counts (DuckDB's
        # COUNT_IF over no row is NULL)
        ([(4.0, None), (4.5, None), (7.5, None), (8.0, None)], 100, (0, None, 0, None)),
    ],
    ids=["breached", "recovered", "too-few-labels"],
)
def test_the_regression_quality_alert_on_the_local_warehouse(mlops_home, weekly_mae, labels, expected):
    # Given a regressor's weekly mean absolute errors in its profile metric table (a good Challenger beside the
    # Champion in the last week: the worst model of a window decides, as a classifier's lowest ROC AUC does)
    env = _env(f"monregalert{len(weekly_mae)}{labels}{int(weekly_mae[-1][0])}")

    # When the model-quality alert's own query runs on the local warehouse
    row = _quality_verdict(env, _profile(weekly_mae, labels))

    # Then it counts the windows and breaches of MAE > monitoring.max_mean_absolute_error and decides
    assert (row["windows"], row["breaches"], row["triggered"], row["latest_mean_absolute_error"]) == expected
