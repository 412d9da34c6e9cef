"""What the jobs need from the outside world, as ports. The Databricks adapters live here; the local ones (the
embedded engines) live in the local runtime, ``local.platform``, which the wheel does not need on Databricks.

``build_platform(env)`` picks the adapters once, at the edge: Databricks when ``DATABRICKS_RUNTIME_VERSION`` is set
(a cluster or serverless job environment); elsewhere the platform registered under the name ``local`` in the entry
point group ``mlops_databricks.platforms`` (the local runtime registers itself there, so this package never imports
it). Jobs receive the ``Platform`` and never ask which one they run on. Spark starts lazily, on first use: a job
that does not need it never pays for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from jobs.platform.landing import DatabricksLanding, Landing
from jobs.platform.model import ModelPackage, load_model
from jobs.platform.monitors import DatabricksMonitors, Monitors
from jobs.platform.notify import WEBHOOK_URL_ENV, DatabricksNotifier, Notifier
from jobs.platform.online_store import OnlineStore, databricks_online_store, no_online_store
from jobs.platform.registry import Registry, databricks_registry_config
from jobs.platform.serving import DatabricksServing, ServedEntity, Serving
from jobs.platform.spark import DATABRICKS_RUNTIME_ENV, databricks_spark
from jobs.platform.sql import SparkSql, Sql
from jobs.platform.tables import DatabricksTables, Tables
from jobs.platform.task_values import DatabricksTaskValues, InMemoryTaskValues, TaskValues

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from spec.config import Environment

__all__ = ["PLATFORM_GROUP", "Platform", "ServedEntity", "build_platform", "build_workspace_platform"]

# Entry point group of platform factories ``(env, environ) -> Platform``; the local runtime registers ``local``.
PLATFORM_GROUP = "mlops_databricks.platforms"
LOCAL_PLATFORM = "local"


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
    # Files of the model's streamed source arriving for the streaming job.
    landing: Landing
    # A folder the driver and the Spark workers both read and write: staged models, stream checkpoints.
    work_dir: str
    # The DynamoDB table of the latest predictions, built on first use (its credentials are read then).
    online_store: Callable[[], OnlineStore]
    # SQL over the tables by their catalog.schema.table names (the alert queries, the retraining check).
    sql: Sql | None = None
    # The quality monitors, refreshed by the daily-monitoring job.
    monitors: Monitors | None = None

    @property
    def spark(self) -> SparkSession:
        return self.spark_session()

    @property
    def model(self) -> ModelPackage:
        """The model the environment runs: its declaration and its callables (jobs.platform.model)."""
        return load_model(self.env.model_name)


def build_platform(env: Environment, environ: Mapping[str, str] | None = None) -> Platform:
    """The Databricks adapters on a Databricks runtime, the registered local platform elsewhere."""
    environ = os.environ if environ is None else environ
    if environ.get(DATABRICKS_RUNTIME_ENV):
        return databricks_platform(env, environ)
    return platform_factory(LOCAL_PLATFORM)(env, environ)


def databricks_platform(env: Environment, environ: Mapping[str, str]) -> Platform:
    """The adapters of a job run on Databricks: the cluster's Spark, Unity Catalog, dbutils task values."""
    from databricks.sdk import WorkspaceClient

    registry = Registry(env, databricks_registry_config())
    registry.activate()
    return Platform(
        env=env,
        tables=DatabricksTables(databricks_spark),
        registry=registry,
        task_values=DatabricksTaskValues.from_runtime(),
        serving=DatabricksServing(WorkspaceClient),
        notifier=DatabricksNotifier(env.name, environ.get(WEBHOOK_URL_ENV) or None),
        spark_session=databricks_spark,
        on_databricks=True,
        landing=DatabricksLanding(env.landing_path),
        work_dir=databricks_work_dir(env),
        online_store=databricks_online_store(env),
        sql=SparkSql(databricks_spark),
        monitors=DatabricksMonitors(WorkspaceClient, timeout_seconds=monitor_refresh_timeout_seconds()),
    )


def monitor_refresh_timeout_seconds() -> float:
    """The refresh task's own timeout, less a margin to fail with a message before Databricks kills the task."""
    from spec.workflows import REFRESH_TIMEOUT_SECONDS

    return REFRESH_TIMEOUT_SECONDS - 300


def databricks_work_dir(env: Environment) -> str:
    """The artifacts volume of the environment's ml schema (declared by the stack; executors see volumes too)."""
    return f"/Volumes/{env.catalog}/ml/artifacts/work"


def platform_factory(name: str) -> Callable[[Environment, Mapping[str, str]], Platform]:
    """The platform factory registered as ``name``; a RuntimeError that says what to install when it is missing."""
    found = metadata.entry_points(group=PLATFORM_GROUP, name=name)
    if not found:
        raise RuntimeError(
            f"not on a Databricks runtime ({DATABRICKS_RUNTIME_ENV} is unset) and no {name!r} platform is "
            f"registered in the entry point group {PLATFORM_GROUP!r}: install the project with the local engines, "
            "pip install 'mlops-databricks[local]'"
        )
    try:
        return next(iter(found)).load()
    except ImportError as e:
        raise RuntimeError(
            f"the {name!r} platform cannot be loaded ({e}): install the project with the local engines, "
            "pip install 'mlops-databricks[local]'"
        ) from e


def build_workspace_platform(env: Environment) -> Platform:
    """The Databricks registry (Unity Catalog) and serving adapters, driven from outside a cluster: what the CLI
    needs to list versions or roll back in a real workspace. Credentials come from the usual DATABRICKS_* variables
    (or a config profile). Tables, task values and Spark belong to job runs and are not available here."""
    from databricks.sdk import WorkspaceClient

    def no_spark() -> SparkSession:
        raise RuntimeError("no Spark session outside a Databricks job run")

    registry = Registry(env, databricks_registry_config())
    registry.activate()
    return Platform(
        env=env,
        tables=DatabricksTables(no_spark),
        registry=registry,
        task_values=InMemoryTaskValues(),
        serving=DatabricksServing(WorkspaceClient),
        notifier=DatabricksNotifier(env.name, None),
        spark_session=no_spark,
        on_databricks=True,
        landing=DatabricksLanding(env.landing_path),
        work_dir=databricks_work_dir(env),
        online_store=no_online_store,
    )
