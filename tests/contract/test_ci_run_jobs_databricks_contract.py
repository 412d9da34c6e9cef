"""`mlops ci run-jobs`: what CI runs after the staging deploy and nightly, with the real databricks-sdk against a
stand-in workspace over HTTP (``tests.support.fake_workspace``): no workspace can be reached from here, so the test
checks the Jobs API calls the command makes (find by exact name, run-now, poll, cancel) and what it reports."""

from __future__ import annotations

import pytest

from cli.main import main as mlops
from infra.constructs.jobs import job_name
from spec.config import ENVIRONMENTS
from spec.workflows import job_graphs
from tests.support.fake_workspace import FakeWorkspace, signed_in

pytestmark = pytest.mark.contract

# dev with its two shipped models: the command must run one job per model. Pinned to these two, so that a model a
# user adds to dev (`mlops init model`) does not change what the test is about. A graph every model has stands in for
# integration-test; the command takes any graph by name.
SHIPPED = ("flight_delay", "airport_delay")
ENV = ENVIRONMENTS["dev"].replace(models=tuple(m for m in ENVIRONMENTS["dev"].models if m.name in SHIPPED))
GRAPH = "model-training"
JOBS = "/api/2.2/jobs"
FAST = ["--poll-seconds", "0.05"]


def names() -> dict[str, str]:
    models = ENV.model_names
    assert len(models) == 2, "dev runs two models: the test is about more than one"
    return {m: job_name(ENV.with_model(m), job_graphs(ENV.with_model(m))[GRAPH]) for m in models}


@pytest.fixture
def workspace(monkeypatch):
    import cli.commands.ci

    monkeypatch.setattr(cli.commands.ci, "ENVIRONMENTS", {**ENVIRONMENTS, "dev": ENV})
    fake = FakeWorkspace()
    with signed_in(fake, monkeypatch):
        yield fake


def test_every_model_s_job_runs_and_the_summary_links_each_run(workspace, tmp_path, capsys):
    jobs = names()
    flight, airport = (workspace.add_job(jobs[m]) for m in ENV.model_names)
    workspace.add_job(jobs["flight_delay"].replace(GRAPH, "batch-inference"))  # another graph: not run
    summary = tmp_path / "summary.md"

    code = mlops(
        ["ci", "run-jobs", "--env", "dev", "--graph", GRAPH, "--parameters", '{"max_rows": 5000}']
        + ["--summary", str(summary), *FAST]
    )

    assert code == 0
    # Both are started before either is waited for: the runs are concurrent.
    writes = [(m, p, b) for m, p, b in workspace.api_calls(JOBS) if m == "POST"]
    assert writes == [
        ("POST", f"{JOBS}/run-now", {"job_id": flight.job_id, "job_parameters": {"max_rows": "5000"}}),
        ("POST", f"{JOBS}/run-now", {"job_id": airport.job_id, "job_parameters": {"max_rows": "5000"}}),
    ]
    first_poll = next(i for i, c in enumerate(workspace.api_calls(JOBS)) if "runs/get" in c[1])
    assert all("run-now" not in c[1] for c in workspace.api_calls(JOBS)[first_poll:])
    listed = [c[1] for c in workspace.api_calls(JOBS) if c[1].startswith(f"{JOBS}/list")]
    assert len(listed) == 2 and all("name=%5Bdev%5D+" in path for path in listed)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"flight_delay: SUCCESS https://workspace.example/jobs/{flight.job_id}/runs/5000",
        f"airport_delay: SUCCESS https://workspace.example/jobs/{airport.job_id}/runs/5001",
    ]
    assert summary.read_text() == (
        f"### {GRAPH} in dev: passed (2/2 SUCCESS)\n\n| model | job | result | run |\n|---|---|---|---|\n"
        f"| flight_delay | `{jobs['flight_delay']}` | SUCCESS | "
        f"[run page](https://workspace.example/jobs/{flight.job_id}/runs/5000) |\n"
        f"| airport_delay | `{jobs['airport_delay']}` | SUCCESS | "
        f"[run page](https://workspace.example/jobs/{airport.job_id}/runs/5001) |\n"
    )


def test_a_failed_run_fails_the_command_and_the_summary_says_which(workspace, tmp_path, capsys):
    jobs = names()
    workspace.add_job(jobs["flight_delay"], polls_to_finish=3)
    workspace.add_job(jobs["airport_delay"], outcome="FAILED")
    summary = tmp_path / "summary.md"

    code = mlops(["ci", "run-jobs", "--env", "dev", "--graph", GRAPH, "--summary", str(summary), *FAST])

    assert code == 1
    assert [run.polls for run in workspace.runs.values()] == [3, 1]
    assert [r.job_parameters for r in workspace.runs.values()] == [{}, {}]
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("flight_delay: SUCCESS https://")
    assert out[1] == (
        "airport_delay: FAILED https://workspace.example/jobs/1001/runs/5001 "
        "(Task validate failed with message: FAILED)"
    )
    text = summary.read_text()
    assert text.startswith(f"### {GRAPH} in dev: failed (1/2 SUCCESS)\n")
    assert "| FAILED: Task validate failed with message: FAILED | [run page](" in text


def test_a_missing_job_is_named_and_nothing_starts(workspace, capsys):
    jobs = names()
    workspace.add_job(jobs["flight_delay"])

    code = mlops(["ci", "run-jobs", "--env", "dev", "--graph", GRAPH, *FAST])

    assert code == 1
    assert workspace.runs == {}
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"flight_delay: MISSING {jobs['flight_delay']} (not started: another model's job is missing)",
        f"airport_delay: MISSING {jobs['airport_delay']} (no job named {jobs['airport_delay']!r} in the workspace: "
        "deploy the environment (dev) first)",
    ]


def test_a_run_past_its_deadline_is_cancelled_and_reported_timed_out(workspace, capsys):
    jobs = names()
    workspace.add_job(jobs["flight_delay"])
    workspace.add_job(jobs["airport_delay"], outcome=None)

    code = mlops(["ci", "run-jobs", "--env", "dev", "--graph", GRAPH, "--timeout-minutes", "0.005", *FAST])

    assert code == 1
    assert [run.cancelled for run in workspace.runs.values()] == [False, True]
    assert ("POST", f"{JOBS}/runs/cancel", {"run_id": 5001}) in workspace.api_calls(JOBS)
    assert capsys.readouterr().out.splitlines()[1] == (
        "airport_delay: TIMEDOUT https://workspace.example/jobs/1001/runs/5001 "
        "(still RUNNING when CI stopped waiting: cancelled)"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--graph", "no-such-graph"],
            "mlops ci: environment 'dev', model 'flight_delay' has no job graph 'no-such-graph': it has ",
        ),
        (["--graph", GRAPH, "--parameters", '{"max_row": "1"}'], "mlops ci: --parameters names ['max_row'], which job"),
    ],
)
def test_bad_input_is_refused_before_any_call(workspace, capsys, argv, message):
    assert mlops(["ci", "run-jobs", "--env", "dev", *argv]) == 1
    assert capsys.readouterr().err.startswith(message)
    assert workspace.api_calls(JOBS) == []


def test_two_jobs_of_one_name_are_refused(workspace, capsys):
    jobs = names()
    for _ in range(2):
        workspace.add_job(jobs["flight_delay"])

    assert mlops(["ci", "run-jobs", "--env", "dev", "--graph", GRAPH]) == 1
    assert capsys.readouterr().err == (
        f"mlops ci: 2 jobs are named {jobs['flight_delay']!r} (ids [1000, 1001]): CI cannot tell which to run; "
        "delete the extra\n"
    )
    assert workspace.runs == {}


def test_a_job_the_ci_runner_may_not_run_is_named_and_the_runs_already_started_are_cancelled(workspace, capsys):
    jobs = names()
    workspace.add_job(jobs["flight_delay"])
    workspace.add_job(jobs["airport_delay"], may_run=False)

    assert mlops(["ci", "run-jobs", "--env", "dev", "--graph", GRAPH, *FAST]) == 1

    assert [(run.job.name, run.cancelled) for run in workspace.runs.values()] == [(jobs["flight_delay"], True)]
    err = capsys.readouterr().err
    # The SDK's message goes on with the identity it signed in as (host, auth type), which is what to check.
    assert err.startswith(
        f"mlops ci: the signed-in identity may not run {jobs['airport_delay']!r} (User does not have Run permission "
        "on job 1001."
    )
    assert err.endswith(
        "): the CI runner needs CAN_MANAGE_RUN on it (spec.access.CI_JOBS); runs already started were cancelled\n"
    )


def test_a_run_message_stays_in_its_table_cell():
    from cli.commands.ci import ModelRun, summary_markdown

    run = ModelRun("m", "[dev] m/g", "FAILED", "https://w/r/1", "Task a | b failed:\nTraceback")

    row = summary_markdown("dev", "g", [run]).splitlines()[-1]

    assert row == "| m | `[dev] m/g` | FAILED: Task a \\| b failed: Traceback | [run page](https://w/r/1) |"
