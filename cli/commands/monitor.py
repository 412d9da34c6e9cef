"""`mlops monitor --env ENV`: refreshes the quality monitors' metric tables on the local engines (what Lakehouse
Monitoring's scheduled refresh does on Databricks) and prints a summary per window."""

from __future__ import annotations

import argparse

from cli.commands._model import add_model_option, environment
from spec.config import ENVIRONMENTS

TABLES = ("predictions", "served", "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    monitor = subparsers.add_parser(
        "monitor", help="refresh the quality monitors' profile and drift metric tables (local Lakehouse Monitoring)"
    )
    monitor.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(monitor)
    monitor.add_argument(
        "--table",
        choices=TABLES,
        default="predictions",
        help="the batch and streaming predictions, the served requests, or both (default: predictions)",
    )
    monitor.add_argument(
        "--full", action="store_true", help="recompute every window, not only those whose rows changed"
    )
    monitor.set_defaults(func=_monitor)


def _monitor(args: argparse.Namespace) -> int:
    from local.monitor import refresh_monitor, window_summaries
    from spec.monitoring import monitored_tables

    env = environment(args)
    kinds = {env.predictions_table: "predictions", env.served_table: "served"}
    chosen = [m for m in monitored_tables(env) if args.table == "all" or kinds[m.table] == args.table]
    granularity = env.monitoring.alert_granularity
    for monitored in chosen:
        result = refresh_monitor(env, monitored, full=args.full)
        summaries = window_summaries(monitored, granularity)
        _print(result, summaries, granularity, env.monitoring.max_drift_psi)
    return 0


def _print(result, summaries, granularity: str, max_psi: float) -> None:
    from rich.table import Table

    from cli.main import console

    recomputed = {(k.model_version, k.start) for k in result.computed if k.granularity == granularity}
    consecutive = {(k.model_version, k.start) for k in result.consecutive_only if k.granularity == granularity}
    action = (
        f"{len(result.computed)} of {result.windows} windows recomputed, {len(result.consecutive_only)} with their "
        f"consecutive drift only, {len(result.removed)} removed"
        if result.written
        else f"nothing changed since the last refresh ({result.windows} windows)"
    )
    out = console()
    out.print(f"[bold]{result.table}[/] (Delta version {result.table_version}): {action} in {result.seconds:.2f}s")
    out.print(f"  -> {result.profile_table}, {result.drift_table}")
    table = Table(title=f"{granularity} windows, whole table", title_justify="left")
    for column in ("window", "model_version", "rows", "labelled rows", "roc_auc", "worst baseline PSI", "refresh"):
        table.add_column(column, justify="right" if column in ("rows", "labelled rows") else "left")
    for s in summaries:
        key = (s.model_version, s.start)
        psi = "-" if s.worst_psi is None else f"{s.worst_psi:.3f} ({s.worst_psi_column})"
        if s.worst_psi is not None and s.worst_psi > max_psi:
            psi = f"[bold red]{psi}[/]"
        table.add_row(
            f"{s.start:%Y-%m-%d}",
            s.model_version,
            str(s.rows),
            str(s.labelled_rows),
            "unlabelled" if s.roc_auc is None else f"{s.roc_auc:.3f}",
            psi,
            "recomputed" if key in recomputed else "consecutive drift" if key in consecutive else "",
        )
    out.print(table)
