"""The local adapters of the job runtime's ports that are plain files under ``$MLOPS_HOME``: task values for the
local runner, the serving endpoint's desired state for the local gateway, notifications, and the MLflow registry on
SQLite."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.platform.notify import event_document, post_event
from jobs.platform.registry import RegistryConfig
from jobs.platform.serving import ServedEntity, describe
from jobs.platform.task_values import InMemoryTaskValues, TaskValue
from local.files import write_json_atomically
from local.paths import mlflow_artifact_root, mlflow_tracking_uri
from local.serving.state import new_state, state_path, write_state

if TYPE_CHECKING:
    from spec.config import Environment

logger = logging.getLogger(__name__)

# The local runner sets these for each task it runs, and reads <dir>/<task_key>.json back.
TASK_VALUES_DIR_ENV = "MLOPS_TASK_VALUES_DIR"
TASK_KEY_ENV = "MLOPS_TASK_KEY"


def local_registry_config() -> RegistryConfig:
    """MLflow tracking and registry in one SQLite database, artifacts in a local folder."""
    uri = mlflow_tracking_uri()
    return RegistryConfig(tracking_uri=uri, registry_uri=uri, artifact_root=mlflow_artifact_root())


class LocalTaskValues(InMemoryTaskValues):
    """Values kept in memory and, when the local runner asks for them, merged into its JSON file."""

    def __init__(self, values_dir: str | None = None, task_key: str | None = None) -> None:
        super().__init__()
        self.path: Path | None = Path(values_dir) / f"{task_key}.json" if values_dir and task_key else None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> LocalTaskValues:
        environ = os.environ if environ is None else environ
        return cls(environ.get(TASK_VALUES_DIR_ENV), environ.get(TASK_KEY_ENV))

    def set(self, key: str, value: TaskValue) -> None:
        super().set(key, value)
        if self.path is not None:
            current: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
            current[key] = value
            write_json_atomically(self.path, current)


class LocalServing:
    """Writes the endpoint's desired state where the local gateway reads it (replaced atomically, so the gateway
    never sees half a configuration)."""

    def __init__(self, root: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.root = root
        self._clock = clock

    def state_path(self, env: Environment) -> Path:
        return state_path(self.root, env.name, env.serving.endpoint_name)

    def update_endpoint(self, env: Environment, served: list[ServedEntity]) -> None:
        """``StateError`` (a ``ValueError``) before anything is written when ``served`` cannot be served."""
        state = new_state(env.name, env.serving.endpoint_name, served, now=self._clock())
        write_state(self.state_path(env), state)
        logger.info("endpoint %s (%s) now serves %s", env.serving.endpoint_name, env.name, describe(served))


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
        tmp = folder / f".{name}.parquet.tmp"
        pq.write_table(table, tmp, coerce_timestamps="us", allow_truncated_timestamps=True)
        os.replace(tmp, target)
        return target
