"""A year of MLOps on the real 2013 New York flights, replayed on this machine: the main job (`mlops demo`).

The model workflow runs in dev, then the same code in staging (a small slice) and in prod (the first weeks of 2013).
Then prod lives through the rest of the year, a week at a time, with the environment's own job graphs on the local
runner (the same graphs Databricks runs):

1. the week's flights land, a file per day; the streaming job scores the first six days, the batch job the seventh,
   and publishes to the online store (dynalite);
2. live requests for a sample of the week's flights reach the serving gateway (Champion/Challenger split);
3. the week's flights arrive: the labels job joins their delays into the predictions and the served requests;
4. the quality monitor refreshes its metric tables; the SQL alerts are evaluated (people hear of them through the
   webhook receiver);
5. the retraining job runs, as the daily-monitoring job starts it after the alerts: its check runs the same alert
   SQL and the champion's age, and retrains through the model workflow (validation, Champion vs Challenger) if so;
6. the online Champion/Challenger decision runs on the labelled served traffic.

Two references are computed beside the loop, on the same labelled flights: the first prod champion never retrained,
and a model retrained every week on the same window length (the costly upper bound). Everything the report shows is
in ``ReplayResult``; events (alerts, retraining, promotions) are reported as they happen.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs.core.columns import FEATURE_COLUMNS, FLIGHT_KEY, LABEL, PROBABILITY, SCHEDULED_DEPARTURE
from jobs.core.evaluation import roc_auc
from jobs.core.requests import flight_key_id
from jobs.platform import build_platform
from jobs.platform.registry import CHALLENGER, CHAMPION, ModelRef
from local.paths import mlflow_tracking_uri, mlops_home, table_path, warehouse_dir, work_dir
from spec.config import ENVIRONMENTS, Environment
from spec.monitoring import describe_alert_row

logger = logging.getLogger("local.replay")

YEAR_START, YEAR_END = date(2013, 1, 1), date(2013, 12, 31)
DEFAULT_INITIAL_WEEKS = 8


@dataclass(frozen=True)
class ReplayConfig:
    """The replay's window (``months`` months from ``start``) and the first champion's training.

    The window is replayed a Monday-to-Sunday week at a time (the monitor's weekly windows): every whole week inside
    it, so up to six days at each end of a month are not replayed. Prod's first champion trains on the
    ``initial_weeks`` before the window's start when the data (2013) has them (fewer when it has fewer: a window
    starting in February trains on January). Only a window starting at the data's first month trains its first
    champion inside itself, on its first ``initial_weeks``, and replays the rest. ``initial_weeks`` None: 8, or at
    most half the window when the training is inside it (so ``--months 1`` replays January's last two weeks).
    """

    start: date = YEAR_START
    months: int = 12
    seed: int = 7
    initial_weeks: int | None = None
    requests_per_week: int = 60
    references: bool = True
    # The code's way to prod: the model workflow in these environments first (empty: prod only, for a quick look).
    promotion_path: tuple[str, ...] = ("dev", "staging")

    def __post_init__(self) -> None:
        if not 1 <= self.months <= 12:
            raise ValueError(f"months must be 1..12, got {self.months}")
        if not (YEAR_START <= self.start <= YEAR_END) or self.start.day != 1:
            raise ValueError(f"start must be the first day of a month of 2013, got {self.start}")
        if self.initial_weeks is not None and self.initial_weeks < 2:
            raise ValueError(f"initial_weeks must be >= 2 (the first champion needs data), got {self.initial_weeks}")
        if self.end > YEAR_END:
            raise ValueError(f"{self.start} plus {self.months} months goes past 2013, the data's year")
        if self.requests_per_week < 1:
            raise ValueError(f"requests_per_week must be >= 1, got {self.requests_per_week}")
        if not self.weeks():
            # Only a window trained inside itself can run out of weeks: every month holds three whole weeks.
            fits = [
                n for n in range(2, self.training_weeks) if _inside_replay_start(self.start, n) + _TO_SUNDAY <= self.end
            ]
            raise ValueError(
                f"{self.months} month(s) from {self.start} leave no whole week to replay after {self.training_weeks} "
                f"weeks of initial training inside the window (the data has nothing before {YEAR_START}): more months"
                + (f", or at most {fits[-1]} initial weeks" if fits else "")
            )

    @property
    def end(self) -> date:
        month = self.start.month - 1 + self.months
        first_after = date(self.start.year + month // 12, month % 12 + 1, 1)
        return first_after - timedelta(days=1)

    @property
    def trains_inside(self) -> bool:
        """The first champion trains on the window's first weeks: the data has nothing before it."""
        return self.start == YEAR_START

    @property
    def training_weeks(self) -> int:
        """The initial weeks asked (``initial_weeks``, or the default for this window)."""
        if self.initial_weeks is not None:
            return self.initial_weeks
        if self.trains_inside:
            return min(DEFAULT_INITIAL_WEEKS, max(2, ((self.end - self.start).days + 1) // 14))
        return DEFAULT_INITIAL_WEEKS

    @property
    def replay_start(self) -> date:
        """The first replayed Monday. Trained inside the window: the Monday on or before ``start`` +
        ``training_weeks`` (the initial training can be up to six days shorter than asked). Trained before it: the
        window's first Monday."""
        if self.trains_inside:
            return _inside_replay_start(self.start, self.training_weeks)
        return self.start + timedelta(days=-self.start.weekday() % 7)

    @property
    def training_window(self) -> tuple[date, date]:
        """The first champion's training days, first and last (inclusive)."""
        if self.trains_inside:
            return self.start, self.replay_start - timedelta(days=1)
        return max(YEAR_START, self.start - timedelta(weeks=self.training_weeks)), self.start - timedelta(days=1)

    def describe_training(self) -> str:
        """Where the first champion's data comes from, in a sentence (said in the log, the events and the report)."""
        first, last = self.training_window
        days = (last - first).days + 1
        span = f"{days // 7} week(s)" + (f" and {days % 7} day(s)" if days % 7 else "")
        if self.trains_inside:
            return (
                f"trained on {first}..{last}, the window's first {span}: the data has nothing before {YEAR_START}, "
                f"so the replay starts on {self.replay_start}"
            )
        if days < self.training_weeks * 7:
            return (
                f"trained on {first}..{last}, the {span} before the window (the data starts on {YEAR_START}; "
                f"{self.training_weeks} weeks asked)"
            )
        return f"trained on {first}..{last}, the {span} before the window"

    def weeks(self) -> list[date]:
        """The replayed Mondays: every Monday-to-Sunday week from ``replay_start`` inside the window."""
        weeks, week = [], self.replay_start
        while week + _TO_SUNDAY <= self.end:
            weeks.append(week)
            week += timedelta(weeks=1)
        return weeks


_TO_SUNDAY = timedelta(days=6)  # from a replayed week's Monday to its Sunday


def _inside_replay_start(start: date, initial_weeks: int) -> date:
    first = start + timedelta(weeks=initial_weeks)
    return first - timedelta(days=first.weekday())


@dataclass
class WeekRecord:
    week_start: str
    champion: str | None = None
    challenger: str | None = None
    challenger_percent: int = 0
    scored_stream: int = 0
    scored_batch: int = 0
    rejected: int = 0
    published: int = 0
    served_requests: int = 0
    served_errors: int = 0
    served_p50_ms: float | None = None
    served_p95_ms: float | None = None
    labelled: int = 0
    auc_loop: float | None = None
    auc_never: float | None = None
    auc_weekly: float | None = None
    alerts: dict[str, str] = field(default_factory=dict)
    retrained: bool = False
    retrain_reason: str = ""
    new_version: str | None = None
    validation: str | None = None
    promoted: bool = False
    online_decision: str | None = None
    # Wall seconds of each step of the week (what the demo spends its time on).
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 2)


@dataclass(frozen=True)
class Event:
    week_start: str
    kind: str
    message: str


@dataclass
class ReplayResult:
    env: str
    start: str
    end: str
    seed: int
    weeks: list[WeekRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    wall_seconds: float | None = None  # the demo's, once the report is written
    # Why the never/weekly-retrained references are missing (None: they were computed).
    references_missing: str | None = None
    # The first champion's training days ("start", "end"), whether inside the window, and that in a sentence.
    initial_training: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[str, int, int, str], None]
OnEvent = Callable[[Event], None]


class ReplayError(RuntimeError):
    """The replay cannot go on; the message says which step failed and why."""


@contextmanager
def timed(result: ReplayResult, phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        result.phases[phase] = round(result.phases.get(phase, 0.0) + time.perf_counter() - started, 1)


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
        env_name: str = "prod",
    ) -> None:
        from local.runner import LocalRunner

        self.config = config
        self.env: Environment = ENVIRONMENTS[env_name]
        self.gateway_url = gateway_url.rstrip("/")
        self.token = token
        self.webhook_url = webhook_url
        self.progress = progress
        self.on_event = on_event
        self.on_spawn = on_spawn  # told of each process the replay starts (its name and pid)
        self.runner = LocalRunner(self.env)
        self.platform = build_platform(self.env)
        self.random = random.Random(config.seed)
        self.first_champion: str | None = None
        self._year_examples: pd.DataFrame | None = None
        self.result = ReplayResult(self.env.name, config.start.isoformat(), config.end.isoformat(), config.seed)

    # ---- the steps ------------------------------------------------------------------------------------------------

    def initial_training(self) -> None:
        """The model workflow in dev and staging (the code's way to prod), then prod's first champion."""
        from local.runner import LocalRunner

        c = self.config
        training_start, initial_end = c.training_window
        # dev and staging: the integration slice CI runs too (a quarter, 15,000 rows), from the first champion's
        # first day and inside the data.
        quarter = (training_start, min(training_start + timedelta(days=89), YEAR_END))
        plans = [
            (name, {"start_date": quarter[0], "end_date": quarter[1], "training_start": quarter[0],
                    "training_end": quarter[1], "max_rows": "15000"})
            for name in c.promotion_path
        ]  # fmt: skip
        plans.append(
            (
                self.env.name,
                {"start_date": YEAR_START, "end_date": YEAR_END, "training_start": training_start,
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
            reference = running.enter_context(self.start_reference(weeks)) if self.config.references else None
            with timed(self.result, "replay"):
                self.wait_for_gateway()
                for i, week in enumerate(weeks):
                    self.progress("replay", i, len(weeks), f"week of {week}")
                    self.result.weeks.append(self.week(week))
                self.progress("replay", len(weeks), len(weeks), "done")
            self.loop_auc()
            if reference is None:
                self.result.references_missing = "mlops demo --no-references"
            else:
                with timed(self.result, "references"):
                    self.progress("references", 0, 1, "waiting for the weekly-retraining reference")
                    self.references(self.weekly_reference(reference, weeks[-1]))
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

        from local.alerts import evaluate_alerts
        from local.landing import land_flights
        from spec.monitoring import monitored_tables

        record = WeekRecord(week.isoformat())
        registry = self.platform.registry
        days = [week + timedelta(days=i) for i in range(7)]
        with record.step("stream"):
            land_flights(self.env, days[0], days[5])
            stream = self.run_task("mlops-score-stream", ["--trigger", "available-now"], week)
        record.scored_stream = int(stream.get("scored_rows", 0))
        record.rejected += int(stream.get("rejected_rows", 0))
        with record.step("batch and publish"):
            # The replay's jobs run one after another, so no scoring run commits behind the publish watermark: no
            # lookback (its default, two hours of wall clock, would re-read the whole compressed year each week).
            day = days[6].isoformat()
            params = {"start_date": day, "end_date": day, "publish_lookback_minutes": "0"}
            batch = self.run_graph("batch-inference", params, week)
        record.scored_batch = int(batch.tasks["score"].values.get("scored_rows", 0))
        record.rejected += int(batch.tasks["score"].values.get("rejected_rows", 0))
        record.published = int(batch.tasks["publish"].values.get("published_items", 0))
        with record.step("serving"):
            self.serve_requests(week, record)
        with record.step("labels"):
            self.run_graph("labels", {"as_of": (week + timedelta(days=7)).isoformat()}, week)
        with record.step("monitor"):
            # The daily-monitoring job's refresh: each monitor on its own, both at once, as Lakehouse Monitoring's.
            self.platform.monitors.refresh([m.table for m in monitored_tables(self.env)])
        with record.step("alerts"):
            alerts = evaluate_alerts(self.env, self.platform.sql, webhook_url=self.webhook_url)
        for alert in alerts:
            record.alerts[alert.name] = alert.state
            if alert.state == "TRIGGERED" and alert.previous_state != "TRIGGERED":
                self.event(week, "alert", f"{alert.name} fired: {describe_alert_row(alert.details)}")
            if alert.state == "ERROR" and alert.previous_state != "ERROR":
                self.event(week, "alert", f"{alert.name} is in ERROR: {alert.reason}")
        with record.step("retraining"):
            self.retrain(week, record)
        with record.step("online decision"):
            decision = self.run_graph("champion-challenger", {}, week).tasks["decide"].values
        record.online_decision = str(decision.get("action", "none"))
        if record.online_decision not in ("none", "wait"):
            self.event(week, "online", f"challenger {record.online_decision}: {decision.get('reason', '')}")
        record.champion = registry.alias_version(CHAMPION)
        record.challenger = registry.alias_version(CHALLENGER)
        if record.challenger and record.challenger != record.champion:
            from jobs.promotion import challenger_percent

            record.challenger_percent = challenger_percent(self.platform, record.challenger)
        logger.info("week of %s took %s", week, record.seconds)
        return record

    def retrain(self, week: date, record: WeekRecord) -> None:
        before = self.platform.registry.alias_version(CHAMPION)
        run = self.runner.run("retraining", {})
        check = run.tasks["check"].values if "check" in run.tasks else {}
        if check.get("retrain") != "true":
            if run.status != "SUCCESS":
                raise ReplayError(f"week of {week}: the retraining check failed: {self._failure(run)}")
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
                raise ReplayError(f"week of {week}: the retraining run failed: {self._failure(child or run)}")
            self.event(
                week, "validation_failed", f"version {record.new_version} FAILED validation: the champion keeps serving"
            )
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

    def runner_child(self, run):
        from local.runner import load_run

        retrain = run.tasks.get("retrain")
        child_id = retrain.child_run_id if retrain is not None else None
        return load_run(child_id, self.runner.home) if child_id else None

    @staticmethod
    def _failure(run) -> str:
        failed = run.failed_task
        return f"{failed.task_key}: {failed.error}" if failed else run.status

    def run_graph(self, name: str, params: dict[str, str], week: date):
        run = self.runner.run(name, params)
        if run.status != "SUCCESS":
            raise ReplayError(f"week of {week}: the {name} run failed at {self._failure(run)}")
        return run

    def run_task(self, entry_point: str, args: list[str], week: date) -> dict[str, Any]:
        """One job entry point outside a graph (the streaming job: its graph's publish step runs with the batch)."""
        import os
        import tempfile

        from local.adapters import TASK_KEY_ENV, TASK_VALUES_DIR_ENV
        from local.runner import run_entry_point

        with tempfile.TemporaryDirectory(prefix="task-values-") as folder:
            saved = {k: os.environ.get(k) for k in (TASK_VALUES_DIR_ENV, TASK_KEY_ENV)}
            os.environ[TASK_VALUES_DIR_ENV], os.environ[TASK_KEY_ENV] = folder, "task"
            try:
                code = run_entry_point(entry_point, ["--env", self.env.name, *args])
            finally:
                for key, value in saved.items():
                    os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
            values_file = Path(folder) / "task.json"
            values = json.loads(values_file.read_text()) if values_file.exists() else {}
        if code != 0:
            raise ReplayError(f"week of {week}: {entry_point} exited with code {code}")
        return values

    def serve_requests(self, week: date, record: WeekRecord) -> None:
        """A sample of the week's flights as live requests, one flight each, named by its key."""
        import httpx

        rows = self.week_flights(week)
        if rows.empty:
            return
        sample = rows.sample(min(self.config.requests_per_week, len(rows)), random_state=self.random.randrange(2**31))
        url = f"{self.gateway_url}/serving-endpoints/{self.env.serving.endpoint_name}/invocations"
        before = self.inference_rows()
        latencies, errors = [], 0
        with httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=30) as client:
            for _, row in sample.iterrows():
                record_ = {c: (None if pd.isna(row[c]) else row[c]) for c in FEATURE_COLUMNS}
                body = {"dataframe_records": [record_], "client_request_id": flight_key_id(row)}
                started = time.perf_counter()
                response = client.post(url, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += response.status_code != 200
        self.wait_for_inference_rows(before + len(latencies))
        record.served_requests, record.served_errors = len(latencies), errors
        record.served_p50_ms = round(float(np.percentile(latencies, 50)), 2)
        record.served_p95_ms = round(float(np.percentile(latencies, 95)), 2)
        if errors:
            self.event(week, "serving", f"{errors} of {len(latencies)} requests failed")

    def wait_for_gateway(self, timeout: float = 60.0) -> None:
        """The gateway serves once it has loaded the champion the deploy job just put on the endpoint."""
        import httpx

        deadline, answer = time.monotonic() + timeout, "no answer"
        headers = {"Authorization": f"Bearer {self.token}"}
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.gateway_url}/ready", headers=headers, timeout=5)
                if response.status_code == 200:
                    return
                answer = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as error:
                answer = str(error)
            time.sleep(0.3)
        raise ReplayError(f"the serving gateway is not ready after {timeout:.0f} s: {answer}")

    def inference_rows(self) -> int:
        from deltalake import DeltaTable

        path = str(table_path(self.env.inference_table))
        return DeltaTable(path).to_pyarrow_dataset().count_rows() if DeltaTable.is_deltatable(path) else 0

    def wait_for_inference_rows(self, expected: int, timeout: float = 30.0) -> None:
        """The gateway writes its inference table in batches (about every second): the labels job must see them."""
        deadline = time.monotonic() + timeout
        while self.inference_rows() < expected:
            if time.monotonic() > deadline:
                raise ReplayError(
                    f"the inference table has {self.inference_rows()} rows after {timeout:.0f} s, not {expected}"
                )
            time.sleep(0.05)

    def week_flights(self, week: date) -> pd.DataFrame:
        """The week's scored flights with their features (from the predictions table)."""
        from deltalake import DeltaTable

        table = DeltaTable(str(table_path(self.env.predictions_table))).to_pyarrow_dataset()
        import pyarrow.dataset as ds

        frame = table.to_table(
            filter=(ds.field("sched_date") >= week) & (ds.field("sched_date") <= week + timedelta(days=6)),
            columns=[
                "sched_date",
                "carrier",
                "flight",
                "origin",
                "dest",
                "time_hour",
                *[c for c in FEATURE_COLUMNS if c not in ("carrier", "origin", "dest")],
            ],
        ).to_pandas()
        return frame.drop_duplicates(subset=["sched_date", "carrier", "flight", "origin", "dest", "time_hour"])

    # ---- how well each policy did ---------------------------------------------------------------------------------

    def labelled_predictions(self) -> pd.DataFrame:
        from deltalake import DeltaTable

        frame = (
            DeltaTable(str(table_path(self.env.predictions_table)))
            .to_pyarrow_table(columns=["sched_date", LABEL, PROBABILITY, "model_version", "source"])
            .to_pandas()
        )
        return frame[frame[LABEL].notna()]

    def loop_auc(self) -> None:
        """Each week's ROC AUC of what the loop served: the champion's predictions of the week's flights."""
        frame = self.labelled_predictions()
        frame["week"] = pd.to_datetime(frame["sched_date"]).dt.to_period("W-SUN").dt.start_time.dt.date
        for record in self.result.weeks:
            mine = frame[frame["week"] == date.fromisoformat(record.week_start)]
            record.labelled = len(mine)
            if len(mine):
                record.auc_loop = _auc(mine[LABEL].to_numpy(), mine[PROBABILITY].to_numpy())

    def start_reference(self, weeks: list[date]):
        """The year's labelled examples to a Parquet file, and the process that retrains on them every week."""
        from local.references import ReferenceProcess, ReferenceSpec

        folder = work_dir(self.env.name) / "references"
        folder.mkdir(parents=True, exist_ok=True)
        examples = folder / "examples.parquet"
        self.year_examples().to_parquet(examples)
        spec = ReferenceSpec(
            examples=str(examples),
            weeks=[w.isoformat() for w in weeks],
            window_days=self.env.retraining.window_days,
            max_rows=self.env.retraining.max_rows,
            seed=self.config.seed,
            out=str(folder / "weekly.json"),
        )
        process = ReferenceProcess(spec.write(folder / "spec.json"), mlops_home() / "references.log")
        self.on_spawn("reference", process.process.pid)
        return process

    def weekly_reference(self, reference, last_week: date) -> dict[str, float | None]:
        """The reference process's result; when it failed, none (said as an event): the year replayed is kept."""
        try:
            return reference.result()
        except RuntimeError as error:
            self.result.references_missing = "the weekly-retraining reference failed"
            self.event(last_week, "reference", f"{error}; the report has no weekly-retrained reference")
            return {}

    def references(self, weekly: dict[str, float | None]) -> None:
        """The never-retrained first champion on each week's labelled flights, and the weekly-retrained reference."""
        import mlflow.sklearn

        from jobs.core.model import labels, model_frame, predict_proba

        examples = self.year_examples()
        examples["week"] = pd.to_datetime(examples["sched_date"]).dt.to_period("W-SUN").dt.start_time.dt.date
        first = mlflow.sklearn.load_model(ModelRef(self.env.registered_model, self.first_champion).uri)
        for record in self.result.weeks:
            record.auc_weekly = weekly.get(record.week_start)
            test = examples[examples["week"] == date.fromisoformat(record.week_start)]
            if not test.empty and test[LABEL].nunique() == 2:
                record.auc_never = _auc(labels(test), predict_proba(first, model_frame(test)))

    def year_examples(self) -> pd.DataFrame:
        """Every labelled example of the replayed window, and of the retraining window before its first week (what
        the weekly reference trains on first), built by the training job's own join (computed once)."""
        if self._year_examples is not None:
            return self._year_examples.copy()
        from jobs.core.features import flight_examples

        tables = self.platform.tables
        retraining_window = self.config.replay_start - timedelta(days=self.env.retraining.window_days)
        examples = flight_examples(
            tables.read(self.env.flights_table),
            tables.read(self.env.weather_features_table),
            min(self.config.start, max(YEAR_START, retraining_window)),
            self.config.end,
        )
        # In a fixed order: Spark's row order after the join varies from run to run, and the weekly reference samples
        # its training rows from this frame.
        frame = examples.toPandas().sort_values([*FLIGHT_KEY, SCHEDULED_DEPARTURE], kind="stable")
        self._year_examples = frame.reset_index(drop=True)
        return self._year_examples.copy()

    def event(self, week: date | str, kind: str, message: str) -> None:
        event = Event(week if isinstance(week, str) else week.isoformat(), kind, message)
        self.result.events.append(event)
        logger.info("event %s %s: %s", event.week_start, kind, message)
        self.on_event(event)


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    value = roc_auc(np.asarray(y, dtype=int), np.asarray(p, dtype=float))
    return None if value is None else round(value, 4)


def write_report_data(result: ReplayResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    return path
