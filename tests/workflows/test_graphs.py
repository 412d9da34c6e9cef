"""Job graphs as data: the project's graphs are well formed, and malformed graphs are rejected with a reason."""

from __future__ import annotations

import pytest

from spec.config import ENVIRONMENTS
from spec.workflows import (
    AlertTask,
    ConditionTask,
    Dependency,
    JobGraph,
    ModelTrigger,
    RunJobTask,
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
    # With manual approval the model-deployment job deploys instead (test_manual_approval_deploys_in_its_own_job).
    manual = env.promotion.approval == "manual"
    order = ["refresh_features", "train", "validate", "validation_passed", *([] if manual else ["deploy"])]
    # In enabled mode a FAILED verdict fails the run in its own task; dry_run (dev) only records it.
    expected = order + (["validation_failed"] if env.validation.run_mode == "enabled" else [])
    assert graph.topological_order() == expected
    if not manual:
        assert graph.task("deploy").depends_on == (Dependency("validation_passed", "true"),)
    assert graph.task("validate").action.parameters == (
        "--env",
        name,
        "--model",
        env.model_name,
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
        "--env", name, "--model", env.model_name, "--model-uri", "{{tasks.train.values.model_uri}}",
        "--require-passed",
    )  # fmt: skip
    assert (failed.max_retries, graph.task("validate").max_retries) == (0, env.job_retries)


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_the_deploy_task_outlasts_the_endpoint_wait_it_may_do(name):
    env = ENVIRONMENTS[name]
    graphs = job_graphs(env)
    manual = env.promotion.approval == "manual"
    deploy = graphs["model-deployment"].task("approval") if manual else graphs["model-training"].task("deploy")
    assert deploy.timeout_seconds == env.serving.update_timeout_minutes * 60 + 15 * 60
    assert deploy.timeout_seconds > env.serving.update_timeout_minutes * 60


def test_manual_approval_deploys_in_its_own_job_started_by_the_new_challenger():
    # given: prod approves promotions by hand (its default), dev and staging do not
    assert [env.promotion.approval for env in ENVIRONMENTS.values()] == ["automatic", "automatic", "manual"]
    for env in ENVIRONMENTS.values():
        graphs = job_graphs(env)
        if env.promotion.approval == "automatic":
            assert "model-deployment" not in graphs
            continue
        # then: the deployment job's one task is the approval task (its name is the approval tag's key) running
        # mlops-deploy for the challenger, and the model trigger starts it when validation sets that alias
        graph = graphs["model-deployment"]
        assert [t.key for t in graph.tasks] == ["approval"]
        assert graph.task("approval").action.parameters == (
            "--env", env.name, "--model", env.model_name, "--model-name", env.registered_model,
            "--model-version", "{{job.parameters.model_version}}",
        )  # fmt: skip
        assert dict(graph.parameters) == {"model_version": ""}
        assert graph.trigger_model == ModelTrigger(
            securable_name=env.registered_model,
            condition="MODEL_ALIAS_SET",
            aliases=("challenger",),
            min_time_between_triggers_seconds=60,
        )
        assert graph.schedule is None and not graph.trigger_tables


@pytest.mark.parametrize(
    ("trigger", "problem"),
    [
        (ModelTrigger("prod.ml.m", "MODEL_VERSION_READY", aliases=("champion",)), "aliases are given with"),
        (ModelTrigger("prod.ml.m", "MODEL_ALIAS_SET"), "aliases are given with"),
        (ModelTrigger("prod.ml.m", "MODEL_VERSION_READY", min_time_between_triggers_seconds=30), "must be >= 60"),
        (ModelTrigger("m", "MODEL_VERSION_READY"), "catalog.schema.model"),
    ],
)
def test_a_malformed_model_trigger_is_refused_with_the_reason(trigger, problem):
    with pytest.raises(WorkflowError, match=problem):
        JobGraph("g", "d", tasks=(Task("t", WheelTask("x")),), trigger_model=trigger)


def test_the_model_workflow_is_started_by_the_retraining_job_with_a_moving_window():
    for env in ENVIRONMENTS.values():
        graphs = job_graphs(env)
        assert graphs["model-training"].schedule is None
        retraining = graphs["retraining"]
        # Started by the daily graph, not by a table trigger: a trigger on a metrics table that only the monitor's
        # first refresh creates makes the Jobs API refuse the job on a fresh workspace ("The table ... does not
        # exist", databricks/cli#4437).
        assert (retraining.trigger_tables, retraining.schedule, retraining.max_concurrent_runs) == ((), None, 1)
        retrain = retraining.task("retrain")
        assert retrain.depends_on == (Dependency("should_retrain", "true"),)
        assert dict(retrain.action.job_parameters) == {
            "training_start": "{{tasks.check.values.training_start}}",
            "training_end": "{{tasks.check.values.training_end}}",
            "max_rows": str(env.retraining.max_rows),
        }
    assert ENVIRONMENTS["prod"].retraining.max_model_age_days == 28


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_the_production_day_is_one_graph_labels_then_refresh_then_alerts_then_retraining(name):
    env = ENVIRONMENTS[name]
    graphs = job_graphs(env)
    daily = graphs["daily-monitoring"]
    alert_keys = [t.key for t in daily.tasks if isinstance(t.action, AlertTask)]

    assert daily.schedule == env.monitoring.schedule
    assert len(alert_keys) == 4
    assert daily.task("labels").action.entry_point == "mlops-labels"
    assert daily.task("refresh_monitors").depends_on == (Dependency("labels"),)
    assert all(daily.task(key).depends_on == (Dependency("refresh_monitors"),) for key in alert_keys)
    assert daily.task("retraining").action == RunJobTask(job="retraining")
    assert [d.task_key for d in daily.task("retraining").depends_on] == alert_keys
    assert daily.topological_order()[:2] == ["labels", "refresh_monitors"]
    # Nothing else starts on its own clock: the labels graph runs on demand, the retraining graph from here.
    assert graphs["labels"].schedule is None and graphs["retraining"].schedule is None


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_a_run_job_task_waits_as_long_as_its_child_job_may_run(name):
    graphs = job_graphs(ENVIRONMENTS[name])
    run_jobs = [(g, t) for g in graphs.values() for t in g.tasks if isinstance(t.action, RunJobTask)]
    assert len(run_jobs) == 3
    for graph, task in run_jobs:
        child = graphs[task.action.job]
        assert task.timeout_seconds >= child.job_timeout_seconds >= child.worst_case_seconds, (graph.name, task.key)
    # model-training's tasks add up to more than the 3 h the retrain task allowed before (with retries, far more).
    training = graphs["model-training"]
    assert sum(t.timeout_seconds for t in training.tasks if t.key != "validation_failed") > 3 * 3600


def test_a_run_job_task_shorter_than_its_child_is_refused_naming_the_field():
    from dataclasses import replace

    from spec.workflows import check_run_job_timeouts

    graphs = job_graphs(ENVIRONMENTS["prod"])
    retraining = graphs["retraining"]
    short = replace(
        retraining,
        tasks=tuple(replace(t, timeout_seconds=3 * 3600) if t.key == "retrain" else t for t in retraining.tasks),
    )

    with pytest.raises(WorkflowError) as refused:
        check_run_job_timeouts({**graphs, "retraining": short})

    assert str(refused.value) == (
        f"graph 'retraining': task 'retrain' field 'timeout_seconds' is 10800s, shorter than its child job "
        f"'model-training' may run ({graphs['model-training'].job_timeout_seconds}s): set it to at least "
        f"{graphs['model-training'].job_timeout_seconds}"
    )


def test_a_job_timeout_below_its_tasks_worst_case_is_refused():
    task = Task("a", _wheel(), max_retries=1, min_retry_interval_millis=60_000, timeout_seconds=3600)

    with pytest.raises(WorkflowError, match=r"field 'timeout_seconds' is 3600s but its tasks may take 7260s"):
        JobGraph("short", "", (task,), timeout_seconds=3600)
    assert JobGraph("fits", "", (task,)).job_timeout_seconds == 7260


def test_a_job_has_a_schedule_a_table_trigger_or_continuous_mode_not_two():
    from spec.config import Schedule

    with pytest.raises(
        WorkflowError, match="at most one of a schedule, a table trigger, a model trigger and continuous mode"
    ):
        JobGraph(
            "both",
            "",
            (Task("a", _wheel()),),
            schedule=Schedule(quartz_cron="0 0 3 * * ?"),
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
