"""`mlops dashboard --env ENV [--out DIR]`: quality and drift over time (per model version, per slice) from the
quality monitor's metric tables, as an HTML page with PNG plots (docs/dashboard.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.commands._model import add_model_option, environment
from spec.config import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard", help="write an HTML page of model quality, drift and label coverage over time (from the monitor)"
    )
    parser.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="where to write it (default: <MLOPS_HOME>/dashboard/<env>/)",
    )
    parser.set_defaults(func=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from cli.main import console
    from local.dashboard import render_dashboard

    index = render_dashboard(environment(args), args.out)
    console().print(f"dashboard of {escape(args.env)}: {escape(str(index))}", soft_wrap=True)
    return 0
