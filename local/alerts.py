"""The environment's SQL alerts, evaluated on this machine as Databricks SQL alerts (``databricks_alert_v2``) are on
the SQL warehouse: run the alert's query, compare its ``triggered`` column, keep the state, notify on a change.

States:
    UNKNOWN    never evaluated (only ever a previous state)
    OK         the query returned a row whose ``triggered`` is 0
    TRIGGERED  ``triggered`` > 0: the condition of spec/monitoring.py holds
    ERROR      the query failed, returned no row, or no usable ``triggered``: never reported as OK

The verdict is ``jobs.core.alert_verdict``'s (re-exported here): the retraining check applies the same one.

Every evaluation appends one row per alert to the Delta table ``env.alert_history_table``; the previous state of an
alert is its latest row there. A change to TRIGGERED or ERROR notifies, like an alert's notification destinations:
the webhook (an argument, or ``MLOPS_NOTIFY_WEBHOOK_URL``) gets the JSON body of ``AlertResult.body``, and the
event is recorded in ``$MLOPS_HOME/notifications.jsonl`` through ``LocalNotifier``. An alert that stays TRIGGERED
does not notify again.

Retraining that an alert starts is serialized by ``retraining_lock``: the local counterpart of the retraining job's
``max_concurrent_runs = 1``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.core.alert_verdict import ERROR, TRIGGERED, run_alert_query
from jobs.core.alert_verdict import OK as OK  # re-exported: the states and the verdict, as before
from jobs.core.alert_verdict import Verdict as Verdict
from jobs.core.alert_verdict import judge as judge
from jobs.platform.notify import Notifier, event_json, post_json
from jobs.platform.sql import Sql
from local.adapters import LocalNotifier
from local.files import LockHeld, exclusive_lock
from local.paths import mlops_home, table_path
from local.settings import local_settings
from local.warehouse import LocalSql
from spec.config import Environment
from spec.monitoring import AlertSpec, alerts

logger = logging.getLogger(__name__)

# OK, TRIGGERED and ERROR, and the verdict on a query's rows, are jobs.core.alert_verdict's: the retraining check
# judges the same rows by the same function. UNKNOWN is a previous state only: never evaluated.
UNKNOWN = "UNKNOWN"
# The states a change into notifies (a Databricks alert notifies when it triggers; an alert that cannot be
# evaluated is news too: nobody is watching the metric any more).
NOTIFY_ON = {TRIGGERED: "alert_triggered", ERROR: "alert_error"}


def latest_metric(details: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The latest window's metric among a query's columns (``latest_worst_psi``, ``latest_roc_auc``), unprefixed."""
    for key, value in details.items():
        if key.startswith("latest_") and key != "latest_window":
            return key.removeprefix("latest_"), value
    return None


@dataclass(frozen=True)
class AlertResult:
    alert: AlertSpec
    evaluated_at: datetime
    state: str
    previous_state: str
    value: float | None
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    # How the change was notified ("webhook: HTTP 200", "webhook failed: ...", "recorded only"), None if it was not.
    notification: str | None = None

    @property
    def name(self) -> str:
        return self.alert.name

    @property
    def changed(self) -> bool:
        return self.state != self.previous_state

    @property
    def notifies(self) -> bool:
        return self.changed and self.state in NOTIFY_ON

    @property
    def latest_window(self) -> Any:
        return self.details.get("latest_window")

    @property
    def metric(self) -> tuple[str, Any] | None:
        return latest_metric(self.details)

    def body(self, env_name: str) -> dict[str, Any]:
        """The JSON the webhook receives."""
        return {
            "event": NOTIFY_ON.get(self.state, "alert_evaluated"),
            "env": env_name,
            "alert": self.name,
            "kind": self.alert.kind,
            "state": self.state,
            "previous_state": self.previous_state,
            "value": self.value,
            "details": json.loads(event_json(self.details)),
            "reason": self.reason,
            "monitored_table": self.alert.monitored.table,
            "description": self.alert.description,
            "starts_retraining": self.alert.starts_retraining,
            "evaluated_at": self.evaluated_at.isoformat(),
        }


class AlertHistory:
    """The Delta table ``env.alert_history_table``: one row per alert per evaluation, created on first append."""

    def __init__(self, env: Environment, locate: Callable[[str], Path] = table_path) -> None:
        self.table = env.alert_history_table
        self._locate = locate

    @property
    def path(self) -> Path:
        return self._locate(self.table)

    def exists(self) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(str(self.path))

    def last_states(self) -> dict[str, str]:
        """Each alert's latest state (by evaluation time; the later row of a tie)."""
        latest: dict[str, tuple[datetime, str]] = {}
        for row in self._rows(["alert", "evaluated_at", "state"]):
            seen = latest.get(row["alert"])
            if seen is None or row["evaluated_at"] >= seen[0]:
                latest[row["alert"]] = (row["evaluated_at"], row["state"])
        return {alert: state for alert, (_, state) in latest.items()}

    def append(self, results: Sequence[AlertResult]) -> None:
        """One Delta commit for the whole evaluation."""
        import pyarrow as pa
        from deltalake import write_deltalake

        if not results:
            return
        rows = [
            {
                "alert": r.name,
                "kind": r.alert.kind,
                "monitored_table": r.alert.monitored.table,
                "evaluated_at": r.evaluated_at,
                "state": r.state,
                "previous_state": r.previous_state,
                "value": r.value,
                "details": event_json(r.details),
                "reason": r.reason,
                "notification": r.notification,
            }
            for r in results
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(str(self.path), pa.Table.from_pylist(rows, schema=history_schema()), mode="append")

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The latest evaluations first."""
        rows = sorted(self._rows(None), key=lambda r: r["evaluated_at"], reverse=True)
        return rows[:limit] if limit is not None else rows

    def _rows(self, columns: list[str] | None) -> list[dict[str, Any]]:
        from deltalake import DeltaTable

        if not self.exists():
            return []
        return DeltaTable(str(self.path)).to_pyarrow_table(columns=columns).to_pylist()


def history_schema():
    """The history table's columns (built on use: importing this module needs no pyarrow)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("alert", pa.string()),
            ("kind", pa.string()),
            ("monitored_table", pa.string()),
            ("evaluated_at", pa.timestamp("us", tz="UTC")),
            ("state", pa.string()),
            ("previous_state", pa.string()),
            ("value", pa.float64()),
            ("details", pa.string()),
            ("reason", pa.string()),
            ("notification", pa.string()),
        ]
    )


def evaluate_alerts(
    env: Environment,
    sql: Sql | None = None,
    *,
    webhook_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    notifier: Notifier | None = None,
    history: AlertHistory | None = None,
    specs: Sequence[AlertSpec] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[AlertResult]:
    """Evaluate every alert of ``env`` (or ``specs``) once: state, history row, notification on a change to
    TRIGGERED or ERROR. The webhook is ``webhook_url``, else ``MLOPS_NOTIFY_WEBHOOK_URL``; none only records."""
    sql = sql if sql is not None else LocalSql(env.name)
    url = webhook_url or local_settings(environ).notify_webhook_url
    notifier = notifier if notifier is not None else LocalNotifier(env.name, mlops_home() / "notifications.jsonl")
    history = history if history is not None else AlertHistory(env)
    specs = alerts(env) if specs is None else specs

    previous = history.last_states()
    evaluated_at = clock()
    results = []
    for spec in specs:
        verdict = run_alert_query(spec, sql.query)
        result = AlertResult(
            alert=spec,
            evaluated_at=evaluated_at,
            state=verdict.state,
            previous_state=previous.get(spec.name, UNKNOWN),
            value=verdict.value,
            details=verdict.details,
            reason=verdict.reason,
        )
        if result.notifies:
            result = _notify(result, env.name, url, notifier)
        # A change that notifies is logged as a warning by the notifier; this line is the evaluation's record.
        logger.info(
            "alert %s (%s): %s -> %s %s", spec.name, env.name, result.previous_state, result.state, result.reason or ""
        )
        results.append(result)
    history.append(results)
    return results


def retraining_alerts(results: Sequence[AlertResult]) -> list[AlertResult]:
    """The TRIGGERED alerts that start retraining."""
    return [r for r in results if r.state == TRIGGERED and r.alert.starts_retraining]


def _notify(result: AlertResult, env_name: str, url: str | None, notifier: Notifier) -> AlertResult:
    body = result.body(env_name)
    notification = post_webhook(url, body) if url else "recorded only (no webhook configured)"
    message = f"alert {result.name} is {result.state} (was {result.previous_state})"
    if result.reason:
        message += f": {result.reason}"
    notifier.notify(body["event"], message, body)
    return replace(result, notification=notification)


def post_webhook(url: str, body: Mapping[str, Any]) -> str:
    """POST ``body`` as JSON (``jobs.platform.notify.post_json``); says how it went, never raises."""
    return post_json(url, body, what=f"alert {body.get('alert')}")


class RetrainingInProgress(LockHeld):
    """Another local retraining of the environment holds the lock."""

    def __init__(self, env_name: str, busy: LockHeld) -> None:
        self.env_name = env_name
        super().__init__(busy.path, f"a retraining of {env_name}", busy.holder)
        self.args = (f"{self.args[0]}: not starting a second run",)


def retraining_lock_path(env_name: str, home: Path | None = None) -> Path:
    return (home or mlops_home()) / "locks" / f"retraining-{env_name}.lock"


@contextmanager
def retraining_lock(
    env_name: str, *, home: Path | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Iterator[Path]:
    """Hold the environment's retraining lock (``$MLOPS_HOME/locks/retraining-<env>.lock``, ``local.files``'s
    exclusive lock, which records its holder) while the block runs; ``RetrainingInProgress`` naming the holder if
    another run holds it: never two retrainings of one environment at once."""
    path = retraining_lock_path(env_name, home)
    with ExitStack() as held:
        try:
            held.enter_context(exclusive_lock(path, f"a retraining of {env_name}", wait=False, clock=clock))
        except LockHeld as busy:
            raise RetrainingInProgress(env_name, busy) from None
        yield path
