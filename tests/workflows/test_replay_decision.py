"""The week's online decision beside the monitors and the alerts (``local.demo.loop.Replay.week_after_serving``):
what it did is told, in order after the alerts' events, whether it ends or fails. The jobs are played by stand-ins
of ``run_graph``; the platform's monitors and the alerts by stand-ins too (what is tested is the replay's thread
and event handling, not the jobs)."""

from __future__ import annotations

import logging
from datetime import date
from types import SimpleNamespace

import pytest

import local.alerts
from local.demo import ReplayError
from local.demo.loop import Replay
from local.demo.records import Event, WeekRecord
from spec.config import ENVIRONMENTS

WEEK = date(2013, 3, 4)


def replay(decisions: list[dict | Exception], told: list[tuple[str, str]], *, refresh_error: bool = False) -> Replay:
    """A Replay whose champion-challenger runs give ``decisions`` in turn (an exception: the run failed), whose other
    graphs succeed, and whose events go to ``told``."""
    r = Replay.__new__(Replay)
    r.env, r.webhook_url = ENVIRONMENTS["prod"], None

    def refresh(tables):
        if refresh_error:
            raise RuntimeError("the monitor's refresh failed")

    r.platform = SimpleNamespace(monitors=SimpleNamespace(refresh=refresh), sql=None)

    def run_graph(name, params, week):
        if name != "champion-challenger":
            return None
        decision = decisions.pop(0)
        if isinstance(decision, Exception):
            raise decision
        return SimpleNamespace(tasks={"decide": SimpleNamespace(values=decision)})

    r.run_graph = run_graph
    r.awaiting_approval = lambda version: True
    r.approve = lambda when, version, source, tell=True: Event(when.isoformat(), "approval", f"version {version} ok")
    r.event = lambda week, kind, message: told.append((kind, message))
    r.retrain = lambda week, record: told.append(("retraining", ""))
    return r


@pytest.fixture
def an_alert_fired(monkeypatch):
    fired = SimpleNamespace(name="drift", state="TRIGGERED", previous_state="OK", details={}, reason="")
    monkeypatch.setattr(local.alerts, "evaluate_alerts", lambda env, sql, webhook_url: [fired])
    monkeypatch.setattr("local.demo.loop.describe_alert_row", lambda details: "psi 0.9")


def test_the_decisions_events_are_told_after_the_alerts_events(an_alert_fired):
    told: list[tuple[str, str]] = []
    wait = {"action": "wait", "challenger_version": "2"}
    promote = {"action": "promote", "challenger_version": "2", "reason": "better"}
    record = WeekRecord(WEEK.isoformat())
    replay([wait, promote], told).week_after_serving(WEEK, record)
    assert [kind for kind, _ in told] == ["alert", "approval", "online", "retraining"]
    assert record.online_decision == "promote" and record.alerts == {"drift": "TRIGGERED"}


def test_an_approval_recorded_before_the_decisions_second_run_failed_is_told(an_alert_fired):
    # given: the decision waits for approval, the demo approves, and the run after the approval fails
    told: list[tuple[str, str]] = []
    wait = {"action": "wait", "challenger_version": "2"}
    with pytest.raises(ReplayError, match="second run"):
        replay([wait, ReplayError("the second run failed")], told).week_after_serving(WEEK, WeekRecord("2013-03-04"))
    # then: the alert's event and the approval are told; nothing after them runs
    assert told == [("alert", "drift fired: psi 0.9"), ("approval", "version 2 ok")]


def test_when_the_monitors_and_the_decision_both_fail_the_decision_is_logged_and_its_events_told(
    an_alert_fired, caplog
):
    told: list[tuple[str, str]] = []
    wait = {"action": "wait", "challenger_version": "2"}
    with caplog.at_level(logging.ERROR, logger="local.demo.loop"), pytest.raises(RuntimeError, match="refresh"):
        replay([wait, ReplayError("the second run failed")], told, refresh_error=True).week_after_serving(
            WEEK, WeekRecord("2013-03-04")
        )
    assert "the online decision failed too: the second run failed" in caplog.text
    assert told == [("approval", "version 2 ok")]
