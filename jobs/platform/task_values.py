"""Task values: small results one task of a job hands to the tasks after it (``{{tasks.<key>.values.<name>}}``).

Databricks: ``dbutils.jobs.taskValues``. Locally the workflow runner sets ``MLOPS_TASK_VALUES_DIR`` and
``MLOPS_TASK_KEY`` for each task and reads ``<dir>/<task_key>.json`` back; without them (a job called directly)
the values are logged and kept in memory, in ``values``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from jobs.platform.files import write_json_atomically

logger = logging.getLogger(__name__)

TaskValue = str | int | float | bool

TASK_VALUES_DIR_ENV = "MLOPS_TASK_VALUES_DIR"
TASK_KEY_ENV = "MLOPS_TASK_KEY"


def _check(key: str, value: object) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"task value key must be a non-empty string, got {key!r}")
    if not isinstance(value, str | int | float | bool):
        raise ValueError(f"task value {key!r} must be a str, int, float or bool, got {type(value).__name__}")


class TaskValues(Protocol):
    def set(self, key: str, value: TaskValue) -> None: ...


class LocalTaskValues:
    """Values kept in memory and, when the local runner asks for them, merged into its JSON file."""

    def __init__(self, values_dir: str | None = None, task_key: str | None = None) -> None:
        self.values: dict[str, TaskValue] = {}
        self.path: Path | None = Path(values_dir) / f"{task_key}.json" if values_dir and task_key else None

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> LocalTaskValues:
        environ = dict(os.environ) if environ is None else environ
        return cls(environ.get(TASK_VALUES_DIR_ENV), environ.get(TASK_KEY_ENV))

    def set(self, key: str, value: TaskValue) -> None:
        _check(key, value)
        self.values[key] = value
        logger.info("task value %s = %r", key, value)
        if self.path is not None:
            current: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
            current[key] = value
            write_json_atomically(self.path, current)


class DatabricksTaskValues:
    """``dbutils.jobs.taskValues`` of the running job task."""

    def __init__(self, dbutils: Any) -> None:
        self._dbutils = dbutils
        self.values: dict[str, TaskValue] = {}

    @classmethod
    def from_runtime(cls) -> DatabricksTaskValues:
        # databricks-sdk's runtime dbutils also exists in wheel tasks on serverless, where pyspark.dbutils may not.
        # Unverified here (no workspace): the staging smoke run in CI is the test that task values flow.
        from databricks.sdk.runtime import dbutils

        return cls(dbutils)

    def set(self, key: str, value: TaskValue) -> None:
        _check(key, value)
        self.values[key] = value
        self._dbutils.jobs.taskValues.set(key=key, value=value)
        logger.info("task value %s = %r", key, value)
