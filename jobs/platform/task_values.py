"""Task values: small results one task of a job hands to the tasks after it (``{{tasks.<key>.values.<name>}}``).

Databricks: ``dbutils.jobs.taskValues``. Locally the workflow runner reads them back from files
(``local.adapters.LocalTaskValues``); a job called directly, outside a run, keeps them in memory (``values``).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

logger = logging.getLogger(__name__)

TaskValue = str | int | float | bool


def check_task_value(key: str, value: object) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"task value key must be a non-empty string, got {key!r}")
    if not isinstance(value, str | int | float | bool):
        raise ValueError(f"task value {key!r} must be a str, int, float or bool, got {type(value).__name__}")


class TaskValues(Protocol):
    def set(self, key: str, value: TaskValue) -> None: ...


class InMemoryTaskValues:
    """Values kept in memory and logged: a job called directly, outside any job run."""

    def __init__(self) -> None:
        self.values: dict[str, TaskValue] = {}

    def set(self, key: str, value: TaskValue) -> None:
        check_task_value(key, value)
        self.values[key] = value
        logger.info("task value %s = %r", key, value)


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
        check_task_value(key, value)
        self.values[key] = value
        self._dbutils.jobs.taskValues.set(key=key, value=value)
        logger.info("task value %s = %r", key, value)
