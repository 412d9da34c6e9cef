"""The weekly loop of the main job (`mlops demo`): a model's data lived through a week at a time on this machine,
as production would (the demo environment's model by default; any model whose package has a replay, see
``local.demo.replays``).

The model workflow runs in dev, then the same code in staging (a small slice) and in prod (the weeks before the
window, or its first weeks when it starts at the data's first month: ``ReplayConfig``). Then prod lives through the
window, a week at a time, with the environment's own job graphs on the local runner (the same graphs Databricks
runs):

1. the week's rows of the model's streamed source land, a file per day; the streaming job scores the first six days
   and, beside it on a thread of its own (``GraphInBackground``), the batch job the seventh, as jobs on their own
   schedules would. The batch job then publishes to the online store (dynalite): the publish needs nothing of what
   follows and nothing that follows needs it, so it goes on beside steps 3 to 6; the week ends once it has;
2. live requests for a sample of the week's rows reach the serving gateway (Champion/Challenger split), as the
   model's replay says a client sends them;
3. the week's labels become known: the labels job joins them into the predictions and the served requests;
4. the quality monitor refreshes its metric tables; the SQL alerts are evaluated (people hear of them through the
   webhook receiver);
5. beside step 4 (it reads the labelled shadow rows, not the monitors), the online Champion/Challenger decision runs
   a paired test on those rows (while there is a Challenger, the streaming and batch jobs score every row with it
   too), before a retrained version can replace it;
6. the retraining job runs, as the daily-monitoring job starts it after the alerts: its check runs the same alert
   SQL and the champion's age, and retrains through the model workflow (validation, Champion vs Challenger) if so.

Two references are computed beside the loop, on the same labelled rows: the first prod champion never retrained,
and a model retrained every week on the same window length (the costly upper bound). Everything the report shows is
in ``ReplayResult``; events (alerts, retraining, promotions) are reported as they happen.

The live requests are ``traffic``'s, the references ``references``'; the processes around the loop (the gateway,
dynalite, the webhook receiver) are ``services``'.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import tempfile
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from jobs.platform import build_platform
from jobs.platform.registry import CHALLENGER, CHAMPION
from local.demo import ReplayError
from local.demo.config import DEMO_ENV, ReplayConfig
from local.demo.records import Event, OnEvent, Progress, ReplayResult, WeekRecord, timed
from local.demo.references import ReferenceProcess, References, score_loop
from local.demo.traffic import Traffic
from local.paths import mlflow_tracking_uri, mlops_home, table_path, warehouse_dir
from local.runner import SUCCESS, LocalRunner, TaskRun, WorkflowRun, load_run, run_entry_point
from spec.config import ENVIRONMENTS, Environment
from spec.monitoring import describe_alert_row

logger = logging.getLogger(__name__)


class Replay:
    """Runs the lifecycle; ``gateway_url``/``token`` reach the serving gateway the caller started for prod."""

    def __init__(
        self,
        config: ReplayConfig,
        *,
        gateway_url: str,
        token: str,
        webhook_url: str,
        progress: Progress = lambda phase, done, total, label: None,
        on_event: OnEvent = lambda event: None,
        on_spawn: Callable[[str, int], None] = lambda name, pid: None,
        env_name: str = DEMO_ENV,
    ) -> None:
        self.config = config
        self.env: Environment = ENVIRONMENTS[env_name]
        if config.model != self.env.model_name:
            raise ReplayError(
                f"environment {self.env.name!r} runs model {self.env.model_name!r}, not {config.model!r}: the demo "
                "replays the model of the environment it lives in"
            )
        self.replay_of = config.replay
        self.webhook_url = webhook_url
        self.progress = progress
        self.on_event = on_event
        self.on_spawn = on_spawn  # told of each process the replay starts (its name and pid)
        self.runner = LocalRunner(self.env)
        self.platform = build_platform(self.env)
        self.traffic = Traffic(
            self.env,
            self.replay_of,
            gateway_url=gateway_url,
            token=token,
            requests_per_week=config.requests_per_week,
            rng=random.Random(config.seed),
        )
        self.references = References(self.env, self.platform, config)
        self.first_champion: str | None = None
        self.result = ReplayResult(
            self.env.name,
            config.start.isoformat(),
            config.end.isoformat(),
            config.seed,
            model=config.model,
            rows=self.replay_of.rows,
            quality=self.replay_of.quality,
        )

    # ---- the steps ------------------------------------------------------------------------------------------------

    def initial_training(self) -> None:
        """The model workflow in dev and staging (the code's way to prod), then prod's first champion."""
        c = self.config
        training_start, initial_end = c.training_window
        # dev and staging: the integration slice CI runs too (a quarter, 15,000 rows), from the first champion's
        # first day and inside the data.
        quarter = (training_start, min(training_start + timedelta(days=89), c.last_day))
        plans = [
            (name, {"start_date": quarter[0], "end_date": quarter[1], "training_start": quarter[0],
                    "training_end": quarter[1], "max_rows": "15000"})
            for name in c.promotion_path
        ]  # fmt: skip
        plans.append(
            (
                self.env.name,
                {"start_date": c.first_day, "end_date": c.last_day, "training_start": training_start,
                 "training_end": initial_end,
                 "max_rows": str(self.env.retraining.max_rows)},
            )
        )  # fmt: skip
        logger.info("prod's first champion: %s", c.describe_training())
        with timed(self.result, "initial training"):
            for i, (name, params) in enumerate(plans):
                self.progress("initial training", i, len(plans), f"model workflow in {name}")
                runner = self.runner if name == self.env.name else LocalRunner(ENVIRONMENTS[name])
                run = runner.run("model-training", {k: str(v) for k, v in params.items()})
                if run.status != "SUCCESS":
                    failed = run.failed_task
                    raise ReplayError(
                        f"the model workflow failed in {name} at task {failed.task_key if failed else '?'}: "
                        f"{failed.error if failed else run.status}"
                    )
                self.event(params["training_end"], "training", f"{name}: model workflow succeeded")
                if name == self.env.name:
                    self.approve_and_deploy(params["training_end"])
            self.progress("initial training", len(plans), len(plans), "done")
        champion = self.platform.registry.alias_version(CHAMPION)
        if champion is None:
            raise ReplayError(f"prod has no champion after its first model workflow: see the run under {mlops_home()}")
        self.first_champion = champion
        training = c.describe_training()
        self.result.initial_training = {
            "start": training_start.isoformat(),
            "end": initial_end.isoformat(),
            "inside_window": c.trains_inside,
            "description": training,
        }
        self.event(initial_end.isoformat(), "promotion", f"prod: version {champion} is the first champion, {training}")

    def replay(self) -> ReplayResult:
        weeks = self.config.weeks()
        with ExitStack() as running:
            # The weekly-retraining reference fits its models in a process of its own while the weeks go by.
            reference = (
                running.enter_context(self.references.start_weekly(weeks, self.on_spawn))
                if self.config.references
                else None
            )
            with timed(self.result, "replay"):
                self.traffic.wait_for_gateway()
                for i, week in enumerate(weeks):
                    self.progress("replay", i, len(weeks), f"week of {week}")
                    self.result.weeks.append(self.week(week))
                self.progress("replay", len(weeks), len(weeks), "done")
            score_loop(self.env, self.replay_of, self.result.weeks)
            if reference is None:
                self.result.references_missing = "mlops demo --no-references"
            else:
                with timed(self.result, "references"):
                    self.progress("references", 0, 1, "waiting for the weekly-retraining reference")
                    weekly = self.weekly_reference(reference, weeks[-1])
                    self.references.score(self.result.weeks, self.first_champion, weekly)
                    self.progress("references", 1, 1, "done")
        self.result.paths = {
            "mlflow_ui": f"mlflow ui --backend-store-uri {mlflow_tracking_uri()}",
            "warehouse": str(warehouse_dir()),
            "predictions_table": str(table_path(self.env.predictions_table)),
            "served_table": str(table_path(self.env.served_table)),
            "dashboard": f"MLOPS_HOME={mlops_home()} mlops dashboard --env {self.env.name}",
        }
        return self.result

    def week(self, week: date) -> WeekRecord:
        from local.landing import land_rows

        record = WeekRecord(week.isoformat())
        registry = self.platform.registry
        days = [week + timedelta(days=i) for i in range(7)]
        # The publish starts once both scoring jobs have committed, so no row commits behind its watermark: no
        # lookback (its default, two hours of wall clock, would re-read the whole compressed year each week).
        day = days[6].isoformat()
        params = {"start_date": day, "end_date": day, "publish_lookback_minutes": "0"}
        # The batch job on a thread of its own, beside the stream, as two jobs on their own schedules run: the week
        # goes on once both have scored, the batch job's publish once told to.
        batch = GraphInBackground(self.runner, "batch-inference", params, week, hold_after="score")
        try:
            with record.step("stream"):
                land_rows(self.env, days[0], days[5])
                stream = self.run_task("mlops-score-stream", ["--trigger", "available-now"], week)
            record.scored_stream = int(stream.get("scored_rows", 0))
            record.rejected += int(stream.get("rejected_rows", 0))
            with record.step("batch"):
                # What is left of the batch job's scoring once the stream has scored.
                score = batch.task_run("score")
            record.scored_batch = int(score.values.get("scored_rows", 0))
            record.rejected += int(score.values.get("rejected_rows", 0))
            self.serve(week, record)
            # The publish goes on beside the rest of the week; it waited for the live requests, whose latencies are
            # the gateway's alone then.
            batch.go_on()
            self.week_after_serving(week, record)
        except BaseException:
            batch.join_after_failure()  # the replay stops: its publish must not outlive it
            raise
        with record.step("publish"):
            # The batch job's publish went on beside the week's other jobs; the week ends once it has.
            record.published = int(batch.result().tasks["publish"].values.get("published_items", 0))
        record.champion = registry.alias_version(CHAMPION)
        record.challenger = registry.alias_version(CHALLENGER)
        if record.challenger and record.challenger != record.champion:
            from jobs.promotion import challenger_percent

            record.challenger_percent = challenger_percent(self.platform, record.challenger)
        logger.info("week of %s took %s", week, record.seconds)
        return record

    def serve(self, week: date, record: WeekRecord) -> None:
        with record.step("serving"):
            served = self.traffic.serve_week(week)
        record.served_requests, record.served_errors = served.requests, served.errors
        record.served_p50_ms, record.served_p95_ms = served.p50_ms, served.p95_ms
        if served.errors:
            self.event(week, "serving", f"{served.errors} of {served.requests} requests failed")

    def week_after_serving(self, week: date, record: WeekRecord) -> None:
        """The week's jobs once its live requests are served: labels, then the monitors and alerts with the online
        decision beside them (it reads the labelled shadow rows, not the monitors), then retraining."""
        from local.alerts import evaluate_alerts
        from spec.monitoring import monitored_tables

        with record.step("labels"):
            self.run_graph("labels", {"as_of": (week + timedelta(days=7)).isoformat()}, week)
        # The online decision before retraining: a Challenger is judged on the week's labelled shadow rows before a
        # retrained version can take its place (decided after, it would always be a Challenger of no evidence yet).
        # Its events are collected as they happen and told after the alerts', in the order a run one after the other
        # tells them, whether it ends or fails (an approval it recorded is told even when its second run fails).
        decided: list[Event] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"replay-decision-{week}") as pool:
            deciding = pool.submit(contextvars.copy_context().run, self.decide_online, week, decided)
            try:
                with record.step("monitor"):
                    # The daily-monitoring job's refresh: each monitor on its own, both at once, as Lakehouse
                    # Monitoring's.
                    self.platform.monitors.refresh([m.table for m in monitored_tables(self.env)])
                with record.step("alerts"):
                    alerts = evaluate_alerts(self.env, self.platform.sql, webhook_url=self.webhook_url)
            except BaseException:
                if (error := deciding.exception()) is not None:  # said, not lost behind the error that goes up
                    logger.error("week of %s: the online decision failed too: %s", week, error, exc_info=error)
                self.tell(decided)
                raise
            for alert in alerts:
                record.alerts[alert.name] = alert.state
                if alert.state == "TRIGGERED" and alert.previous_state != "TRIGGERED":
                    self.event(week, "alert", f"{alert.name} fired: {describe_alert_row(alert.details)}")
                if alert.state == "ERROR" and alert.previous_state != "ERROR":
                    self.event(week, "alert", f"{alert.name} is in ERROR: {alert.reason}")
            with record.step("online decision"):
                # What is left of the decision once the alerts are evaluated.
                try:
                    record.online_decision = deciding.result()
                finally:
                    self.tell(decided)
        with record.step("retraining"):
            self.retrain(week, record)

    def tell(self, events: list[Event]) -> None:
        for event in events:
            self.event(event.week_start, event.kind, event.message)

    def decide_online(self, week: date, events: list[Event]) -> str:
        """The champion-challenger job's action; the events to tell of it are added to ``events`` as they happen.
        Where its "promote" waits for a person (prod's manual approval), the demo plays the approver and runs the job
        again, which promotes on the same evidence."""
        decision = self.run_graph("champion-challenger", {}, week).tasks["decide"].values
        challenger = str(decision.get("challenger_version") or "")
        if decision.get("action") == "wait" and challenger and self.awaiting_approval(challenger):
            events.append(self.approve(week, challenger, "online", tell=False))
            decision = self.run_graph("champion-challenger", {}, week).tasks["decide"].values
        action = str(decision.get("action", "none"))
        if action not in ("none", "wait"):
            events.append(Event(week.isoformat(), "online", f"challenger {action}: {decision.get('reason', '')}"))
        return action

    def awaiting_approval(self, version: str) -> bool:
        from jobs.approval import AWAITING_APPROVAL
        from jobs.core import contract
        from jobs.platform.registry import ModelRef

        tags = self.platform.registry.version_tags(ModelRef(self.env.registered_model, version))
        return tags.get(contract.PROMOTION_DECISION) == AWAITING_APPROVAL and contract.APPROVAL not in tags

    def approve(self, when: date | str, version: str, source: str, *, tell: bool = True) -> Event:
        """The demo's verdict on ``version`` as the approver; its event, told now unless ``tell`` is false."""
        from jobs.approval import record_verdict
        from jobs.platform.registry import ModelRef

        ref = ModelRef(self.env.registered_model, version)
        record_verdict(self.platform, ref, approve=True, reason="the demo plays the approver", by="demo")
        message = f"version {version} waited for approval ({source}): approved (the demo plays the approver)"
        event = Event(when if isinstance(when, str) else when.isoformat(), "approval", message)
        if tell:
            self.event(event.week_start, event.kind, event.message)
        return event

    def retrain(self, week: date, record: WeekRecord) -> None:
        before = self.platform.registry.alias_version(CHAMPION)
        run = self.runner.run("retraining", {})
        check = run.tasks["check"].values if "check" in run.tasks else {}
        if check.get("retrain") != "true":
            if run.status != "SUCCESS":
                raise ReplayError(f"week of {week}: the retraining check failed: {_failure(run)}")
            return
        record.retrained, record.retrain_reason = True, str(check.get("reason", ""))
        self.event(
            week,
            "retraining",
            f"retraining on {check.get('training_start')}..{check.get('training_end')}: {record.retrain_reason}",
        )
        child = self.runner_child(run)
        tasks = child.tasks if child is not None else {}
        record.new_version = str(tasks["train"].values.get("model_version", "")) if "train" in tasks else None
        record.validation = str(tasks["validate"].values.get("validation_status", "")) if "validate" in tasks else None
        if run.status != "SUCCESS":
            # A failed validation is the loop working: the run is red, people are told, the champion keeps serving.
            # Anything else (a crash in train or validate, say) stops the replay.
            failed = child.failed_task if child is not None else None
            if failed is None or failed.task_key != "validation_failed":
                raise ReplayError(f"week of {week}: the retraining run failed: {_failure(child or run)}")
            self.event(
                week, "validation_failed", f"version {record.new_version} FAILED validation: the champion keeps serving"
            )
        if run.status == "SUCCESS" and record.validation == "PASSED":
            self.approve_and_deploy(week)
        after = self.platform.registry.alias_version(CHAMPION)
        record.promoted = after != before
        if record.promoted:
            self.event(week, "promotion", f"version {after} is the champion (was {before})")
        elif record.validation == "PASSED":
            self.event(
                week,
                "retraining",
                f"version {record.new_version} is the challenger; the champion {after} keeps serving",
            )

    def approve_and_deploy(self, when: date | str) -> None:
        """Where promotions wait for a person (``promotion.approval`` manual, prod's default), the model-deployment
        job deploys the new Challenger, as its model trigger starts it on Databricks; when it waits for approval the
        demo plays the approver (`mlops approve`'s verdict) and runs the job again, which promotes it."""
        if self.env.promotion.approval != "manual":
            return
        waiting = self.run_graph("model-deployment", {}, when)
        if waiting.tasks["approval"].values.get("awaiting_approval") != "true":
            return
        version = str(self.platform.registry.alias_version(CHALLENGER))
        self.approve(when, version, "deploy")
        self.run_graph("model-deployment", {"model_version": version}, when)

    def runner_child(self, run):
        retrain = run.tasks.get("retrain")
        child_id = retrain.child_run_id if retrain is not None else None
        return load_run(child_id, self.runner.home) if child_id else None

    def run_graph(self, name: str, params: dict[str, str], week: date):
        return succeeded(self.runner.run(name, params), week)

    def run_task(self, entry_point: str, args: list[str], week: date) -> dict[str, Any]:
        """One job entry point outside a graph (the streaming job: its graph's publish step runs with the batch), as
        a task of its own: its task values go to a file of its own (``TaskContext``), not through the environment."""
        from local.adapters import TaskContext, task_context

        with tempfile.TemporaryDirectory(prefix="task-values-") as folder:
            task = TaskContext(f"replay-{entry_point}-{week}-{uuid.uuid4().hex[:8]}", "task", Path(folder))
            code = task_context(task).run(run_entry_point, entry_point, ["--env", self.env.name, *args])
            values = json.loads(task.values_file.read_text()) if task.values_file.exists() else {}
        if code != 0:
            raise ReplayError(f"week of {week}: {entry_point} exited with code {code}")
        return values

    def weekly_reference(self, reference: ReferenceProcess, last_week: date) -> dict[str, float | None]:
        """The reference process's result; when it failed, none (said as an event): the year replayed is kept."""
        try:
            return reference.result()
        except RuntimeError as error:
            self.result.references_missing = "the weekly-retraining reference failed"
            self.event(last_week, "reference", f"{error}; the report has no weekly-retrained reference")
            return {}

    def event(self, week: date | str, kind: str, message: str) -> None:
        event = Event(week if isinstance(week, str) else week.isoformat(), kind, message)
        self.result.events.append(event)
        logger.info("event %s %s: %s", event.week_start, kind, message)
        self.on_event(event)


class GraphInBackground:
    """A run of a job graph on a thread of its own, as a job on a schedule of its own runs beside the others: its tasks
    are told as they end (``task_run``), its run once it has (``result``). With ``hold_after``, the run waits once that
    task has succeeded until told to go on (``go_on``; ``join`` and ``result`` tell it too)."""

    def __init__(
        self, runner: LocalRunner, name: str, params: dict[str, str], week: date, *, hold_after: str | None = None
    ) -> None:
        self.name, self.week, self.hold_after = name, week, hold_after
        self._go = threading.Event()
        self._changed = threading.Condition()
        self._ended: dict[str, TaskRun] = {}
        self._run: WorkflowRun | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._target, args=(runner, params), name=f"replay-{name}-{week}", daemon=True
        )
        self._thread.start()

    def _target(self, runner: LocalRunner, params: dict[str, str]) -> None:
        try:
            run = runner.run(self.name, params, on_task_end=self._task_ended)
        except BaseException as error:  # noqa: BLE001 - handed to the replay's thread by result()
            with self._changed:
                self._error = error
                self._changed.notify_all()
            return
        with self._changed:
            self._run = run
            self._changed.notify_all()

    def _task_ended(self, task_run: TaskRun) -> None:
        with self._changed:
            self._ended[task_run.task_key] = task_run
            self._changed.notify_all()
        if task_run.task_key == self.hold_after and task_run.status == SUCCESS:
            self._go.wait()

    def go_on(self) -> None:
        self._go.set()

    def task_run(self, key: str) -> TaskRun:
        """The task's run once it has ended; a ReplayError, once the whole run has ended, when it did not succeed."""
        with self._changed:
            self._changed.wait_for(lambda: key in self._ended or self._run is not None or self._error is not None)
        task = self._ended.get(key)
        if task is None or task.status != SUCCESS:
            self.result()  # the run's failure, said as the replay says it
            raise ReplayError(f"week of {self.week}: the {self.name} run ended without its task {key!r} succeeding")
        return task

    def join(self) -> None:
        self.go_on()
        self._thread.join()

    def join_after_failure(self) -> None:
        """The run let go on to its end while the replay stops for a failure of its own; the run's failure, if it
        has one, is logged, not lost behind the replay's."""
        try:
            self.result()
        except ReplayError as error:
            logger.error("%s (the replay stops for another failure)", error)

    def result(self) -> WorkflowRun:
        """The run once it has ended; a ReplayError that says where when it failed or crashed."""
        self.join()
        if self._error is not None:
            raise ReplayError(f"week of {self.week}: the {self.name} run crashed: {self._error}") from self._error
        assert self._run is not None  # the thread ended without an error: it set the run
        return succeeded(self._run, self.week)


def _failure(run: WorkflowRun) -> str:
    failed = run.failed_task
    return f"{failed.task_key}: {failed.error}" if failed else run.status


def succeeded(run: WorkflowRun, week: date | str) -> WorkflowRun:
    """The run when it succeeded; a ReplayError that says where it failed otherwise."""
    if run.status != SUCCESS:
        raise ReplayError(f"week of {week}: the {run.graph} run failed at {_failure(run)}")
    return run
