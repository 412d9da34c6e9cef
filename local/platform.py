"""The local platform: the job runtime's ports on the embedded engines. Registered as the ``local`` entry point of
the group ``mlops_databricks.platforms`` (pyproject.toml), which ``jobs.platform.build_platform`` loads when it is
not on a Databricks runtime."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from jobs.platform import Platform
from jobs.platform.monitors import Refreshed
from local.adapters import (
    LocalLanding,
    LocalNotifier,
    LocalRegistry,
    LocalServing,
    LocalTaskValues,
    TaskContext,
    current_task,
    local_registry_config,
    writing,
)
from local.dynalite import local_online_store
from local.paths import landing_dir, mlops_home, work_dir
from local.settings import local_settings
from local.spark import local_spark
from local.tables import LocalTables
from local.warehouse import LocalSql

if TYPE_CHECKING:
    from spec.config import Environment

logger = logging.getLogger(__name__)


def build_local_platform(env: Environment, environ: Mapping[str, str]) -> Platform:
    """Local Spark, delta-rs tables, MLflow on SQLite, task values for the local runner, the gateway's state file
    and notifications, all under ``$MLOPS_HOME``.

    Built inside a local run's task (``local.adapters.current_task``), the adapters keep that task, threads the job
    starts included: its task values go to its run's file, and once the runner gives up on it (a timeout) its writes
    to tables, task values, registry tags and aliases, the serving state and the monitors raise instead of landing."""
    home = mlops_home()
    task = current_task()
    registry = LocalRegistry(env, local_registry_config(), task=task)
    registry.activate()
    return Platform(
        env=env,
        tables=LocalTables(local_spark, task=task),
        registry=registry,
        task_values=LocalTaskValues(task=task) if task else LocalTaskValues.from_environ(environ),
        serving=LocalServing(home / "serving", task=task),
        notifier=LocalNotifier(env.name, home / "notifications.jsonl", local_settings(environ).notify_webhook_url),
        spark_session=local_spark,
        on_databricks=False,
        # The streamed source's folder (a model that streams none has an empty one the stream never reads).
        landing=LocalLanding(landing_dir(env.name, env.model.stream_source or env.model.sources[0])),
        work_dir=str(work_dir(env.name)),
        online_store=lambda: local_online_store(env, environ),
        sql=LocalSql(env.name),
        monitors=LocalMonitors(env, task=task),
    )


class LocalMonitors:
    """The local monitor (``local.monitor``) on each monitored table, all at once as on Databricks (numpy and delta-rs
    release the GIL). A table nothing has written yet has nothing to profile: it is skipped and said so."""

    def __init__(self, env: Environment, *, task: TaskContext | None = None) -> None:
        self.env = env
        self.task = task

    def refresh(self, tables: Sequence[str]) -> list[Refreshed]:
        from deltalake import DeltaTable

        from local.monitor import refresh_monitor
        from local.paths import table_path
        from spec.monitoring import monitored_tables

        by_table = {m.table: m for m in monitored_tables(self.env)}
        unknown = [t for t in tables if t not in by_table]
        if unknown:
            raise ValueError(f"no quality monitor on {unknown} in {self.env.name}; monitored: {sorted(by_table)}")
        present = [by_table[t] for t in tables if DeltaTable.is_deltatable(str(table_path(t)))]
        for table in sorted(set(tables) - {m.table for m in present}):
            logger.warning("monitor of %s: the table has no rows yet, nothing to refresh", table)

        def one(monitored) -> Refreshed:
            started = time.perf_counter()
            refresh_monitor(self.env, monitored)
            return Refreshed(monitored.table, "local", "SUCCESS", round(time.perf_counter() - started, 1))

        # The pool's threads do not inherit the task's context: the check is made here, for all of them.
        with (
            writing(f"the monitors of {', '.join(m.table for m in present)}", self.task),
            ThreadPoolExecutor(max(1, len(present)), thread_name_prefix="monitor") as pool,
        ):
            return list(pool.map(one, present))
