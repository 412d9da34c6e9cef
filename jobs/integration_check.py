"""mlops-integration-check: the check after each step of the integration-test graph (spec/workflows.py,
``integration_test``), asserting what that step wrote in this run; anything missing fails the task with one message
(``Missing``) that names the step and what was missing.

``--step start`` runs first and records what the checks compare with: when the run started (``started_at``) and the
Delta versions of the tables whose rows carry no time of their own (``table_versions``, JSON). Every other step takes
``--since <started_at>``, so rows, versions and items left by an earlier run never pass for this run's:

    ingest, features   each raw / feature table got a commit in this run and has rows in the window
    train              a version registered in this run, with its training tags (its name, version and URI become
                       this task's values, which the steps after it use)
    validate           the version's validation status is PASSED (else its reasons) and it is the challenger
    deploy             the version has a promotion decision, there is a champion, and the endpoint serves what the
                       aliases say, with their traffic
    requests           the model's request example sent to the endpoint through the platform's serving client: one
                       answer per record, of the problem type's kind; then its row in the inference table (status
                       200), waited for up to ``--inference-wait-minutes``
    score_batch,       predictions of the step's source scored in this run, by the registered model; rejects allowed,
    score_stream       each with its reason
    publish            every key scored in this run is in the online store with this run's prediction or a newer one
    labels             predictions scored in this run got their label
    monitors           the predictions' metric tables got a commit in this run, and its profile has windows in the
                       scored window
    alerts             every SQL alert's query judged (OK or TRIGGERED), none in ERROR

Task values: ``start``: ``started_at``, ``table_versions``; ``train``: ``model_name``, ``model_version``,
``model_uri``; ``requests``: ``answers``; ``alerts``: ``<alert>`` = its state.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobs.core import contract
from jobs.core.alert_verdict import run_alert_query
from jobs.core.decisions import PASSED
from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, exit_on_failure, iso_date, job_environment, job_parser, run_job, whole_number
from jobs.platform.registry import CHALLENGER, CHAMPION, ModelRef
from jobs.promotion import served_entities
from spec.columns import LABEL
from spec.errors import MlopsError
from spec.monitoring import alerts, monitored_tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

logger = logging.getLogger("jobs.integration_check")

# The predictions' ``source`` of each scoring job (jobs.batch_inference, jobs.streaming_inference: entry points
# never import each other, so the values are repeated here; a check on a wrong one finds nothing and fails).
SCORING_SOURCES = {"score_batch": "batch", "score_stream": "stream"}
# The publish check looks these many of the run's keys up in the online store.
PUBLISH_SAMPLE = 50
INFERENCE_POLL_SECONDS = 10.0


class Missing(MlopsError):
    """What a step should have written and did not; the message names the step. Not a ``JobError``: it leaves the
    entry point as an exception, so that the failed task's error (the local runner's record, the Databricks run's
    error) is this message, not only an exit code."""


def start(platform: Platform, args: argparse.Namespace) -> list[str]:
    """Records the run's start and the versions of the tables the later checks compare with; checks nothing."""
    versions = {table: _version(platform, table) for table in _versioned_tables(platform)}
    platform.task_values.set("started_at", datetime.now(UTC).isoformat())
    platform.task_values.set("table_versions", json.dumps(versions, sort_keys=True))
    return []


def _versioned_tables(platform: Platform) -> list[str]:
    env, spec = platform.env, platform.model.spec
    metrics = [t for m in monitored_tables(env) for t in (m.profile_metrics_table, m.drift_metrics_table)]
    return [
        *(env.source_table(s) for s in spec.sources),
        *(env.feature_table(f) for f in spec.feature_tables),
        *metrics,
    ]


def _version(platform: Platform, table: str) -> int:
    return platform.tables.version(table) if platform.tables.exists(table) else -1


def _committed(platform: Platform, tables: list[str], versions: dict[str, int]) -> list[str]:
    problems = []
    for table in tables:
        if table not in versions:
            problems.append(f"{table} has no version recorded by the start task")
            continue
        now = _version(platform, table)
        if now <= versions[table]:
            problems.append(f"{table} got no commit in this run (version {versions[table]} at the start, {now} now)")
    return problems


def _window_rows(platform: Platform, tables: dict[str, str], args: argparse.Namespace) -> list[str]:
    """Each of ``tables`` (full name by the model's name for it) has rows in the window (the model's
    ``source_filters`` narrow what is read to it)."""
    filters = platform.model.source_filters(args.start_date, args.end_date)
    return [
        f"{full} has no rows between {args.start_date} and {args.end_date}"
        for name, full in tables.items()
        if platform.tables.exists(full) and platform.tables.read(full, filters=filters.get(name)).limit(1).count() == 0
    ]


def ingest(platform: Platform, args: argparse.Namespace) -> list[str]:
    env = platform.env
    tables = {s: env.source_table(s) for s in platform.model.spec.sources}
    return _committed(platform, list(tables.values()), args.versions) or _window_rows(platform, tables, args)


def features(platform: Platform, args: argparse.Namespace) -> list[str]:
    env = platform.env
    tables = {f: env.feature_table(f) for f in platform.model.spec.feature_tables}
    return _committed(platform, list(tables.values()), args.versions) or _window_rows(platform, tables, args)


def train(platform: Platform, args: argparse.Namespace) -> list[str]:
    registry = platform.registry
    latest = registry.latest_version()
    if latest is None:
        return [f"no version of {registry.model_name} is registered"]
    ref = ModelRef(registry.model_name, latest)
    created = datetime.fromtimestamp(int(registry.get_version(ref).creation_timestamp) / 1000, UTC)
    if created < args.since:
        return [f"no version of {registry.model_name} was registered in this run (the latest, {latest}, at {created})"]
    tags = registry.version_tags(ref)
    missing = [tag for tag in contract.REQUIRED_VERSION_TAGS if not tags.get(tag)]
    if missing:
        return [f"{ref.uri} lacks the training tags {missing}"]
    platform.task_values.set("model_name", ref.name)
    platform.task_values.set("model_version", ref.version)
    platform.task_values.set("model_uri", ref.uri)
    return []


def validate(platform: Platform, args: argparse.Namespace) -> list[str]:
    ref = _ref(platform, args)
    tags = platform.registry.version_tags(ref)
    status = tags.get(contract.VALIDATION_STATUS)
    if status != PASSED:
        reasons = tags.get(contract.VALIDATION_REASONS) or "no reasons recorded"
        return [f"{ref.uri} has validation status {status!r}, not {PASSED!r}: {reasons}"]
    challenger = platform.registry.alias_version(CHALLENGER)
    if challenger != ref.version:
        return [f"{ref.uri} passed but the alias {CHALLENGER} points at {challenger!r}"]
    return []


def deploy(platform: Platform, args: argparse.Namespace) -> list[str]:
    ref = _ref(platform, args)
    problems = []
    if not platform.registry.version_tags(ref).get(contract.PROMOTION_DECISION):
        problems.append(f"{ref.uri} has no {contract.PROMOTION_DECISION} tag: the deploy step decided nothing")
    if platform.registry.alias_version(CHAMPION) is None:
        problems.append(f"{ref.name} has no {CHAMPION}")
    expected = _routes(served_entities(platform))
    actual = _routes(platform.serving.served(platform.env))
    if not actual or actual != expected:
        endpoint = platform.env.endpoint_name
        problems.append(f"endpoint {endpoint} serves {actual or 'nothing'}, the aliases say {expected or 'nothing'}")
    return problems


def _routes(served: list) -> list[tuple[str, str, int]]:
    return sorted((e.name, e.model_version, e.traffic_percent) for e in served)


def requests(platform: Platform, args: argparse.Namespace) -> list[str]:
    """Sends the request example through the platform's serving client, checks the answers, then waits for the
    request's row in the inference table."""
    env, spec = platform.env, platform.model.spec
    records = [dict(spec.request_example)]
    request_id = f"integration-test-{uuid.uuid4().hex}"
    try:
        answers = platform.serving.query(env, records, request_id)
    except Exception as error:  # whatever the client raises, the step's message says the endpoint failed
        return [f"endpoint {env.endpoint_name} did not answer the request example: {error}"]
    if len(answers) != len(records):
        return [f"endpoint {env.endpoint_name} answered {len(answers)} predictions for {len(records)} records"]
    wrong = [a for a in answers if not _answer_fits(a, spec.is_classifier)]
    if wrong:
        kind = "a class 0 or 1" if spec.is_classifier else "a finite number"
        return [f"endpoint {env.endpoint_name} answered {wrong}, not {kind}"]
    platform.task_values.set("answers", json.dumps(answers))
    return _inference_rows(platform, request_id, args.inference_wait_minutes)


def _answer_fits(answer: Any, classifier: bool) -> bool:
    if isinstance(answer, bool) or not isinstance(answer, int | float) or not math.isfinite(answer):
        return False
    return answer in (0, 1) if classifier else True


def _inference_rows(platform: Platform, request_id: str, wait_minutes: int) -> list[str]:
    from pyspark.sql import functions as F

    table = platform.env.inference_table
    deadline = time.monotonic() + wait_minutes * 60
    while True:
        if platform.tables.exists(table):
            rows = (
                platform.tables.read(table, columns=["client_request_id", "status_code"])
                .where(F.col("client_request_id") == request_id)
                .collect()
            )
            if rows:
                bad = [r.asDict() for r in rows if r["status_code"] != 200]
                return [f"{table} logged the request {request_id} as {bad}"] if bad else []
        if time.monotonic() >= deadline:
            return [f"{table} has no row of the request {request_id} after {wait_minutes} minute(s)"]
        time.sleep(INFERENCE_POLL_SECONDS)


def _scored_in_run(platform: Platform, since: datetime, source: str | None = None) -> DataFrame:
    from pyspark.sql import functions as F

    rows = platform.tables.read(platform.env.predictions_table).where(F.col("scored_at") >= F.lit(since))
    return rows if source is None else rows.where(F.col("source") == source)


def scoring(step: str) -> Callable[[Platform, argparse.Namespace], list[str]]:
    source = SCORING_SOURCES[step]

    def check(platform: Platform, args: argparse.Namespace) -> list[str]:
        from pyspark.sql import functions as F

        env = platform.env
        if not platform.tables.exists(env.predictions_table):
            return [f"{env.predictions_table} does not exist"]
        scored = _scored_in_run(platform, args.since, source)
        models = {r["model_name"] for r in scored.select("model_name").distinct().collect()}
        problems = []
        if not models:
            problems.append(f"{env.predictions_table} has no {source} prediction scored in this run")
        elif models != {env.registered_model}:
            problems.append(f"{env.predictions_table}: this run's {source} rows come from {sorted(models)}")
        if platform.tables.exists(env.rejects_table):
            rejects = platform.tables.read(env.rejects_table).where(
                (F.col("source") == source) & (F.col("rejected_at") >= F.lit(args.since))
            )
            unexplained = rejects.where(F.col("reason").isNull() | (F.trim(F.col("reason")) == "")).count()
            if unexplained:
                problems.append(f"{env.rejects_table} has {unexplained} {source} rejects without a reason")
        return problems

    return check


def publish(platform: Platform, args: argparse.Namespace) -> list[str]:
    from pyspark.sql import functions as F

    from jobs.platform.online_store import VERSION, online_key

    spec = platform.model.spec
    times = {c.name for c in spec.key if c.type == "TIMESTAMP"}
    keyed = _scored_in_run(platform, args.since).select(
        *[F.unix_millis(c.name).alias(f"{c.name}_ms") if c.name in times else F.col(c.name) for c in spec.key],
        F.unix_millis("scored_at").alias(VERSION),
    )
    latest = keyed.groupBy(*[c for c in keyed.columns if c != VERSION]).agg(F.max(VERSION).alias(VERSION))
    rows = [r.asDict() for r in latest.limit(PUBLISH_SAMPLE).collect()]
    if not rows:
        return [f"{platform.env.predictions_table} has no prediction of this run to look up"]
    store = platform.online_store()
    stale = []
    for row in rows:
        key = online_key(spec, row)
        item = store.get(key)
        if item is None or int(item.get(VERSION, 0)) < row[VERSION]:
            stale.append(key)
    if stale:
        return [f"{len(stale)} of {len(rows)} keys scored in this run are not in the online store: {stale[:5]}"]
    return []


def labels(platform: Platform, args: argparse.Namespace) -> list[str]:
    from pyspark.sql import functions as F

    labelled = _scored_in_run(platform, args.since).where(F.col(LABEL).isNotNull()).limit(1).count()
    return [] if labelled else [f"no prediction scored in this run got its label in {platform.env.predictions_table}"]


def monitors(platform: Platform, args: argparse.Namespace) -> list[str]:
    """The predictions' monitor: the table this run filled. (The served requests' monitor may have nothing to profile:
    the request example need not carry the model's event time.)"""
    from pyspark.sql import functions as F

    predictions = monitored_tables(platform.env)[0]
    metric_tables = [predictions.profile_metrics_table, predictions.drift_metrics_table]
    problems = _committed(platform, metric_tables, args.versions)
    if problems:
        return problems
    begin = datetime.combine(args.start_date, datetime.min.time(), UTC)
    end = datetime.combine(args.end_date + timedelta(days=1), datetime.min.time(), UTC)
    windows = (
        platform.tables.read(predictions.profile_metrics_table)
        .where((F.col("column_name") == ":table") & (F.col("window.start") >= F.lit(begin)))
        .where(F.col("window.start") < F.lit(end))
        .limit(1)
        .count()
    )
    if not windows:
        return [f"{predictions.profile_metrics_table} has no window between {args.start_date} and {args.end_date}"]
    return []


def alert_states(platform: Platform, args: argparse.Namespace) -> list[str]:
    if platform.sql is None:
        raise JobError("this platform has no SQL engine to run the alert queries on")
    problems = []
    for spec in alerts(platform.env):
        verdict = run_alert_query(spec, platform.sql.query)
        platform.task_values.set(spec.name, verdict.state)
        if verdict.is_error:
            problems.append(f"alert {spec.name} is in ERROR: {verdict.reason}")
    return problems


def _ref(platform: Platform, args: argparse.Namespace) -> ModelRef:
    if args.model_version is None:
        raise JobError("--model-version is required for this step")
    return ModelRef(platform.registry.model_name, str(args.model_version))


CHECKS: dict[str, Callable[[Platform, argparse.Namespace], list[str]]] = {
    "start": start,
    "ingest": ingest,
    "features": features,
    "train": train,
    "validate": validate,
    "deploy": deploy,
    "requests": requests,
    "score_batch": scoring("score_batch"),
    "score_stream": scoring("score_stream"),
    "publish": publish,
    "labels": labels,
    "monitors": monitors,
    "alerts": alert_states,
}
# What each check needs besides --since.
_NEEDS = {
    "ingest": ("versions", "start_date", "end_date"),
    "features": ("versions", "start_date", "end_date"),
    "monitors": ("versions", "start_date", "end_date"),
    "validate": ("model_version",),
    "deploy": ("model_version",),
}


def run_check(platform: Platform, args: argparse.Namespace) -> None:
    """The check of ``args.step``; a ``Missing`` naming the step and everything missing."""
    problems = CHECKS[args.step](platform, args)
    if problems:
        raise Missing(f"integration test, step {args.step}: " + "; ".join(problems))
    logger.info("integration test, step %s: checked", args.step)


def _instant(text: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an ISO 8601 instant, got {text!r}") from None
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(f"must name its time zone (the start task writes UTC), got {text!r}")
    return instant


def _versions(text: str) -> dict[str, int]:
    try:
        versions = json.loads(text)
    except json.JSONDecodeError:
        versions = None
    if not isinstance(versions, dict) or not all(isinstance(v, int) for v in versions.values()):
        raise argparse.ArgumentTypeError(f"must be a JSON object of table -> version, got {text!r}")
    return versions


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-integration-check", "Check what a step of the integration test wrote in this run.")
    parser.add_argument("--step", required=True, choices=list(CHECKS), help="the step whose output is checked")
    parser.add_argument("--since", type=_instant, help="when the run started (the start task's started_at)")
    parser.add_argument("--versions", type=_versions, help="the start task's table_versions (JSON)")
    parser.add_argument("--start-date", type=iso_date, help="the window's first day (YYYY-MM-DD)")
    parser.add_argument("--end-date", type=iso_date, help="the window's last day, inclusive")
    parser.add_argument("--model-version", type=whole_number(1), help="the version trained in this run")
    parser.add_argument(
        "--inference-wait-minutes", type=whole_number(0), default=60, help="how long to wait for the inference row"
    )
    args = parser.parse_args(argv)
    if args.step != "start" and args.since is None:
        parser.error(f"--since is required for --step {args.step}")
    missing = [f"--{n.replace('_', '-')}" for n in _NEEDS.get(args.step, ()) if getattr(args, n) is None]
    if missing:
        parser.error(f"--step {args.step} needs {', '.join(missing)}")
    if args.start_date and args.end_date and args.start_date > args.end_date:
        parser.error(f"window start {args.start_date} is after its end {args.end_date}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        run_check(build_platform(job_environment(args)), args)
        return 0

    return run_job("mlops-integration-check", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-integration-check` console script: a failed check exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
