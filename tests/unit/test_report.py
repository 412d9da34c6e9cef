"""The demo's report and `mlops dashboard`, without Spark: the report from a small synthetic ``report_data.json``
document (and a synthetic drift frame), the dashboard from small Delta tables with the monitor's metric-table
columns (Lakehouse Monitoring's names), written with delta-rs under a temporary MLOPS_HOME."""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from cli.commands import dashboard as dashboard_command
from cli.main import main as cli_main
from local.dashboard import DashboardError, figure_label_coverage, label_coverage, load_metrics, render_dashboard
from local.paths import table_path
from local.report import figure_quality, load_drift, render_report, summary_rows, weeks_frame
from local.report.figures import drift_matrix, figure_drift
from local.report.metrics import ReportError
from local.warehouse import LocalSql
from spec.config import ENVIRONMENTS
from spec.monitoring import alerts, monitored_tables

PROD = ENVIRONMENTS["prod"]
PREDICTIONS, SERVED = monitored_tables(PROD)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIRST_MONDAY = datetime(2013, 1, 7)


# --- The report's input ----------------------------------------------------------------------------------------------


def week(i: int, **values) -> dict:
    """Week ``i`` of the replay: labelled from the third week on (ROC AUC of the loop 0.70, 0.71, ...; retraining
    every week 0.005 better; never retrained 0.69), requests every week but the fourth."""
    labelled = i >= 2
    served = i != 3
    record = {
        "week_start": (FIRST_MONDAY + timedelta(weeks=i)).date().isoformat(),
        "champion": "1" if i < 5 else "2",
        "challenger": "2" if i in (3, 4) else None,
        "challenger_percent": 10 if i in (3, 4) else 0,
        "auc_loop": round(0.70 + 0.01 * (i - 2), 3) if labelled else None,
        "auc_never": 0.69 if labelled else None,
        "auc_weekly": round(0.705 + 0.01 * (i - 2), 3) if labelled else None,
        "labelled": 5000 if labelled else 0,
        "scored_stream": 5000,
        "scored_batch": 800,
        "rejected": 2,
        "served_requests": 60 if served else 0,
        "served_errors": 0,
        "served_p50_ms": 3.0 if served else None,
        "served_p95_ms": 6.0 + i if served else None,
        "published": 5800,
        "alerts": {
            "flight_delay_predictions_feature_drift": "OK",
            "flight_delay_predictions_model_quality": "TRIGGERED" if i in (2, 3, 6) else "OK",
        },
        "retrained": i in (2, 4, 6),
        "retrain_reason": "model quality alert" if i in (2, 4, 6) else None,
        "new_version": {2: "2", 4: "3", 6: "4"}.get(i),
        "validation": {2: "PASSED", 4: "FAILED", 6: "PASSED"}.get(i),
        "promoted": i == 5,
        "online_decision": {3: "ramp", 4: "ramp", 5: "promote"}.get(i),
    }
    record.update(values)
    return record


def report_data(**values) -> dict:
    data = {
        "env": "prod",
        "start": "2013-01-07",
        "end": "2013-03-03",
        "seed": 7,
        "wall_seconds": 540.2,
        "phases": {"infrastructure": 3.1, "initial training": 95.0, "replay": 400.2, "references": 30.5},
        "weeks": [week(i) for i in range(8)],
        "events": [
            {"week_start": "2013-01-21", "kind": "retraining", "message": "v2 trained: model quality alert"},
            {"week_start": "2013-02-04", "kind": "promotion", "message": "v2 is the Champion"},
        ],
        "paths": {
            "mlflow_ui": "mlflow ui --backend-store-uri sqlite:///tmp/mlflow.db",
            "warehouse": "/tmp/warehouse",
            "dashboard": "mlops dashboard --env prod",
        },
    }
    data.update(values)
    return data


def drift_frame() -> pd.DataFrame:
    rows = [
        {"window_start": pd.Timestamp(FIRST_MONDAY + timedelta(weeks=i)), "model_version": "1", "column_name": name,
         "psi": psi * (1 + i / 10), "rows": 5000.0}
        for i in range(8)
        for name, psi in (("temp", 0.2), ("distance", 0.02), ("month", 1.5))
    ]  # fmt: skip
    return pd.DataFrame(rows)


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def image_sources(index: Path) -> list[str]:
    parser = _Images()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser.sources


def assert_pngs_beside(index: Path, sources: list[str]) -> None:
    assert sources, "the page links no image"
    for source in sources:
        assert not Path(source).is_absolute() and ".." not in source, source
        png = index.parent / source
        assert png.is_file(), source
        assert png.read_bytes()[:8] == PNG_MAGIC, source
        assert png.stat().st_size > 1000, source


# --- The report -----------------------------------------------------------------------------------------------------


def test_report_links_one_png_per_plot_and_each_exists(tmp_path):
    # Given the replay's data and the weekly drift per feature
    data = report_data()

    # When the report is rendered
    index = render_report(data, tmp_path / "report", drift=drift_frame())

    # Then index.html links every plot's PNG, beside it, and each is a non-empty PNG
    sources = image_sources(index)
    assert sources == [
        "quality.png", "drift.png", "alerts.png", "versions.png", "serving.png", "publishing.png", "scoring.png",
    ]  # fmt: skip
    assert_pngs_beside(index, sources)


def test_summary_states_each_target_with_the_measured_number_and_its_verdict():
    # Given 8 weeks, 3 of them retrained (more than a third), the loop 0.005 below weekly retraining, 540 s in all
    rows = dict(summary_rows(report_data()))

    # Then the missed target reads missed and the met ones met, with the numbers measured
    assert rows["retrains"] == "3 of 8 weeks (38%); target at most a third of the weeks: missed"
    assert rows["gap of the loop to retraining every week"] == (
        "the loop 0.0050 below retraining every week (6 weeks with both); target at most 0.01 below: met"
    )
    assert rows["wall time"] == "540 s (9.0 min); target under 10 minutes: met"
    assert rows["the loop against never retraining, second half (from 2013-02-03)"] == (
        "the loop 0.0450 above never retraining (4 weeks with both); target above: met"
    )


def test_summary_counts_only_weeks_with_labels_and_the_rest_of_the_replay():
    rows = dict(summary_rows(report_data()))

    assert rows["mean weekly ROC AUC, the loop"] == "0.7250 (6 weeks with labels)"
    assert rows["mean weekly ROC AUC, never retrained"] == "0.6900 (6 weeks with labels)"
    assert rows["mean weekly ROC AUC, retrained every week, second half (from 2013-02-03)"] == (
        "0.7400 (4 weeks with labels)"
    )
    assert rows["alerts fired"] == "2 times (3 TRIGGERED alert-weeks): flight_delay_predictions_model_quality 2"
    assert rows["validations failed"] == "1"
    assert rows["promotions"] == "1"
    assert rows["Champion versions"] == "v1 -> v2"
    assert rows["online decisions"] == "ramp 2, promote 1"
    assert rows["served requests"] == "420 (0 errors)"
    assert rows["serving latency"] == "p50 3.0 ms, p95 10.0 ms (median of 7 weekly values); worst weekly p95 13.0 ms"
    assert rows["rows scored"] == "stream 40,000, batch 6,400, rejected 16"
    assert rows["items published online"] == "46,400"
    assert rows["time: replay"] == "400 s (6.7 min)"


@pytest.mark.parametrize(
    ("wall_seconds", "expected"),
    [(599.0, "599 s (10.0 min); target under 10 minutes: met"),
     (612.0, "612 s (10.2 min); target under 10 minutes: missed"),
     (None, "not recorded; target under 10 minutes: not measured")],
)  # fmt: skip
def test_wall_time_verdict(wall_seconds, expected):
    rows = dict(summary_rows(report_data(wall_seconds=wall_seconds, phases={})))

    assert rows["wall time"] == expected


def test_a_loop_far_below_the_references_misses_its_targets():
    weeks = [week(i, auc_loop=0.68 if i >= 2 else None) for i in range(8)]

    rows = dict(summary_rows(report_data(weeks=weeks)))

    assert rows["gap of the loop to retraining every week"] == (
        "the loop 0.0500 below retraining every week (6 weeks with both); target at most 0.01 below: missed"
    )
    # and 0.68 is below never retraining's 0.69: the second-half target is missed too
    assert rows["the loop against never retraining, second half (from 2013-02-03)"] == (
        "the loop 0.0100 below never retraining (4 weeks with both); target above: missed"
    )


def test_missing_references_say_why_and_absent_values_say_no_labels():
    without = [week(i, auc_never=None, auc_weekly=None) for i in range(8)]

    failed = dict(summary_rows(report_data(weeks=without, references_missing="the weekly reference failed")))
    unexplained = dict(summary_rows(report_data(weeks=without)))

    assert failed["mean weekly ROC AUC, retrained every week"] == "not computed (the weekly reference failed)"
    assert failed["mean weekly ROC AUC, the loop"] == "0.7250 (6 weeks with labels)"
    assert unexplained["mean weekly ROC AUC, never retrained"] == "no week with labels"


def test_the_page_shows_a_missed_target_as_missed(tmp_path):
    index = render_report(report_data(), tmp_path)

    page = index.read_text(encoding="utf-8")
    assert (
        "<tr><td>retrains</td><td>3 of 8 weeks (38%)</td><td>at most a third of the weeks</td>"
        '<td><span class="missed">missed</span></td></tr>'
    ) in page
    assert "mlflow ui --backend-store-uri sqlite:///tmp/mlflow.db" in page
    assert "/tmp/warehouse/prod/monitoring/flight_delay_predictions_drift_metrics" in page


def test_weeks_without_labels_are_gaps_not_zeros():
    # Given weeks 0 and 1 without labels (null ROC AUCs)
    weeks = weeks_frame(report_data())

    # When the quality figure is drawn
    figure = figure_quality(weeks, min_roc_auc=0.65)

    # Then each policy's line has no value for those weeks, and nothing drags the axis towards 0
    ax = figure.axes[0]
    lines = {line.get_label(): line.get_ydata() for line in ax.get_lines() if not line.get_label().startswith("_")}
    policies = ["the loop", "never retrained", "retrained every week"]
    assert all(name in lines for name in policies), lines.keys()
    for name in policies:
        values = [float(v) for v in lines[name]]
        assert all(math.isnan(v) for v in values[:2]), (name, values)
        assert min(v for v in values[2:]) >= 0.65, (name, values)
    assert ax.get_ylim()[0] > 0.6


def test_missing_keys_and_nulls_render_a_page_that_says_what_is_missing(tmp_path):
    # Given a document with one bare week and no phases, paths or events
    data = {"env": "prod", "weeks": [{"week_start": "2013-01-07", "auc_loop": None}]}

    index = render_report(data, tmp_path)

    page = index.read_text(encoding="utf-8")
    assert image_sources(index) == []
    assert "No plot: no week has a ROC AUC" in page
    assert "No plot: no drift metrics (run mlops monitor first)" in page
    rows = dict(summary_rows(data))
    assert rows["mean weekly ROC AUC, the loop"] == "no week with labels"
    assert rows["gap of the loop to retraining every week"] == (
        "no week with both ROC AUCs; target at most 0.01 below: not measured"
    )
    assert rows["serving latency"] == "no request served"


def test_an_empty_document_renders(tmp_path):
    index = render_report({}, tmp_path)

    assert index.is_file()
    assert dict(summary_rows({}))["retrains"] == "no week replayed; target at most a third of the weeks: not measured"


# --- The monitor's metric tables as fixtures -----------------------------------------------------------------------

TS = pa.timestamp("us", tz="UTC")
WINDOW = pa.struct([("start", TS), ("end", TS)])
AVERAGED = pa.struct([("macro", pa.float64()), ("weighted", pa.float64()),
                      ("one_vs_all", pa.map_(pa.string(), pa.float64()))])  # fmt: skip
TEST = pa.struct([("statistic", pa.float64()), ("pvalue", pa.float64())])
PROFILE = pa.schema(
    [("window", WINDOW), ("granularity", pa.string()), ("model_version", pa.string()), ("log_type", pa.string()),
     ("slice_key", pa.string()), ("slice_value", pa.string()), ("column_name", pa.string()), ("count", pa.int64()),
     ("num_nulls", pa.int64()), ("avg", pa.float64()), ("stddev", pa.float64()), ("quantiles", pa.list_(pa.float64())),
     ("accuracy_score", pa.float64()), ("roc_auc_score", pa.float64()), ("log_loss", pa.float64()),
     ("precision", AVERAGED), ("recall", AVERAGED), ("f1_score", AVERAGED)]
)  # fmt: skip
DRIFT = pa.schema(
    [("window", WINDOW), ("granularity", pa.string()), ("model_version", pa.string()), ("slice_key", pa.string()),
     ("slice_value", pa.string()), ("column_name", pa.string()), ("drift_type", pa.string()),
     ("population_stability_index", pa.float64()), ("js_distance", pa.float64()), ("ks_test", TEST),
     ("wasserstein_distance", pa.float64()), ("tv_distance", pa.float64()), ("chi_squared_test", TEST)]
)  # fmt: skip
WEEKS = [datetime(2013, 1, 7, tzinfo=UTC) + timedelta(weeks=i) for i in range(3)]  # the last one: no label yet


def window(start: datetime, granularity: str) -> dict:
    return {"start": start, "end": start + (timedelta(weeks=1) if granularity == "1 week" else timedelta(days=1))}


def profile_row(start, granularity, version, column, *, rows, labels, auc=None, slice_key=None, slice_value=None,
                log_type="INPUT") -> dict:  # fmt: skip
    return {
        "window": window(start, granularity), "granularity": granularity, "model_version": version,
        "log_type": log_type, "slice_key": slice_key, "slice_value": slice_value, "column_name": column,
        "count": rows, "num_nulls": rows - labels if column == "label" else 0, "avg": None, "stddev": None,
        "quantiles": None, "accuracy_score": None if auc is None else auc - 0.05, "roc_auc_score": auc,
        "log_loss": None, "precision": None, "recall": None, "f1_score": None,
    }  # fmt: skip


def profile_rows() -> list[dict]:
    rows = []
    for granularity, starts in (("1 week", WEEKS), ("1 day", [w + timedelta(days=d) for w in WEEKS for d in (0, 3)])):
        for start in starts:
            labelled = start < WEEKS[2]
            for version, count in (("1", 900), ("2", 100)):
                labels = count if labelled else 0
                auc = (0.72 if version == "1" else 0.75) if labelled else None
                rows.append(profile_row(start, granularity, version, ":table", rows=count, labels=labels, auc=auc))
                rows.append(profile_row(start, granularity, version, "label", rows=count, labels=labels))
                for key, values in (("origin", ("EWR", "JFK")), ("carrier", ("UA", "B6"))):
                    for n, value in enumerate(values):
                        sliced_auc = None if auc is None else auc + 0.01 * n
                        rows.append(profile_row(start, granularity, version, ":table", rows=count // 2, labels=labels,
                                                auc=sliced_auc, slice_key=key, slice_value=value))  # fmt: skip
    rows.append(profile_row(WEEKS[0], "1 week", "1", ":table", rows=5000, labels=5000, auc=0.9, log_type="BASELINE"))
    return rows


def drift_row(start, granularity, column, drift_type, psi, *, version="1", slice_key=None, slice_value=None) -> dict:
    return {
        "window": window(start, granularity), "granularity": granularity, "model_version": version,
        "slice_key": slice_key, "slice_value": slice_value, "column_name": column, "drift_type": drift_type,
        "population_stability_index": psi, "js_distance": 0.1, "ks_test": {"statistic": 0.1, "pvalue": 0.5},
        "wasserstein_distance": 0.3, "tv_distance": 0.1, "chi_squared_test": None,
    }  # fmt: skip


def drift_rows() -> list[dict]:
    rows = []
    for i, start in enumerate(WEEKS):
        rows.append(drift_row(start, "1 week", "temp", "BASELINE", 0.1 + 0.15 * i))
        rows.append(drift_row(start, "1 week", "temp", "BASELINE", 0.05, version="2"))
        rows.append(drift_row(start, "1 week", "distance", "BASELINE", 0.02))
        rows.append(drift_row(start, "1 week", "temp", "CONSECUTIVE", 0.03))
        rows.append(drift_row(start, "1 day", "temp", "BASELINE", 0.9))
        rows.append(drift_row(start, "1 week", "temp", "BASELINE", 0.8, slice_key="origin", slice_value="EWR"))
        rows.append(drift_row(start, "1 week", "label", "BASELINE", 0.7))
        rows.append(drift_row(start, "1 week", "carrier", "BASELINE", None))
    return rows


def write_table(full_name: str, rows: list[dict], schema: pa.Schema) -> None:
    path = table_path(full_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(path), pa.Table.from_pylist(rows, schema=schema))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def predictions_metrics(home) -> None:
    write_table(PREDICTIONS.profile_metrics_table, profile_rows(), PROFILE)
    write_table(PREDICTIONS.drift_metrics_table, drift_rows(), DRIFT)


# --- Drift for the report -------------------------------------------------------------------------------------------


def test_load_drift_reads_weekly_baseline_psi_of_the_whole_table_per_feature(predictions_metrics):
    drift = load_drift("prod")

    got = sorted(drift.drop(columns="alerted").itertuples(index=False, name=None))
    expected = sorted(
        [(pd.Timestamp(w.replace(tzinfo=None)), "1", "temp", round(0.1 + 0.15 * i, 10), 900.0)
         for i, w in enumerate(WEEKS)]
        + [(pd.Timestamp(w.replace(tzinfo=None)), "2", "temp", 0.05, 100.0) for w in WEEKS]
        + [(pd.Timestamp(w.replace(tzinfo=None)), "1", "distance", 0.02, 900.0) for w in WEEKS]
    )  # fmt: skip
    assert [(t, v, c, round(p, 10), r) for t, v, c, p, r in got] == expected
    # in the model's order of its features, each marked as the drift alert watches it or not
    assert list(dict.fromkeys(drift["column_name"])) == ["distance", "temp"]
    assert drift.groupby("column_name")["alerted"].unique().map(list).to_dict() == {"distance": [True], "temp": [False]}


def test_load_drift_without_a_drift_table_is_none(home):
    assert load_drift(PROD) is None


def test_a_drift_table_without_its_profile_table_is_a_clear_error(home):
    write_table(PREDICTIONS.drift_metrics_table, drift_rows(), DRIFT)

    with pytest.raises(ReportError) as error:
        load_drift(PROD)

    assert str(error.value) == (
        "prod.monitoring.flight_delay_predictions_drift_metrics exists but prod.monitoring.flight_delay_predictions_"
        "profile_metrics does not: the drift plot needs the rows per window from it (run mlops monitor --env prod "
        "--full)"
    )


# A promotion week: the old Champion's last ~100 late-Sunday flights (Monday in UTC) fall into the new Champion's
# first weekly window, where they form a group of their own with an extreme PSI against the old version's baseline.
SLIVER_WEEK, PROMOTION_WEEK = WEEKS[0], WEEKS[1]
SLIVER_PSI = {"sched_hour": 8.6, "day_of_week": 6.1, "wind_speed": 1.9, "visib": 2.4, "temp": 3.3}
CHAMPION_PSI = {"sched_hour": 0.04, "day_of_week": 0.3, "wind_speed": 0.05, "visib": 0.07, "temp": 0.2}


@pytest.fixture
def promotion_week(home) -> None:
    profile = [
        profile_row(SLIVER_WEEK, "1 week", "1", ":table", rows=5000, labels=0),
        profile_row(PROMOTION_WEEK, "1 week", "1", ":table", rows=PROD.monitoring.min_window_rows - 400, labels=0),
        profile_row(PROMOTION_WEEK, "1 week", "2", ":table", rows=5200, labels=0),
        # the sliver's slices and columns are not the group's size: only the whole-table ':table' INPUT row is
        profile_row(PROMOTION_WEEK, "1 week", "1", ":table", rows=9000, labels=0, slice_key="origin", slice_value="E"),
        profile_row(PROMOTION_WEEK, "1 week", "1", "sched_hour", rows=9000, labels=0),
    ]
    drift = [drift_row(SLIVER_WEEK, "1 week", name, "BASELINE", psi) for name, psi in CHAMPION_PSI.items()]
    drift += [drift_row(PROMOTION_WEEK, "1 week", name, "BASELINE", psi) for name, psi in SLIVER_PSI.items()]
    drift += [drift_row(PROMOTION_WEEK, "1 week", n, "BASELINE", psi, version="2") for n, psi in CHAMPION_PSI.items()]
    write_table(PREDICTIONS.profile_metrics_table, profile, PROFILE)
    write_table(PREDICTIONS.drift_metrics_table, drift, DRIFT)


def test_a_promotion_week_shows_the_champions_psi_not_the_slivers(promotion_week):
    # Given a promotion week with the old version's sliver (100 rows, PSI up to 8.6) beside the new one's 5,200 rows
    m = PROD.monitoring
    drift = load_drift(PROD)
    week = pd.Timestamp(PROMOTION_WEEK.replace(tzinfo=None))
    sliver = drift[(drift["window_start"] == week) & (drift["model_version"] == "1")]
    assert sliver["psi"].max() == 8.6 and sliver["rows"].unique().tolist() == [100.0]

    # When the report builds its drift matrix and its figure
    matrix = drift_matrix(drift, min_rows=m.min_window_rows)
    figure = figure_drift(drift, threshold=m.max_drift_psi, min_rows=m.min_window_rows, title="drift")

    # Then the promotion week's cells are the new Champion's PSI: no spurious dark column, no cell marked above the
    # threshold, and the figure says it left the sliver out
    assert matrix[week].dropna().to_dict() == CHAMPION_PSI
    assert matrix[pd.Timestamp(SLIVER_WEEK.replace(tzinfo=None))].dropna().to_dict() == CHAMPION_PSI
    [heatmap, _colour_bar] = figure.axes
    assert len(heatmap.collections) == 1  # the mesh alone: no "x" (a cell above the threshold) drawn
    assert "1 model version-window(s) of fewer than 500 rows left out, as the alert does" in heatmap.get_xlabel()


def test_the_drift_picture_and_the_drift_alert_take_the_same_groups(promotion_week):
    # Given the promotion week's metric tables, when the drift alert's own SQL runs on them (the local warehouse)
    [alert] = [a for a in alerts(PROD) if a.monitored == PREDICTIONS and a.kind == "feature_drift"]
    [decided] = LocalSql(PROD.name).query(alert.query_text)
    matrix = drift_matrix(load_drift(PROD), min_rows=PROD.monitoring.min_window_rows)

    # Then the alert's worst PSI of the latest window is the report's largest cell of the alerted columns that week
    week = pd.Timestamp(PROMOTION_WEEK.replace(tzinfo=None))
    alerted = matrix.loc[[c for c in PREDICTIONS.drift_alert_columns if c in matrix.index], week]
    assert decided["latest_worst_psi"] == alerted.max() == CHAMPION_PSI["visib"]
    assert (decided["windows"], decided["breaches"], decided["triggered"]) == (2, 0, 0)


# --- The dashboard --------------------------------------------------------------------------------------------------


def test_dashboard_writes_its_pngs_and_says_what_the_served_table_lacks(predictions_metrics, tmp_path):
    index = render_dashboard(PROD, tmp_path / "dashboard")

    sources = image_sources(index)
    assert sources == [
        f"flight_delay_predictions_{name}.png"
        for name in ("quality", "slices", "drift_baseline", "drift_consecutive", "coverage")
    ]
    assert_pngs_beside(index, sources)
    assert "run <code>mlops monitor --env prod --table all</code>" in index.read_text(encoding="utf-8")


def test_label_coverage_shows_an_unlabelled_window_as_unlabelled_not_zero(predictions_metrics):
    profile = load_metrics(PREDICTIONS).profile

    coverage = label_coverage(profile, "1 week")
    figure = figure_label_coverage(profile, granularities=("1 week",))

    assert coverage["rows"].tolist() == [1000, 1000, 1000]
    assert coverage["labelled"].tolist() == [1000, 1000, 0]
    assert coverage["coverage"].tolist()[:2] == [1.0, 1.0] and math.isnan(coverage["coverage"].tolist()[2])
    ax = figure.axes[0]
    [bars] = ax.containers
    assert [bar.get_height() for bar in bars] == [1.0, 1.0]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["labelled rows / rows", "unlabelled window"]


def test_dashboard_without_metric_tables_is_a_clear_error(home, tmp_path, capsys):
    message = (
        "no metric tables for prod.ml.flight_delay_predictions (prod.monitoring.flight_delay_predictions_profile_"
        "metrics, prod.monitoring.flight_delay_predictions_drift_metrics do not exist yet): run mlops monitor --env "
        "prod first"
    )
    with pytest.raises(DashboardError) as error:
        render_dashboard(PROD, tmp_path / "out")
    assert str(error.value) == message
    assert not (tmp_path / "out").exists()

    assert cli_main(["dashboard", "--env", "prod"]) == 1
    assert capsys.readouterr().err.strip() == f"mlops dashboard: {message}"


def test_dashboard_command_writes_under_mlops_home_by_default(predictions_metrics, home):
    parser = argparse.ArgumentParser()
    dashboard_command.register(parser.add_subparsers())
    args = parser.parse_args(["dashboard", "--env", "prod"])

    assert args.func(args) == 0
    assert (home / "dashboard" / "prod" / "index.html").is_file()
    assert (home / "dashboard" / "prod" / "flight_delay_predictions_quality.png").is_file()
