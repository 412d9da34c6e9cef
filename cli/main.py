"""`mlops`: the project's command line. Each module in ``cli.commands`` contributes its subcommands.

A command module defines ``register(subparsers)``, which adds its parsers and sets ``func`` (args -> exit code).
Modules are imported lazily here, at parse time, never at import time of anything else. A command lets the project's
own errors (``spec.errors.MlopsError``) reach ``main``, which prints each as one line and exits non-zero; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import warnings

from cli import commands
from spec.errors import MlopsError


def console():
    """A rich console at least 120 columns wide, also when the output is a file or a CI log."""
    from rich.console import Console

    probe = Console()
    return Console(width=max(probe.width, 120)) if not probe.is_terminal else probe


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description="MLOps on Databricks, as code; runs locally too.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # Connection chatter of the Spark gateway and MLflow's schema hints drown the jobs' own log lines.
        logging.getLogger("py4j").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", module="mlflow")
    try:
        return int(args.func(args) or 0)
    except MlopsError as error:
        # A user's error: one line saying what is wrong. Anything else is a bug and keeps its traceback.
        print(f"mlops {args.command}: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
