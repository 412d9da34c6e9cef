"""What the jobs need from the outside world, as ports with a Databricks and a local adapter.

``build_platform(env)`` picks the adapters once, at the edge: Databricks when ``DATABRICKS_RUNTIME_VERSION`` is set
(a cluster or serverless job environment), the embedded local engines otherwise. Jobs receive the ``Platform`` and
never ask which one they run on. Spark starts lazily, on first use: a job that does not need it never pays for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobs.platform.notify import WEBHOOK_URL_ENV, DatabricksNotifier, LocalNotifier, Notifier
from jobs.platform.registry import Registry, databricks_registry_config, local_registry_config
from jobs.platform.serving import DatabricksServing, LocalServing, ServedEntity, Serving
from jobs.platform.spark import DATABRICKS_RUNTIME_ENV, get_spark
from jobs.platform.tables import DatabricksTables, LocalTables, Tables
from jobs.platform.task_values import DatabricksTaskValues, LocalTaskValues, TaskValues

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from infra.config import Environment

__all__ = ["Platform", "ServedEntity", "build_platform", "build_workspace_platform"]


@dataclass(frozen=True)
class Platform:
    env: Environment
    tables: Tables
    registry: Registry
    task_values: TaskValues
    serving: Serving
    notifier: Notifier
    spark_session: Callable[[], SparkSession]
    on_databricks: bool

    @property
    def spark(self) -> SparkSession:
        return self.spark_session()


def build_platform(env: Environment, environ: Mapping[str, str] | None = None) -> Platform:
    """The Databricks adapters on a Databricks runtime, the local ones elsewhere."""
    environ = os.environ if environ is None else environ
    webhook_url = environ.get(WEBHOOK_URL_ENV) or None
    if environ.get(DATABRICKS_RUNTIME_ENV):
        from databricks.sdk import WorkspaceClient

        return Platform(
            env=env,
            tables=DatabricksTables(get_spark),
            registry=Registry(env, databricks_registry_config()),
            task_values=DatabricksTaskValues.from_runtime(),
            serving=DatabricksServing(WorkspaceClient),
            notifier=DatabricksNotifier(env.name, webhook_url),
            spark_session=get_spark,
            on_databricks=True,
        )

    from jobs.local.paths import mlops_home

    home = mlops_home()
    return Platform(
        env=env,
        tables=LocalTables(get_spark),
        registry=Registry(env, local_registry_config()),
        task_values=LocalTaskValues.from_environ(dict(environ)),
        serving=LocalServing(home / "serving"),
        notifier=LocalNotifier(env.name, home / "notifications.jsonl", webhook_url),
        spark_session=get_spark,
        on_databricks=False,
    )


def build_workspace_platform(env: Environment) -> Platform:
    """The Databricks registry (Unity Catalog) and serving adapters, driven from outside a cluster: what the CLI
    needs to list versions or roll back in a real workspace. Credentials come from the usual DATABRICKS_* variables
    (or a config profile). Tables, task values and Spark belong to job runs and are not available here."""
    from databricks.sdk import WorkspaceClient

    def no_spark() -> SparkSession:
        raise RuntimeError("no Spark session outside a Databricks job run")

    return Platform(
        env=env,
        tables=DatabricksTables(no_spark),
        registry=Registry(env, databricks_registry_config()),
        task_values=LocalTaskValues.from_environ({}),
        serving=DatabricksServing(WorkspaceClient),
        notifier=DatabricksNotifier(env.name, None),
        spark_session=no_spark,
        on_databricks=True,
    )
