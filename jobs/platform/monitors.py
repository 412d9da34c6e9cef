"""The quality monitors, as the daily-monitoring job refreshes them: start a refresh of each monitored table and
wait until every refresh has ended, so the alerts that follow read fresh metrics.

On Databricks the monitors are the stack's ``databricks_quality_monitor`` resources (Lakehouse Monitoring, REST
``/api/2.1/unity-catalog/tables/{table}/monitor/refreshes``, databricks-sdk ``quality_monitors``); locally the
local monitor (``local.monitor``) refreshes the Delta metric tables. Newer SDKs mark ``quality_monitors`` deprecated
for the data-quality API (``w.data_quality``, databricks-sdk >= 0.68), but the SDKs the runtimes preinstall are older
(runtime/*.txt) and the monitors stay Lakehouse monitors for now (tests/infra/test_monitor_api_choice.py says why).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from spec.errors import MlopsError

logger = logging.getLogger(__name__)

_DONE = {"SUCCESS", "FAILED", "CANCELED"}


class MonitorRefreshError(MlopsError):
    """A refresh failed, was canceled or did not end in time; the message names the table and what Databricks said."""


@dataclass(frozen=True)
class Refreshed:
    table: str
    refresh_id: str
    state: str
    seconds: float


class Monitors(Protocol):
    def refresh(self, tables: Sequence[str]) -> list[Refreshed]: ...


class DatabricksMonitors:
    """Starts every refresh first (they run in parallel on Databricks), then waits for each: one deadline for all."""

    def __init__(
        self,
        client_factory: Callable[[], Any],
        *,
        timeout_seconds: float,
        poll_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client_factory = client_factory
        self._timeout = timeout_seconds
        self._poll = poll_seconds
        self._clock = clock
        self._sleep = sleep

    def refresh(self, tables: Sequence[str]) -> list[Refreshed]:
        client = self._client_factory()
        started = self._clock()
        deadline = started + self._timeout
        pending = {table: str(client.quality_monitors.run_refresh(table_name=table).refresh_id) for table in tables}
        logger.info("refreshes started: %s", pending)
        done: list[Refreshed] = []
        while pending:
            for table, refresh_id in list(pending.items()):
                info = client.quality_monitors.get_refresh(table_name=table, refresh_id=refresh_id)
                state = _state(info)
                if state not in _DONE:
                    continue
                del pending[table]
                if state != "SUCCESS":
                    raise MonitorRefreshError(
                        f"the refresh {refresh_id} of the monitor of {table} ended {state}: "
                        f"{getattr(info, 'message', None) or 'no message'}"
                    )
                done.append(Refreshed(table, refresh_id, state, round(self._clock() - started, 1)))
            if pending and self._clock() >= deadline:
                raise MonitorRefreshError(
                    f"refreshes still running after {self._timeout:.0f}s: {', '.join(sorted(pending))}; "
                    "the alerts would read stale metrics, so the job stops here"
                )
            if pending:
                self._sleep(self._poll)
        return done


def _state(info: Any) -> str:
    state = getattr(info, "state", None)
    return str(getattr(state, "value", state) or "UNKNOWN")
