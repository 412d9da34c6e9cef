"""Notifications to people: a failed validation, a refused deployment.

Both adapters log and, when a webhook URL is configured (``MLOPS_NOTIFY_WEBHOOK_URL``), POST the event as JSON.
Locally (``local.adapters.LocalNotifier``) every event is also appended to ``$MLOPS_HOME/notifications.jsonl``. On
Databricks the job's own notification destinations (declared in infra) also fire when the task fails. A
notification that cannot be delivered is logged, never raised: it must not hide the failure it reports.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Protocol

logger = logging.getLogger(__name__)

WEBHOOK_URL_ENV = "MLOPS_NOTIFY_WEBHOOK_URL"
_TIMEOUT_SECONDS = 5


class Notifier(Protocol):
    def notify(self, event: str, message: str, details: Mapping[str, object]) -> None: ...


def event_document(env_name: str, event: str, message: str, details: Mapping[str, object], at: datetime) -> dict:
    return {"event": event, "env": env_name, "message": message, "details": dict(details), "at": at.isoformat()}


def _json_default(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def event_json(document: Mapping[str, object]) -> str:
    """An event as JSON, the one encoding of webhooks and histories: sorted keys, dates in ISO 8601."""
    return json.dumps(document, sort_keys=True, default=_json_default)


def post_json(url: str, document: Mapping[str, object], *, what: str) -> str:
    """POST ``document`` as JSON to a webhook; says how it went ("webhook: HTTP 200", "webhook failed: ...").

    Never raises: a dead receiver must not hide the event it reports. A failure is logged as an error naming
    ``what`` was being sent, and the returned text is recorded beside the event (the alert history, the log)."""
    request = urllib.request.Request(
        url,
        data=event_json(document).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
            logger.info("%s posted to the webhook (HTTP %s)", what, response.status)
            return f"webhook: HTTP {response.status}"
    except urllib.error.HTTPError as error:
        logger.error("%s: the webhook answered HTTP %s", what, error.code)
        return f"webhook failed: HTTP {error.code}"
    except OSError as error:
        logger.error("%s could not be posted to the webhook: %s", what, error)
        return f"webhook failed: {error}"


def post_event(url: str, document: dict) -> str:
    return post_json(url, document, what=f"notification {document['event']}")


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
