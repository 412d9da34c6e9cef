"""mlops-check-retraining: should the model be retrained now, and on which window?

Runs the SQL of every alert that starts retraining (``spec.monitoring.alerts``: drift and quality of the
predictions; the very text the SQL alerts run) and looks at the Champion's age: how far the data it was trained on
ends before the latest labelled flight. Retrains when an alert's condition holds (unless the newest version, promoted
or not, is younger than ``retraining.alert_cooldown_days``), or when the Champion is older than
``retraining.max_model_age_days`` (the schedule, as an age), or when there is no Champion. The training window ends
at the latest labelled flight and spans ``retraining.window_days``.

An alert query that fails (its metric table missing, say) decides nothing: it is reported as an error, and the other
checks still decide.

Task values: ``retrain`` ("true"/"false"), ``reason``, ``training_start``, ``training_end``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import date, timedelta

from jobs.core import contract
from jobs.core.columns import LABEL, SCHEDULED_DATE
from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, exit_on_failure, job_parser, run_job
from jobs.platform.registry import CHAMPION, ModelRef
from spec.config import get_environment
from spec.monitoring import alerts, describe_alert_row

logger = logging.getLogger("jobs.check_retraining")


@dataclass(frozen=True)
class RetrainingCheck:
    retrain: bool
    reasons: tuple[str, ...]
    training_start: date | None
    training_end: date | None
    errors: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) or "no alert holds and the champion is recent"


def latest_labelled_date(platform: Platform) -> date | None:
    from pyspark.sql import functions as F

    table = platform.env.predictions_table
    if not platform.tables.exists(table):
        return None
    labelled = platform.tables.read(table, columns=[SCHEDULED_DATE, LABEL]).where(F.col(LABEL).isNotNull())
    return labelled.agg(F.max(SCHEDULED_DATE)).collect()[0][0]


def holding_alerts(platform: Platform) -> tuple[list[str], list[str]]:
    """The alerts that start retraining whose condition holds, and the alert queries that failed."""
    holding, errors = [], []
    for spec in alerts(platform.env):
        if not spec.starts_retraining:
            continue
        try:
            rows = platform.sql.query(spec.query_text)
        except ValueError as error:
            errors.append(f"{spec.name}: {error}")
            logger.error("alert query %s failed: %s", spec.name, error)
            continue
        if rows and rows[0].get(spec.source_column) and float(rows[0][spec.source_column]) > 0:
            details = {k: v for k, v in rows[0].items() if k != spec.source_column}
            holding.append(f"{spec.name} holds ({describe_alert_row(details)})")
    return holding, errors


def trained_until(platform: Platform, version: str) -> date:
    tags = platform.registry.version_tags(ModelRef(platform.env.registered_model, version))
    return date.fromisoformat(tags[contract.TRAINING_END])


def check(platform: Platform) -> RetrainingCheck:
    registry, cfg = platform.registry, platform.env.retraining
    if platform.sql is None:
        raise JobError("this platform has no SQL engine to run the alert queries on")
    reasons, errors = holding_alerts(platform)
    notes: list[str] = []
    latest = latest_labelled_date(platform)
    newest = registry.latest_version()
    if reasons and latest is not None and newest is not None and cfg.alert_cooldown_days:
        newest_age = (latest - trained_until(platform, newest)).days
        if newest_age < cfg.alert_cooldown_days:
            notes.append(
                f"{'; '.join(reasons)}; but v{newest} was trained on data up to {newest_age} days before the latest "
                f"labelled flight (less than retraining.alert_cooldown_days, {cfg.alert_cooldown_days}): not again yet"
            )
            reasons = []
    champion = registry.alias_version(CHAMPION)
    if champion is None:
        reasons.append("there is no champion")
    elif latest is not None and cfg.max_model_age_days is not None:
        until = trained_until(platform, champion)
        age = (latest - until).days
        if age > cfg.max_model_age_days:
            reasons.append(
                f"the champion v{champion} was trained on data up to {until}, {age} days before the latest "
                f"labelled flight (more than {cfg.max_model_age_days})"
            )
    if latest is None:
        return RetrainingCheck(False, ("no labelled flight yet: nothing to train on",), None, None, tuple(errors))
    start = latest - timedelta(days=cfg.window_days - 1)
    return RetrainingCheck(bool(reasons), tuple(reasons or notes), start, latest, tuple(errors))


def run_check(platform: Platform) -> RetrainingCheck:
    result = check(platform)
    logger.info("retrain=%s: %s", result.retrain, result.reason)
    values = platform.task_values
    values.set("retrain", "true" if result.retrain else "false")
    values.set("reason", result.reason[:1000])
    values.set("training_start", result.training_start.isoformat() if result.training_start else "")
    values.set("training_end", result.training_end.isoformat() if result.training_end else "")
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-check-retraining", "Decide whether to retrain, from the alerts and the champion's age.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        run_check(build_platform(get_environment(args.env)))
        return 0

    return run_job("mlops-check-retraining", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-check-retraining` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
