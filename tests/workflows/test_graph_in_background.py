"""The replay's batch job on a thread of its own (``local.demo.loop.GraphInBackground``): the week goes on once its
rows are scored, while the publish runs; a failure on either side is the replay's error, never lost. Entry points
are played by an executor, as in test_runner.py."""

from __future__ import annotations

import logging
import threading
from datetime import date
from types import MappingProxyType

import pytest

from local.demo import ReplayError
from local.demo.loop import GraphInBackground
from local.runner import LocalRunner
from spec.config import ENVIRONMENTS
from spec.workflows import Dependency, JobGraph, Task, WheelTask

WEEK = date(2013, 3, 4)
BATCH = JobGraph(
    name="batch",
    description="",
    tasks=(
        Task("score", WheelTask("score")),
        Task("publish", WheelTask("publish"), depends_on=(Dependency("score"),)),
    ),
    parameters=MappingProxyType({}),
)


class Publishing:
    """Scores at once; publishes once the test lets it (``release``), failing with ``publish_code``."""

    def __init__(self, score_code: int = 0, publish_code: int = 0) -> None:
        self.score_code, self.publish_code = score_code, publish_code
        self.release = threading.Event()
        self.published = threading.Event()
        self.calls = threading.Event()  # the publish was called

    def __call__(self, entry_point: str, argv: list[str]) -> int:
        if entry_point == "score":
            return self.score_code
        self.calls.set()
        assert self.release.wait(10), "the test never let the publish go on"
        self.published.set()
        return self.publish_code

    def called(self) -> bool:
        return self.calls.wait(0.5)


def start(tmp_path, executor, graphs=None, hold_after=None) -> GraphInBackground:
    runner = LocalRunner(ENVIRONMENTS["dev"], graphs=graphs or {"batch": BATCH}, executor=executor, home=tmp_path)
    return GraphInBackground(runner, "batch", {}, WEEK, hold_after=hold_after)


def test_the_scored_task_is_told_while_the_publish_still_runs_then_the_run_once_it_has_ended(tmp_path):
    executor = Publishing()
    batch = start(tmp_path, executor)
    assert batch.task_run("score").status == "SUCCESS"
    assert not executor.published.is_set()  # the week goes on beside the publish
    executor.release.set()
    run = batch.result()
    assert run.status == "SUCCESS" and run.tasks["publish"].status == "SUCCESS"


def test_a_failed_score_is_the_replay_s_error_once_the_run_has_ended(tmp_path):
    batch = start(tmp_path, Publishing(score_code=3))
    with pytest.raises(
        ReplayError, match=r"week of 2013-03-04: the batch run failed at score: score exited with code 3"
    ):
        batch.task_run("score")


def test_a_failed_publish_is_the_replay_s_error_when_the_week_ends(tmp_path):
    executor = Publishing(publish_code=1)
    batch = start(tmp_path, executor)
    batch.task_run("score")
    executor.release.set()
    with pytest.raises(ReplayError, match=r"the batch run failed at publish: publish exited with code 1"):
        batch.result()


def test_a_run_that_crashes_is_the_replay_s_error_naming_the_graph(tmp_path):
    batch = start(tmp_path, Publishing(), graphs={"other": BATCH})
    with pytest.raises(ReplayError, match=r"the batch run crashed: unknown workflow 'batch'"):
        batch.task_run("score")


def test_a_run_held_after_its_score_publishes_only_once_told_to_go_on(tmp_path):
    executor = Publishing()
    executor.release.set()
    batch = start(tmp_path, executor, hold_after="score")
    assert batch.task_run("score").status == "SUCCESS"
    assert not executor.called()  # held: the live requests are served first
    batch.go_on()
    assert batch.result().tasks["publish"].status == "SUCCESS"


def test_a_held_run_is_let_go_on_when_the_replay_stops(tmp_path):
    executor = Publishing()
    executor.release.set()
    batch = start(tmp_path, executor, hold_after="score")
    batch.task_run("score")
    batch.join()  # what the replay does when a later step fails: nothing waits forever, nothing is left running
    assert executor.published.is_set()


def test_a_run_that_fails_while_the_replay_stops_for_another_failure_is_logged_not_lost(tmp_path, caplog):
    executor = Publishing(publish_code=1)
    executor.release.set()
    batch = start(tmp_path, executor, hold_after="score")
    batch.task_run("score")
    with caplog.at_level(logging.ERROR, logger="local.demo.loop"):
        batch.join_after_failure()  # what the replay does when its stream fails: the run ends, its failure is said
    assert executor.published.is_set()
    assert "the batch run failed at publish: publish exited with code 1 (the replay stops" in caplog.text
