"""`mlops demo`: the README's main job. A year of MLOps on a model's real data, on this machine: the environment's
model by default (`--model NAME` for another whose package says how to replay it, ``local.demo.replays``).

1. every environment's stack is synthesized and summarized;
2. the local services start on free loopback ports: dynalite (DynamoDB), the webhook receiver the alerts post to,
   and the serving gateway for prod (its own process, as a user runs it); they stop at the end, on Ctrl-C or failure;
3. the model workflow runs in dev, then staging (a small slice), then prod: its first champion trains on the weeks
   before ``--start`` (on the window's first weeks when it starts at the data's first month, the data having
   nothing before);
4. prod lives through the whole weeks of ``--months`` months one by one (``local.demo.loop``);
5. the report: ``index.html`` with its plots (in ``--report``, default ``$MLOPS_HOME/demo/report``), and a summary
   on the terminal.

Progress bars show the phase, the simulated week and the time left; events (alerts, retraining, promotions) are
printed as they happen; everything else (Spark, MLflow, the jobs' logs) goes to ``<home>/demo.log``. The demo keeps
its state in its own home, ``$MLOPS_HOME/demo`` (``.mlops/demo``), which it clears first: running it again, or after
an interrupted run, needs no cleanup. Nothing is looked up in, or written to, the package's own directory: an installed
``mlops`` finds dynalite on the PATH or in ``node_modules/.bin`` (``local.node_tools``).

Run in-process (``cli.main.main(["demo", ...])``), the command gives back what it changed for its run: the handlers of
SIGINT, SIGTERM and SIGHUP and the environment variables are restored when it returns or raises.

The work is ``local.demo``'s (its services, the weekly loop, the report's data); this command keeps its arguments, the
progress bars and what it prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path

from local.demo import services
from local.demo.services import STOP_SIGNALS, quiet_terminal, restored_process_state, stop_on_signals
from local.settings import HOME_ENV


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="a year of MLOps on a model's data, replayed locally, with a report")
    demo.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help="the model to replay (default: the one prod runs); its package must have a replay (replay.py)",
    )
    demo.add_argument(
        "--months",
        type=int,
        default=None,
        help="how many months of the model's data to live through (1..12; default: as many as it has, at most 12)",
    )
    demo.add_argument(
        "--start", type=_month, default=None, help="first month, YYYY-MM (default: the data's first month)"
    )
    demo.add_argument("--seed", type=int, default=7, help="seed of the request sampling and the models")
    demo.add_argument("--requests-per-week", type=int, default=60, help="live requests sent to the gateway each week")
    demo.add_argument("--no-references", action="store_true", help="skip the never/weekly-retrained references")
    demo.add_argument(
        "--initial-weeks",
        type=int,
        default=None,
        help="weeks prod's first champion trains on, just before --start (default 8, as many as the data has); "
        "with --start at the data's first month the window's first weeks (default 8, at most half the window), the "
        "rest is replayed",
    )
    demo.add_argument(
        "--prod-only", action="store_true", help="skip the model workflow in dev and staging (a quicker look)"
    )
    demo.add_argument(
        "--report", type=Path, default=None, help="where the report goes (default: $MLOPS_HOME/demo/report)"
    )
    demo.set_defaults(func=_demo)


def _month(text: str) -> date:
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a month YYYY-MM, got {text!r}") from None


def _demo(args: argparse.Namespace) -> int:
    from cli.commands._model import model_name
    from cli.main import console as cli_console
    from local.demo.config import DEMO_ENV, ReplayConfig
    from spec.config import ENVIRONMENTS

    console = cli_console()
    # The model and the window first: a model prod does not run, one without a replay or a window outside its data
    # is said before anything is looked for or started.
    config = ReplayConfig(
        model=model_name(ENVIRONMENTS[DEMO_ENV], args.model),
        start=args.start,
        months=args.months,
        seed=args.seed,
        requests_per_week=args.requests_per_week,
        references=not args.no_references,
        initial_weeks=args.initial_weeks,
        promotion_path=() if args.prod_only else ("dev", "staging"),
    )
    problems = services.preflight()
    if problems:
        for problem in problems:
            console.print(f"[red]mlops demo: {problem}[/red]")
        return 2

    home = services.demo_home()
    with restored_process_state(STOP_SIGNALS):
        stop_on_signals()
        try:
            # A held lock or a home that cannot be cleared is a ReplayError: cli.main prints it as one line.
            with services.demo_lock(home.parent):
                return _demo_in(console, args, config, home)
        except KeyboardInterrupt:
            console.print(
                f"[yellow]mlops demo: interrupted; the services it started are stopped; logs in {home}[/yellow]"
            )
            return 130


def _demo_in(console, args: argparse.Namespace, config, home: Path) -> int:
    from local.demo import lifecycle

    stopped = services.prepare_home(home)
    if stopped:
        console.print(f"stopped {len(stopped)} process(es) an interrupted demo left running")
    os.environ[HOME_ENV] = str(home)
    log_file = home / "demo.log"
    started = time.perf_counter()
    phases: dict[str, float] = {}

    console.rule("1. Infrastructure: every environment as Terraform JSON")
    t0 = time.perf_counter()
    with quiet_terminal(log_file):
        summaries = _synth_summaries()
    phases["infrastructure"] = round(time.perf_counter() - t0, 1)
    for line in summaries:
        console.print(line)

    console.rule(f"2. The lifecycle: dev -> staging -> prod, then {config.start}..{config.end} week by week in prod")
    console.print(f"services on 127.0.0.1; logs of Spark, MLflow and the jobs in {log_file}")
    result = _lifecycle_with_progress(console, home, config, log_file)
    stop_on_signals()  # the services' shutdown ignored them
    if result is None:
        return 1
    result.phases = {**phases, **result.phases}

    console.rule("3. The report")
    report_dir = home / "report" if args.report is None else args.report
    t0 = time.perf_counter()
    with quiet_terminal(log_file):
        lifecycle.write_report(result, report_dir)
        result.phases["report"] = round(time.perf_counter() - t0, 1)
        result.wall_seconds = round(time.perf_counter() - started, 1)
        # Once more with the report's own time and the wall time (the page only; the plots stay).
        index = lifecycle.write_report(result, report_dir, plots=False)
    _print_summary(console, result, index, home)
    return 0


def _lifecycle_with_progress(console, home: Path, config, log_file: Path):
    """The replay under a progress display, inside the services it needs; None when it failed (said on the
    console). Ctrl-C or SIGTERM stop it: the services are stopped on the way out."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from local.demo import ReplayError, lifecycle

    with (
        ExitStack() as stack,
        Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[label]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            # The standard error goes to the log (quiet_terminal), not above the bars.
            redirect_stderr=False,
        ) as progress,
    ):
        tasks: dict[str, int] = {}

        def on_progress(phase: str, done: int, total: int, label: str) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total, label=label)
            progress.update(tasks[phase], completed=done, total=total, label=label)

        def on_event(event) -> None:
            colour = {"alert": "yellow", "promotion": "green", "validation_failed": "red", "rollback": "red"}.get(
                event.kind, "cyan"
            )
            progress.console.print(f"[{colour}]{event.week_start} {event.kind:<17}[/{colour}] {event.message}")

        stack.enter_context(quiet_terminal(log_file))
        try:
            result = lifecycle.run_lifecycle(stack, home, config, log_file, on_progress, on_event)
        except Exception as error:  # the traceback goes to the log; the person gets one line and where to look
            logging.getLogger("cli.demo").exception("the demo stopped")
            progress.stop()
            kind = "" if isinstance(error, ReplayError) else f"{type(error).__name__}: "
            console.print(f"[red]mlops demo: {kind}{error}[/red]")
            console.print(f"the traceback and the jobs' logs: {log_file}")
            return None
    return result


def _synth_summaries() -> list[str]:
    from cli.commands.infra import synthesize
    from infra.summary import load_stacks, summarize

    lines = []
    with tempfile.TemporaryDirectory(prefix="cdktf-") as tmp:
        for name, stack in load_stacks(synthesize(Path(tmp))).items():
            summary = summarize(name, stack)
            counts = summary.resource_counts
            lines.append(
                f"{name}: {sum(counts.values())} resources: {counts.get('databricks_job', 0)} jobs, "
                f"{counts.get('databricks_quality_monitor', 0)} quality monitors, "
                f"{counts.get('databricks_alert_v2', 0)} SQL alerts, {counts.get('databricks_grants', 0)} grants"
            )
    return lines


def _print_summary(console, result, index: Path, home: Path) -> None:
    from rich.table import Table

    from local.report import summary_lines

    title = f"MLOps on {result.model}'s {result.rows}, {result.start}..{result.end}" if result.model else "MLOps"
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("measured")
    data = json.loads(json.dumps(result.to_json(), default=str))
    for line in summary_lines(data):
        table.add_row(line.label, line.text())
    console.print(table)
    console.print(f"report: {index}")
    console.print(f"MLflow: {result.paths.get('mlflow_ui', '')}")
    console.print(f"Delta tables: {result.paths.get('warehouse', '')}")
    console.print(f"dashboard: {result.paths.get('dashboard', '')}")
    console.print(f"the jobs' logs: {home / 'demo.log'}")
