"""`mlops synth` and `mlops summary`: render the environments to Terraform JSON and describe what they declare."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    synth = subparsers.add_parser("synth", help="synthesize every stack to Terraform JSON (like `cdktn synth`)")
    synth.add_argument("--outdir", type=Path, default=Path("cdktf.out"))
    synth.set_defaults(func=_synth)
    summary = subparsers.add_parser("summary", help="synthesize and print resources and grants per environment")
    summary.add_argument("--outdir", type=Path, default=None, help="read an existing cdktf.out instead of synthesizing")
    summary.set_defaults(func=_summary)


def synthesize(outdir: Path) -> Path:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra.main import build_app

    build_app(outdir=str(outdir)).synth()
    return outdir


def _synth(args: argparse.Namespace) -> int:
    outdir = synthesize(args.outdir)
    for stack in sorted((outdir / "stacks").iterdir()):
        print(f"{stack.name}: {stack / 'cdk.tf.json'}")
    return 0


def print_summary(outdir: Path) -> None:
    from rich.table import Table

    from cli.main import console as cli_console
    from infra.summary import load_stacks, summarize

    console = cli_console()
    for name, stack in load_stacks(outdir).items():
        summary = summarize(name, stack)
        table = Table(title=f"stack {name}: {sum(summary.resource_counts.values())} resources", show_lines=False)
        table.add_column("resource type")
        table.add_column("count", justify="right")
        for rtype, count in summary.resource_counts.items():
            table.add_row(rtype, str(count))
        console.print(table)
        grants = Table(title=f"{name}: grants per principal")
        grants.add_column("securable")
        grants.add_column("principal")
        grants.add_column("privileges")
        for securable, by_principal in summary.grants.items():
            for principal, privileges in by_principal.items():
                grants.add_row(securable, principal, ", ".join(privileges))
        console.print(grants)
        for workspace_id, binding_type in summary.bindings:
            console.print(f"  catalog binding: workspace {workspace_id} {binding_type}")


def _summary(args: argparse.Namespace) -> int:
    if args.outdir is not None:
        print_summary(args.outdir)
        return 0
    with tempfile.TemporaryDirectory(prefix="cdktf-") as tmp:
        print_summary(synthesize(Path(tmp)))
    return 0
