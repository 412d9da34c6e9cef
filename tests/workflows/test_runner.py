"""The local runner's semantics, with an executor standing in for the entry points (the real ones are exercised
end to end in tests/integration)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from local.adapters import LocalTaskValues
from local.runner import LocalRunner, load_run
from spec.config import ENVIRONMENTS
from spec.workflows import ConditionTask, Dependency, JobGraph, RunJobTask, Task, WheelTask, WorkflowError

ENV = ENVIRONMENTS["dev"]


class Script:
    """Plays entry points: each call records argv and may set task values, fail, or fail a number of times."""

    def __init__(self, behaviour: dict[str, dict]):
        self.behaviour = behaviour
        self.calls: list[tuple[str, list[str]]] = []
        self.failures: dict[str, int] = {}

    def __call__(self, entry_point: str, argv: list[str]) -> int:
        self.calls.append((entry_point, argv))
        spec = self.behaviour.get(entry_point, {})
        if self.failures.get(entry_point, 0) < spec.get("fail_times", 0):
            self.failures[entry_point] = self.failures.get(entry_point, 0) + 1
            raise RuntimeError(f"{entry_point} broke")
        task_values = LocalTaskValues.from_environ()  # what a job's platform writes its task values to
        for key, value in spec.get("values", {}).items():
            task_values.set(key, value)
        return spec.get("code", 0)


def graph(**overrides) -> JobGraph:
    tasks = (
        Task("train", WheelTask("train", ("--window", "{{job.parameters.window}}")), max_retries=1),
        Task(
            "validate",
            WheelTask("validate", ("--model-uri", "{{tasks.train.values.model_uri}}")),
            depends_on=(Dependency("train"),),
        ),
        Task(
            "passed",
            ConditionTask("{{tasks.validate.values.status}}", "EQUAL_TO", "PASSED"),
            depends_on=(Dependency("validate"),),
        ),
        Task(
            "deploy",
            WheelTask("deploy", ("--version", "{{tasks.train.values.version}}")),
            depends_on=(Dependency("passed", "true"),),
        ),
        Task("report", WheelTask("report"), depends_on=(Dependency("deploy"),), run_if="ALL_DONE"),
    )
    return JobGraph(name="g", description="", tasks=tasks, parameters=MappingProxyType({"window": "q1"}), **overrides)


def runner(tmp_path, script, graphs=None) -> LocalRunner:
    return LocalRunner(ENV, graphs=graphs or {"g": graph()}, executor=script, home=tmp_path, sleep=lambda s: None)


def test_task_values_flow_downstream_and_the_condition_gates_deploy(tmp_path):
    script = Script(
        {
            "train": {"values": {"model_uri": "models:/dev.ml.m/7", "version": "7"}},
            "validate": {"values": {"status": "PASSED"}},
        }
    )
    run = runner(tmp_path, script).run("g", {"window": "q2"})
    assert run.status == "SUCCESS"
    assert script.calls == [
        ("train", ["--window", "q2"]),
        ("validate", ["--model-uri", "models:/dev.ml.m/7"]),
        ("deploy", ["--version", "7"]),
        ("report", []),
    ]
    assert run.tasks["passed"].outcome == "true"
    assert load_run(run.run_id, home=tmp_path).tasks["train"].values == {
        "model_uri": "models:/dev.ml.m/7",
        "version": "7",
    }


def test_a_false_condition_excludes_deploy_but_all_done_still_runs(tmp_path):
    script = Script(
        {
            "train": {"values": {"model_uri": "u", "version": "1"}},
            "validate": {"values": {"status": "FAILED"}},
        }
    )
    run = runner(tmp_path, script).run("g")
    assert {k: t.status for k, t in run.tasks.items()} == {
        "train": "SUCCESS",
        "validate": "SUCCESS",
        "passed": "SUCCESS",
        "deploy": "EXCLUDED",
        "report": "SUCCESS",
    }
    assert run.status == "SUCCESS"


def test_a_failed_task_stops_its_dependants_and_the_run_names_it(tmp_path):
    script = Script({"train": {"values": {"model_uri": "u", "version": "1"}}, "validate": {"code": 3}})
    run = runner(tmp_path, script).run("g")
    assert run.status == "FAILED"
    assert run.failed_task.task_key == "validate"
    assert run.failed_task.error == "validate exited with code 3"
    assert (run.tasks["passed"].status, run.tasks["deploy"].status) == ("UPSTREAM_FAILED", "UPSTREAM_FAILED")
    assert run.tasks["report"].status == "SUCCESS"  # ALL_DONE runs whatever happened upstream


def test_retries_rerun_a_failed_attempt(tmp_path):
    script = Script(
        {
            "train": {"fail_times": 1, "values": {"model_uri": "u", "version": "1"}},
            "validate": {"values": {"status": "PASSED"}},
        }
    )
    run = runner(tmp_path, script).run("g")
    assert (run.tasks["train"].status, run.tasks["train"].attempts) == ("SUCCESS", 2)


def test_retries_are_bounded(tmp_path):
    script = Script({"train": {"fail_times": 5}})
    run = runner(tmp_path, script).run("g")
    assert (run.tasks["train"].status, run.tasks["train"].attempts, run.tasks["train"].error) == (
        "FAILED",
        2,
        "train broke",
    )


def test_a_missing_task_value_fails_the_task_that_needs_it(tmp_path):
    script = Script({"train": {"values": {"version": "1"}}})
    run = runner(tmp_path, script).run("g")
    assert run.failed_task.task_key == "validate"
    assert run.failed_task.error == "reference {{tasks.train.values.model_uri}} has no value"


def test_run_job_tasks_run_the_child_graph_as_a_linked_run(tmp_path):
    child = JobGraph(
        name="child",
        description="",
        tasks=(Task("work", WheelTask("work", ("{{job.parameters.day}}",))),),
        parameters=MappingProxyType({"day": "mon"}),
    )
    parent = JobGraph(
        name="parent",
        description="",
        tasks=(Task("refresh", RunJobTask("child", MappingProxyType({"day": "{{job.parameters.day}}"}))),),
        parameters=MappingProxyType({"day": "tue"}),
    )
    script = Script({})
    run = runner(tmp_path, script, graphs={"child": child, "parent": parent}).run("parent")
    assert run.status == "SUCCESS"
    assert script.calls == [("work", ["tue"])]
    assert load_run(run.tasks["refresh"].child_run_id, home=tmp_path).parent_run_id == run.run_id


def test_a_task_past_its_timeout_fails(tmp_path):
    import time as time_

    slow = JobGraph(
        name="slow", description="", tasks=(Task("nap", WheelTask("nap"), timeout_seconds=1, max_retries=2),)
    )
    calls = []
    run = LocalRunner(
        ENV, graphs={"slow": slow}, executor=lambda e, a: calls.append(e) or time_.sleep(3) or 0, home=tmp_path
    ).run("slow")
    assert (run.status, run.failed_task.error) == ("FAILED", "nap timed out after 1s")
    assert (run.tasks["nap"].attempts, calls) == (1, ["nap"])  # no retry after a timeout by default


def test_unknown_workflow_and_parameters_are_clear_errors(tmp_path):
    with pytest.raises(WorkflowError, match=r"unknown workflow 'nope'; known: g"):
        runner(tmp_path, Script({})).run("nope")
    with pytest.raises(WorkflowError, match=r"workflow 'g' has no parameter\(s\) \['windw'\]; known: window"):
        runner(tmp_path, Script({})).run("g", {"windw": "q1"})


def test_whoever_starts_a_run_hears_of_each_task_once_its_state_is_recorded(tmp_path):
    script = Script({"train": {"values": {"model_uri": "models:/dev.ml.m/7", "version": "7"}}, "validate": {"code": 1}})
    told = []

    def on_task_end(task_run):
        recorded = load_run(run_id_of(tmp_path), tmp_path).tasks[task_run.task_key].status
        told.append((task_run.task_key, task_run.status, recorded))

    run = runner(tmp_path, script).run("g", {}, on_task_end=on_task_end)
    assert run.status == "FAILED"
    assert told == [
        ("train", "SUCCESS", "SUCCESS"),
        ("validate", "FAILED", "FAILED"),
        ("passed", "UPSTREAM_FAILED", "UPSTREAM_FAILED"),
        ("deploy", "UPSTREAM_FAILED", "UPSTREAM_FAILED"),
        ("report", "SUCCESS", "SUCCESS"),
    ]


def run_id_of(home) -> str:
    (run_dir,) = [path for path in home.iterdir() if (path / "run.json").exists()]
    return run_dir.name
