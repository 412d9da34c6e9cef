"""The report's HTML: ``render_report`` draws the PNGs and writes ``index.html`` around them from the Jinja2 templates
beside this module (package data; autoescape: every measured value, path and message is escaped).

``render_report(data, out_dir, drift=...)`` writes ``out_dir/index.html`` and one PNG per plot (relative links, so the
folder can be moved or zipped); ``render_index`` writes the page alone around the PNGs already there.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from matplotlib.figure import Figure

from local.report.figures import (
    figure_alerts,
    figure_drift,
    figure_publishing,
    figure_quality,
    figure_scoring,
    figure_serving,
    figure_versions,
    save_figure,
)
from local.report.summary import summary_lines, targets_counts
from local.report.weeks import events, monitoring, weeks_frame
from spec.config import ENVIRONMENTS
from spec.monitoring import monitored_tables

logger = logging.getLogger(__name__)

PATH_LABELS = {
    "mlflow_ui": "MLflow UI (runs, model versions, aliases)",
    "warehouse": "Delta tables (the local warehouse)",
    "predictions_table": "the predictions table",
    "dashboard": "quality and drift per model version and slice over time",
}


@dataclass(frozen=True)
class FigureSection:
    """A plot on a page: its heading and caption, and its PNG (relative to the page) or why there is none."""

    heading: str
    caption: str
    png: str | None
    missing: str


@dataclass(frozen=True)
class FurtherItem:
    """A line of "Where to look further": what it is, the path or command, and where it lives on disk."""

    label: str
    code: str
    at: str | None = None


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("local.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a value the template names but the page lacks is a bug, not a blank
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def write_page(template: str, path: Path, **context: Any) -> Path:
    """Render ``template`` (a file of local/report/templates) with ``context`` to ``path`` (UTF-8)."""
    path.write_text(_templates().get_template(template).render(**context), encoding="utf-8")
    return path


@dataclass(frozen=True)
class _Plot:
    file: str
    heading: str
    caption: str
    build: Callable[[], Figure | None]
    missing: str


def render_report(data: dict[str, Any], out_dir: Path, *, drift: pd.DataFrame | None = None) -> Path:
    """Write ``out_dir/index.html`` and its PNGs from the replay's data and (optionally) the weekly baseline PSI
    per feature (``load_drift``'s frame); returns the HTML file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for plot in _plots(data, drift):
        save_figure(plot.build(), out_dir / plot.file)
    return render_index(data, out_dir)


def _plots(data: dict[str, Any], drift: pd.DataFrame | None) -> tuple[_Plot, ...]:
    weeks = weeks_frame(data)
    replay_events = events(data)
    m = monitoring(data)
    return (
        _Plot(
            "quality.png",
            "Model quality: the loop against never retraining and retraining every week",
            "ROC AUC of each week's labelled rows under each policy. Dashed lines: the loop retrained (the new "
            "version above). Shaded: weeks without labels (no value, not 0).",
            lambda: figure_quality(weeks, min_roc_auc=m.min_roc_auc, events=replay_events),
            "no week has a ROC AUC",
        ),
        _Plot(
            "drift.png",
            "Drift per feature",
            "Population stability index of each input feature against the "
            "training data of the model that scored the week (the monitor's drift table: BASELINE drift, whole "
            "table, 1 week windows; the largest over the model versions of the week that scored at least "
            f"{m.min_window_rows} of its rows, as the drift alert takes it).",
            lambda: figure_drift(
                drift,
                threshold=m.max_drift_psi,
                min_rows=m.min_window_rows,
                title="Baseline drift (PSI) per feature and week",
            ),
            "no drift metrics (run mlops monitor first)",
        ),
        _Plot(
            "alerts.png",
            "Alerts",
            "The state of each SQL alert at each weekly evaluation.",
            lambda: figure_alerts(weeks),
            "no alert state recorded",
        ),
        _Plot(
            "versions.png",
            "Champion and Challenger",
            "The model version behind the champion alias each week, "
            "the Challenger when there was one, and its share of the served traffic.",
            lambda: figure_versions(weeks),
            "no Champion recorded",
        ),
        _Plot(
            "serving.png",
            "Serving",
            "Requests the endpoint answered per week and their latency percentiles.",
            lambda: figure_serving(weeks),
            "no request served",
        ),
        _Plot(
            "publishing.png",
            "Online publishing",
            "Items written to the online store per week.",
            lambda: figure_publishing(weeks),
            "nothing published",
        ),
        _Plot(
            "scoring.png",
            "Scoring",
            "Rows scored per week by the streaming and the batch job, and the rows "
            "rejected (with a reason, never dropped silently).",
            lambda: figure_scoring(weeks),
            "nothing scored",
        ),
    )


def _further(data: dict[str, Any]) -> list[FurtherItem]:
    paths = data.get("paths") if isinstance(data.get("paths"), dict) else {}
    items = [
        FurtherItem(PATH_LABELS.get(key, key.replace("_", " ")), str(value)) for key, value in paths.items() if value
    ]
    env = ENVIRONMENTS.get(str(data.get("env")))
    if env is not None:
        warehouse = paths.get("warehouse")
        for monitored in monitored_tables(env):
            for name in (monitored.profile_metrics_table, monitored.drift_metrics_table):
                at = str(Path(warehouse, *name.split("."))) if warehouse else None
                items.append(FurtherItem("monitor metric table", name, at))
        if "dashboard" not in paths:
            items.append(FurtherItem("the dashboard", f"mlops dashboard --env {env.name}"))
    return items


def render_index(data: dict[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` around the PNGs already there (``render_report`` draws them): cheap enough to
    run again once the demo knows its wall time."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [
        FigureSection(plot.heading, plot.caption, plot.file if (out_dir / plot.file).exists() else None, plot.missing)
        for plot in _plots(data, None)
    ]
    lines = summary_lines(data)
    env_name = str(data.get("env", "?"))
    index = write_page(
        "report.html",
        out_dir / "index.html",
        title=f"{env_name} replay report",
        env_name=env_name,
        period=f"{data.get('start', '?')} to {data.get('end', '?')}",
        weeks=len(weeks_frame(data)),
        seed=str(data.get("seed")),
        targets=targets_counts(lines),
        lines=lines,
        sections=sections,
        events=[{key: str(e.get(key, "")) for key in ("week_start", "kind", "message")} for e in events(data)],
        further=_further(data),
    )
    logger.info("report: %s", index)
    return index
