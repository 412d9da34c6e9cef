"""`mlops run <workflow> --env ENV`: runs a job graph on the local engines and prints per-task status."""

from __future__ import annotations

import argparse

from cli.commands._model import add_model_option, environment
from spec.config import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run a workflow (job graph) locally, as Databricks would run the job")
    run.add_argument("workflow", help="the graph name, e.g. model-training or feature-pipeline")
    run.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(run)
    run.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="override a job parameter (repeatable)"
    )
    run.set_defaults(func=_run)


def parse_params(pairs: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"--param must be NAME=VALUE, got {pair!r}")
        params[name] = value
    return params


def print_run(run) -> None:
    from rich.table import Table

    from cli.main import console

    table = Table(title=f"{run.graph} in {run.env}: {run.status} (run {run.run_id}, {run.duration_seconds:.1f}s)")
    for column in ("task", "status", "attempts", "seconds", "task values / outcome / error"):
        table.add_column(column)
    for task in run.tasks.values():
        detail = (
            task.error
            or (f"outcome={task.outcome}" if task.outcome else "")
            or ", ".join(f"{k}={v}" for k, v in task.values.items())
        )
        if task.child_run_id:
            detail = f"child run {task.child_run_id} " + detail
        table.add_row(task.task_key, task.status, str(task.attempts), f"{task.duration_seconds:.1f}", detail)
    console().print(table)


def publishes(env_name: str, workflow: str, model: str | None = None) -> bool:
    """Whether the graph (or a graph it runs) has a task that writes the online store."""
    from spec.workflows import RunJobTask, WheelTask, job_graphs

    graphs = job_graphs(ENVIRONMENTS[env_name].with_model(model))
    seen, pending = set(), [workflow]
    while pending:
        name = pending.pop()
        if name in seen or name not in graphs:
            continue
        seen.add(name)
        for task in graphs[name].tasks:
            if isinstance(task.action, WheelTask) and task.action.entry_point == "mlops-publish":
                return True
            if isinstance(task.action, RunJobTask):
                pending.append(task.action.job)
    return False


def run_workflow(env_name: str, workflow: str, params: dict[str, str], model: str | None = None):
    """Run the graph on the local engines; a graph that publishes online gets the local DynamoDB (dynalite, its
    tables under MLOPS_HOME) for the run unless MLOPS_DYNAMODB_ENDPOINT already points at one."""
    import os
    from contextlib import ExitStack

    from local.dynalite import DYNAMODB_ENDPOINT_ENV, Dynalite, dynalite_dir
    from local.runner import LocalRunner
    from local.settings import local_settings
    from spec.workflows import WorkflowError

    with ExitStack() as stack:
        if publishes(env_name, workflow, model) and not local_settings().dynamodb_endpoint:
            dynalite = stack.enter_context(Dynalite(dynalite_dir()))
            os.environ[DYNAMODB_ENDPOINT_ENV] = dynalite.endpoint_url
            stack.callback(os.environ.pop, DYNAMODB_ENDPOINT_ENV, None)
        try:
            return LocalRunner(ENVIRONMENTS[env_name].with_model(model)).run(workflow, params)
        except WorkflowError as error:
            raise SystemExit(f"mlops run: {error}") from error


def _run(args: argparse.Namespace) -> int:
    try:
        params = parse_params(args.param)
    except argparse.ArgumentTypeError as error:
        raise SystemExit(f"mlops run: {error}") from error
    env = environment(args)
    run = run_workflow(args.env, args.workflow, params, env.model_name)
    print_run(run)
    return 0 if run.status == "SUCCESS" else 1
