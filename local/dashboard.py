"""`mlops dashboard`: quality and drift over time, per model version and per slice, from the quality monitor's metric
tables (``<table>_profile_metrics`` and ``<table>_drift_metrics``, Lakehouse Monitoring's columns; see
spec/monitoring.py), as one HTML page with PNG plots beside it.

For each monitored table (the batch and streaming predictions, the served requests):

* model quality per window, one line per model version, daily and weekly windows: a classifier's ROC AUC and
  accuracy, a regressor's mean absolute error and R² (``quality_panels``);
* that quality per slice (each slicing expression of the monitor) over the latest weeks;
* drift per feature: PSI against the baseline, and against the previous window (consecutive), weekly windows;
* label coverage: labelled rows / rows per window; a window without any label is shown as unlabelled, never as 0.

The predictions' metric tables must exist (``mlops monitor --env ENV`` writes them; without them there is nothing to
show: ``DashboardError``). The served requests' are optional: their section says how to produce them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from local.paths import mlops_home
from local.report.figures import date_axis, figure_drift, save_figure
from local.report.metrics import DRIFT_COLUMNS, PROFILE_COLUMNS, WEEK, drift_rows, read_metric_table
from local.report.page import FigureSection, write_page
from spec.config import Environment
from spec.errors import MlopsError
from spec.monitoring import (
    BASELINE,
    CONSECUTIVE,
    INPUT,
    LABEL_COL,
    MODEL_ID_COL,
    TABLE_COLUMN,
    MonitoredTable,
    monitored_tables,
)

logger = logging.getLogger(__name__)

LATEST_WEEKS = 8
# Quality columns where higher is better (the slice heatmap's colours follow): the errors are lower-is-better.
HIGHER_IS_BETTER = frozenset({"roc_auc_score", "accuracy_score", "r2_score"})
DAY_WIDTH = {"1 day": 1, "1 week": 7}


class DashboardError(MlopsError):
    """The dashboard has nothing to draw from; the message names the table and the command to run first."""


@dataclass(frozen=True)
class QualityPanel:
    """One model quality metric the dashboard plots: the profile metric table's column, its label, and the quality
    alert's threshold when the alert reads it."""

    column: str
    label: str
    threshold: float | None = None


ROC_AUC = QualityPanel("roc_auc_score", "ROC AUC")


def quality_panels(env: Environment, monitored: MonitoredTable) -> tuple[QualityPanel, QualityPanel]:
    """What the dashboard plots of the model quality: the metric the quality alert reads (with its threshold), and a
    second view of it (a classifier's accuracy, a regressor's R²)."""
    if monitored.is_classifier:
        return QualityPanel("roc_auc_score", "ROC AUC", env.monitoring.min_roc_auc), QualityPanel(
            "accuracy_score", "accuracy"
        )
    return QualityPanel("mean_average_error", "mean absolute error", env.monitoring.max_mean_absolute_error), (
        QualityPanel("r2_score", "R²")
    )


@dataclass(frozen=True)
class Metrics:
    """One monitored table's metric tables, read (``window`` as ``window_start``, naive UTC)."""

    monitored: MonitoredTable
    profile: pd.DataFrame
    drift: pd.DataFrame


def default_out_dir(env: Environment) -> Path:
    return mlops_home() / "dashboard" / env.name


def load_metrics(monitored: MonitoredTable) -> Metrics | None:
    """Both metric tables of ``monitored``, or None when either does not exist yet."""
    profile = read_metric_table(monitored.profile_metrics_table, PROFILE_COLUMNS)
    drift = read_metric_table(monitored.drift_metrics_table, DRIFT_COLUMNS)
    if profile is None or drift is None:
        return None
    return Metrics(monitored, profile, drift)


def _whole_table(profile: pd.DataFrame, column_name: str) -> pd.DataFrame:
    """INPUT profile rows of one column (``:table`` for model quality), whole table (no slice)."""
    return profile[
        (profile["log_type"] == INPUT) & profile["slice_key"].isna() & (profile["column_name"] == column_name)
    ]


def figure_model_quality(
    profile: pd.DataFrame, *, granularities: tuple[str, ...], panels: Sequence[QualityPanel]
) -> Figure | None:
    """The ``panels``' metrics (rows) per window and granularity (columns), one line per model version; windows
    without labels have no value (a gap), the quality alert's threshold on the panels of the metric it reads."""
    quality = _whole_table(profile, TABLE_COLUMN)
    if quality[[p.column for p in panels]].notna().sum().sum() == 0:
        return None
    figure = Figure(figsize=(12, 6.4), layout="constrained")
    axes = figure.subplots(len(panels), len(granularities), sharex="col", squeeze=False)
    versions = sorted(quality[MODEL_ID_COL].dropna().unique(), key=_version_key)
    colours = {v: f"C{i % 10}" for i, v in enumerate(versions)}
    for col, granularity in enumerate(granularities):
        rows = quality[quality["granularity"] == granularity]
        for row, panel in enumerate(panels):
            metric, label = panel.column, panel.label
            ax = axes[row][col]
            for version in versions:
                mine = rows[rows[MODEL_ID_COL] == version].sort_values("window_start")
                if mine[metric].notna().any():
                    ax.plot(
                        mine["window_start"],
                        mine[metric].astype(float),
                        marker="o",
                        markersize=2 if granularity == "1 day" else 3,
                        linewidth=1.2,
                        color=colours[version],
                        label=f"v{version}",
                    )
            if panel.threshold is not None:
                ax.axhline(
                    panel.threshold, color="tab:red", linestyle=":", linewidth=1, label=f"alert {panel.threshold}"
                )
            ax.set_ylabel(label)
            ax.set_title(f"{label}, {granularity} windows", loc="left", fontsize=10)
            date_axis(ax, minticks=5, grid="both")
        axes[-1][col].set_xlabel("window start (no point: no labelled row in the window)")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside right upper", title="model version", fontsize=8)
    figure.suptitle("Model quality of the labelled rows per window and model version", x=0.01, ha="left")
    return figure


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if str(version).isdigit() else (10**9, str(version))


def slice_quality(
    profile: pd.DataFrame, slice_key: str, weeks: int = LATEST_WEEKS, metric: str = "roc_auc_score"
) -> pd.DataFrame:
    """``metric`` (a whole-table quality column) per slice value (rows) and week (columns) over the latest ``weeks``
    weekly windows, for the model version that scored the most rows of each week (its column header says which)."""
    table_rows = _whole_table(profile, TABLE_COLUMN)
    weekly = table_rows[table_rows["granularity"] == WEEK]
    if weekly.empty:
        return pd.DataFrame()
    main = weekly.sort_values("count", ascending=False).drop_duplicates("window_start")
    main = main.sort_values("window_start").tail(weeks)
    sliced = profile[
        (profile["log_type"] == INPUT)
        & (profile["granularity"] == WEEK)
        & (profile["slice_key"] == slice_key)
        & (profile["column_name"] == TABLE_COLUMN)
    ]
    chosen = sliced.merge(main[["window_start", MODEL_ID_COL]], on=["window_start", MODEL_ID_COL])
    if chosen.empty:
        return pd.DataFrame()
    matrix = chosen.pivot_table(
        index="slice_value", columns="window_start", values=metric, aggfunc="first", dropna=False
    )
    matrix = matrix.reindex(columns=main["window_start"])
    matrix.columns = [
        f"{start:%Y-%m-%d}\nv{version}" for start, version in zip(main["window_start"], main[MODEL_ID_COL], strict=True)
    ]
    return matrix.sort_index()


def figure_slice_quality(
    profile: pd.DataFrame,
    *,
    slicing_exprs: tuple[str, ...],
    panel: QualityPanel = ROC_AUC,
) -> Figure | None:
    """``panel``'s metric per slice value and week (latest weeks), one heatmap per slicing expression; no labelled
    row in the slice that week: grey, marked "unlabelled". Green is good: reversed for an error."""
    matrices = [(key, slice_quality(profile, key, metric=panel.column)) for key in slicing_exprs]
    matrices = [(key, m) for key, m in matrices if not m.empty]
    if not matrices:
        return None
    heights = [max(len(m), 2) for _, m in matrices]
    figure = Figure(figsize=(12, 1.6 + 0.32 * sum(heights)), layout="constrained")
    axes = figure.subplots(len(matrices), 1, height_ratios=heights, squeeze=False)[:, 0]
    known = np.concatenate([m.to_numpy(dtype=float).ravel() for _, m in matrices])
    known = known[~np.isnan(known)]
    low, high = (float(known.min()), float(known.max())) if len(known) else (0.5, 1.0)
    mesh = None
    for ax, (key, matrix) in zip(axes, matrices, strict=True):
        values = matrix.to_numpy(dtype=float)
        ax.set_facecolor("0.85")
        cmap = "RdYlGn" if panel.column in HIGHER_IS_BETTER else "RdYlGn_r"
        mesh = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=cmap, vmin=low, vmax=high)
        for (r, c), value in np.ndenumerate(values):
            text = "unlabelled" if np.isnan(value) else f"{value:.3f}"
            ax.text(c, r, text, ha="center", va="center", fontsize=7, color="0.25" if np.isnan(value) else "black")
        ax.set_yticks(range(len(matrix)))
        ax.set_yticklabels(matrix.index, fontsize=8)
        ax.set_xticks(range(matrix.shape[1]))
        ax.set_xticklabels(matrix.columns, fontsize=8)
        ax.set_ylabel(key)
    figure.colorbar(mesh, ax=list(axes), label=panel.label, shrink=0.8)
    axes[0].set_title(
        f"{panel.label} per slice, latest {LATEST_WEEKS} weekly windows (the version that scored most of each week)",
        loc="left",
    )
    return figure


def label_coverage(profile: pd.DataFrame, granularity: str) -> pd.DataFrame:
    """Per window (all model versions together): ``rows``, ``labelled`` and ``coverage`` (labelled / rows; NaN when
    nothing is labelled: unlabelled, not 0)."""
    labels = _whole_table(profile, LABEL_COL)
    labels = labels[labels["granularity"] == granularity]
    counts = labels.assign(labelled=labels["count"] - labels["num_nulls"].fillna(0))
    per_window = counts.groupby("window_start")[["count", "labelled"]].sum().rename(columns={"count": "rows"})
    per_window["coverage"] = (per_window["labelled"] / per_window["rows"]).where(per_window["labelled"] > 0)
    return per_window.reset_index()


def figure_label_coverage(profile: pd.DataFrame, *, granularities: tuple[str, ...]) -> Figure | None:
    """Labelled rows / rows per window, one panel per granularity: a bar per labelled window, a hatched grey band per
    window without any label (labels arrive after the events: the latest windows are unlabelled)."""
    frames = [(g, label_coverage(profile, g)) for g in granularities]
    frames = [(g, f) for g, f in frames if not f.empty]
    if not frames:
        return None
    figure = Figure(figsize=(12, 1.2 + 2.3 * len(frames)), layout="constrained")
    axes = figure.subplots(len(frames), 1, squeeze=False)[:, 0]
    for ax, (granularity, frame) in zip(axes, frames, strict=True):
        days = DAY_WIDTH.get(granularity, 1)
        labelled = frame[frame["coverage"].notna()]
        ax.bar(
            labelled["window_start"],
            labelled["coverage"],
            width=days * 0.85,
            align="edge",
            color="tab:blue",
            label="labelled rows / rows",
        )
        for i, start in enumerate(frame.loc[frame["coverage"].isna(), "window_start"]):
            ax.axvspan(
                start,
                start + timedelta(days=days),
                facecolor="0.85",
                edgecolor="0.6",
                hatch="///",
                linewidth=0,
                label="unlabelled window" if i == 0 else None,
            )
        ax.set_ylim(0, 1.05)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.set_ylabel("label coverage")
        ax.set_title(f"{granularity} windows", loc="left", fontsize=10)
        ax.legend(loc="lower left", fontsize=8)
        date_axis(ax, minticks=5, grid="both")
    axes[-1].set_xlabel("window start")
    figure.suptitle("Label coverage per window", x=0.01, ha="left")
    return figure


def _latest_week_text(metrics: Metrics, *, min_rows: int) -> str:
    quality = _whole_table(metrics.profile, TABLE_COLUMN)
    weekly = quality[quality["granularity"] == WEEK]
    if weekly.empty:
        return "No weekly window yet."
    start = weekly["window_start"].max()
    rows = int(weekly.loc[weekly["window_start"] == start, "count"].sum())
    coverage = label_coverage(metrics.profile, WEEK)
    latest = coverage[coverage["window_start"] == start]
    labelled = int(latest["labelled"].sum()) if len(latest) else 0
    drift = drift_rows(
        metrics.drift, drift_type=BASELINE, granularity=WEEK, profile=metrics.profile, monitored=metrics.monitored
    )
    drift = drift[(drift["window_start"] == start) & (drift["rows"] >= min_rows)]
    worst = drift.loc[drift["psi"].idxmax()] if len(drift) else None
    text = f"Latest weekly window {start:%Y-%m-%d}: {rows:,} rows, {labelled:,} labelled"
    if worst is not None:
        text += f"; largest baseline PSI {worst['psi']:.3f} ({worst['column_name']})"
    return text + "."


def _table_sections(env: Environment, metrics: Metrics, out_dir: Path) -> list[FigureSection]:
    m = env.monitoring
    stem = metrics.monitored.short_name
    profile, drift = metrics.profile, metrics.drift
    granularities = tuple(g for g in metrics.monitored.granularities if g in set(profile["granularity"].dropna()))
    granularities = granularities or metrics.monitored.granularities
    panels = quality_panels(env, metrics.monitored)
    monitored = metrics.monitored
    plots = (
        (
            "quality",
            "Model quality over time",
            f"{panels[0].label} and {panels[1].label} of the labelled rows of each window, one line "
            "per model version (profile metrics, column ':table', whole table).",
            figure_model_quality(profile, granularities=granularities, panels=panels),
            "no labelled window",
        ),
        (
            "slices",
            f"{panels[0].label} per slice",
            f"The latest {LATEST_WEEKS} weekly windows, per value of each slicing "
            f"expression ({', '.join(monitored.slicing_exprs)}).",
            figure_slice_quality(profile, slicing_exprs=monitored.slicing_exprs, panel=panels[0]),
            "no sliced weekly window",
        ),
        (
            "drift_baseline",
            "Drift against the baseline",
            "PSI of each input feature against the training data of "
            "the model version that scored the window (drift metrics, BASELINE, whole table, 1 week windows; a "
            f"version with fewer than {m.min_window_rows} rows in the window is left out, as the drift alert does).",
            figure_drift(
                drift_rows(drift, drift_type=BASELINE, granularity=WEEK, profile=profile, monitored=monitored),
                threshold=m.max_drift_psi,
                min_rows=m.min_window_rows,
                title="Baseline drift (PSI) per feature and week",
            ),
            "no baseline drift row",
        ),
        (
            "drift_consecutive",
            "Drift from one week to the next",
            "PSI of each input feature against the previous "
            "window (drift metrics, CONSECUTIVE); the threshold is the baseline alert's, for scale.",
            figure_drift(
                drift_rows(drift, drift_type=CONSECUTIVE, granularity=WEEK, profile=profile, monitored=monitored),
                threshold=m.max_drift_psi,
                min_rows=m.min_window_rows,
                title="Consecutive drift (PSI) per feature and week",
            ),
            "no consecutive drift row",
        ),
        (
            "coverage",
            "Label coverage",
            "Labelled rows / rows per window (profile metrics, column 'label': count - "
            "num_nulls over count). Hatched: no label yet in the window.",
            figure_label_coverage(profile, granularities=granularities),
            "no label profile row",
        ),
    )
    sections = []
    for name, heading, caption, figure, missing in plots:
        file = f"{stem}_{name}.png"
        written = save_figure(figure, out_dir / file)
        sections.append(FigureSection(heading, caption, file if written else None, missing))
    return sections


def render_dashboard(env: Environment, out_dir: Path | None = None) -> Path:
    """Write ``index.html`` and its PNGs to ``out_dir`` (default ``<MLOPS_HOME>/dashboard/<env>/``); returns the
    HTML file. ``DashboardError`` when the predictions' metric tables do not exist."""
    tables = monitored_tables(env)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(env)
    loaded = [(monitored, load_metrics(monitored)) for monitored in tables]
    primary, primary_metrics = loaded[0]
    if primary_metrics is None:
        raise DashboardError(
            f"no metric tables for {primary.table} ({primary.profile_metrics_table}, {primary.drift_metrics_table} "
            f"do not exist yet): run mlops monitor --env {env.name} first"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = []
    for monitored, metrics in loaded:
        table = {
            "name": monitored.table,
            "profile_table": monitored.profile_metrics_table,
            "drift_table": monitored.drift_metrics_table,
            "latest": None,
            "sections": None,  # no metric tables yet: the page says what to run
        }
        if metrics is None:
            logger.warning("dashboard: no metric tables for %s yet", monitored.table)
        else:
            table["latest"] = _latest_week_text(metrics, min_rows=env.monitoring.min_window_rows)
            table["sections"] = _table_sections(env, metrics, out_dir)
        tables.append(table)
    title = f"{env.name} quality and drift"
    index = write_page("dashboard.html", out_dir / "index.html", title=title, env_name=env.name, tables=tables)
    logger.info("dashboard: %s", index)
    return index
