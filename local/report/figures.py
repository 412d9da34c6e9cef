"""The report's and the dashboard's plots: each ``figure_*`` function builds one matplotlib ``Figure`` (the object
API: no pyplot, no global state; PNGs are rendered by the Agg canvas) or returns None when it has nothing to draw;
``save_figure`` writes it.

The drift heatmap judges drift as the drift alert does (spec/monitoring.py): a model version that scored fewer than
``monitoring.min_window_rows`` rows of a window is left out of it, and the figure says how many such groups it left
out. Without that rule every promotion week showed a dark column: the old Champion's last few rows of the week
before form a group of their own in the new Champion's first window, with an extreme PSI.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from local.report.weeks import POLICIES
from spec.monitoring import MODEL_ID_COL

logger = logging.getLogger(__name__)

ALERT_COLOURS = {"OK": "#4caf50", "TRIGGERED": "#d62728", "ERROR": "#ff9800"}
OTHER_STATE_COLOUR = "#9e9e9e"
DPI = 110


def new_figure(rows: int = 1, height: float = 4.2, **kwargs) -> tuple[Figure, Any]:
    figure = Figure(figsize=(11, height), layout="constrained")
    return figure, figure.subplots(rows, 1, sharex=True, squeeze=True, **kwargs)


def date_axis(ax, *, minticks: int = 4, grid: str = "y") -> None:
    """Concise dates on the x axis (at most 14 ticks) and a light grid on ``grid`` ("y", "x" or "both")."""
    locator = mdates.AutoDateLocator(minticks=minticks, maxticks=14)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(True, axis=grid, alpha=0.3)


def _week_bars(ax, starts: pd.Series, heights: pd.Series, **kwargs) -> None:
    """Bars one week wide starting on Monday; weeks with no value draw no bar (not a bar of 0)."""
    known = heights.notna()
    ax.bar(starts[known], heights[known], width=6, align="edge", **kwargs)


def figure_quality(weeks: pd.DataFrame, *, min_roc_auc: float, events: Sequence[dict[str, Any]] = ()) -> Figure | None:
    """(a) Weekly ROC AUC of the three policies, retrainings of the loop as vertical lines (labelled with the new
    version), weeks without labels shaded, the quality alert's threshold."""
    columns = [c for c, _, _ in POLICIES]
    if weeks.empty or not weeks[columns].notna().any(axis=None):
        return None
    figure, ax = new_figure(height=4.6)
    for column, label, colour in POLICIES:
        width = 2.2 if column == "auc_loop" else 1.4
        ax.plot(
            weeks["week_start"], weeks[column], marker="o", markersize=3, linewidth=width, color=colour, label=label
        )
    unlabelled = weeks[weeks[columns].isna().all(axis=1)]
    for i, start in enumerate(unlabelled["week_start"]):
        ax.axvspan(
            start, start + timedelta(days=7), color="0.9", lw=0, zorder=0, label="no labels yet" if i == 0 else None
        )
    for i, row in enumerate(weeks[weeks["retrained"]].itertuples()):
        ax.axvline(row.week_start, color="0.35", linestyle="--", linewidth=0.9, label="retraining" if i == 0 else None)
        if row.new_version:
            ax.text(
                row.week_start,
                1.0,
                f" v{row.new_version}",
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                va="bottom",
                ha="left",
                color="0.3",
            )
    rollbacks = [pd.to_datetime(e.get("week_start"), errors="coerce") for e in events if e.get("kind") == "rollback"]
    for i, when in enumerate(w for w in rollbacks if not pd.isna(w)):
        ax.axvline(when, color="tab:red", linestyle="-.", linewidth=1.2, label="rollback" if i == 0 else None)
    ax.axhline(min_roc_auc, color="tab:red", linestyle=":", linewidth=1, label=f"quality alert threshold {min_roc_auc}")
    ax.set_title("Weekly ROC AUC of the labelled rows, per retraining policy", loc="left", pad=14)
    ax.set_ylabel("ROC AUC")
    ax.set_xlabel("week")
    date_axis(ax)
    figure.legend(loc="outside lower center", fontsize=8, ncols=4)
    return figure


def drift_matrix(drift: pd.DataFrame, *, min_rows: int) -> pd.DataFrame:
    """Features x weekly windows of PSI: the largest over the model versions that scored at least ``min_rows`` rows
    of the window, as the drift alert takes it (``monitoring.min_window_rows``: a version's few last rows in the
    window after its successor took over are not a distribution). ``drift`` is ``drift_rows``' frame; the features
    in its order (the model's)."""
    kept = drift[drift["rows"] >= min_rows]  # no profile row (NaN): left out too, as the alert's join does
    table = kept.groupby(["column_name", "window_start"])["psi"].max().unstack("window_start")
    ordered = list(dict.fromkeys(kept["column_name"]))
    return table.reindex(ordered).sort_index(axis=1)


def small_groups(drift: pd.DataFrame, *, min_rows: int) -> pd.DataFrame:
    """The (``window_start``, ``model_version``) groups ``drift_matrix`` leaves out, with their ``rows``."""
    small = drift[~(drift["rows"] >= min_rows)]
    return small[["window_start", MODEL_ID_COL, "rows"]].drop_duplicates().reset_index(drop=True)


def figure_drift(
    drift: pd.DataFrame | None, *, threshold: float, min_rows: int, title: str, cell_days: int = 7
) -> Figure | None:
    """(b) PSI per feature and window as a heatmap; cells above the alert threshold marked x, the threshold drawn on
    the colour bar; features the drift alert ignores (they move with the calendar) say so; no window: grey. Groups of
    fewer than ``min_rows`` rows are left out as the drift alert leaves them out, and the axis says how many."""
    if drift is None or drift.empty or drift["psi"].notna().sum() == 0:
        return None
    matrix = drift_matrix(drift, min_rows=min_rows)
    if matrix.empty:
        logger.warning("%s: no plot, every model version scored fewer than %d rows of its windows", title, min_rows)
        return None
    # Every window of the span gets a column, so a window the monitor has no row for shows as such (grey).
    starts = pd.date_range(matrix.columns.min(), matrix.columns.max(), freq=f"{cell_days}D")
    matrix = matrix.reindex(columns=starts)
    edges = mdates.date2num(list(starts) + [starts[-1] + timedelta(days=cell_days)])
    values = np.ma.masked_invalid(matrix.to_numpy(dtype=float))
    # A fixed scale around the threshold: the same colour means the same PSI in every report, and the calendar
    # features' large PSI does not wash out the range where the alert decides.
    top = 3 * threshold
    figure, ax = new_figure(height=max(3.0, 1.5 + 0.27 * len(matrix)))
    ax.set_facecolor("0.88")
    mesh = ax.pcolormesh(edges, np.arange(len(matrix) + 1), values, cmap="YlOrRd", norm=Normalize(0, top))
    above = np.argwhere(matrix.to_numpy(dtype=float) > threshold)
    if len(above):
        centres = (edges[:-1] + edges[1:]) / 2
        ax.scatter(centres[above[:, 1]], above[:, 0] + 0.5, marker="x", s=14, color="black", linewidths=0.8)
    colour_bar = figure.colorbar(mesh, ax=ax, extend="max", pad=0.01)
    colour_bar.set_label("population stability index")
    colour_bar.ax.axhline(threshold, color="black", linewidth=2)
    colour_bar.ax.text(
        1.3, threshold, f" alert\n {threshold}", transform=colour_bar.ax.get_yaxis_transform(), va="center", fontsize=7
    )
    ax.set_yticks(np.arange(len(matrix)) + 0.5)
    alerted = set(drift.loc[drift["alerted"], "column_name"]) if "alerted" in drift else set(matrix.index)
    ax.set_yticklabels([n if n in alerted else f"{n} (not alerted)" for n in matrix.index], fontsize=8)
    ax.invert_yaxis()
    ax.xaxis_date()
    date_axis(ax)
    ax.grid(False)
    left_out = len(small_groups(drift, min_rows=min_rows))
    note = f"; {left_out} model version-window(s) of fewer than {min_rows} rows left out, as the alert does"
    ax.set_xlabel(
        f"window start  (x: PSI above the alert threshold {threshold}; grey: no window"
        + (note if left_out else "")
        + ")"
    )
    ax.set_title(title, loc="left")
    return figure


def figure_alerts(weeks: pd.DataFrame) -> Figure | None:
    """(c) Each alert's state per week as a timeline: OK green, TRIGGERED red, ERROR orange; blank: not evaluated."""
    names = sorted({name for states in weeks["alerts"] for name in states})
    if not names:
        return None
    figure, ax = new_figure(height=1.4 + 0.45 * len(names))
    seen: set[str] = set()
    for row, name in enumerate(names):
        for start, states in zip(weeks["week_start"], weeks["alerts"], strict=True):
            state = states.get(name)
            if state is None:
                continue
            seen.add(state)
            colour = ALERT_COLOURS.get(state, OTHER_STATE_COLOUR)
            ax.broken_barh([(mdates.date2num(start), 6.5)], (row - 0.35, 0.7), facecolors=colour)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.xaxis_date()
    date_axis(ax)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlabel("week")
    ax.set_title("Alert states per weekly evaluation", loc="left")
    handles = [Patch(color=ALERT_COLOURS.get(s, OTHER_STATE_COLOUR), label=s) for s in sorted(seen)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return figure


def _version_numbers(versions: Iterable[str | None]) -> tuple[list[float], dict[str, float]]:
    """Versions as y positions: their numbers when all are numeric, else their rank in order of appearance."""
    known = [v for v in versions if v is not None]
    if all(v.isdigit() for v in known):
        positions = {v: float(v) for v in known}
    else:
        positions = {v: float(i + 1) for i, v in enumerate(dict.fromkeys(known))}
    return [positions[v] if v is not None else np.nan for v in versions], positions


def figure_versions(weeks: pd.DataFrame) -> Figure | None:
    """(d) The Champion's version per week (a step line), the Challenger's (points), and the Challenger's share of
    the served traffic."""
    if weeks.empty or all(v is None for v in weeks["champion"]):
        return None
    champion, positions = _version_numbers(weeks["champion"])
    challenger, more = _version_numbers(weeks["challenger"])
    positions |= more
    figure, (ax, share) = new_figure(rows=2, height=5.2, height_ratios=(3, 1.3))
    ax.step(weeks["week_start"], champion, where="post", linewidth=2.2, color="tab:green", label="Champion")
    ax.scatter(weeks["week_start"], challenger, marker="D", s=28, color="tab:purple", label="Challenger", zorder=3)
    ticks = sorted(set(positions.values()))
    ax.set_yticks(ticks)
    labels = {p: v for v, p in positions.items()}
    ax.set_yticklabels([f"v{labels[t]}" for t in ticks])
    ax.set_ylabel("model version")
    ax.set_title("Champion and Challenger versions per week", loc="left")
    ax.legend(loc="upper left", fontsize=8)
    date_axis(ax)
    _week_bars(share, weeks["week_start"], weeks["challenger_percent"], color="tab:purple", alpha=0.7)
    share.set_ylabel("Challenger\ntraffic %")
    share.set_ylim(0, max(10.0, float(np.nan_to_num(weeks["challenger_percent"].max())) * 1.2))
    share.set_xlabel("week")
    date_axis(share)
    return figure


def figure_serving(weeks: pd.DataFrame) -> Figure | None:
    """(e) Requests served per week (errors stacked in red) and the weekly latency p50 / p95."""
    columns = ["served_requests", "served_p50_ms", "served_p95_ms"]
    if weeks.empty or not weeks[columns].notna().any(axis=None):
        return None
    figure, (count, latency) = new_figure(rows=2, height=5.4)
    errors = weeks["served_errors"].fillna(0)
    answered = weeks["served_requests"] - errors.where(weeks["served_requests"].notna())
    _week_bars(count, weeks["week_start"], answered, color="tab:blue", label="answered")
    known = weeks["served_requests"].notna() & (errors > 0)
    if known.any():
        count.bar(
            weeks["week_start"][known],
            errors[known],
            bottom=answered[known],
            width=6,
            align="edge",
            color="tab:red",
            label="errors",
        )
    count.set_ylabel("requests")
    count.set_title("Serving: requests per week and latency", loc="left")
    count.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=8, frameon=False)
    date_axis(count)
    for column, label, style in (("served_p50_ms", "p50", "-"), ("served_p95_ms", "p95", "--")):
        latency.plot(weeks["week_start"], weeks[column], style, marker="o", markersize=3, label=label)
    latency.set_ylabel("latency (ms)")
    latency.set_ylim(bottom=0)
    latency.set_xlabel("week (no point: no request that week)")
    latency.legend(loc="upper left", fontsize=8)
    date_axis(latency)
    return figure


def figure_publishing(weeks: pd.DataFrame) -> Figure | None:
    """(f) Items written to the online store per week."""
    if weeks.empty or weeks["published"].notna().sum() == 0:
        return None
    figure, ax = new_figure(height=3.4)
    _week_bars(ax, weeks["week_start"], weeks["published"], color="tab:cyan")
    ax.set_ylabel("items published")
    ax.set_xlabel("week")
    ax.set_title("Online store: items published per week", loc="left")
    date_axis(ax)
    return figure


def figure_scoring(weeks: pd.DataFrame) -> Figure | None:
    """(g) Rows scored per week by the streaming and the batch job (stacked), and the rows rejected."""
    columns = ["scored_stream", "scored_batch", "rejected"]
    if weeks.empty or not weeks[columns].notna().any(axis=None):
        return None
    figure, (scored, rejected) = new_figure(rows=2, height=5.0, height_ratios=(3, 1.4))
    stream = weeks["scored_stream"]
    _week_bars(scored, weeks["week_start"], stream, color="tab:blue", label="streaming")
    batch_known = weeks["scored_batch"].notna()
    scored.bar(
        weeks["week_start"][batch_known],
        weeks["scored_batch"][batch_known],
        bottom=stream.fillna(0)[batch_known],
        width=6,
        align="edge",
        color="tab:orange",
        label="batch",
    )
    scored.set_ylabel("rows scored")
    scored.set_title("Scoring: rows per week by job, and rejected rows", loc="left")
    scored.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=8, frameon=False)
    date_axis(scored)
    _week_bars(rejected, weeks["week_start"], weeks["rejected"], color="tab:red")
    rejected.set_ylabel("rejected")
    rejected.set_xlabel("week")
    date_axis(rejected)
    return figure


def save_figure(figure: Figure | None, path: Path) -> bool:
    """Write the figure as a PNG (Agg); without a figure, remove an older PNG of that name. True when written."""
    if figure is None:
        path.unlink(missing_ok=True)
        return False
    figure.savefig(path, dpi=DPI, format="png")
    return True


# --- Reading the monitor's metric tables ----------------------------------------------------------------------------
