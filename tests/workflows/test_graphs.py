"""Job graphs as data: the project's graphs are well formed, and malformed graphs are rejected with a reason."""

from __future__ import annotations

import pytest

from spec.config import ENVIRONMENTS
from spec.workflows import (
    ConditionTask,
    Dependency,
    JobGraph,
    Task,
    WheelTask,
    WorkflowError,
    job_graphs,
    references,
    resolve,
)


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_model_training_runs_train_validate_condition_deploy_in_order(name):
    env = ENVIRONMENTS[name]
    graph = job_graphs(env)["model-training"]
    order = ["refresh_features", "train", "validate", "validation_passed", "deploy"]
    # In enabled mode a FAILED verdict fails the run in its own task; dry_run (dev) only records it.
    expected = order + (["validation_failed"] if env.validation.run_mode == "enabled" else [])
    assert graph.topological_order() == expected
    assert graph.task("deploy").depends_on == (Dependency("validation_passed", "true"),)
    assert graph.task("validate").action.parameters == (
        "--env",
        name,
        "--model-uri",
        "{{tasks.train.values.model_uri}}",
        "--run-mode",
        ENVIRONMENTS[name].validation.run_mode,
    )


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_a_failed_validation_fails_the_run_once_and_a_crash_is_retried(name):
    env = ENVIRONMENTS[name]
    graph = job_graphs(env)["model-training"]
    failed = graph.task("validation_failed")
    assert failed.depends_on == (Dependency("validation_passed", "false"),)
    assert failed.action.parameters == (
        "--env", name, "--model-uri", "{{tasks.train.values.model_uri}}", "--require-passed",
    )  # fmt: skip
    assert (failed.max_retries, graph.task("validate").max_retries) == (0, env.job_retries)


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_the_deploy_task_outlasts_the_endpoint_wait_it_may_do(name):
    env = ENVIRONMENTS[name]
    deploy = job_graphs(env)["model-training"].task("deploy")
    assert deploy.timeout_seconds == env.serving.update_timeout_minutes * 60 + 15 * 60
    assert deploy.timeout_seconds > env.serving.update_timeout_minutes * 60


def test_the_model_workflow_is_started_by_the_retraining_job_with_a_moving_window():
    for env in ENVIRONMENTS.values():
        graphs = job_graphs(env)
        assert graphs["model-training"].schedule is None
        retraining = graphs["retraining"]
        assert retraining.trigger_tables == (f"{env.catalog}.monitoring.flight_delay_predictions_drift_metrics",)
        assert (retraining.schedule, retraining.max_concurrent_runs) == (None, 1)
        retrain = retraining.task("retrain")
        assert retrain.depends_on == (Dependency("should_retrain", "true"),)
        assert dict(retrain.action.job_parameters) == {
            "training_start": "{{tasks.check.values.training_start}}",
            "training_end": "{{tasks.check.values.training_end}}",
            "max_rows": str(env.retraining.max_rows),
        }
    assert ENVIRONMENTS["prod"].retraining.max_model_age_days == 28


def test_a_job_has_a_schedule_a_table_trigger_or_continuous_mode_not_two():
    from spec.config import Schedule

    with pytest.raises(WorkflowError, match="at most one of a schedule, a table trigger and continuous mode"):
        JobGraph(
            "both",
            "",
            (Task("a", _wheel()),),
            schedule=Schedule("0 0 3 * * ?"),
            trigger_tables=("dev.monitoring.x_drift_metrics",),
        )


def test_references_and_resolution():
    text = "{{tasks.train.values.model_uri}} at {{job.parameters.end_date}}"
    assert references(text) == ["tasks.train.values.model_uri", "job.parameters.end_date"]
    resolved = resolve(text, {"end_date": "2013-06-30"}, {"train": {"model_uri": "models:/dev.ml.m/1"}})
    assert resolved == "models:/dev.ml.m/1 at 2013-06-30"
    assert resolve("{{tasks.t.values.ok}}", {}, {"t": {"ok": True}}) == "true"


def test_a_missing_task_value_is_an_error_naming_it():
    with pytest.raises(WorkflowError, match=r"reference \{\{tasks.train.values.model_uri\}\} has no value"):
        resolve("{{tasks.train.values.model_uri}}", {}, {"train": {}})


def _wheel(*params):
    return WheelTask("mlops-train", tuple(params))


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ((), "graph 'g': has no tasks"),
        ((Task("a", _wheel()), Task("a", _wheel())), "graph 'g': duplicate task keys ['a']"),
        ((Task("a", _wheel(), depends_on=(Dependency("b"),)),), "graph 'g': task 'a' depends on unknown 'b'"),
        (
            (Task("a", _wheel(), depends_on=(Dependency("b"),)), Task("b", _wheel(), depends_on=(Dependency("a"),))),
            "graph 'g': dependency cycle among ['a', 'b']",
        ),
        (
            (Task("a", _wheel("{{tasks.b.values.x}}")), Task("b", _wheel())),
            "graph 'g': task 'a' references 'tasks.b.values.x', which is not a task value of an upstream task",
        ),
        (
            (Task("a", _wheel("{{job.parameters.nope}}")),),
            "graph 'g': task 'a' references unknown 'job.parameters.nope'",
        ),
        (
            (Task("a", _wheel()), Task("b", _wheel(), depends_on=(Dependency("a", "true"),))),
            "graph 'g': task 'b' uses an outcome of 'a', which is not a condition task",
        ),
    ],
)
def test_malformed_graphs_are_rejected(tasks, message):
    with pytest.raises(WorkflowError) as error:
        JobGraph(name="g", description="", tasks=tasks)
    assert str(error.value) == message


def test_condition_outcomes_are_allowed_on_condition_tasks():
    graph = JobGraph(
        name="g",
        description="",
        tasks=(
            Task("check", ConditionTask("1", "EQUAL_TO", "1")),
            Task("then", _wheel(), depends_on=(Dependency("check", "true"),)),
        ),
    )
    assert graph.upstream("then") == {"check"}
