"""`mlops demo`: the README's main job. Synthesizes every environment and summarizes it, then runs the model
workflow on the local engines in dev, staging and prod (the same code in each: code moves, not models), and
prints the resulting model versions per environment."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from infra.config import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="synth summary, then the model workflow in every environment, locally")
    demo.add_argument("--skip-workflows", action="store_true", help="only synthesize and summarize the stacks")
    demo.add_argument("--env", action="append", choices=list(ENVIRONMENTS), help="limit to these environments")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from jobs.commands.infra import print_summary, synthesize
    from jobs.commands.models import print_versions
    from jobs.commands.workflow import print_run, run_workflow

    console = Console()
    console.rule("1. Infrastructure: every environment synthesized to Terraform JSON")
    with tempfile.TemporaryDirectory(prefix="cdktf-") as tmp:
        print_summary(synthesize(Path(tmp)))
    if args.skip_workflows:
        return 0
    failed = []
    for name in args.env or list(ENVIRONMENTS):
        console.rule(f"2. The model workflow in {name}, on the local engines")
        run = run_workflow(name, "model-training", {})
        print_run(run)
        print_versions(name)
        if run.status != "SUCCESS":
            failed.append(name)
    if failed:
        console.print(f"[red]model-training failed in: {', '.join(failed)}[/red]")
        return 1
    return 0
