"""The integration-test graph as data: every pipeline of every model in order, each step followed by its check, on a
small slice given as job parameters; and the check entry point refuses bad arguments before it reads anything."""

from __future__ import annotations

from datetime import date

import pytest

from spec.config import ENVIRONMENTS
from spec.monitoring import alerts
from spec.workflows import AlertTask, WheelTask, job_graphs

# Every environment that has the graph (prod has not: there it would deploy and publish a test slice).
SCOPES = [(name, model) for name, env in ENVIRONMENTS.items() if env.integration_test for model in env.model_names]
# The pipeline steps in the order of a model's life, each with the entry point it runs.
STEPS = [
    ("ingest", "mlops-ingest"),
    ("features", "mlops-features"),
    ("train", "mlops-train"),
    ("validate", "mlops-validate"),
    ("deploy", "mlops-deploy"),
    ("score_batch", "mlops-score-batch"),
    ("land", "mlops-land"),
    ("score_stream", "mlops-score-stream"),
    ("publish", "mlops-publish"),
    ("labels", "mlops-labels"),
    ("refresh_monitors", "mlops-refresh-monitors"),
]
CHECKED = ["ingest", "features", "train", "validate", "deploy", "score_batch", "score_stream", "publish", "labels"]


def test_prod_has_no_integration_test_and_staging_has_one_per_model():
    assert "integration-test" not in job_graphs(ENVIRONMENTS["prod"])
    assert all(
        "integration-test" in job_graphs(ENVIRONMENTS["staging"].with_model(m))
        for m in ENVIRONMENTS["staging"].model_names
    )


@pytest.mark.parametrize(("name", "model"), SCOPES)
def test_every_pipeline_runs_in_order_each_followed_by_its_check(name, model):
    env = ENVIRONMENTS[name].with_model(model)
    graph = job_graphs(env)["integration-test"]
    order = graph.topological_order()
    assert order[0] == "start"
    assert [order.index(step) for step, _ in STEPS] == sorted(order.index(step) for step, _ in STEPS)
    for step, entry_point in STEPS:
        assert graph.task(step).action.entry_point == entry_point
        assert graph.task(step).action.parameters[:4] == ("--env", name, "--model", model)
    for step in CHECKED:
        check = graph.task(f"check_{step}")
        assert [d.task_key for d in check.depends_on] == [step]
        assert check.action.entry_point == "mlops-integration-check"
        assert check.action.parameters[4:8] == ("--step", step, "--since", "{{tasks.start.values.started_at}}")
        assert check.max_retries == 0 and check.no_retry_reason
    # The requests go through the endpoint once the deployment is checked, before anything is scored.
    assert order.index("check_deploy") < order.index("check_requests") < order.index("score_batch")
    assert [d.task_key for d in graph.task("check_requests").depends_on] == ["check_deploy"]
    # Every SQL alert of the model is evaluated after the monitors' check, then the alerts' states are checked.
    alert_tasks = [t for t in graph.tasks if isinstance(t.action, AlertTask)]
    assert sorted(t.action.alert for t in alert_tasks) == sorted(a.name for a in alerts(env))
    assert all([d.task_key for d in t.depends_on] == ["check_monitors"] for t in alert_tasks)
    assert {d.task_key for d in graph.task("check_alerts").depends_on} == {t.key for t in alert_tasks}
    assert order[-1] == "check_alerts"


@pytest.mark.parametrize("name", sorted({name for name, _ in SCOPES}))
def test_the_slice_is_small_and_a_run_can_move_it(name):
    graph = job_graphs(ENVIRONMENTS[name])["integration-test"]
    training = job_graphs(ENVIRONMENTS[name])["model-training"]
    assert int(graph.parameters["max_rows"]) * 10 <= int(training.parameters["max_rows"])
    window = date.fromisoformat(graph.parameters["training_end"]) - date.fromisoformat(
        graph.parameters["training_start"]
    )
    assert window.days < 62, "two months of training at most"
    used = {ref for task in graph.tasks for text in task.parameter_texts() for ref in _job_parameters(text)}
    assert used == set(graph.parameters), "every parameter is used, and only declared ones"
    assert graph.task("train").action.parameters[-2:] == ("--max-rows", "{{job.parameters.max_rows}}")


def _job_parameters(text: str) -> list[str]:
    from spec.workflows import references

    return [ref.removeprefix("job.parameters.") for ref in references(text) if ref.startswith("job.parameters.")]


def test_the_checked_version_is_the_one_the_steps_after_training_use():
    graph = job_graphs(ENVIRONMENTS["staging"])["integration-test"]
    assert "{{tasks.check_train.values.model_uri}}" in graph.task("validate").action.parameters
    assert "{{tasks.check_train.values.model_version}}" in graph.task("deploy").action.parameters
    assert all(isinstance(t.action, WheelTask | AlertTask) for t in graph.tasks), "no child job: CI runs it alone"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--step", "ingest"], "--since is required for --step ingest"),
        (["--step", "ingest", "--since", "2026-01-01T00:00:00+00:00"], "needs --versions, --start-date, --end-date"),
        (["--step", "deploy", "--since", "2026-01-01T00:00:00"], "must name its time zone"),
        (["--step", "nothing"], "invalid choice: 'nothing'"),
        (["--step", "ingest", "--since", "2026-01-01T00:00:00+00:00", "--versions", "[1]"], "JSON object"),
    ],
)
def test_the_check_refuses_bad_arguments_naming_them(argv, message, capsys):
    from jobs.integration_check import main

    with pytest.raises(SystemExit) as exit_:
        main(["--env", "dev", "--model", "flight_delay", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
