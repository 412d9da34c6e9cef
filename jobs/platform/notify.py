"""Notifications to people: a failed validation, a refused deployment.

Both adapters log and, when a webhook URL is configured (``MLOPS_NOTIFY_WEBHOOK_URL``), POST the event as JSON.
Locally (``local.adapters.LocalNotifier``) every event is also appended to ``$MLOPS_HOME/notifications.jsonl``. On
Databricks the job's own notification destinations (declared in infra) also fire when the task fails. A
notification that cannot be delivered is logged, never raised: it must not hide the failure it reports.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

logger = logging.getLogger(__name__)

WEBHOOK_URL_ENV = "MLOPS_NOTIFY_WEBHOOK_URL"
_TIMEOUT_SECONDS = 5


class Notifier(Protocol):
    def notify(self, event: str, message: str, details: Mapping[str, object]) -> None: ...


def event_document(env_name: str, event: str, message: str, details: Mapping[str, object], at: datetime) -> dict:
    return {"event": event, "env": env_name, "message": message, "details": dict(details), "at": at.isoformat()}


def post_event(url: str, document: dict) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(document, default=str).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
            logger.info("notification %s posted to the webhook (HTTP %s)", document["event"], response.status)
    except OSError as e:
        logger.error("notification %s could not be posted to the webhook: %s", document["event"], e)


class DatabricksNotifier:
    """Log (the task's failure notifies the job's destinations) and POST to the webhook when configured."""

    def __init__(self, env_name: str, webhook_url: str | None = None) -> None:
        self.env_name = env_name
        self.webhook_url = webhook_url

    def notify(self, event: str, message: str, details: Mapping[str, object]) -> None:
        document = event_document(self.env_name, event, message, details, datetime.now(UTC))
        logger.warning("NOTIFY %s: %s", event, message)
        if self.webhook_url:
            post_event(self.webhook_url, document)
