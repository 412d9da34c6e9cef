"""The local platform: the job runtime's ports on the embedded engines. Registered as the ``local`` entry point of
the group ``mlops_databricks.platforms`` (pyproject.toml), which ``jobs.platform.build_platform`` loads when it is
not on a Databricks runtime."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from jobs.platform import Platform
from jobs.platform.notify import WEBHOOK_URL_ENV
from jobs.platform.registry import Registry
from local.adapters import LocalLanding, LocalNotifier, LocalServing, LocalTaskValues, local_registry_config
from local.dynalite import local_online_store
from local.paths import landing_dir, mlops_home, work_dir
from local.spark import local_spark
from local.tables import LocalTables
from local.warehouse import LocalSql

if TYPE_CHECKING:
    from spec.config import Environment


def build_local_platform(env: Environment, environ: Mapping[str, str]) -> Platform:
    """Local Spark, delta-rs tables, MLflow on SQLite, task values for the local runner, the gateway's state file
    and notifications, all under ``$MLOPS_HOME``."""
    home = mlops_home()
    registry = Registry(env, local_registry_config())
    registry.activate()
    return Platform(
        env=env,
        tables=LocalTables(local_spark),
        registry=registry,
        task_values=LocalTaskValues.from_environ(environ),
        serving=LocalServing(home / "serving"),
        notifier=LocalNotifier(env.name, home / "notifications.jsonl", environ.get(WEBHOOK_URL_ENV) or None),
        spark_session=local_spark,
        on_databricks=False,
        landing=LocalLanding(landing_dir(env.name)),
        work_dir=str(work_dir(env.name)),
        online_store=lambda: local_online_store(env, environ),
        sql=LocalSql(env.name),
    )
