"""Two retrainings of one environment started at once (`mlops alerts` firing twice, from two terminals or a cron
overlapping a person): one runs the retraining workflow, the other is refused with a message naming the holder,
never both at once. The retraining workflow itself is stood in for by a recorder that takes a while (a real one
trains a model for minutes); the lock and the command are the real ones."""

from __future__ import annotations

import threading
import time

import pytest

from spec.config import ENVIRONMENTS
from tests.faults.conftest import DEV_NAME

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ENV = ENVIRONMENTS[DEV_NAME]
RUNS: list[tuple[float, float]] = []


class SlowRetraining:
    """The local runner as `retrain` builds it: records when each retraining ran."""

    def __init__(self, env) -> None:
        self.env = env

    def run(self, graph_name, parameters=None):
        from local.runner import WorkflowRun

        started = time.monotonic()
        time.sleep(1.5)
        RUNS.append((started, time.monotonic()))
        return WorkflowRun(run_id=f"run-{len(RUNS)}", graph=graph_name, env=self.env.name, parameters={},
                           status="SUCCESS")  # fmt: skip


def test_two_retrainings_started_at_once_run_one_and_refuse_the_other(fault, monkeypatch):
    from cli.commands import alerts

    row = fault("two retrainings of one environment at once")
    monkeypatch.setattr("local.runner.LocalRunner", SlowRetraining)
    said: list[str] = []  # what the command tells the person at the terminal
    monkeypatch.setattr(alerts, "_say", said.append)
    RUNS.clear()
    start = threading.Barrier(2)
    codes: list[int] = []

    def alert_fires() -> None:
        start.wait()
        codes.append(alerts.retrain(ENV, ["flight_delay_predictions_feature_drift"]))

    threads = [threading.Thread(target=alert_fires) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    row.injected()

    refused = sum(f"a retraining of {ENV.name} is already in progress (pid " in line for line in said)
    overlapping = len(RUNS) == 2 and RUNS[0][0] < RUNS[1][1] and RUNS[1][0] < RUNS[0][1]
    row.record(survived=len(RUNS) == 1 and refused == 1 and not overlapping, lost=0 if RUNS else 1,
               doubled=max(0, len(RUNS) - 1), note=f"{len(RUNS)} run, {refused} refused")  # fmt: skip
    assert codes == [0, 0]
    assert (len(RUNS), refused) == (1, 1)
