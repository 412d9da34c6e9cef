"""The demo's report: one HTML page a person can read, with PNG plots beside it, from the replay's
``report_data.json`` and the quality monitor's metric tables; and the figures and readers ``mlops dashboard`` draws
with.

* ``weeks``: the replay's data as one row per week (a missing number is NaN, drawn as a gap, never as 0);
* ``summary``: the verdict lines (every target with the measured number and ``met`` / ``missed`` / ``not measured``);
* ``metrics``: the monitor's metric tables read with delta-rs (drift per feature, with each group's rows);
* ``figures``: one matplotlib ``Figure`` per plot (the drift heatmap judges drift as the drift alert does);
* ``page``: the HTML, from the Jinja2 templates in ``templates/`` (package data).

The names below are imported lazily (PEP 562): ``from local.report import summary_rows`` for the terminal does not
import matplotlib or jinja2.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.report.figures import drift_matrix, figure_drift, figure_quality, save_figure
    from local.report.metrics import ReportError, drift_rows, load_drift, read_metric_table
    from local.report.page import render_index, render_report
    from local.report.summary import SummaryLine, summary_lines, summary_rows
    from local.report.weeks import weeks_frame

_EXPORTS = {
    "drift_matrix": "figures",
    "figure_drift": "figures",
    "figure_quality": "figures",
    "save_figure": "figures",
    "ReportError": "metrics",
    "drift_rows": "metrics",
    "load_drift": "metrics",
    "read_metric_table": "metrics",
    "render_index": "page",
    "render_report": "page",
    "SummaryLine": "summary",
    "summary_lines": "summary",
    "summary_rows": "summary",
    "weeks_frame": "weeks",
}
__all__ = [
    "ReportError",
    "SummaryLine",
    "drift_matrix",
    "drift_rows",
    "figure_drift",
    "figure_quality",
    "load_drift",
    "read_metric_table",
    "render_index",
    "render_report",
    "save_figure",
    "summary_lines",
    "summary_rows",
    "weeks_frame",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
