"""The demo's lifecycle inside its services: the services started, the first champions trained, the weeks replayed
(``run_lifecycle``); then the report written from what was measured (``write_report``)."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

from local.demo import loop, services
from local.demo.config import ReplayConfig
from local.demo.records import OnEvent, Progress, ReplayResult, write_report_data


def run_lifecycle(
    stack: ExitStack, home: Path, config: ReplayConfig, log_file: Path, on_progress: Progress, on_event: OnEvent
) -> ReplayResult:
    """The services (stopped when ``stack`` closes), then the model workflow in dev, staging and prod, then prod's
    weeks."""
    running = services.start_services(stack, home, log_file)
    replay = loop.Replay(
        config,
        gateway_url=running.gateway_url,
        token=running.token,
        webhook_url=running.webhook_url,
        progress=on_progress,
        on_event=on_event,
        on_spawn=running.record.add,
    )
    replay.initial_training()
    return replay.replay()


def write_report(result: ReplayResult, report_dir: Path, *, plots: bool = True) -> Path:
    """report_data.json, then the PNGs (``plots``) and index.html from it."""
    from local.report import load_drift, render_index, render_report
    from spec.config import ENVIRONMENTS

    data_file = write_report_data(result, report_dir / "report_data.json")
    data = json.loads(data_file.read_text())
    if not plots:
        return render_index(data, report_dir)
    return render_report(data, report_dir, drift=load_drift(ENVIRONMENTS[result.env]))
