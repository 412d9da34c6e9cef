"""The job graph as data: tasks, dependencies, conditions, and the dynamic value references they hold.

The project's graphs are built from these in spec/workflows.py. No CDK import here. A graph is tasks with
dependencies (and outcomes for condition tasks), `run_if`, retries, timeouts and parameters that may hold Databricks
dynamic value references: ``{{job.parameters.<name>}}`` and ``{{tasks.<task_key>.values.<key>}}``. Both renderings
resolve the same text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from spec.config import Schedule
from spec.errors import MlopsError

PACKAGE_NAME = "mlops_databricks"
RunIf = Literal["ALL_SUCCESS", "AT_LEAST_ONE_SUCCESS", "NONE_FAILED", "ALL_DONE", "AT_LEAST_ONE_FAILED", "ALL_FAILED"]
ConditionOp = Literal[
    "EQUAL_TO", "NOT_EQUAL", "GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL"
]

_REFERENCE = re.compile(r"\{\{\s*([a-z_]+(?:\.[A-Za-z0-9_\-]+)+)\s*\}\}")
_TASK_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")


class WorkflowError(MlopsError):
    """A job graph is malformed; the message names the graph and the task."""


@dataclass(frozen=True)
class WheelTask:
    """Runs a `[project.scripts]` entry point of this project's wheel (python_wheel_task on Databricks)."""

    entry_point: str
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConditionTask:
    """Compares two values (after reference resolution); its outcome is "true" or "false"."""

    left: str
    op: ConditionOp
    right: str


@dataclass(frozen=True)
class RunJobTask:
    """Runs another graph of the same environment as a child run, with job parameters."""

    job: str
    job_parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class AlertTask:
    """Evaluates one SQL alert of ``spec.monitoring.alerts`` now (an ``alert_task`` on Databricks, on the alert the
    stack declares; the local warehouse runs the same query text), notifying its subscribers on a change."""

    alert: str


@dataclass(frozen=True)
class Dependency:
    task_key: str
    outcome: Literal["true", "false"] | None = None


@dataclass(frozen=True)
class Task:
    key: str
    action: WheelTask | ConditionTask | RunJobTask | AlertTask
    depends_on: tuple[Dependency, ...] = ()
    run_if: RunIf = "ALL_SUCCESS"
    max_retries: int = 0
    min_retry_interval_millis: int = 0
    timeout_seconds: int = 3600
    # As on Databricks, a task that timed out is not retried unless this says so.
    retry_on_timeout: bool = False
    description: str = ""
    # Why this task must not be retried (max_retries 0), for the job_reliability policy of protected environments.
    no_retry_reason: str = ""

    def parameter_texts(self) -> tuple[str, ...]:
        """Every text in which references may appear."""
        if isinstance(self.action, WheelTask):
            return self.action.parameters
        if isinstance(self.action, ConditionTask):
            return (self.action.left, self.action.right)
        if isinstance(self.action, AlertTask):
            return ()
        return tuple(self.action.job_parameters.values())

    @property
    def worst_case_seconds(self) -> int:
        """How long the task may take at most: every attempt timing out, with the waits between them."""
        attempts = self.max_retries + 1
        return attempts * self.timeout_seconds + self.max_retries * -(-self.min_retry_interval_millis // 1000)


ModelCondition = Literal["MODEL_CREATED", "MODEL_VERSION_READY", "MODEL_ALIAS_SET"]


@dataclass(frozen=True)
class ModelTrigger:
    """A Unity Catalog model update trigger (``trigger { model { ... } }``, Beta): the job starts when ``condition``
    happens on the registered model ``securable_name``; with MODEL_ALIAS_SET, when one of ``aliases`` is set.
    Databricks polls about once a minute and batches the updates of an interval into one run
    (https://docs.databricks.com/aws/en/jobs/model-update-triggers). Locally the caller starts the job."""

    securable_name: str
    condition: ModelCondition
    aliases: tuple[str, ...] = ()
    # Both at least 60 s when set (the Jobs API's minimum); None leaves them unset.
    min_time_between_triggers_seconds: int | None = None
    wait_after_last_change_seconds: int | None = None

    def problems(self) -> list[str]:
        found = []
        if (self.condition == "MODEL_ALIAS_SET") != bool(self.aliases):
            found.append("aliases are given with, and only with, condition MODEL_ALIAS_SET")
        if len(self.aliases) > 10:
            found.append(f"at most 10 aliases, got {len(self.aliases)}")
        for name in ("min_time_between_triggers_seconds", "wait_after_last_change_seconds"):
            value = getattr(self, name)
            if value is not None and value < 60:
                found.append(f"{name} must be >= 60, got {value}")
        if len(self.securable_name.split(".")) != 3:
            found.append(f"securable_name must be catalog.schema.model, got {self.securable_name!r}")
        return found


@dataclass(frozen=True)
class JobGraph:
    name: str
    description: str
    tasks: tuple[Task, ...]
    parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    schedule: Schedule | None = None
    # None: the longest the tasks can take (``worst_case_seconds``), so the job never times out a task that is
    # still within its own timeout and retries. A value below that is refused.
    timeout_seconds: int | None = None
    max_concurrent_runs: int = 1
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # A continuous job (Databricks restarts it when it stops); locally one run of its tasks.
    continuous: bool = False
    # Tables whose update starts the job (a table_update trigger); locally the caller starts it after an update.
    trigger_tables: tuple[str, ...] = ()
    # A model update that starts the job (a model trigger); locally the caller starts it after the update.
    trigger_model: ModelTrigger | None = None

    def __post_init__(self) -> None:
        keys = [task.key for task in self.tasks]
        if not keys:
            raise WorkflowError(f"graph {self.name!r}: has no tasks")
        starts = (self.continuous, self.schedule is not None, bool(self.trigger_tables), self.trigger_model is not None)
        if sum(starts) > 1:
            raise WorkflowError(
                f"graph {self.name!r}: a job has at most one of a schedule, a table trigger, a model trigger and "
                "continuous mode"
            )
        if self.trigger_model is not None and self.trigger_model.problems():
            raise WorkflowError(f"graph {self.name!r}: model trigger: {'; '.join(self.trigger_model.problems())}")
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise WorkflowError(f"graph {self.name!r}: duplicate task keys {duplicates}")
        for task in self.tasks:
            if not _TASK_KEY.match(task.key):
                raise WorkflowError(f"graph {self.name!r}: invalid task key {task.key!r}")
            for dep in task.depends_on:
                if dep.task_key not in keys:
                    raise WorkflowError(f"graph {self.name!r}: task {task.key!r} depends on unknown {dep.task_key!r}")
                upstream = self.task(dep.task_key)
                if dep.outcome is not None and not isinstance(upstream.action, ConditionTask):
                    raise WorkflowError(
                        f"graph {self.name!r}: task {task.key!r} uses an outcome of {dep.task_key!r}, "
                        "which is not a condition task"
                    )
            if task.max_retries < 0 or task.timeout_seconds <= 0:
                raise WorkflowError(f"graph {self.name!r}: task {task.key!r} needs max_retries >= 0, timeout > 0")
            if task.no_retry_reason and task.max_retries:
                raise WorkflowError(f"graph {self.name!r}: task {task.key!r} has a no_retry_reason but retries")
        self.topological_order()  # raises on cycles
        if not self.continuous and self.timeout_seconds is not None and self.timeout_seconds < self.worst_case_seconds:
            raise WorkflowError(
                f"graph {self.name!r}: field 'timeout_seconds' is {self.timeout_seconds}s but its tasks may take "
                f"{self.worst_case_seconds}s (timeouts and retries on the longest path): raise it, or leave it None"
            )
        for task in self.tasks:
            upstream = self.upstream(task.key)
            for text in task.parameter_texts():
                for ref in references(text):
                    scope, _, rest = ref.partition(".")
                    if scope == "job":
                        name = rest.removeprefix("parameters.")
                        if not rest.startswith("parameters.") or name not in self.parameters:
                            raise WorkflowError(f"graph {self.name!r}: task {task.key!r} references unknown {ref!r}")
                    elif scope == "tasks":
                        parts = rest.split(".")
                        if len(parts) != 3 or parts[1] != "values" or parts[0] not in upstream:
                            raise WorkflowError(
                                f"graph {self.name!r}: task {task.key!r} references {ref!r}, "
                                "which is not a task value of an upstream task"
                            )
                    else:
                        raise WorkflowError(f"graph {self.name!r}: task {task.key!r} has unsupported reference {ref!r}")

    @property
    def worst_case_seconds(self) -> int:
        """The longest path through the graph, each task at its worst (``Task.worst_case_seconds``)."""
        finish: dict[str, int] = {}
        for key in self.topological_order():
            task = self.task(key)
            start = max((finish[d.task_key] for d in task.depends_on), default=0)
            finish[key] = start + task.worst_case_seconds
        return max(finish.values())

    @property
    def job_timeout_seconds(self) -> int:
        """What the job's ``timeout_seconds`` is: 0 (none) for a continuous job, else the configured value or the
        worst case."""
        if self.continuous:
            return 0
        return self.timeout_seconds if self.timeout_seconds is not None else self.worst_case_seconds

    def no_retry_tags(self) -> dict[str, str]:
        """The job tags that tell the job_reliability policy which tasks must not retry, and why."""
        exempt = [t for t in self.tasks if t.no_retry_reason]
        if not exempt:
            return {}
        return {
            "no_retry_tasks": ",".join(t.key for t in exempt),
            "no_retry_reason": "; ".join(f"{t.key}: {t.no_retry_reason}" for t in exempt),
        }

    def task(self, key: str) -> Task:
        for task in self.tasks:
            if task.key == key:
                return task
        raise KeyError(key)

    def topological_order(self) -> list[str]:
        """Task keys so that every task comes after its dependencies (stable: declaration order breaks ties)."""
        remaining = {t.key: {d.task_key for d in t.depends_on} for t in self.tasks}
        order: list[str] = []
        while remaining:
            ready = [k for k, deps in remaining.items() if not deps - set(order)]
            if not ready:
                raise WorkflowError(f"graph {self.name!r}: dependency cycle among {sorted(remaining)}")
            for key in ready:
                order.append(key)
                del remaining[key]
        return order

    def upstream(self, key: str) -> set[str]:
        """All tasks ``key`` depends on, directly or not."""
        seen: set[str] = set()
        stack = [d.task_key for d in self.task(key).depends_on]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(d.task_key for d in self.task(current).depends_on)
        return seen


def references(text: str) -> list[str]:
    """The dynamic value references in ``text``, e.g. ``tasks.train.values.model_uri``."""
    return _REFERENCE.findall(text)


def resolve(text: str, job_parameters: Mapping[str, str], task_values: Mapping[str, Mapping[str, object]]) -> str:
    """Substitutes references the way Databricks does; a reference with no value is an error naming it."""

    def substitute(match: re.Match[str]) -> str:
        ref = match.group(1)
        scope, _, rest = ref.partition(".")
        if scope == "job":
            name = rest.removeprefix("parameters.")
            if name in job_parameters:
                return str(job_parameters[name])
        elif scope == "tasks":
            task_key, _, key = rest.partition(".values.")
            values = task_values.get(task_key, {})
            if key in values:
                value = values[key]
                return str(value).lower() if isinstance(value, bool) else str(value)
        raise WorkflowError(f"reference {{{{{ref}}}}} has no value")

    return _REFERENCE.sub(substitute, text)
