"""The SQL alerts on the local warehouse: the alert queries of spec/monitoring.py, byte for byte, on DuckDB over Delta
fixtures of the monitors' metric tables; states, history, the webhook (a real local receiver), and the lock that
keeps retraining to one run at a time.

Each test works in a catalog of its own (a copy of dev), so the module's MLOPS_HOME holds them side by side; the
CLI tests use dev itself. The fixtures are written with delta-rs (the retraining check reads predictions with
Spark).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from cli.main import main as mlops
from local.alerts import (
    ERROR,
    OK,
    TRIGGERED,
    UNKNOWN,
    AlertHistory,
    RetrainingInProgress,
    evaluate_alerts,
    judge,
    retraining_lock,
    retraining_lock_path,
)
from local.paths import table_path
from local.receiver import WebhookReceiver
from local.warehouse import LocalSql
from spec.config import ENVIRONMENTS, Environment
from spec.monitoring import alerts, monitored_tables

pytestmark = pytest.mark.integration

DEV = ENVIRONMENTS["dev"]
FIRST_WEEK = datetime(2013, 6, 3, tzinfo=UTC)
EVALUATED_AT = datetime(2013, 8, 1, 6, 30, tzinfo=UTC)
WINDOW = pa.struct([("start", pa.timestamp("us", tz="UTC")), ("end", pa.timestamp("us", tz="UTC"))])
DRIFT_SCHEMA = pa.schema(
    [
        ("window", WINDOW),
        ("granularity", pa.string()),
        ("model_version", pa.string()),
        ("slice_key", pa.string()),
        ("slice_value", pa.string()),
        ("column_name", pa.string()),
        ("drift_type", pa.string()),
        ("population_stability_index", pa.float64()),
    ]
)
PROFILE_SCHEMA = pa.schema(
    [
        ("window", WINDOW),
        ("granularity", pa.string()),
        ("model_version", pa.string()),
        ("slice_key", pa.string()),
        ("slice_value", pa.string()),
        ("column_name", pa.string()),
        ("log_type", pa.string()),
        ("count", pa.int64()),
        ("num_nulls", pa.int64()),
        ("roc_auc_score", pa.float64()),
    ]
)


class RecordingSql(LocalSql):
    """The local warehouse, keeping every text it was given."""

    def __init__(self, env_name: str) -> None:
        super().__init__(env_name)
        self.received: list[str] = []

    def query(self, text: str):
        self.received.append(text)
        return super().query(text)


def isolated(name: str) -> Environment:
    return DEV.replace(catalog=name)


def week(i: int) -> dict:
    start = FIRST_WEEK + timedelta(weeks=i)
    return {"start": start, "end": start + timedelta(weeks=1)}


def write_drift(env: Environment, psi_per_week: list[float], table_index: int = 0) -> None:
    """One weekly window per value (oldest first): ``distance`` drifts by that much, ``temp`` by a little less.
    Beside them, rows the query must ignore: huge PSIs on a slice, between consecutive windows, on daily windows, on
    a feature that moves with the calendar."""
    rows = []
    for i, psi in enumerate(psi_per_week):
        base = {"window": week(i), "granularity": "1 week", "model_version": "1", "slice_key": None}
        base["slice_value"] = None
        rows.append({**base, "column_name": "distance", "drift_type": "BASELINE", "population_stability_index": psi})
        rows.append({**base, "column_name": "temp", "drift_type": "BASELINE", "population_stability_index": psi / 2})
        ignored = {"column_name": "distance", "drift_type": "BASELINE", "population_stability_index": 9.0}
        rows.append({**base, **ignored, "slice_key": "origin", "slice_value": "EWR"})
        rows.append({**base, **ignored, "drift_type": "CONSECUTIVE"})
        rows.append({**base, **ignored, "granularity": "1 day"})
        rows.append({**base, **ignored, "column_name": "month"})
    monitored = monitored_tables(env)[table_index]
    _write(monitored.drift_metrics_table, rows, DRIFT_SCHEMA)
    if not table_path(monitored.profile_metrics_table).exists():
        write_profile(env, [], table_index=table_index)


# The drift query only counts a model's window with enough scored flights: the profile's `:table` rows say how many.
SCORED_PER_WEEK = 850
WEEKS = 6


def write_profile(env: Environment, roc_auc_per_week: list[float], labels: int = 800, table_index: int = 0) -> None:
    """Per weekly window: the flights model version 1 scored and its ROC AUC on the ``:table`` row (null past the
    labelled weeks), its labels on the ``label`` row."""
    rows = []
    for i in range(max(len(roc_auc_per_week), WEEKS)):
        roc_auc = roc_auc_per_week[i] if i < len(roc_auc_per_week) else None
        base = {"window": week(i), "granularity": "1 week", "model_version": "1", "slice_key": None}
        base |= {"slice_value": None, "log_type": "INPUT"}
        rows.append(
            {**base, "column_name": ":table", "count": SCORED_PER_WEEK, "num_nulls": 0, "roc_auc_score": roc_auc}
        )
        if roc_auc is not None:
            rows.append({**base, "column_name": "label", "count": labels + 50, "num_nulls": 50, "roc_auc_score": None})
    monitored = monitored_tables(env)[table_index]
    _write(monitored.profile_metrics_table, rows, PROFILE_SCHEMA)


def _write(full_name: str, rows: list[dict], schema: pa.Schema) -> None:
    path = table_path(full_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(path), pa.Table.from_pylist(rows, schema=schema), mode="overwrite")


def spec_named(env: Environment, suffix: str):
    found = [s for s in alerts(env) if s.name.endswith(suffix)]
    assert len(found) == 1
    return found[0]


DRIFTED = [0.05, 0.1, 0.1, 0.7, 0.12, 0.8]  # last 4 windows: 0.1, 0.7, 0.12, 0.8 -> 2 breaches, the latest one
STABLE = [0.9, 1.1, 0.1, 0.2, 0.05, 0.12]  # the breaches are older than the last 4 windows


@pytest.fixture
def receiver(tmp_path):
    with WebhookReceiver(tmp_path / "received.jsonl") as running:
        yield running


# --- the verdict on a query's rows


@pytest.mark.parametrize(
    ("rows", "state", "reason"),
    [
        ([{"windows": 4, "triggered": 1}], TRIGGERED, None),
        ([{"windows": 4, "triggered": 0}], OK, None),
        ([{"windows": 0, "triggered": 0}], OK, "no window to judge yet (0 windows in the metric table)"),
        ([], ERROR, "the query returned no row"),
        ([{"windows": 4}], ERROR, "the query returned no column 'triggered' (columns: windows)"),
        ([{"windows": 4, "triggered": None}], ERROR, "triggered is None, not a number"),
        ([{"windows": 4, "triggered": "yes"}], ERROR, "triggered is 'yes', not a number"),
        ([{"windows": 4, "triggered": float("nan")}], ERROR, "triggered is NaN"),
    ],
)
def test_judge_is_never_a_silent_ok(rows, state, reason):
    verdict = judge(alerts(DEV)[0], rows)
    assert (verdict.state, verdict.reason) == (state, reason)


def test_the_alerts_and_the_retraining_check_share_one_verdict():
    import jobs.check_retraining
    from jobs.core import alert_verdict

    assert judge is alert_verdict.judge
    assert jobs.check_retraining.run_alert_query is alert_verdict.run_alert_query


# --- the queries on the local warehouse


def test_the_warehouse_runs_the_alert_query_text_byte_for_byte(mlops_home):
    # given: metric tables for the predictions; none yet for the served requests
    env = isolated("alerts_verbatim")
    write_drift(env, DRIFTED)
    write_profile(env, [0.7, 0.71, 0.72, 0.7])
    sql = RecordingSql(env.name)

    # when
    results = evaluate_alerts(env, sql, clock=lambda: EVALUATED_AT)

    # then: each query arrived exactly as the stack synthesizes it into databricks_alert_v2.query_text
    specs = alerts(env)
    assert len(specs) == 4
    assert sql.received == [s.query_text for s in specs]
    assert [(r.name, r.state) for r in results] == [
        ("flight_delay_predictions_feature_drift", TRIGGERED),
        ("flight_delay_predictions_model_quality", OK),
        ("flight_delay_served_feature_drift", ERROR),
        ("flight_delay_served_model_quality", ERROR),
    ]


def test_the_local_platform_answers_sql_with_the_local_warehouse(mlops_home):
    # given: what the retraining check reads through Platform.sql
    from jobs.platform import build_platform

    env = isolated("alerts_platform")
    write_drift(env, DRIFTED)
    spec = spec_named(env, "predictions_feature_drift")

    # when
    rows = build_platform(env, {}).sql.query(spec.query_text)

    # then
    assert rows == [
        {
            "windows": 4,
            "breaches": 2,
            "latest_worst_psi": 0.8,
            "latest_window": FIRST_WEEK + timedelta(weeks=5),
            "triggered": 1,
        }
    ]


def test_a_drifted_window_triggers_the_drift_alert_and_posts_the_webhook(mlops_home, receiver):
    # given
    env = isolated("alerts_drifted")
    write_drift(env, DRIFTED)
    spec = spec_named(env, "predictions_feature_drift")

    # when
    [result] = evaluate_alerts(env, webhook_url=receiver.url, specs=[spec], clock=lambda: EVALUATED_AT)

    # then
    latest = FIRST_WEEK + timedelta(weeks=5)
    assert (result.state, result.previous_state, result.value) == (TRIGGERED, UNKNOWN, 1.0)
    assert result.details == {"windows": 4, "breaches": 2, "latest_worst_psi": 0.8, "latest_window": latest}
    assert result.notification == "webhook: HTTP 204"
    [received] = receiver.received()
    assert received["path"] == "/alerts"
    assert received["body"] == {
        "event": "alert_triggered",
        "env": "dev",
        "alert": "flight_delay_predictions_feature_drift",
        "kind": "feature_drift",
        "state": "TRIGGERED",
        "previous_state": "UNKNOWN",
        "value": 1.0,
        "details": {"windows": 4, "breaches": 2, "latest_worst_psi": 0.8, "latest_window": latest.isoformat()},
        "reason": None,
        "monitored_table": "alerts_drifted.ml.flight_delay_predictions",
        "description": "input features of alerts_drifted.ml.flight_delay_predictions drifted from the training data",
        "starts_retraining": True,
        "evaluated_at": "2013-08-01T06:30:00+00:00",
    }
    recorded = [json.loads(line) for line in (mlops_home / "notifications.jsonl").read_text().splitlines()]
    assert [(n["event"], n["details"]["alert"], n["details"]["env"]) for n in recorded][-1] == (
        "alert_triggered",
        "flight_delay_predictions_feature_drift",
        "dev",
    )


def test_stable_metrics_are_ok_and_post_nothing(mlops_home, receiver):
    # given: drift that breached, but longer ago than the last four windows
    env = isolated("alerts_stable")
    write_drift(env, STABLE)
    write_profile(env, [0.5, 0.5, 0.7, 0.72, 0.69, 0.71])
    specs = [spec_named(env, "predictions_feature_drift"), spec_named(env, "predictions_model_quality")]

    # when
    results = evaluate_alerts(env, webhook_url=receiver.url, specs=specs, clock=lambda: EVALUATED_AT)

    # then
    assert [(r.state, r.value, r.reason, r.notification) for r in results] == [(OK, 0.0, None, None)] * 2
    assert results[0].details["breaches"] == 0
    assert results[1].details == {
        "windows": 4,
        "breaches": 0,
        "latest_roc_auc": 0.71,
        "latest_window": FIRST_WEEK + timedelta(weeks=5),
    }
    assert receiver.received() == []


def test_low_roc_auc_triggers_the_quality_alert_only_with_enough_labels(mlops_home):
    # given: the same poor ROC AUC, once with 800 labels per window, once with fewer than min_labelled_rows
    poor = [0.7, 0.6, 0.7, 0.6]
    labelled, unlabelled = isolated("alerts_poor_labelled"), isolated("alerts_poor_unlabelled")
    write_profile(labelled, poor, labels=800)
    write_profile(unlabelled, poor, labels=DEV.monitoring.min_labelled_rows - 1)

    # when
    [enough] = evaluate_alerts(labelled, specs=[spec_named(labelled, "predictions_model_quality")])
    [too_few] = evaluate_alerts(unlabelled, specs=[spec_named(unlabelled, "predictions_model_quality")])

    # then
    assert (enough.state, enough.details["breaches"], enough.details["latest_roc_auc"]) == (TRIGGERED, 2, 0.6)
    assert (too_few.state, too_few.details["windows"], too_few.reason) == (
        OK,
        0,
        "no window to judge yet (0 windows in the metric table)",
    )


def test_a_missing_metric_table_is_an_error_with_the_reason(mlops_home, receiver):
    # given: no monitor has run in this catalog
    env = isolated("alerts_missing")
    spec = spec_named(env, "predictions_feature_drift")

    # when
    [result] = evaluate_alerts(env, webhook_url=receiver.url, specs=[spec], clock=lambda: EVALUATED_AT)

    # then
    # (the query reads the profile metrics first: the flights each model scored)
    path = table_path("alerts_missing.monitoring.flight_delay_predictions_profile_metrics")
    reason = (
        f"table alerts_missing.monitoring.flight_delay_predictions_profile_metrics does not exist (no Delta table at "
        f"{path}): it is a quality monitor's metric table, run mlops monitor --env dev first"
    )
    assert (result.state, result.value, result.reason) == (ERROR, None, reason)
    [received] = receiver.received()
    assert (received["body"]["event"], received["body"]["state"], received["body"]["reason"]) == (
        "alert_error",
        "ERROR",
        reason,
    )


def test_history_rows_accumulate_with_previous_states(mlops_home, receiver):
    # given
    env = isolated("alerts_history")
    spec = spec_named(env, "predictions_feature_drift")
    clock = iter(EVALUATED_AT + timedelta(days=d) for d in range(4))

    def evaluate(psis: list[float] | None):
        if psis is not None:
            write_drift(env, psis)
        return evaluate_alerts(env, webhook_url=receiver.url, specs=[spec], clock=lambda: next(clock))[0]

    # when: no table yet, then stable, drifted, still drifted
    states = [evaluate(None).state, evaluate(STABLE).state, evaluate(DRIFTED).state, evaluate(DRIFTED).state]

    # then
    assert states == [ERROR, OK, TRIGGERED, TRIGGERED]
    rows = AlertHistory(env).read()
    assert [(r["state"], r["previous_state"], r["value"]) for r in rows] == [
        (TRIGGERED, TRIGGERED, 1.0),
        (TRIGGERED, OK, 1.0),
        (OK, ERROR, 0.0),
        (ERROR, UNKNOWN, None),
    ]
    assert [r["evaluated_at"] for r in rows] == [EVALUATED_AT + timedelta(days=d) for d in (3, 2, 1, 0)]
    assert json.loads(rows[0]["details"])["latest_worst_psi"] == 0.8
    assert [r["notification"] for r in rows] == [None, "webhook: HTTP 204", None, "webhook: HTTP 204"]
    assert [r["body"]["state"] for r in receiver.received()] == [ERROR, TRIGGERED]


def test_a_dead_webhook_is_recorded_not_raised(mlops_home, tmp_path):
    # given: a receiver that has stopped, so its port refuses connections
    env = isolated("alerts_dead_webhook")
    write_drift(env, DRIFTED)
    with WebhookReceiver(tmp_path / "gone.jsonl") as gone:
        url = gone.url

    # when
    [result] = evaluate_alerts(env, webhook_url=url, specs=[spec_named(env, "predictions_feature_drift")])

    # then
    assert result.state == TRIGGERED
    assert result.notification.startswith("webhook failed: ")


def test_the_webhook_url_comes_from_the_environment_variable(mlops_home, receiver):
    env = isolated("alerts_env_webhook")
    write_drift(env, DRIFTED)

    evaluate_alerts(
        env,
        environ={"MLOPS_NOTIFY_WEBHOOK_URL": receiver.url},
        specs=[spec_named(env, "predictions_feature_drift")],
    )

    assert [r["body"]["alert"] for r in receiver.received()] == ["flight_delay_predictions_feature_drift"]


# --- one retraining at a time


def test_the_retraining_lock_refuses_a_second_holder(mlops_home):
    with retraining_lock("alerts_lock") as path:
        holder = json.loads(path.read_text())
        with pytest.raises(RetrainingInProgress, match="already in progress") as refused:
            with retraining_lock("alerts_lock"):
                pytest.fail("a second holder got the lock")
        assert refused.value.holder == holder
        # another environment retrains independently
        with retraining_lock("alerts_lock_other"):
            pass
    # released: the next retraining takes it, and the file names no holder between runs
    assert path.read_text() == ""
    with retraining_lock("alerts_lock"):
        pass


def test_a_lock_left_by_a_crashed_run_is_taken_over(mlops_home, caplog):
    # given: a lock file naming a holder that no longer holds the lock (its process ended without releasing it)
    path = retraining_lock_path("alerts_stale", mlops_home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": 999999, "host": "gone", "since": "2013-08-01T00:00:00+00:00"}))

    # when / then
    with retraining_lock("alerts_stale"):
        assert json.loads(path.read_text())["pid"] != 999999
    assert "left by a holder that ended without releasing it" in caplog.text


RETRAINING_RUNS: list[tuple[str, str, bool]] = []


class FakeRunner:
    """Stands in for the local runner: records the graph it was asked to run, and whether the lock was held."""

    def __init__(self, env) -> None:
        self.env = env

    def run(self, graph_name, parameters=None):
        from local.runner import WorkflowRun

        try:
            with retraining_lock(self.env.name):
                held = False
        except RetrainingInProgress:
            held = True
        RETRAINING_RUNS.append((self.env.name, graph_name, held))
        return WorkflowRun(run_id="fake", graph=graph_name, env=self.env.name, parameters={}, status="SUCCESS")


def test_mlops_alerts_retrains_under_the_lock_and_not_twice(mlops_home, monkeypatch, capsys):
    # given: the predictions of dev drifted; the served requests did not
    write_drift(DEV, DRIFTED)
    write_profile(DEV, [0.7, 0.71, 0.72, 0.7])
    write_drift(DEV, STABLE, table_index=1)
    write_profile(DEV, [0.7, 0.71, 0.72, 0.7], table_index=1)
    monkeypatch.setattr("local.runner.LocalRunner", FakeRunner)
    RETRAINING_RUNS.clear()

    # when: retraining is off, then on, then on while another retraining holds the lock
    off = mlops(["alerts", "--env", "dev", "--model", "flight_delay", "--no-retrain"])
    on = mlops(["alerts", "--env", "dev", "--model", "flight_delay"])
    with retraining_lock("dev"):
        busy = mlops(["alerts", "--env", "dev", "--model", "flight_delay"])

    # then: one run of the retraining graph, with the lock held while it ran
    assert RETRAINING_RUNS == [("dev", "retraining", True)]
    assert (off, on, busy) == (0, 0, 0)
    out = capsys.readouterr().out
    assert "retraining is off (--no-retrain): flight_delay_predictions_feature_drift would start it" in out
    assert "flight_delay_predictions_feature_drift TRIGGERED: running the retraining workflow in dev" in out
    assert "a retraining of dev is already in progress (pid " in out


def test_mlops_alerts_history_prints_the_last_evaluations(mlops_home, capsys):
    # given: dev evaluated at least once (four alerts, four rows)
    write_drift(DEV, DRIFTED)
    evaluate_alerts(DEV, clock=lambda: EVALUATED_AT)

    # when
    code = mlops(["alerts", "--env", "dev", "--model", "flight_delay", "--history", "--limit", "3"])

    # then
    assert code == 0
    out = capsys.readouterr().out
    assert "last 3 evaluations (dev.monitoring.alert_history)" in out
    assert "TRIGGERED" in out


def test_mlops_alerts_history_says_when_nothing_was_evaluated(mlops_home, capsys):
    assert mlops(["alerts", "--env", "staging", "--history"]) == 0
    assert "no evaluation recorded yet in staging.monitoring.alert_history" in capsys.readouterr().out


# --- the retraining check: the same alert SQL, the champion's age, the cooldown


def retraining_platform(name: str, labelled_until: str, trained_until: dict[str, str], champion: str | None):
    """The local platform of an isolated environment (prod's retraining rules) whose predictions are labelled up to
    ``labelled_until`` and whose registry holds versions trained on data up to the given days."""
    from pyspark.sql import SparkSession

    from jobs.core import contract
    from jobs.platform import build_platform

    env = isolated(name).replace(retraining=ENVIRONMENTS["prod"].retraining)
    platform = build_platform(env)
    spark = SparkSession.getActiveSession()
    labelled = [(datetime.fromisoformat(labelled_until).date(), 1), (datetime(2013, 9, 30).date(), None)]
    platform.tables.write(spark.createDataFrame(labelled, "sched_date date, label int"), env.predictions_table)
    client = platform.registry.client
    client.create_registered_model(env.registered_model)
    for version, until in trained_until.items():
        created = client.create_model_version(
            env.registered_model, source=str(table_path(env.predictions_table)), tags={contract.TRAINING_END: until}
        )
        assert str(created.version) == version
    if champion:
        platform.registry.set_alias("champion", champion)
    return platform


def test_an_alert_retrains_unless_the_newest_version_is_within_the_cooldown(mlops_home, spark):
    from jobs.check_retraining import check

    assert ENVIRONMENTS["prod"].retraining.alert_cooldown_days == 21
    # given: the drift alert holds in both; the champion v1 is 28 days old (not more: no retraining by age); the
    # newest version (v2, not promoted: a challenger or a FAILED one counts too) is 21 days old in one, 14 in the other
    old = retraining_platform("retrain_old", "2013-08-31", {"1": "2013-08-03", "2": "2013-08-10"}, champion="1")
    new = retraining_platform("retrain_new", "2013-08-31", {"1": "2013-08-03", "2": "2013-08-17"}, champion="1")
    for platform in (old, new):
        write_drift(platform.env, DRIFTED)
        write_profile(platform.env, [0.7, 0.71, 0.72, 0.7])

    # when
    retrain, held_back = check(old), check(new)

    # then
    assert retrain.retrain and retrain.reason.startswith("flight_delay_predictions_feature_drift holds")
    assert (retrain.training_start.isoformat(), retrain.training_end.isoformat()) == ("2013-06-09", "2013-08-31")
    assert not held_back.retrain
    assert "but v2 was trained on data up to 14 days before the latest labelled event" in held_back.reason


def test_an_old_champion_or_none_retrains_whatever_the_alerts_say(mlops_home, spark):
    from jobs.check_retraining import check

    # given: no alert holds (stable drift, good quality); v1 ends 42 days before the latest label
    aged = retraining_platform("retrain_aged", "2013-08-31", {"1": "2013-07-20"}, champion="1")
    fresh = retraining_platform("retrain_fresh", "2013-08-31", {"1": "2013-08-24"}, champion="1")
    orphan = retraining_platform("retrain_orphan", "2013-08-31", {"1": "2013-08-24"}, champion=None)
    for platform in (aged, fresh, orphan):
        write_drift(platform.env, STABLE)
        write_profile(platform.env, [0.7, 0.71, 0.72, 0.7])

    # when / then
    assert check(aged).reasons == (
        "the champion v1 was trained on data up to 2013-07-20, 42 days before the latest labelled event (more than 28)",
    )
    assert not check(fresh).retrain and check(fresh).reason == "no alert holds and the champion is recent"
    assert check(orphan).reasons == ("there is no champion",)


# --- a broken alert: ERROR for the alerts and for the retraining check alike, and the check fails


class InjectedSql:
    """The environment's warehouse, except that one alert's query returns ``rows`` (or fails with ``error``)."""

    def __init__(self, inner, query_text: str, rows: list[dict] | None = None, error: str | None = None) -> None:
        self.inner, self.query_text, self.rows, self.error = inner, query_text, rows, error

    def query(self, text: str):
        if text != self.query_text:
            return self.inner.query(text)
        if self.error is not None:
            raise ValueError(self.error)
        return self.rows


DRIFT = "flight_delay_predictions_feature_drift"


@pytest.mark.parametrize(
    ("rows", "error", "reason"),
    [
        ([], None, "the query returned no row"),
        ([{"breaches": 2}], None, "the query returned no column 'triggered' (columns: breaches)"),
        ([{"windows": 4, "triggered": None}], None, "triggered is None, not a number"),
        ([{"windows": 4, "triggered": float("nan")}], None, "triggered is NaN"),
        ([{"windows": 4, "triggered": "yes"}], None, "triggered is 'yes', not a number"),
        (None, "the query failed: [TABLE_OR_VIEW_NOT_FOUND]", "the query failed: [TABLE_OR_VIEW_NOT_FOUND]"),
    ],
    ids=["no-row", "no-column", "null", "nan", "not-a-number", "query-failed"],
)
def test_a_broken_alert_is_an_error_for_the_alerts_and_fails_the_retraining_check(
    mlops_home, spark, request, rows, error, reason
):
    from jobs.check_retraining import run_check
    from jobs.platform.job import JobError, run_job

    # given: a recent champion, stable drift and good quality (nothing to retrain for), and the drift alert's query
    # broken in one way
    name = f"retrain_broken_{request.node.callspec.id.replace('-', '_')}"
    platform = retraining_platform(name, "2013-08-31", {"1": "2013-08-24"}, champion="1")
    write_drift(platform.env, STABLE)
    write_profile(platform.env, [0.7, 0.71, 0.72, 0.7])
    drift = spec_named(platform.env, "predictions_feature_drift")
    platform = replace(platform, sql=InjectedSql(platform.sql, drift.query_text, rows, error))

    # when: the alert is evaluated, and the retraining check runs
    (alert,) = evaluate_alerts(platform.env, platform.sql, specs=[drift], clock=lambda: EVALUATED_AT)
    with pytest.raises(JobError) as failed:
        run_check(platform)

    # then: both say ERROR with the same reason; the check sets its task values, then fails, naming the alert
    assert (alert.state, alert.reason) == (ERROR, reason)
    values = platform.task_values.values
    assert values["alert_errors"] == f"{DRIFT}: {reason}"
    assert values["retrain"] == "false"
    assert values["reason"] == (
        f"no alert that can be judged holds and the champion is recent; 1 alert(s) in ERROR decide nothing: "
        f"{DRIFT}: {reason}"
    )
    assert f"{DRIFT}: {reason}" in str(failed.value)
    # ... and the job exits non-zero, which fails the Databricks task: a person hears of it
    assert run_job("mlops-check-retraining", lambda: run_check(platform) and 0) == 1


def test_an_alert_with_nothing_to_judge_yet_is_said_and_does_not_fail_the_check(mlops_home, spark):
    from jobs.check_retraining import run_check
    from jobs.platform import build_platform

    # given: nothing scored yet (no predictions table, so no metric table to query) ...
    empty = build_platform(isolated("retrain_nothing_yet").replace(retraining=ENVIRONMENTS["prod"].retraining))
    # ... and scored, but no window in the metric tables yet (the queries say windows = 0)
    fresh = retraining_platform("retrain_no_window", "2013-08-31", {"1": "2013-08-24"}, champion="1")
    write_drift(fresh.env, [])

    # when
    nothing, no_window = run_check(empty), run_check(fresh)

    # then: no error, nothing fails; the alerts that could not judge are named
    predictions = empty.env.predictions_table
    assert (nothing.errors, no_window.errors) == ((), ())
    assert empty.task_values.values["alert_errors"] == fresh.task_values.values["alert_errors"] == ""
    assert empty.task_values.values["alert_no_data"] == (
        f"{DRIFT}: no data yet ({predictions} does not exist); "
        f"flight_delay_predictions_model_quality: no data yet ({predictions} does not exist)"
    )
    assert fresh.task_values.values["alert_no_data"] == (
        f"{DRIFT}: no window to judge yet (0 windows in the metric table); "
        "flight_delay_predictions_model_quality: no window to judge yet (0 windows in the metric table)"
    )
    assert (nothing.reason, no_window.reason) == (
        "no labelled event yet: nothing to train on",
        "no alert holds and the champion is recent",
    )
