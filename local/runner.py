"""The local workflow runner: executes the job graphs of ``spec.workflows`` on this machine with the semantics of
Databricks Lakeflow Jobs, and records every run under ``$MLOPS_HOME/runs/<run_id>/run.json``.

- tasks run in dependency order; `run_if` decides whether a task runs given its dependencies' states;
- a dependency on a condition task carries an outcome ("true"/"false"): a mismatch excludes the dependant;
- wheel tasks call the `[project.scripts]` entry point in this process (sharing one Spark session), in a thread whose
  context names the run and the task (``local.adapters.TaskContext``: where the task values go); nothing goes through
  the process's environment, so two runners at once keep their task values apart;
- ``{{job.parameters.x}}`` and ``{{tasks.t.values.k}}`` are resolved by ``spec.workflows.resolve``, as on Databricks;
- run-job tasks run the child graph as a separate, linked run;
- whoever starts a run may ask to hear of each of its tasks as it ends (``on_task_end``), to go on with other work
  while the rest of the run goes on (the demo goes on with the week once the batch job has scored, as the jobs would
  on their own schedules);
- alert tasks evaluate the named SQL alert on the local warehouse (``local.alerts``: the same query text, history and
  notifications); the alert's state is the task's values, and the task succeeds whatever the state, as on Databricks;
- retries: up to ``max_retries`` more attempts; the wait is ``min_retry_interval_millis`` capped by
  ``max_retry_wait_seconds`` (default 1 s), so local runs do not sleep for minutes;
- timeouts: a task still running after ``timeout_seconds`` is marked FAILED and the run goes on without it; as on
  Databricks it is not retried unless ``retry_on_timeout`` is set. Python cannot kill a thread, so the runner ends
  the task instead: a write under way may finish (the runner waits up to ``write_drain_seconds`` for it), every later
  write of the local platform raises ``RunEndedError``, and what the abandoned attempt ends with is logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from local.adapters import TaskContext, task_context
from local.files import read_json, write_text_atomically
from local.paths import runs_dir
from spec.config import Environment
from spec.workflows import (
    AlertTask,
    ConditionTask,
    JobGraph,
    RunJobTask,
    Task,
    WheelTask,
    WorkflowError,
    job_graphs,
    resolve,
)

log = logging.getLogger(__name__)

SUCCESS, FAILED, UPSTREAM_FAILED, EXCLUDED = "SUCCESS", "FAILED", "UPSTREAM_FAILED", "EXCLUDED"
_FAILED_STATES = {FAILED, UPSTREAM_FAILED}

# An executor runs one wheel entry point with its arguments and returns the exit code.
Executor = Callable[[str, list[str]], int]
# An alert evaluator evaluates one SQL alert by name and returns what the task records (its state, its value).
AlertEvaluator = Callable[[str], Mapping[str, object]]


def local_alert_evaluator(env: Environment) -> AlertEvaluator:
    """Evaluates the alert on the local warehouse, recording its history and notifying as ``mlops alerts`` does."""

    def evaluate(name: str) -> Mapping[str, object]:
        from local.alerts import evaluate_alerts
        from spec.monitoring import alerts

        specs = [spec for spec in alerts(env) if spec.name == name]
        if not specs:
            raise WorkflowError(f"no alert {name!r} in {env.name}; known: {', '.join(s.name for s in alerts(env))}")
        result = evaluate_alerts(env, specs=specs)[0]
        return {"state": result.state, "value": result.value, "reason": result.reason or ""}

    return evaluate


def run_entry_point(entry_point: str, argv: list[str]) -> int:
    """Calls the console-script entry point of this project in-process, as `python_wheel_task` would."""
    found = metadata.entry_points(group="console_scripts", name=entry_point)
    if not found:
        raise WorkflowError(f"entry point {entry_point!r} is not installed; run `make setup`")
    main = next(iter(found)).load()
    try:
        return int(main(argv) or 0)
    except SystemExit as exit_:  # argparse errors exit with 2
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)


@dataclass
class TaskRun:
    task_key: str
    status: str = "PENDING"
    attempts: int = 0
    started_at: str | None = None
    duration_seconds: float = 0.0
    error: str | None = None
    values: dict[str, object] = field(default_factory=dict)
    outcome: str | None = None
    child_run_id: str | None = None
    parameters: list[str] = field(default_factory=list)


@dataclass
class WorkflowRun:
    run_id: str
    graph: str
    env: str
    parameters: dict[str, str]
    status: str = "RUNNING"
    started_at: str = ""
    duration_seconds: float = 0.0
    parent_run_id: str | None = None
    tasks: dict[str, TaskRun] = field(default_factory=dict)

    @property
    def failed_task(self) -> TaskRun | None:
        return next((t for t in self.tasks.values() if t.status == FAILED), None)

    def to_json(self) -> dict:
        return asdict(self)


class LocalRunner:
    def __init__(
        self,
        env: Environment,
        *,
        graphs: Mapping[str, JobGraph] | None = None,
        executor: Executor = run_entry_point,
        alert_evaluator: AlertEvaluator | None = None,
        home: Path | None = None,
        max_retry_wait_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        write_drain_seconds: float = 30.0,
    ) -> None:
        self.env = env
        self.graphs = dict(graphs) if graphs is not None else job_graphs(env)
        self.executor = executor
        self.alert_evaluator = alert_evaluator or local_alert_evaluator(env)
        self.home = home or runs_dir()
        self.max_retry_wait_seconds = max_retry_wait_seconds
        self.clock = clock
        self.sleep = sleep
        # How long a timed-out task's write under way may hold back the run (then it goes on, saying so).
        self.write_drain_seconds = write_drain_seconds

    def run(
        self,
        graph_name: str,
        parameters: Mapping[str, str] | None = None,
        *,
        parent_run_id: str | None = None,
        on_task_end: Callable[[TaskRun], None] = lambda task_run: None,
    ) -> WorkflowRun:
        """Runs the graph to its end; ``on_task_end`` hears of each of its own tasks (not a child run's) once its state
        is recorded, whatever it is (run, failed, excluded or not run after a failure upstream)."""
        if graph_name not in self.graphs:
            raise WorkflowError(f"unknown workflow {graph_name!r}; known: {', '.join(sorted(self.graphs))}")
        graph = self.graphs[graph_name]
        unknown = sorted(set(parameters or {}) - set(graph.parameters))
        if unknown:
            raise WorkflowError(
                f"workflow {graph_name!r} has no parameter(s) {unknown}; known: {', '.join(graph.parameters)}"
            )
        job_parameters = {**graph.parameters, **(parameters or {})}
        run = WorkflowRun(
            run_id=f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
            graph=graph_name,
            env=self.env.name,
            parameters=job_parameters,
            started_at=datetime.now(UTC).isoformat(),
            parent_run_id=parent_run_id,
            tasks={t.key: TaskRun(t.key) for t in graph.tasks},
        )
        run_dir = self.home / run.run_id
        (run_dir / "task_values").mkdir(parents=True, exist_ok=True)
        started = self.clock()
        log.info("run %s of %s in %s started", run.run_id, graph_name, self.env.name)
        for key in graph.topological_order():
            task = graph.task(key)
            task_run = run.tasks[key]
            decision = self._gate(task, run)
            if decision != "RUN":
                task_run.status = decision
                log.info("task %s: %s", key, decision)
            else:
                self._execute(task, task_run, run, run_dir)
            self._save(run, run_dir)
            on_task_end(task_run)
        run.duration_seconds = round(self.clock() - started, 3)
        run.status = FAILED if any(t.status in _FAILED_STATES for t in run.tasks.values()) else SUCCESS
        self._save(run, run_dir)
        failed = run.failed_task
        if failed:
            log.error("run %s FAILED at task %s: %s", run.run_id, failed.task_key, failed.error)
        else:
            log.info("run %s %s in %.1fs", run.run_id, run.status, run.duration_seconds)
        return run

    def _gate(self, task: Task, run: WorkflowRun) -> str:
        """RUN, or the state the task ends in without running, from its dependencies and `run_if`."""
        if not task.depends_on:
            return "RUN"
        states = []
        for dep in task.depends_on:
            upstream = run.tasks[dep.task_key]
            state = upstream.status
            if state == SUCCESS and dep.outcome is not None and upstream.outcome != dep.outcome:
                state = EXCLUDED
            states.append(state)
        succeeded = [s == SUCCESS for s in states]
        failed = [s in _FAILED_STATES for s in states]
        rule = task.run_if
        if rule == "ALL_SUCCESS":
            return "RUN" if all(succeeded) else (UPSTREAM_FAILED if any(failed) else EXCLUDED)
        if rule == "ALL_DONE":
            return "RUN"
        if rule == "NONE_FAILED":
            return UPSTREAM_FAILED if any(failed) else "RUN"
        if rule == "AT_LEAST_ONE_SUCCESS":
            return "RUN" if any(succeeded) else (UPSTREAM_FAILED if any(failed) else EXCLUDED)
        if rule == "AT_LEAST_ONE_FAILED":
            return "RUN" if any(failed) else EXCLUDED
        if rule == "ALL_FAILED":
            return "RUN" if all(failed) else EXCLUDED
        raise WorkflowError(f"task {task.key!r}: unsupported run_if {rule!r}")

    def _execute(self, task: Task, task_run: TaskRun, run: WorkflowRun, run_dir: Path) -> None:
        values = {key: t.values for key, t in run.tasks.items()}
        task_run.started_at = datetime.now(UTC).isoformat()
        started = self.clock()
        for attempt in range(task.max_retries + 1):
            task_run.attempts = attempt + 1
            try:
                self._attempt(task, task_run, run, run_dir, values)
                task_run.status, task_run.error = SUCCESS, None
                break
            except Exception as error:  # a task's failure is data for the run record, not a crash of the runner
                task_run.status = FAILED
                task_run.error = str(error) or type(error).__name__
                log.warning("task %s attempt %d failed: %s", task.key, attempt + 1, task_run.error)
                log.debug("%s", traceback.format_exc())
                if isinstance(error, TimeoutError) and not task.retry_on_timeout:
                    break  # the abandoned attempt may still be running: a retry would race it
                if attempt < task.max_retries:
                    self.sleep(min(task.min_retry_interval_millis / 1000, self.max_retry_wait_seconds))
        task_run.duration_seconds = round(self.clock() - started, 3)
        log.info(
            "task %s: %s after %d attempt(s), %.1fs",
            task.key,
            task_run.status,
            task_run.attempts,
            task_run.duration_seconds,
        )

    def _attempt(self, task: Task, task_run: TaskRun, run: WorkflowRun, run_dir: Path, values: dict) -> None:
        action = task.action
        if isinstance(action, ConditionTask):
            left = resolve(action.left, run.parameters, values)
            right = resolve(action.right, run.parameters, values)
            task_run.parameters = [left, action.op, right]
            task_run.outcome = "true" if _compare(left, action.op, right) else "false"
            return
        if isinstance(action, RunJobTask):
            child_parameters = {k: resolve(v, run.parameters, values) for k, v in action.job_parameters.items()}
            child = self.run(action.job, child_parameters, parent_run_id=run.run_id)
            task_run.child_run_id = child.run_id
            if child.status != SUCCESS:
                failed = child.failed_task
                where = f" at task {failed.task_key}: {failed.error}" if failed else ""
                raise RuntimeError(f"child run {child.run_id} of {action.job} {child.status}{where}")
            return
        if isinstance(action, AlertTask):
            task_run.parameters = [action.alert]
            task_run.values = dict(self.alert_evaluator(action.alert))
            return
        if isinstance(action, WheelTask):
            argv = [resolve(p, run.parameters, values) for p in action.parameters]
            task_run.parameters = argv
            context = TaskContext(run.run_id, task.key, run_dir / "task_values")
            context.values_file.unlink(missing_ok=True)  # a retry starts from a clean slate
            code = self._call_with_timeout(task, action.entry_point, argv, context)
            values_file = context.values_file
            # A file that is not JSON fails the task with a message naming it: its dependants never run on a guess.
            task_run.values = read_json(values_file, f"the task values of {task.key}") if values_file.exists() else {}
            if code != 0:
                raise RuntimeError(f"{action.entry_point} exited with code {code}")
            return
        raise WorkflowError(f"task {task.key!r}: unsupported action {type(action).__name__}")

    def _call_with_timeout(self, task: Task, entry_point: str, argv: list[str], context: TaskContext) -> int:
        """The entry point's exit code, called in a thread whose context is ``context``; a TimeoutError after
        ``timeout_seconds``, once the task is ended (its later writes refused)."""
        result: dict[str, object] = {}

        def target() -> None:
            try:
                result["code"] = self.executor(entry_point, argv)
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
                result["error"] = error
            if context.ended:  # nobody reads `result` any more: say how the abandoned attempt ended
                if "error" in result:
                    log.error(
                        "task %s of run %s, abandoned after its timeout, failed: %s",
                        context.task_key,
                        context.run_id,
                        result["error"],
                    )
                else:
                    log.warning(
                        "task %s of run %s, abandoned after its timeout, returned %s; ignored",
                        context.task_key,
                        context.run_id,
                        result["code"],
                    )

        run_in_task = task_context(context).run
        worker = threading.Thread(target=run_in_task, args=(target,), name=f"task-{task.key}", daemon=True)
        worker.start()
        worker.join(task.timeout_seconds)
        if worker.is_alive():
            if not context.end("timed out", self.write_drain_seconds):
                log.warning(
                    "task %s of run %s: a write still under way %.0fs after the timeout; the run goes on without it",
                    context.task_key,
                    context.run_id,
                    self.write_drain_seconds,
                )
            raise TimeoutError(f"{entry_point} timed out after {task.timeout_seconds}s")
        if "error" in result:
            raise result["error"]  # type: ignore[misc]
        return int(result["code"])  # type: ignore[arg-type]

    @staticmethod
    def _save(run: WorkflowRun, run_dir: Path) -> None:
        write_text_atomically(run_dir / "run.json", json.dumps(run.to_json(), indent=2, default=str))


def _compare(left: str, op: str, right: str) -> bool:
    try:
        a, b = float(left), float(right)
    except ValueError:
        a, b = left, right  # type: ignore[assignment]
    return {
        "EQUAL_TO": a == b,
        "NOT_EQUAL": a != b,
        "GREATER_THAN": a > b,
        "GREATER_THAN_OR_EQUAL": a >= b,
        "LESS_THAN": a < b,
        "LESS_THAN_OR_EQUAL": a <= b,
    }[op]


def load_run(run_id: str, home: Path | None = None) -> WorkflowRun:
    path = (home or runs_dir()) / run_id / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"no run {run_id!r} under {path.parent.parent}")
    data = read_json(path, f"the record of run {run_id}")
    data["tasks"] = {k: TaskRun(**v) for k, v in data["tasks"].items()}
    return WorkflowRun(**data)
