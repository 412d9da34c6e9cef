"""`mlops approve --env ENV --model NAME --version N [--reject] [--reason TEXT]`: a person's verdict on a model
version that waits for approval before it becomes the Champion (``promotion.approval = "manual"``).

The verdict is the version's ``approval`` tag (``approved`` / ``rejected``, MLflow 3 deployment jobs' convention),
set in the local registry or, with ``--target databricks``, in the workspace's Unity Catalog (MLflow's
``databricks-uc`` registry, credentials from the usual DATABRICKS_* variables), where only the environment's
approvers group holds the grant that allows it. A version that does not exist, did not pass validation, is not newer
than the Champion or was rejected already is refused with the reason. The next model-deployment run promotes an
approved version (on Databricks, start the job or let the next new Challenger start it).
"""

from __future__ import annotations

import argparse
import getpass

from cli.commands._model import add_model_option, environment
from cli.commands.models import TARGET_HELP, TARGETS
from spec.config import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("approve", help="approve (or --reject) a model version waiting for promotion")
    parser.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(parser)
    parser.add_argument("--version", required=True, type=_version, help="the registered model version")
    parser.add_argument("--reject", action="store_true", help="reject the version: it is never promoted")
    parser.add_argument("--reason", default="", help="why, recorded on the version (approval_reason)")
    parser.add_argument("--target", choices=TARGETS, default="local", help=TARGET_HELP)
    parser.set_defaults(func=_approve)


def _version(text: str) -> str:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a model version number (1, 2, ...), got {text!r}")
    return str(int(text))


def _approve(args: argparse.Namespace) -> int:
    from jobs.approval import record_verdict
    from jobs.platform import build_platform, build_workspace_platform
    from jobs.platform.registry import ModelRef

    env = environment(args)
    platform = build_workspace_platform(env) if args.target == "databricks" else build_platform(env)
    ref = ModelRef(env.registered_model, args.version)
    written = record_verdict(platform, ref, approve=not args.reject, reason=args.reason, by=getpass.getuser())
    verdict = written["approval"]
    print(f"{env.registered_model} version {args.version}: {verdict}")
    if env.promotion.approval != "manual":
        print(f"note: promotion.approval is automatic in {env.name}: the verdict is recorded, nothing waits for it")
    elif not args.reject:
        run = (
            f"mlops run model-deployment --env {env.name} --model {env.model_name} --param model_version={args.version}"
            if args.target == "local"
            else f"run the job '[{env.name}] {env.model_name}/model-deployment' with model_version={args.version}"
        )
        print(f"the next model-deployment run promotes it if it still beats the champion: {run}")
    return 0
