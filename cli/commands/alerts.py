"""`mlops alerts --env ENV`: evaluates the environment's SQL alerts on the local warehouse, as the SQL warehouse does
on Databricks, prints their states, and starts the `retraining` workflow when an alert that starts retraining is
TRIGGERED (one retraining at a time per environment). `mlops alerts --env ENV --history` shows the last
evaluations."""

from __future__ import annotations

import argparse
from datetime import datetime, time
from typing import Any

from cli.commands._model import add_model_option, environment
from spec.config import ENVIRONMENTS

RETRAINING_WORKFLOW = "retraining"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "alerts", help="evaluate the SQL alerts locally; retrain when a drift or quality alert that retrains fires"
    )
    parser.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(parser)
    parser.add_argument(
        "--webhook", metavar="URL", help="POST alert changes here (default: $MLOPS_NOTIFY_WEBHOOK_URL, if set)"
    )
    parser.add_argument(
        "--retrain",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"run the {RETRAINING_WORKFLOW!r} workflow when an alert that starts retraining is TRIGGERED",
    )
    parser.add_argument("--history", action="store_true", help="print the last evaluations instead of evaluating")
    parser.add_argument("--limit", type=int, default=20, help="how many evaluations --history prints")
    parser.set_defaults(func=_alerts)


def _alerts(args: argparse.Namespace) -> int:
    env = environment(args)
    if args.history:
        if args.limit < 1:
            raise SystemExit("mlops alerts: --limit must be >= 1")
        print_history(env, args.limit)
        return 0

    from local.alerts import ERROR, evaluate_alerts, retraining_alerts

    results = evaluate_alerts(env, webhook_url=args.webhook)
    print_results(env.name, results)
    code = 1 if any(r.state == ERROR for r in results) else 0
    firing = retraining_alerts(results)
    if firing and args.retrain:
        code = max(code, retrain(env, [r.name for r in firing]))
    elif firing:
        _say(f"retraining is off (--no-retrain): {', '.join(r.name for r in firing)} would start it")
    return code


def retrain(env, because: list[str]) -> int:
    """Run the retraining workflow under the environment's lock; 0 when a run in progress already retrains."""
    from cli.commands.workflow import print_run
    from local.alerts import RetrainingInProgress, retraining_lock
    from local.runner import LocalRunner

    try:
        with retraining_lock(env.name):
            _say(f"{', '.join(because)} TRIGGERED: running the {RETRAINING_WORKFLOW} workflow in {env.name}")
            run = LocalRunner(env).run(RETRAINING_WORKFLOW)
    except RetrainingInProgress as busy:
        _say(str(busy))
        return 0
    print_run(run)
    return 0 if run.status == "SUCCESS" else 1


def print_results(env_name: str, results) -> None:
    from rich.markup import escape
    from rich.table import Table

    from cli.main import console

    table = Table(title=f"SQL alerts of {env_name} (local warehouse)")
    table.add_column("alert", no_wrap=True)
    for column in ("state", "was", "value", "metric", "breaches", "latest window"):
        table.add_column(column)
    notes = []
    for r in results:
        table.add_row(
            r.name,
            _styled(r.state),
            r.previous_state,
            _number(r.value),
            _metric(r.metric),
            _breaches(r.details),
            _when(r.latest_window),
        )
        notes += [f"{r.name}: {note}" for note in (r.reason, r.notification) if note]
    out = console()
    out.print(table)
    for note in notes:
        out.print(escape(note), soft_wrap=True)


def print_history(env, limit: int) -> None:
    import json

    from rich.markup import escape
    from rich.table import Table

    from cli.main import console
    from local.alerts import AlertHistory, latest_metric

    history = AlertHistory(env)
    rows = history.read(limit)
    if not rows:
        _say(f"no evaluation recorded yet in {history.table}: run mlops alerts --env {env.name}")
        return
    table = Table(title=f"last {len(rows)} evaluations ({history.table})")
    table.add_column("evaluated (UTC)", no_wrap=True)
    table.add_column("alert", no_wrap=True)
    for column in ("state", "was", "metric (breaches)", "window"):
        table.add_column(column, no_wrap=True)
    notes = []
    for row in rows:
        details = json.loads(row["details"] or "{}")
        metric = latest_metric(details)
        table.add_row(
            row["evaluated_at"].strftime("%m-%d %H:%M:%S"),
            row["alert"],
            _styled(row["state"]),
            row["previous_state"],
            f"{_metric(metric)} ({_breaches(details)})" if metric else "",
            _when(details.get("latest_window")),
        )
        when = row["evaluated_at"].strftime("%Y-%m-%d %H:%M:%S")
        notes += [f"{when} {row['alert']}: {note}" for note in (row["reason"], row["notification"]) if note]
    out = console()
    out.print(table)
    for note in notes:
        out.print(escape(note), soft_wrap=True)


def _metric(metric: tuple[str, Any] | None) -> str:
    return f"{metric[0]}={_number(metric[1])}" if metric else ""


def _breaches(details: dict[str, Any]) -> str:
    windows, breaches = details.get("windows"), details.get("breaches")
    return f"{breaches}/{windows}" if windows is not None else ""


def _styled(state: str) -> str:
    colour = {"OK": "green", "TRIGGERED": "bold red", "ERROR": "yellow"}.get(state)
    return f"[{colour}]{state}[/{colour}]" if colour else state


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _when(value: Any) -> str:
    """A datetime, or its ISO text (as the history's JSON details keep it): the date, and the time unless it is
    midnight (monitor windows start at midnight)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return ""
    return value.strftime("%Y-%m-%d" if value.time() == time() else "%Y-%m-%d %H:%M")


def _say(message: str) -> None:
    from rich.markup import escape

    from cli.main import console

    console().print(escape(message), soft_wrap=True)
