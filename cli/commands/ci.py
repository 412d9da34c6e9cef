"""`mlops ci run-jobs --env ENV --graph GRAPH`: what CI calls to run one job graph of every model of an environment
against its workspace (after the staging deploy, and nightly) and report the result where the pipeline reports.

For each model the environment runs, the job is found by its exact name (``infra.constructs.jobs.job_name``:
``[<env>] <model>/<graph>``), started with run-now, and waited for, at most the graph's job timeout. One line per
model goes to standard output (result, run page); ``--summary FILE`` writes the same as a Markdown table (for
``$GITHUB_STEP_SUMMARY``, a GitLab or Azure DevOps artifact, or a comment body). The command fails unless every run
ended ``SUCCESS``.

The runs are concurrent: every job is started before any is waited for. The models' jobs are independent (each
writes only its own model's tables, registered model and endpoint), an integration test takes tens of minutes, and
one after another would make CI wait for the sum instead of the longest. Every job is looked up before any is
started, so a job that is missing (a deploy out of step with the code) starts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spec.config import ENVIRONMENTS, Environment
from spec.errors import MlopsError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

    from spec.graph import JobGraph

log = logging.getLogger(__name__)

# Time a run may spend queued or starting compute on top of its job timeout (which counts from when it runs).
QUEUE_ALLOWANCE_SECONDS = 900
_TERMINAL = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}


class CiRunError(MlopsError):
    """The graph cannot be run as asked: unknown graph, bad parameters, a job missing or named twice."""


@dataclass(frozen=True)
class ModelRun:
    """One model's run of the graph: its job, the run (once started) and how it ended."""

    model: str
    job: str
    result: str
    run_page_url: str = ""
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.result == "SUCCESS"


def register(subparsers: argparse._SubParsersAction) -> None:
    ci = subparsers.add_parser("ci", help="what CI runs against a deployed environment")
    commands = ci.add_subparsers(dest="ci_command", required=True, metavar="CI_COMMAND")
    run = commands.add_parser(
        "run-jobs",
        help="run a job graph of every model of an environment in its workspace, wait, report; fails unless all "
        "succeed",
    )
    run.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    run.add_argument("--graph", required=True, help="the job graph, e.g. integration-test")
    run.add_argument(
        "--parameters", type=_json_object, default={}, metavar="JSON", help="job parameters for every run (object)"
    )
    run.add_argument("--summary", type=Path, default=None, metavar="FILE", help="write a Markdown summary here")
    run.add_argument(
        "--timeout-minutes",
        type=float,
        default=None,
        help="wait at most this long for a run, then cancel it: set it below the CI job's own time limit, so that "
        "the command, not the CI system, stops the runs and reports (default and upper bound: the graph's job "
        f"timeout plus {QUEUE_ALLOWANCE_SECONDS // 60} minutes of queueing)",
    )
    run.add_argument("--poll-seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    run.set_defaults(func=_run_jobs)


def _json_object(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(
            f'--parameters is not JSON ({e}): give an object, e.g. \'{{"a": "1"}}\''
        ) from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--parameters must be a JSON object of name: value, got {text!r}")
    return {str(k): str(v) for k, v in value.items()}


def _run_jobs(args: argparse.Namespace) -> int:
    from databricks.sdk import WorkspaceClient

    if args.timeout_minutes is not None and not args.timeout_minutes > 0:
        raise CiRunError("--timeout-minutes must be > 0")
    try:
        client = WorkspaceClient()
    except ValueError as e:
        # The SDK's "cannot configure default credentials": nothing says which workspace or identity to use.
        raise CiRunError(
            f"cannot sign in to the {args.env} workspace ({e}): set DATABRICKS_HOST and the CI identity "
            "(DATABRICKS_AUTH_TYPE github-oidc, azure-devops-oidc or env-oidc, and DATABRICKS_CLIENT_ID: docs/ci-cd.md)"
        ) from e
    runs = run_jobs(
        client,
        ENVIRONMENTS[args.env],
        args.graph,
        args.parameters,
        timeout_seconds=None if args.timeout_minutes is None else args.timeout_minutes * 60,
        poll_seconds=args.poll_seconds,
    )
    for run in runs:
        print(f"{run.model}: {run.result} {run.run_page_url or run.job}" + (f" ({run.message})" if run.message else ""))
    if args.summary is not None:
        args.summary.write_text(summary_markdown(args.env, args.graph, runs), encoding="utf-8")
    failed = [run.model for run in runs if not run.succeeded]
    if failed:
        log.error("%s in %s did not succeed for %s", args.graph, args.env, ", ".join(failed))
        return 1
    return 0


def graphs_to_run(env: Environment, graph_name: str) -> list[tuple[Environment, JobGraph]]:
    """Each model of ``env`` as it sees itself, with its graph ``graph_name``; a ``CiRunError`` naming the graphs
    there are when a model has none of that name."""
    from spec.workflows import job_graphs

    found = []
    for model in env.model_names:
        scoped = env.with_model(model)
        graphs = job_graphs(scoped)
        if graph_name not in graphs:
            raise CiRunError(
                f"environment {env.name!r}, model {model!r} has no job graph {graph_name!r}: it has "
                f"{', '.join(sorted(graphs))}"
            )
        found.append((scoped, graphs[graph_name]))
    return found


def run_jobs(
    client: WorkspaceClient,
    env: Environment,
    graph_name: str,
    parameters: dict[str, str],
    *,
    timeout_seconds: float | None = None,
    poll_seconds: float = 15.0,
) -> list[ModelRun]:
    """Start the graph's job of every model of ``env`` (all of them, then wait for all), each bounded by its job
    timeout plus the queueing allowance, and by ``timeout_seconds``; a run still going at its deadline is cancelled
    and reported ``TIMEDOUT``."""
    from databricks.sdk.errors import PermissionDenied

    from infra.constructs.jobs import job_name

    targets = graphs_to_run(env, graph_name)
    for scoped, graph in targets:
        unknown = sorted(set(parameters) - set(graph.parameters))
        if unknown:
            raise CiRunError(
                f"--parameters names {unknown}, which job {job_name(scoped, graph)!r} does not take: its parameters "
                f"are {sorted(graph.parameters)}"
            )
        if graph.continuous:
            raise CiRunError(f"job {job_name(scoped, graph)!r} is continuous: a run of it never ends, CI cannot wait")
    names = [job_name(scoped, graph) for scoped, graph in targets]
    job_ids = {name: _find_job(client, name) for name in names}
    missing = [name for name, job_id in job_ids.items() if job_id is None]
    if missing:
        return [
            ModelRun(
                scoped.model_name,
                name,
                "MISSING",
                message=f"no job named {name!r} in the workspace: deploy the environment ({env.name}) first"
                if name in missing
                else "not started: another model's job is missing",
            )
            for (scoped, _), name in zip(targets, names, strict=True)
        ]

    started: dict[str, tuple[int, float]] = {}
    for (_, graph), name in zip(targets, names, strict=True):
        try:
            response = client.jobs.run_now(job_id=job_ids[name], job_parameters=parameters or None).response
        except PermissionDenied as e:
            # All or nothing: the runs already started would otherwise go on with nobody waiting for them.
            for run_id, _ in started.values():
                client.jobs.cancel_run(run_id=run_id)
            raise CiRunError(
                f"the signed-in identity may not run {name!r} ({e}): the CI runner needs CAN_MANAGE_RUN on it "
                "(spec.access.CI_JOBS); runs already started were cancelled"
            ) from e
        limit = graph.job_timeout_seconds + QUEUE_ALLOWANCE_SECONDS
        if timeout_seconds is not None:
            limit = min(limit, timeout_seconds)
        started[name] = (response.run_id, time.monotonic() + limit)
        log.info("started %s: run %s (waiting up to %.0f s)", name, response.run_id, limit)
    ended = _wait(client, started, poll_seconds)
    return [_model_run(scoped.model_name, name, ended[name]) for (scoped, _), name in zip(targets, names, strict=True)]


def _find_job(client: WorkspaceClient, name: str) -> int | None:
    """The id of the one job named exactly ``name``; None when there is none."""
    ids = [job.job_id for job in client.jobs.list(name=name) if job.settings and job.settings.name == name]
    if len(ids) > 1:
        raise CiRunError(
            f"{len(ids)} jobs are named {name!r} (ids {ids}): CI cannot tell which to run; delete the extra"
        )
    return ids[0] if ids else None


def _wait(client: WorkspaceClient, started: dict[str, tuple[int, float]], poll_seconds: float) -> dict[str, Any]:
    """Poll every run until each has ended or passed its deadline: name -> its last ``Run``, the runs given up on
    cancelled (their ``state`` still says they were running)."""
    ended: dict[str, Any] = {}
    while len(ended) < len(started):
        for name, (run_id, deadline) in started.items():
            if name in ended:
                continue
            run = client.jobs.get_run(run_id=run_id)
            if _life_cycle(run) in _TERMINAL:
                ended[name] = run
            elif time.monotonic() >= deadline:
                # Left running, a run CI gave up on would keep its compute and block the next run (max_concurrent_runs).
                log.error("%s: run %s still %s at its deadline: cancelling it", name, run_id, _life_cycle(run))
                client.jobs.cancel_run(run_id=run_id)
                ended[name] = run
        if len(ended) < len(started):
            time.sleep(poll_seconds)
    return ended


def _life_cycle(run: Any) -> str:
    return run.state.life_cycle_state.value if run.state and run.state.life_cycle_state else ""


def _model_run(model: str, name: str, run: Any) -> ModelRun:
    url = run.run_page_url or ""
    life_cycle = _life_cycle(run)
    if life_cycle not in _TERMINAL:
        return ModelRun(model, name, "TIMEDOUT", url, f"still {life_cycle} when CI stopped waiting: cancelled")
    state = run.state
    result = state.result_state.value if life_cycle == "TERMINATED" and state.result_state else life_cycle
    return ModelRun(model, name, result, url, "" if result == "SUCCESS" else state.state_message or "")


def summary_markdown(env: str, graph: str, runs: list[ModelRun]) -> str:
    """The runs as Markdown: a heading with the overall result, then one row per model."""
    passed = sum(run.succeeded for run in runs)
    verdict = "passed" if passed == len(runs) else "failed"
    lines = [
        f"### {graph} in {env}: {verdict} ({passed}/{len(runs)} SUCCESS)",
        "",
        "| model | job | result | run |",
        "|---|---|---|---|",
    ]
    for run in runs:
        link = f"[run page]({run.run_page_url})" if run.run_page_url else "-"
        result = run.result + (f": {_cell(run.message)}" if run.message else "")
        lines.append(f"| {run.model} | `{run.job}` | {result} | {link} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text as one Markdown table cell: no pipe or line break to end it early."""
    return " ".join(text.replace("|", "\\|").split())
