"""`mlops models --env ENV` lists the registered model's versions; `mlops rollback --env ENV` restores the
previous champion."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from cli.commands._model import add_model_option, environment, scoped
from spec.config import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="list model versions with aliases and validation status")
    models.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(models)
    models.add_argument("--target", choices=TARGETS, default="local", help=TARGET_HELP)
    models.set_defaults(func=_models)
    rollback = subparsers.add_parser("rollback", help="move the champion alias back to the previous champion")
    rollback.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(rollback)
    rollback.add_argument("--target", choices=TARGETS, default="local", help=TARGET_HELP)
    rollback.set_defaults(func=_rollback)


TARGETS = ["local", "databricks"]
TARGET_HELP = "local: the registry under .mlops; databricks: Unity Catalog in the environment's workspace"


def _platform(env_name: str, target: str, model: str | None = None):
    from jobs.platform import build_platform, build_workspace_platform

    env = scoped(ENVIRONMENTS[env_name], model)
    return build_workspace_platform(env) if target == "databricks" else build_platform(env)


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: tuple[str, ...]
    validation_status: str
    reasons: str
    created: str


def list_versions(env_name: str, target: str = "local", model: str | None = None) -> list[VersionRow]:
    """Every version of the environment's registered model, newest first (empty when none is registered)."""
    from datetime import UTC, datetime

    from jobs.platform.registry import is_not_found

    registry = _platform(env_name, target, model).registry
    name = registry.model_name
    aliases: dict[str, list[str]] = {}
    try:
        model = registry.client.get_registered_model(name)
    except Exception as error:
        if is_not_found(error):
            return []
        raise
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for mv in registry.client.search_model_versions(f"name = '{name}'"):
        tags = mv.tags or {}
        rows.append(
            VersionRow(
                version=str(mv.version),
                aliases=tuple(sorted(aliases.get(str(mv.version), []))),
                validation_status=tags.get("model_validation_status", "-"),
                reasons=tags.get("model_validation_reasons", ""),
                created=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
    return sorted(rows, key=lambda r: int(r.version), reverse=True)


def print_versions(env_name: str, target: str = "local", model: str | None = None) -> None:
    from rich.table import Table

    from cli.main import console

    rows = list_versions(env_name, target, model)
    table = Table(title=f"{scoped(ENVIRONMENTS[env_name], model).registered_model} ({len(rows)} versions)")
    for column in ("version", "aliases", "model_validation_status", "created (UTC)", "reasons"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.version, ", ".join(row.aliases), row.validation_status, row.created, row.reasons[:80])
    console().print(table)


def _models(args: argparse.Namespace) -> int:
    env = environment(args)
    print_versions(args.env, args.target, env.model_name)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from jobs.promotion import rollback

    env = environment(args)
    version = rollback(_platform(args.env, args.target, env.model_name))
    print(f"{env.registered_model}: champion is version {version} again")
    return 0
