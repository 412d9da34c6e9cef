"""`mlops policy`: checks the synthesized stacks (or a Terraform plan) against the Rego rules in ``policies/``.

With no argument every environment is synthesized into a temporary directory and checked; ``--stack-dir`` checks an
existing ``cdktf.out``; ``--plan`` checks ``terraform show -json`` output. Prints one line per violation,
``<env>: <rule> <address>: <message>``, then one summary line per environment; exits 1 when anything is violated.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from spec.config import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction) -> None:
    policy = subparsers.add_parser(
        "policy",
        help="check every environment's stack (or a plan) against the policies",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    policy.add_argument(
        "--stack-dir", type=Path, help="an existing synth output directory (cdktf.out, as `cdktn synth` writes it)"
    )
    policy.add_argument("--plan", type=Path, action="append", help="a `terraform show -json` plan (repeatable)")
    policy.add_argument(
        "--env",
        choices=list(ENVIRONMENTS),
        help="the environment of --plan (default: read from the plan); with --write-data, recorded in the data",
    )
    policy.add_argument(
        "--write-data",
        type=Path,
        metavar="FILE",
        help="write the policy data (data.mlops.config, from spec/config.py) for conftest/opa, and exit",
    )
    policy.set_defaults(func=_policy)


def _policy(args: argparse.Namespace) -> int:
    from policies import engine

    try:
        return _run(args)
    except engine.PolicyInputError as e:
        raise SystemExit(f"mlops policy: {e}") from e


def _run(args: argparse.Namespace) -> int:
    from policies import engine

    if args.write_data:
        data = engine.policy_data()
        if args.env:
            # conftest/opa read a plan's environment from data.mlops.environment: a plan does not name its stack.
            data["mlops"]["environment"] = args.env
        args.write_data.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {args.write_data}")
        return 0
    if args.env and not args.plan:
        raise SystemExit("mlops policy: --env applies to --plan or --write-data")
    if args.plan:
        documents = [(path, engine.load(path)) for path in args.plan]
        return _report([(_plan_environment(doc, args.env, path), doc) for path, doc in documents])
    if args.stack_dir:
        return _report(_stacks(args.stack_dir))
    with tempfile.TemporaryDirectory(prefix="mlops-policy-") as tmp:
        os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
        from infra.main import build_app

        build_app(outdir=tmp).synth()
        return _report(_stacks(Path(tmp)))


def _plan_environment(document: dict, env: str | None, path: Path) -> str:
    from policies import engine

    name = env or engine.environment_of(document)
    if name is None:
        raise SystemExit(f"mlops policy: cannot tell the environment of {path}; pass --env")
    return name


def _stacks(stack_dir: Path) -> list[tuple[str, dict]]:
    """(environment, cdk.tf.json) for each environment stack under ``stack_dir`` (or ``stack_dir/stacks``)."""
    from policies import engine

    root = stack_dir / "stacks" if (stack_dir / "stacks").is_dir() else stack_dir
    found = {path.parent.name: path for path in sorted(root.glob("*/cdk.tf.json"))}
    if not found:
        raise SystemExit(f"mlops policy: no */cdk.tf.json under {root}; run `make synth` or omit --stack-dir")
    for name in found:
        if name not in ENVIRONMENTS:
            print(f"{name}: not an environment stack, skipped")
    return [(name, engine.load(found[name])) for name in ENVIRONMENTS if name in found]


def _report(documents: list[tuple[str, dict]]) -> int:
    from policies import engine

    rules = engine.rule_names()
    summaries = []
    total = 0
    for env, document in documents:
        violations = engine.evaluate(document, environment=env)
        resources = len(engine.normalized({**document, "environment": env})["resources"])
        for v in violations:
            print(f"{env}: {v.rule} {v.address}: {v.message}")
        total += len(violations)
        verdict = "ok" if not violations else f"{len(violations)} violation(s)"
        summaries.append(f"{env}: {verdict} ({resources} resources, {len(rules)} rules)")
    for line in summaries:
        print(line)
    return 1 if total else 0
