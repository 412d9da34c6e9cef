"""Task values belong to one task of one run, and a task the runner gave up on writes nothing after its run ended
(issue 16, silent failure 4). The entry points are fakes; the writes go through the real local platform."""

from __future__ import annotations

import logging
import os
import threading
from types import MappingProxyType
from unittest.mock import Mock

import pytest

from jobs.platform import build_platform
from jobs.platform.registry import ModelRef, RegistryConfig
from jobs.platform.serving import ServedEntity
from local.adapters import LocalTaskValues
from local.paths import table_path
from local.runner import LocalRunner, load_run
from spec.config import ENVIRONMENTS
from spec.workflows import Dependency, JobGraph, Task, WheelTask

ENV = ENVIRONMENTS["dev"]


def produce_then_consume(name: str) -> JobGraph:
    return JobGraph(
        name=name,
        description="",
        tasks=(
            Task("produce", WheelTask("produce")),
            Task(
                "consume", WheelTask("consume", ("{{tasks.produce.values.who}}",)), depends_on=(Dependency("produce"),)
            ),
        ),
        parameters=MappingProxyType({}),
    )


def test_two_runners_at_once_each_read_their_own_task_values(tmp_path):
    # Both `produce` tasks are under way before either looks where its task values go: with the location in the
    # process's environment, the runner that started second would have sent both to its own run.
    both_running = threading.Barrier(2, timeout=30)
    seen: dict[str, dict] = {}

    def executor(who: str):
        def call(entry_point: str, argv: list[str]) -> int:
            if entry_point == "produce":
                both_running.wait()
                task_values = LocalTaskValues.from_environ()
                seen[who] = {"path": task_values.path, "environ": os.environ.get("MLOPS_TASK_VALUES_DIR")}
                task_values.set("who", who)
            else:
                seen[who]["consumed"] = argv
            return 0

        return call

    runs = {}

    def run(who: str) -> None:
        graphs = {who: produce_then_consume(who)}
        runner = LocalRunner(ENV, graphs=graphs, executor=executor(who), home=tmp_path / who, sleep=lambda s: None)
        runs[who] = runner.run(who)

    threads = [threading.Thread(target=run, args=(who,)) for who in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    for who in ("left", "right"):
        run_dir = tmp_path / who / runs[who].run_id
        assert seen[who]["path"] == run_dir / "task_values" / "produce.json"
        assert seen[who]["environ"] is None  # the runner leaves the process's environment alone
        assert runs[who].status == "SUCCESS", runs[who].failed_task
        assert runs[who].tasks["produce"].values == {"who": who}
        assert seen[who]["consumed"] == [who]


class Frame:
    """What the tables adapter needs of a Spark DataFrame, without starting Spark."""

    def toArrow(self):  # noqa: N802 - PySpark's name
        import pyarrow as pa

        return pa.table({"x": [1, 2, 3]})


def test_a_timed_out_task_writes_nothing_after_its_run_reported_failed(mlops_home, tmp_path, caplog):
    build_platform(ENV)  # import MLflow and the adapters now, so the task is well inside its platform at the timeout
    table = ENV.table("raw", "written_too_late")
    run_over = threading.Event()
    refused: list[str] = []
    workers: list[threading.Thread] = []

    def slow(entry_point: str, argv: list[str]) -> int:
        workers.append(threading.current_thread())
        platform = build_platform(ENV)  # inside the task, as a job's main does
        run_over.wait(30)  # past the 1 s timeout: the run has reported FAILED by now
        try:
            platform.tables.write(Frame(), table, "overwrite")
        except Exception as error:  # noqa: BLE001 - recorded for the assertions
            refused.append(str(error))
        platform.task_values.set("late", "yes")  # raises to the runner, which logs it
        return 0

    graph = JobGraph(name="slow", description="", tasks=(Task("nap", WheelTask("nap"), timeout_seconds=1),))
    runner = LocalRunner(ENV, graphs={"slow": graph}, executor=slow, home=tmp_path)
    with caplog.at_level(logging.INFO):
        run = runner.run("slow")
        assert (run.status, run.failed_task.error) == ("FAILED", "nap timed out after 1s")
        run_over.set()
        workers[0].join(30)

    assert not workers[0].is_alive()
    assert not table_path(table).exists()
    assert not (tmp_path / run.run_id / "task_values" / "nap.json").exists()
    assert load_run(run.run_id, home=tmp_path).tasks["nap"].values == {}
    ended = f"the run {run.run_id} ended (task nap timed out): not writing"
    assert refused == [f"{ended} table {table} (overwrite)"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name == "local.runner"]
    assert f"task nap of run {run.run_id}, abandoned after its timeout, failed: {ended} task value 'late'" in errors


def test_an_ended_task_refuses_registry_serving_and_monitor_writes(tmp_path):
    from local.adapters import LocalRegistry, LocalServing, RunEndedError, TaskContext
    from local.platform import LocalMonitors

    task = TaskContext("r1", "deploy", tmp_path)
    client = Mock()
    registry = LocalRegistry(ENV, RegistryConfig("sqlite://", "sqlite://", None), client, task=task)
    serving = LocalServing(tmp_path / "serving", task=task)
    registry.set_alias("champion", "3")  # a running task writes
    assert client.set_registered_model_alias.call_count == 1

    assert task.end("timed out", wait_seconds=1)
    ended = "the run r1 ended \\(task deploy timed out\\): not writing"
    with pytest.raises(RunEndedError, match=f"{ended} alias champion of {ENV.registered_model} -> version 4"):
        registry.set_alias("champion", "4")
    with pytest.raises(RunEndedError, match=f"{ended} tags \\['status'\\] of models:/m/4"):
        registry.set_version_tags(ModelRef("m", "4"), {"status": "PASSED"})
    with pytest.raises(RunEndedError, match=f"{ended} the deletion of alias challenger"):
        registry.delete_alias("challenger")
    with pytest.raises(RunEndedError, match=f"{ended} the state of endpoint {ENV.endpoint_name}"):
        serving.update_endpoint(ENV, [ServedEntity("champion", ENV.registered_model, "4", 100)])
    assert not serving.state_path(ENV).exists()
    with pytest.raises(RunEndedError, match=f"{ended} the monitors of"):
        LocalMonitors(ENV, task=task).refresh([])
    assert client.set_registered_model_alias.call_count == 1
    assert not client.set_model_version_tag.called and not client.delete_registered_model_alias.called


def test_the_end_waits_for_a_write_under_way(tmp_path):
    from local.adapters import RunEndedError, TaskContext

    task = TaskContext("r1", "train", tmp_path)
    with task.writing("a table"):
        assert not task.end("timed out", wait_seconds=0.05)  # still under way: the runner says so and goes on
    with pytest.raises(RunEndedError, match="not writing another table"), task.writing("another table"):
        pass
