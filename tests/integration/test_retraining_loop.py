"""The production loop closed on the local engines, with the real jobs, monitor, alert SQL and job graphs: a champion
trained on January 2013 scores four weeks of February (close to its training data: the drift alert stays OK), then
four weeks of summer from June 24 (a later season: it fires). The summer's production day runs as the daily-monitoring
graph that Databricks runs: labels, then both monitors' refresh, then every alert task, then the retraining graph,
which retrains on the latest labelled window through validation and the Champion/Challenger deployment; the new
version carries the decision."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from jobs import batch_inference, labels
from jobs.core import contract
from jobs.platform import build_platform
from jobs.platform.registry import CHAMPION, ModelRef
from local.alerts import OK, TRIGGERED, AlertResult, evaluate_alerts
from local.monitor import refresh_monitor
from local.runner import LocalRunner, load_run
from spec.config import ENVIRONMENTS
from spec.monitoring import monitored_tables

pytestmark = pytest.mark.integration

ENV = ENVIRONMENTS["dev"]
DRIFT_ALERT = "flight_delay_predictions_feature_drift"
FEBRUARY, SUMMER = date(2013, 2, 4), date(2013, 6, 24)  # Mondays: four weekly windows from each


def score_four_weeks(first_monday: date) -> date:
    """Score four weeks with the champion; the last day scored."""
    last = first_monday + timedelta(days=27)
    args = ["--env", ENV.name, "--start-date", first_monday.isoformat(), "--end-date", last.isoformat()]
    assert batch_inference.main(args) == 0
    return last


def live_four_weeks(first_monday: date) -> dict[str, AlertResult]:
    """Score four weeks with the champion, label them, refresh the monitor, evaluate the alerts: by name."""
    last = score_four_weeks(first_monday)
    labels.label(build_platform(ENV), as_of=last + timedelta(days=1), lookback_days=28)
    refresh_monitor(ENV, monitored_tables(ENV)[0])
    return {alert.name: alert for alert in evaluate_alerts(ENV)}


@pytest.fixture(scope="module")
def runner(spark, mlops_home) -> LocalRunner:
    runner = LocalRunner(ENV)
    params = {"training_start": "2013-01-01", "training_end": "2013-01-31", "max_rows": "10000"}
    assert runner.run("model-training", params).status == "SUCCESS"
    assert build_platform(ENV).registry.alias_version(CHAMPION) == "1"
    return runner


def test_a_later_season_fires_the_drift_alert_and_retraining_ends_in_a_recorded_decision(runner):
    # given: the January champion lives through February, then scores early summer
    stable = live_four_weeks(FEBRUARY)
    last = score_four_weeks(SUMMER)

    # when: the production day runs, in order, as one graph
    day = runner.run("daily-monitoring", {"as_of": (last + timedelta(days=1)).isoformat()})

    # then: February was close to the training data, summer is not: the alert task says so, after the refresh
    assert stable[DRIFT_ALERT].state == OK, stable[DRIFT_ALERT].details
    assert day.status == "SUCCESS", day.failed_task
    assert day.tasks["refresh_monitors"].values["refreshed_tables"].split(",")[0] == monitored_tables(ENV)[0].table
    assert day.tasks[f"alert_{DRIFT_ALERT}"].values["state"] == TRIGGERED, day.tasks[f"alert_{DRIFT_ALERT}"].values
    run = load_run(day.tasks["retraining"].child_run_id, runner.home)

    # then: the check retrained for the alert on the window ending at the latest labelled flight ...
    check = run.tasks["check"].values
    assert check["retrain"] == "true" and check["reason"].startswith(f"{DRIFT_ALERT} holds")
    assert check["training_end"] == "2013-07-21"
    assert check["training_start"] == (date(2013, 7, 21) - timedelta(days=ENV.retraining.window_days - 1)).isoformat()
    # ... through the model workflow: a new version
    child = load_run(run.tasks["retrain"].child_run_id, runner.home)
    version = child.tasks["train"].values["model_version"]
    assert version == "2"
    registry = build_platform(ENV).registry
    tags = registry.version_tags(ModelRef(ENV.registered_model, version))
    assert tags[contract.TRAINING_END] == "2013-07-21"
    # ... and, trained on summer, it passes validation and beats the January champion on the same held-out days
    assert tags[contract.VALIDATION_STATUS] == "PASSED", tags.get(contract.VALIDATION_REASONS)
    assert tags[contract.PROMOTION_DECISION] == "promoted"
    assert run.status == "SUCCESS"
    assert registry.alias_version(CHAMPION) == version
