"""mlops-check-retraining: should the model be retrained now, and on which window?

Runs the SQL of every alert that starts retraining (``spec.monitoring.alerts``: drift and quality of the
predictions; the very text the SQL alerts run) and looks at the Champion's age: how far the data it was trained on
ends before the latest labelled event. Retrains when an alert's condition holds (unless the newest version, promoted
or not, is younger than ``retraining.alert_cooldown_days``), or when the Champion is older than
``retraining.max_model_age_days`` (the schedule, as an age), or when there is no Champion. The training window ends
at the latest labelled event and spans ``retraining.window_days``.

Each alert's rows are judged by ``jobs.core.alert_verdict``, the very verdict the local alerts apply: an alert whose
query failed, returned no row, no ``triggered`` column, NULL, NaN or a non-number is in ERROR. An alert in ERROR
decides nothing, so it is never taken for "does not hold": it is named in the reason and in ``alert_errors``, and
once every task value is set the check fails (exit 1), so a person hears of it and retraining waits until the alert
is fixed. Not an error: a monitored table that does not exist yet (nothing scored there so far: its monitor has no
metric table to query) and a metric table with no window to judge yet (the query says ``windows`` = 0: OK); both
are named in ``alert_no_data``.

Task values: ``retrain`` ("true"/"false"), ``reason``, ``training_start``, ``training_end``, ``alert_errors`` and
``alert_no_data`` ("; "-separated ``<alert>: <why>``, empty when none).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import date, timedelta

from jobs.core import contract
from jobs.core.alert_verdict import run_alert_query
from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, exit_on_failure, job_environment, job_parser, run_job
from jobs.platform.registry import CHAMPION, ModelRef
from spec.columns import LABEL
from spec.monitoring import alerts, describe_alert_row

logger = logging.getLogger("jobs.check_retraining")


# A task value holds at most this many characters of text (the reason, the alerts in ERROR).
_TEXT_VALUE_CHARS = 1000


@dataclass(frozen=True)
class AlertsSay:
    """What the alerts that start retraining say: those whose condition holds, those in ERROR (``<alert>: <why>``:
    they decide nothing), and those with no data to judge yet (not an error)."""

    holding: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    no_data: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetrainingCheck:
    retrain: bool
    reasons: tuple[str, ...]
    training_start: date | None
    training_end: date | None
    errors: tuple[str, ...] = ()
    no_data: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        reason = "; ".join(self.reasons) or (
            "no alert that can be judged holds and the champion is recent"
            if self.errors
            else "no alert holds and the champion is recent"
        )
        if self.errors:
            reason += f"; {len(self.errors)} alert(s) in ERROR decide nothing: {'; '.join(self.errors)}"
        return reason


def latest_labelled_date(platform: Platform) -> date | None:
    """The latest ``event_date`` of the model's predictions whose label is known (None before any): one aggregate on
    the SQL engine the alert queries run on, which reads the two columns where they lie."""
    table, event_date = platform.env.predictions_table, platform.env.model.event_date
    if not platform.tables.exists(table):
        return None
    rows = platform.sql.query(f"SELECT max(`{event_date}`) AS latest FROM {table} WHERE `{LABEL}` IS NOT NULL")
    return rows[0]["latest"]


def holding_alerts(platform: Platform) -> AlertsSay:
    """Run the query of every alert that starts retraining and judge its rows as the SQL alerts are judged."""
    holding, errors, no_data = [], [], []
    for spec in alerts(platform.env):
        if not spec.starts_retraining:
            continue
        verdict = run_alert_query(spec, platform.sql.query)
        if verdict.holds:
            holding.append(f"{spec.name} holds ({describe_alert_row(verdict.details)})")
        elif verdict.is_error and not platform.tables.exists(spec.monitored.table):
            # Nothing scored there yet, so its monitor has no metric table: nothing is broken, nothing to judge.
            no_data.append(f"{spec.name}: no data yet ({spec.monitored.table} does not exist)")
            logger.info("alert %s: no data yet: %s does not exist", spec.name, spec.monitored.table)
        elif verdict.is_error:
            errors.append(f"{spec.name}: {verdict.reason}")
            logger.error("alert %s is in ERROR and decides nothing: %s", spec.name, verdict.reason)
        elif verdict.reason:  # OK, but no window to judge yet
            no_data.append(f"{spec.name}: {verdict.reason}")
    return AlertsSay(tuple(holding), tuple(errors), tuple(no_data))


def trained_until(platform: Platform, version: str) -> date:
    tags = platform.registry.version_tags(ModelRef(platform.env.registered_model, version))
    return date.fromisoformat(tags[contract.TRAINING_END])


def check(platform: Platform) -> RetrainingCheck:
    registry, cfg = platform.registry, platform.env.retraining
    if platform.sql is None:
        raise JobError("this platform has no SQL engine to run the alert queries on")
    said = holding_alerts(platform)
    reasons = list(said.holding)
    notes: list[str] = []
    latest = latest_labelled_date(platform)
    newest = registry.latest_version()
    if reasons and latest is not None and newest is not None and cfg.alert_cooldown_days:
        newest_age = (latest - trained_until(platform, newest)).days
        if newest_age < cfg.alert_cooldown_days:
            notes.append(
                f"{'; '.join(reasons)}; but v{newest} was trained on data up to {newest_age} days before the latest "
                f"labelled event (less than retraining.alert_cooldown_days, {cfg.alert_cooldown_days}): not again yet"
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
                f"labelled event (more than {cfg.max_model_age_days})"
            )
    if latest is None:
        return RetrainingCheck(
            False, ("no labelled event yet: nothing to train on",), None, None, said.errors, said.no_data
        )
    start = latest - timedelta(days=cfg.window_days - 1)
    return RetrainingCheck(bool(reasons), tuple(reasons or notes), start, latest, said.errors, said.no_data)


def run_check(platform: Platform) -> RetrainingCheck:
    """Check, set every task value, then fail (``JobError``) if an alert is in ERROR: a broken alert is never a
    silent "no retraining"."""
    result = check(platform)
    logger.info("retrain=%s: %s", result.retrain, result.reason)
    values = platform.task_values
    values.set("retrain", "true" if result.retrain else "false")
    values.set("reason", result.reason[:_TEXT_VALUE_CHARS])
    values.set("training_start", result.training_start.isoformat() if result.training_start else "")
    values.set("training_end", result.training_end.isoformat() if result.training_end else "")
    values.set("alert_errors", "; ".join(result.errors)[:_TEXT_VALUE_CHARS])
    values.set("alert_no_data", "; ".join(result.no_data)[:_TEXT_VALUE_CHARS])
    if result.errors:
        without = "; ".join(result.reasons) or "no reason"
        raise JobError(
            f"{len(result.errors)} alert(s) that start retraining are in ERROR and decided nothing (fix them: until "
            f"then a drift or a quality drop goes unseen): {'; '.join(result.errors)}. "
            f"Without them: retrain={'true' if result.retrain else 'false'} ({without})"
        )
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-check-retraining", "Decide whether to retrain, from the alerts and the champion's age.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        run_check(build_platform(job_environment(args)))
        return 0

    return run_job("mlops-check-retraining", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-check-retraining` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
