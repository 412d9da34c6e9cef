"""The local adapters of the job runtime's ports that are plain files under ``$MLOPS_HOME``: task values for the
local runner, the serving endpoint's desired state for the local gateway, notifications, and the MLflow registry on
SQLite.

The local runner calls each wheel task's entry point in a thread of this process. What belongs to that one task (where
its task values go, whether its run still waits for it) travels with the thread in a context variable
(``TaskContext``), never through the process's environment: two runs at once do not see each other's. Python cannot
stop a thread, so after a timeout the runner *ends* the task instead: from then on every write of the local platform
(task values, tables, registry tags and aliases, serving state, monitors) raises ``RunEndedError``, and nothing of an
abandoned attempt lands after its run reported FAILED.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.platform.notify import event_document, post_event
from jobs.platform.registry import ModelRef, Registry, RegistryConfig
from jobs.platform.serving import ServedEntity, describe
from jobs.platform.task_values import InMemoryTaskValues, TaskValue
from local.files import replacing, write_json_atomically
from local.paths import mlflow_artifact_root, mlflow_tracking_uri
from local.serving.state import new_state, read_state, state_path, write_state
from local.settings import TASK_KEY_ENV as TASK_KEY_ENV  # the variables' names, imported from here too
from local.settings import TASK_VALUES_DIR_ENV as TASK_VALUES_DIR_ENV
from local.settings import local_settings
from spec.errors import MlopsError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from spec.config import Environment

logger = logging.getLogger(__name__)

# Where task values go when no runner task is current (a CLI command that calls a job itself sets them); the job
# writes <dir>/<task_key>.json and the caller reads it back.


class RunEndedError(MlopsError):
    """A task the local runner has given up on tried to write: nothing was written."""


class TaskContext:
    """One task of one local run, as its entry point sees it: where its task values go, and whether its run still
    waits for it. ``end`` (the runner, on a timeout) turns every later write into a ``RunEndedError``."""

    def __init__(self, run_id: str, task_key: str, values_dir: Path) -> None:
        self.run_id = run_id
        self.task_key = task_key
        self.values_dir = Path(values_dir)
        self._ended: str | None = None  # why the run stopped waiting, once it has
        self._writes = 0  # writes under way
        self._condition = threading.Condition()

    @property
    def values_file(self) -> Path:
        return self.values_dir / f"{self.task_key}.json"

    @property
    def ended(self) -> bool:
        return self._ended is not None

    @contextmanager
    def writing(self, what: str) -> Iterator[None]:
        """Around one write: refused once the task has ended; while it is under way, ``end`` waits for it."""
        with self._condition:
            if self._ended is not None:
                raise RunEndedError(
                    f"the run {self.run_id} ended (task {self.task_key} {self._ended}): not writing {what}"
                )
            self._writes += 1
        try:
            yield
        finally:
            with self._condition:
                self._writes -= 1
                self._condition.notify_all()

    def end(self, reason: str, wait_seconds: float) -> bool:
        """Refuse the task's writes from now on (``reason``: "timed out"), and wait up to ``wait_seconds`` for those
        already under way; False when one is still going."""
        with self._condition:
            self._ended = reason
            return self._condition.wait_for(lambda: self._writes == 0, timeout=wait_seconds)


_CURRENT_TASK: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar("mlops_task", default=None)


def current_task() -> TaskContext | None:
    """The runner task this thread works for, or None outside a local run."""
    return _CURRENT_TASK.get()


def task_context(task: TaskContext) -> contextvars.Context:
    """A copy of the current context in which ``task`` is the current task: run the entry point under it
    (``context.run(fn)``); the caller's own context is left as it was."""
    context = contextvars.copy_context()
    context.run(_CURRENT_TASK.set, task)
    return context


@contextmanager
def writing(what: str, task: TaskContext | None = None) -> Iterator[None]:
    """Around one write of the local platform: ``task`` (or else the current task) must still be running; outside
    a local run nothing is checked."""
    task = task or current_task()
    if task is None:
        yield
        return
    with task.writing(what):
        yield


def local_registry_config() -> RegistryConfig:
    """MLflow tracking and registry in one SQLite database, artifacts in a local folder."""
    uri = mlflow_tracking_uri()
    return RegistryConfig(tracking_uri=uri, registry_uri=uri, artifact_root=mlflow_artifact_root())


class LocalTaskValues(InMemoryTaskValues):
    """Values kept in memory and, when the local runner asks for them, merged into its JSON file."""

    def __init__(
        self, values_dir: str | None = None, task_key: str | None = None, *, task: TaskContext | None = None
    ) -> None:
        super().__init__()
        self.task = task
        self.path: Path | None = None
        if task is not None:
            self.path = task.values_file
        elif values_dir and task_key:
            self.path = Path(values_dir) / f"{task_key}.json"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> LocalTaskValues:
        """The current runner task's file; outside a run, the one the environment names (or memory only)."""
        task = current_task()
        if task is not None:
            return cls(task=task)
        settings = local_settings(environ)
        values_dir = str(settings.task_values_dir) if settings.task_values_dir is not None else None
        return cls(values_dir, settings.task_key)

    def set(self, key: str, value: TaskValue) -> None:
        with writing(f"task value {key!r}", self.task):
            super().set(key, value)
            if self.path is not None:
                current: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
                current[key] = value
                write_json_atomically(self.path, current)


class LocalRegistry(Registry):
    """The shared registry, whose tag and alias setters refuse to write for a task its run has given up on."""

    def __init__(
        self,
        env: Environment,
        config: RegistryConfig,
        client: MlflowClient | None = None,
        *,
        task: TaskContext | None = None,
    ) -> None:
        super().__init__(env, config, client)
        self.task = task

    def set_version_tags(self, ref: ModelRef, tags: Mapping[str, str]) -> None:
        with writing(f"tags {sorted(tags)} of {ref.uri}", self.task):
            super().set_version_tags(ref, tags)

    def set_alias(self, alias: str, version: str, name: str | None = None) -> None:
        with writing(f"alias {alias} of {name or self.model_name} -> version {version}", self.task):
            super().set_alias(alias, version, name)

    def delete_alias(self, alias: str, name: str | None = None) -> None:
        with writing(f"the deletion of alias {alias} of {name or self.model_name}", self.task):
            super().delete_alias(alias, name)


class LocalServing:
    """Writes the endpoint's desired state where the local gateway reads it (replaced atomically, so the gateway
    never sees half a configuration)."""

    def __init__(
        self,
        root: Path,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        task: TaskContext | None = None,
    ) -> None:
        self.root = root
        self._clock = clock
        self.task = task

    def state_path(self, env: Environment) -> Path:
        return state_path(self.root, env.name, env.endpoint_name)

    def update_endpoint(self, env: Environment, served: list[ServedEntity]) -> None:
        """``StateError`` before anything is written when ``served`` cannot be served."""
        state = new_state(env.name, env.endpoint_name, served, now=self._clock())
        with writing(f"the state of endpoint {env.endpoint_name}", self.task):
            write_state(self.state_path(env), state)
        logger.info("endpoint %s (%s) now serves %s", env.endpoint_name, env.name, describe(served))

    def served(self, env: Environment) -> list[ServedEntity]:
        """What the state file says the gateway serves (empty when the deploy job has written none)."""
        path = self.state_path(env)
        return list(read_state(path).served_entities) if path.exists() else []

    def query(self, env: Environment, records: list[dict[str, Any]], client_request_id: str) -> list[Any]:
        """Through the local gateway, brought up for the call (``local.serving.oneshot``): nothing else serves
        while a job runs here, as the always-up endpoint does on Databricks."""
        from local.serving.oneshot import query_endpoint

        return query_endpoint(env, {"dataframe_records": records, "client_request_id": client_request_id})


class LocalNotifier:
    """Log, append to a JSON-lines file, and POST to a local receiver when one is configured."""

    def __init__(
        self,
        env_name: str,
        path: Path,
        webhook_url: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.env_name = env_name
        self.path = path
        self.webhook_url = webhook_url
        self._clock = clock

    def notify(self, event: str, message: str, details: Mapping[str, object]) -> None:
        document = event_document(self.env_name, event, message, details, self._clock())
        logger.warning("NOTIFY %s: %s", event, message)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(document, sort_keys=True, default=str) + "\n")
        if self.webhook_url:
            post_event(self.webhook_url, document)


class LocalLanding:
    """A folder of Parquet files read by Spark's file source; ``land`` adds one atomically (Spark ignores files
    whose names start with a dot, so a half-written file is never read)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def read_stream(self, spark, schema, max_files_per_trigger: int):
        Path(self.path).mkdir(parents=True, exist_ok=True)
        return spark.readStream.schema(schema).option("maxFilesPerTrigger", max_files_per_trigger).parquet(self.path)

    def land(self, table, name: str) -> Path:
        """Write the Arrow ``table`` as ``<name>.parquet``, replacing a file of that name; returns its path."""
        import pyarrow.parquet as pq

        folder = Path(self.path)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.parquet"
        # The temporary name starts with a dot: Spark's file source skips it, so a stream never reads half a file.
        with replacing(target) as tmp:
            pq.write_table(table, tmp, coerce_timestamps="us", allow_truncated_timestamps=True)
        return target
