"""The Databricks quality-monitor adapter (``jobs.platform.monitors.DatabricksMonitors``) against databricks-sdk's
``quality_monitors`` API: ``run_refresh(table_name=...)`` starts a refresh, ``get_refresh(table_name=...,
refresh_id=...)`` reads it, both answering the SDK's own ``MonitorRefreshInfo`` (state a ``MonitorRefreshInfoState``).

The workspace cannot be reached here: the client's ``quality_monitors`` is a scripted stand-in with the SDK method
names and parameters, and time is a fake clock that only ``sleep`` moves, so the order of calls and waits is exact.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import pytest
from databricks.sdk.service.catalog import MonitorRefreshInfo, MonitorRefreshInfoState, QualityMonitorsAPI

from jobs.platform.monitors import DatabricksMonitors, MonitorRefreshError, Refreshed
from spec.config import ENVIRONMENTS

pytestmark = pytest.mark.contract

ENV = ENVIRONMENTS["prod"]
PREDICTIONS = ENV.predictions_table
SERVED = ENV.served_table
START_MS = 1_767_225_600_000

PENDING = MonitorRefreshInfoState.PENDING
RUNNING = MonitorRefreshInfoState.RUNNING
SUCCESS = MonitorRefreshInfoState.SUCCESS
FAILED = MonitorRefreshInfoState.FAILED
CANCELED = MonitorRefreshInfoState.CANCELED


class FakeClock:
    """Time that passes only when the adapter sleeps; every sleep is logged with the calls."""

    def __init__(self, log: list[tuple]) -> None:
        self.now = 1000.0
        self._log = log

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self._log.append(("sleep", seconds))
        self.now += seconds


class FakeQualityMonitors:
    """``WorkspaceClient.quality_monitors``: each table's refresh goes through the scripted states, one per read,
    then stays in the last one; every call is logged."""

    def __init__(self, log: list[tuple], script: dict[str, tuple[Sequence[MonitorRefreshInfoState], str | None]]):
        self._log = log
        self._script = {table: (list(states), message) for table, (states, message) in script.items()}
        self._ids: dict[str, int] = {}

    def run_refresh(self, *, table_name: str) -> MonitorRefreshInfo:
        self._log.append(("run_refresh", table_name))
        refresh_id = 101 + len(self._ids)
        self._ids[table_name] = refresh_id
        return MonitorRefreshInfo(refresh_id=refresh_id, state=PENDING, start_time_ms=START_MS)

    def get_refresh(self, *, table_name: str, refresh_id: int) -> MonitorRefreshInfo:
        self._log.append(("get_refresh", table_name, refresh_id))
        assert int(refresh_id) == self._ids[table_name], f"{table_name} has no refresh {refresh_id}"
        states, message = self._script[table_name]
        state = states.pop(0) if len(states) > 1 else states[0]
        ended = state in (SUCCESS, FAILED, CANCELED)
        return MonitorRefreshInfo(
            refresh_id=self._ids[table_name],
            state=state,
            start_time_ms=START_MS,
            end_time_ms=START_MS + 60_000 if ended else None,
            message=message if ended else None,
        )


class FakeClient:
    def __init__(self, quality_monitors: FakeQualityMonitors) -> None:
        self.quality_monitors = quality_monitors


def _monitors(script, *, timeout_seconds: float = 600.0, poll_seconds: float = 30.0):
    log: list[tuple] = []
    clock = FakeClock(log)
    client = FakeClient(FakeQualityMonitors(log, script))
    adapter = DatabricksMonitors(
        lambda: client, timeout_seconds=timeout_seconds, poll_seconds=poll_seconds, clock=clock, sleep=clock.sleep
    )
    return adapter, log


def test_the_stand_in_has_the_sdk_methods_and_parameters():
    for method in ("run_refresh", "get_refresh"):
        sdk = [p for p in inspect.signature(getattr(QualityMonitorsAPI, method)).parameters if p != "self"]
        fake = [p for p in inspect.signature(getattr(FakeQualityMonitors, method)).parameters if p != "self"]
        assert fake == sdk
    assert [s.value for s in MonitorRefreshInfoState] == [
        "CANCELED",
        "FAILED",
        "PENDING",
        "RUNNING",
        "SUCCESS",
        "UNKNOWN",
    ]


def test_both_refreshes_start_before_any_wait_and_both_end_success():
    # Given the predictions' refresh ends on the second read, the served table's on the third
    adapter, log = _monitors({PREDICTIONS: ([RUNNING, SUCCESS], None), SERVED: ([PENDING, RUNNING, SUCCESS], None)})

    # When the adapter refreshes both
    refreshed = adapter.refresh([PREDICTIONS, SERVED])

    # Then both started first, were read in turn between waits, and each is reported with its refresh id and time.
    # The adapter passes the refresh id as text; the SDK annotates an int but only formats it into the request path
    # (/api/2.1/unity-catalog/tables/{table_name}/monitor/refreshes/{refresh_id}), so the request is the same.
    assert log == [
        ("run_refresh", PREDICTIONS),
        ("run_refresh", SERVED),
        ("get_refresh", PREDICTIONS, "101"),
        ("get_refresh", SERVED, "102"),
        ("sleep", 30.0),
        ("get_refresh", PREDICTIONS, "101"),
        ("get_refresh", SERVED, "102"),
        ("sleep", 30.0),
        ("get_refresh", SERVED, "102"),
    ]
    assert refreshed == [
        Refreshed(PREDICTIONS, "101", "SUCCESS", 30.0),
        Refreshed(SERVED, "102", "SUCCESS", 60.0),
    ]


@pytest.mark.parametrize(
    ("state", "message", "said"),
    [
        (FAILED, "Baseline table has no column 'probability'", "Baseline table has no column 'probability'"),
        (CANCELED, None, "no message"),
    ],
)
def test_a_refresh_that_does_not_succeed_fails_naming_table_refresh_and_message(state, message, said):
    adapter, log = _monitors({PREDICTIONS: ([SUCCESS], None), SERVED: ([RUNNING, state], message)})

    with pytest.raises(MonitorRefreshError) as error:
        adapter.refresh([PREDICTIONS, SERVED])

    assert str(error.value) == f"the refresh 102 of the monitor of {SERVED} ended {state.value}: {said}"
    assert log[-1] == ("get_refresh", SERVED, "102")
    assert log.count(("sleep", 30.0)) == 1


def test_a_refresh_still_running_at_the_deadline_fails_naming_the_pending_table():
    # Given the served table's refresh never ends, with 90 s allowed and a read every 30 s
    adapter, log = _monitors(
        {PREDICTIONS: ([SUCCESS], None), SERVED: ([RUNNING], None)}, timeout_seconds=90.0, poll_seconds=30.0
    )

    with pytest.raises(MonitorRefreshError) as error:
        adapter.refresh([PREDICTIONS, SERVED])

    assert str(error.value) == (
        f"refreshes still running after 90s: {SERVED}; the alerts would read stale metrics, so the job stops here"
    )
    # Read at 0, 30, 60 and 90 s: the predictions once (it had ended), the served table until the deadline.
    assert log == [
        ("run_refresh", PREDICTIONS),
        ("run_refresh", SERVED),
        ("get_refresh", PREDICTIONS, "101"),
        ("get_refresh", SERVED, "102"),
        ("sleep", 30.0),
        ("get_refresh", SERVED, "102"),
        ("sleep", 30.0),
        ("get_refresh", SERVED, "102"),
        ("sleep", 30.0),
        ("get_refresh", SERVED, "102"),
    ]
