"""The demo's report: one HTML page a person can read, with PNG plots beside it, from the replay's ``report_data.json``
and the quality monitor's drift table.

``render_report(data, out_dir, drift=...)`` writes ``out_dir/index.html`` and one PNG per plot (relative links, so the
folder can be moved or zipped). ``summary_rows(data)`` gives the same summary as (label, value) pairs for the
terminal. Every target is stated with the measured number and a verdict (``met``, ``missed`` or ``not measured``
when the data to decide is absent): the report never claims a target it did not measure.

The replay's JSON may lack keys or hold nulls (weeks without labels have null ROC AUCs, a week without requests has
null latencies): a missing number is NaN here, drawn as a gap, never as 0.

Each ``figure_*`` function builds one matplotlib ``Figure`` (the object API: no pyplot, no global state; PNGs are
rendered by the Agg canvas) or returns None when it has nothing to draw; ``render_report`` saves them.
"""

from __future__ import annotations

import html
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from local.paths import table_path
from spec.config import ENVIRONMENTS, Environment, Monitoring
from spec.errors import MlopsError
from spec.monitoring import (
    BASELINE,
    DRIFT_ALERT_COLUMNS,
    INPUT,
    MODEL_ID_COL,
    MONITORED_FEATURES,
    TABLE_COLUMN,
    monitored_tables,
)

logger = logging.getLogger(__name__)


class ReportError(MlopsError):
    """A metric table the report reads is not what the monitor writes; the message names it and what to run."""


# The demo's targets.
MAX_SHORTFALL_TO_WEEKLY = 0.01  # the loop's mean weekly ROC AUC at most this far below retraining every week
MAX_RETRAIN_FRACTION = 1 / 3  # retrains in at most a third of the weeks
MAX_WALL_SECONDS = 600.0  # the whole demo under 10 minutes

MET, MISSED, NOT_MEASURED = "met", "missed", "not measured"
WEEK = "1 week"

# The three retraining policies the replay compares: (column of report_data.json, label, colour).
POLICIES = (
    ("auc_loop", "the loop", "tab:blue"),
    ("auc_never", "never retrained", "tab:gray"),
    ("auc_weekly", "retrained every week", "tab:orange"),
)
NUMERIC_WEEK_FIELDS = (
    "auc_loop", "auc_never", "auc_weekly", "labelled", "scored_stream", "scored_batch", "rejected",
    "served_requests", "served_errors", "served_p50_ms", "served_p95_ms", "published", "challenger_percent",
)  # fmt: skip
TEXT_WEEK_FIELDS = ("champion", "challenger", "new_version", "validation", "online_decision", "retrain_reason")
FLAG_WEEK_FIELDS = ("retrained", "promoted")
ALERT_COLOURS = {"OK": "#4caf50", "TRIGGERED": "#d62728", "ERROR": "#ff9800"}
OTHER_STATE_COLOUR = "#9e9e9e"
DPI = 110


# --- The replay's data ----------------------------------------------------------------------------------------------


def weeks_frame(data: dict[str, Any]) -> pd.DataFrame:
    """``data["weeks"]`` as one row per week, sorted by ``week_start`` (a Timestamp): numbers as floats (NaN when
    missing or null), versions and decisions as text or None, flags as booleans, ``alerts`` as a dict."""
    records = [w for w in (data.get("weeks") or []) if isinstance(w, dict)]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(index=pd.RangeIndex(0))
    out = pd.DataFrame(index=frame.index)
    out["week_start"] = pd.to_datetime(frame.get("week_start", pd.Series(dtype=object)), errors="coerce")
    for name in NUMERIC_WEEK_FIELDS:
        out[name] = pd.to_numeric(frame[name], errors="coerce").astype(float) if name in frame else np.nan
    for name in TEXT_WEEK_FIELDS:
        values = frame[name] if name in frame else pd.Series([None] * len(frame), index=frame.index, dtype=object)
        out[name] = [None if _missing(v) else str(v) for v in values]
    for name in FLAG_WEEK_FIELDS:
        out[name] = [v is True for v in frame[name]] if name in frame else False
    alerts = frame["alerts"] if "alerts" in frame else [None] * len(frame)
    out["alerts"] = [a if isinstance(a, dict) else {} for a in alerts]
    undated = out["week_start"].isna()
    if undated.any():
        logger.warning("report: %d week(s) without a valid week_start left out", int(undated.sum()))
    return out[~undated].sort_values("week_start").reset_index(drop=True)


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _events(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in (data.get("events") or []) if isinstance(e, dict)]


def _monitoring(data: dict[str, Any]) -> Monitoring:
    """The thresholds of the replayed environment (the defaults when the data names none we know)."""
    env = ENVIRONMENTS.get(str(data.get("env")))
    return env.monitoring if env is not None else Monitoring()


def _second_half_start(data: dict[str, Any], weeks: pd.DataFrame) -> pd.Timestamp | None:
    """The middle of the replayed period (from ``start`` / ``end``, else from the weeks)."""
    start = pd.to_datetime(data.get("start"), errors="coerce")
    end = pd.to_datetime(data.get("end"), errors="coerce")
    if pd.isna(start) and len(weeks):
        start = weeks["week_start"].min()
    if pd.isna(end) and len(weeks):
        end = weeks["week_start"].max() + timedelta(days=6)
    if pd.isna(start) or pd.isna(end):
        return None
    return (start + (end - start) / 2).normalize()


# --- The summary ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryLine:
    """One measure: its measured value and, when it has a target, the target and whether it was met."""

    label: str
    value: str
    target: str = ""
    verdict: str = ""  # MET, MISSED, NOT_MEASURED; "" when the measure has no target

    def text(self) -> str:
        return f"{self.value}; target {self.target}: {self.verdict}" if self.target else self.value


def _verdict(ok: bool | None) -> str:
    return NOT_MEASURED if ok is None else MET if ok else MISSED


def _mean_auc_lines(weeks: pd.DataFrame, suffix: str, missing: str | None = None) -> list[SummaryLine]:
    lines = []
    for column, label, _ in POLICIES:
        known = weeks[column].dropna()
        if len(known):
            value = f"{known.mean():.4f} ({len(known)} weeks with labels)"
        elif column != "auc_loop" and missing:
            value = f"not computed ({missing})"
        else:
            value = "no week with labels"
        lines.append(SummaryLine(f"mean weekly ROC AUC, {label}{suffix}", value))
    return lines


def _shortfall(weeks: pd.DataFrame, reference: str = "auc_weekly") -> tuple[float, int] | None:
    """Mean of (the reference - the loop) over the weeks where both are known, and how many weeks."""
    both = weeks[["auc_loop", reference]].dropna()
    if both.empty:
        return None
    return float((both[reference] - both["auc_loop"]).mean()), len(both)


def _shortfall_text(measured: tuple[float, int] | None, reference: str = "retraining every week") -> str:
    if measured is None:
        return "no week with both ROC AUCs"
    gap, weeks = measured
    side = "below" if gap >= 0 else "above"
    return f"the loop {abs(gap):.4f} {side} {reference} ({weeks} weeks with both)"


def _count_text(counts: Counter) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _alert_lines(weeks: pd.DataFrame) -> list[SummaryLine]:
    """Firings (a week TRIGGERED after a week that was not) and TRIGGERED alert-weeks, per alert."""
    firings: Counter = Counter()
    triggered: Counter = Counter()
    previous: dict[str, str] = {}
    for states in weeks["alerts"]:
        for name, state in states.items():
            if state == "TRIGGERED":
                triggered[name] += 1
                if previous.get(name) != "TRIGGERED":
                    firings[name] += 1
            previous[name] = state
    if not triggered:
        value = "none" if any(weeks["alerts"]) else "no alert state recorded"
        return [SummaryLine("alerts fired", value)]
    total = sum(firings.values())
    value = f"{total} time{'s' if total != 1 else ''} ({sum(triggered.values())} TRIGGERED alert-weeks): "
    return [SummaryLine("alerts fired", value + _count_text(firings))]


def _champion_path(weeks: pd.DataFrame) -> str:
    path: list[str] = []
    for version in weeks["champion"]:
        if version is not None and (not path or path[-1] != version):
            path.append(version)
    return " -> ".join(f"v{v}" for v in path) if path else "none recorded"


def _sum(weeks: pd.DataFrame, column: str) -> int | None:
    known = weeks[column].dropna()
    return int(known.sum()) if len(known) else None


def _number(value: int | None, unit: str = "") -> str:
    return "not recorded" if value is None else f"{value:,}{unit}"


def _latency_text(weeks: pd.DataFrame) -> str:
    p50, p95 = weeks["served_p50_ms"].dropna(), weeks["served_p95_ms"].dropna()
    if p50.empty and p95.empty:
        return "no request served"
    parts = []
    if len(p50):
        parts.append(f"p50 {p50.median():.1f} ms")
    if len(p95):
        parts.append(f"p95 {p95.median():.1f} ms")
    text = ", ".join(parts) + f" (median of {max(len(p50), len(p95))} weekly values)"
    if len(p95):
        text += f"; worst weekly p95 {p95.max():.1f} ms"
    return text


def _seconds(seconds: float) -> str:
    return f"{seconds:,.0f} s ({seconds / 60:.1f} min)" if seconds >= 60 else f"{seconds:.1f} s"


def _phase_lines(data: dict[str, Any]) -> list[SummaryLine]:
    phases = data.get("phases") if isinstance(data.get("phases"), dict) else {}
    lines = []
    known = []
    for name, seconds in phases.items():
        value = pd.to_numeric(seconds, errors="coerce")
        if pd.isna(value):
            lines.append(SummaryLine(f"time: {name}", "not recorded"))
        else:
            known.append(float(value))
            lines.append(SummaryLine(f"time: {name}", _seconds(float(value))))
    wall = pd.to_numeric(data.get("wall_seconds"), errors="coerce")
    if pd.isna(wall) and known:
        wall = sum(known)
    target = f"under {MAX_WALL_SECONDS / 60:.0f} minutes"
    if pd.isna(wall):
        lines.append(SummaryLine("wall time", "not recorded", target, NOT_MEASURED))
    else:
        lines.append(SummaryLine("wall time", _seconds(float(wall)), target, _verdict(float(wall) < MAX_WALL_SECONDS)))
    return lines


def summary_lines(data: dict[str, Any]) -> list[SummaryLine]:
    """The measures of the replay, with each target and whether it was met (see the module docstring)."""
    weeks = weeks_frame(data)
    missing = data.get("references_missing")
    missing = missing if isinstance(missing, str) else None
    lines = _mean_auc_lines(weeks, "", missing)
    half = _second_half_start(data, weeks)
    late = weeks[weeks["week_start"] >= half] if half is not None else weeks.iloc[0:0]
    half_suffix = f", second half (from {half:%Y-%m-%d})" if half is not None else ", second half"
    lines += _mean_auc_lines(late, half_suffix, missing)

    shortfall = _shortfall(weeks)
    lines.append(
        SummaryLine(
            "gap of the loop to retraining every week",
            _shortfall_text(shortfall),
            f"at most {MAX_SHORTFALL_TO_WEEKLY} below",
            _verdict(None if shortfall is None else shortfall[0] <= MAX_SHORTFALL_TO_WEEKLY),
        )
    )
    lines.append(
        SummaryLine(f"gap of the loop to retraining every week{half_suffix}", _shortfall_text(_shortfall(late)))
    )
    against_never = _shortfall(late, "auc_never")
    lines.append(
        SummaryLine(
            f"the loop against never retraining{half_suffix}",
            _shortfall_text(against_never, "never retraining"),
            "above",
            _verdict(None if against_never is None else against_never[0] < 0),
        )
    )

    n_weeks, retrains = len(weeks), int(weeks["retrained"].sum())
    lines.append(
        SummaryLine(
            "retrains",
            f"{retrains} of {n_weeks} weeks ({retrains / n_weeks:.0%})" if n_weeks else "no week replayed",
            "at most a third of the weeks",
            _verdict(retrains <= n_weeks * MAX_RETRAIN_FRACTION if n_weeks else None),
        )
    )
    lines += _alert_lines(weeks)
    failed = int((weeks["validation"] == "FAILED").sum())
    lines.append(SummaryLine("validations failed", str(failed)))
    lines.append(SummaryLine("promotions", str(int(weeks["promoted"].sum()))))
    lines.append(SummaryLine("Champion versions", _champion_path(weeks)))
    decisions = Counter(d for d in weeks["online_decision"] if d is not None)
    lines.append(SummaryLine("online decisions", _count_text(decisions) if decisions else "none"))
    rollbacks = sum(1 for e in _events(data) if e.get("kind") == "rollback")
    lines.append(SummaryLine("rollbacks", str(rollbacks)))

    requests, errors = _sum(weeks, "served_requests"), _sum(weeks, "served_errors")
    served = _number(requests) + ("" if errors is None else f" ({errors:,} error{'' if errors == 1 else 's'})")
    lines.append(SummaryLine("served requests", served))
    lines.append(SummaryLine("serving latency", _latency_text(weeks)))
    stream, batch, rejected = (_sum(weeks, c) for c in ("scored_stream", "scored_batch", "rejected"))
    scored = f"stream {_number(stream)}, batch {_number(batch)}, rejected {_number(rejected)}"
    lines.append(SummaryLine("rows scored", scored))
    lines.append(SummaryLine("items published online", _number(_sum(weeks, "published"))))
    lines += _phase_lines(data)
    return lines


def summary_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs for the terminal; a value with a target ends with "; target <target>: <verdict>"."""
    return [(line.label, line.text()) for line in summary_lines(data)]


# --- Figures --------------------------------------------------------------------------------------------------------


def _figure(rows: int = 1, height: float = 4.2, **kwargs) -> tuple[Figure, Any]:
    figure = Figure(figsize=(11, height), layout="constrained")
    return figure, figure.subplots(rows, 1, sharex=True, squeeze=True, **kwargs)


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=14)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(True, axis="y", alpha=0.3)


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
    figure, ax = _figure(height=4.6)
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
    ax.set_title("Weekly ROC AUC of the labelled flights, per retraining policy", loc="left", pad=14)
    ax.set_ylabel("ROC AUC")
    ax.set_xlabel("week")
    _date_axis(ax)
    figure.legend(loc="outside lower center", fontsize=8, ncols=4)
    return figure


def drift_matrix(drift: pd.DataFrame, *, min_rows: int) -> pd.DataFrame:
    """Features x weekly windows of PSI: the largest over the model versions that scored at least ``min_rows`` rows
    of the window, as the drift alert takes it (``monitoring.min_window_rows``: a version's few late flights in the
    window after its successor took over are not a distribution). ``drift`` is ``drift_rows``' frame."""
    kept = drift[drift["rows"] >= min_rows]  # no profile row (NaN): left out too, as the alert's join does
    table = kept.groupby(["column_name", "window_start"])["psi"].max().unstack("window_start")
    ordered = [f for f in MONITORED_FEATURES if f in table.index]
    ordered += sorted(set(table.index) - set(ordered))
    return table.reindex(ordered).sort_index(axis=1)


def small_groups(drift: pd.DataFrame, *, min_rows: int) -> pd.DataFrame:
    """The (``window_start``, ``model_version``) groups ``drift_matrix`` leaves out, with their ``rows``."""
    small = drift[~(drift["rows"] >= min_rows)]
    return small[["window_start", "model_version", "rows"]].drop_duplicates().reset_index(drop=True)


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
        return None
    # Every window of the span gets a column, so a window the monitor has no row for shows as such (grey).
    starts = pd.date_range(matrix.columns.min(), matrix.columns.max(), freq=f"{cell_days}D")
    matrix = matrix.reindex(columns=starts)
    edges = mdates.date2num(list(starts) + [starts[-1] + timedelta(days=cell_days)])
    values = np.ma.masked_invalid(matrix.to_numpy(dtype=float))
    # A fixed scale around the threshold: the same colour means the same PSI in every report, and the calendar
    # features' large PSI does not wash out the range where the alert decides.
    top = 3 * threshold
    figure, ax = _figure(height=max(3.0, 1.5 + 0.27 * len(matrix)))
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
    ax.set_yticklabels([n if n in DRIFT_ALERT_COLUMNS else f"{n} (not alerted)" for n in matrix.index], fontsize=8)
    ax.invert_yaxis()
    ax.xaxis_date()
    _date_axis(ax)
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
    figure, ax = _figure(height=1.4 + 0.45 * len(names))
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
    _date_axis(ax)
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
    figure, (ax, share) = _figure(rows=2, height=5.2, height_ratios=(3, 1.3))
    ax.step(weeks["week_start"], champion, where="post", linewidth=2.2, color="tab:green", label="Champion")
    ax.scatter(weeks["week_start"], challenger, marker="D", s=28, color="tab:purple", label="Challenger", zorder=3)
    ticks = sorted(set(positions.values()))
    ax.set_yticks(ticks)
    labels = {p: v for v, p in positions.items()}
    ax.set_yticklabels([f"v{labels[t]}" for t in ticks])
    ax.set_ylabel("model version")
    ax.set_title("Champion and Challenger versions per week", loc="left")
    ax.legend(loc="upper left", fontsize=8)
    _date_axis(ax)
    _week_bars(share, weeks["week_start"], weeks["challenger_percent"], color="tab:purple", alpha=0.7)
    share.set_ylabel("Challenger\ntraffic %")
    share.set_ylim(0, max(10.0, float(np.nan_to_num(weeks["challenger_percent"].max())) * 1.2))
    share.set_xlabel("week")
    _date_axis(share)
    return figure


def figure_serving(weeks: pd.DataFrame) -> Figure | None:
    """(e) Requests served per week (errors stacked in red) and the weekly latency p50 / p95."""
    columns = ["served_requests", "served_p50_ms", "served_p95_ms"]
    if weeks.empty or not weeks[columns].notna().any(axis=None):
        return None
    figure, (count, latency) = _figure(rows=2, height=5.4)
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
    _date_axis(count)
    for column, label, style in (("served_p50_ms", "p50", "-"), ("served_p95_ms", "p95", "--")):
        latency.plot(weeks["week_start"], weeks[column], style, marker="o", markersize=3, label=label)
    latency.set_ylabel("latency (ms)")
    latency.set_ylim(bottom=0)
    latency.set_xlabel("week (no point: no request that week)")
    latency.legend(loc="upper left", fontsize=8)
    _date_axis(latency)
    return figure


def figure_publishing(weeks: pd.DataFrame) -> Figure | None:
    """(f) Items written to the online store per week."""
    if weeks.empty or weeks["published"].notna().sum() == 0:
        return None
    figure, ax = _figure(height=3.4)
    _week_bars(ax, weeks["week_start"], weeks["published"], color="tab:cyan")
    ax.set_ylabel("items published")
    ax.set_xlabel("week")
    ax.set_title("Online store: items published per week", loc="left")
    _date_axis(ax)
    return figure


def figure_scoring(weeks: pd.DataFrame) -> Figure | None:
    """(g) Rows scored per week by the streaming and the batch job (stacked), and the rows rejected."""
    columns = ["scored_stream", "scored_batch", "rejected"]
    if weeks.empty or not weeks[columns].notna().any(axis=None):
        return None
    figure, (scored, rejected) = _figure(rows=2, height=5.0, height_ratios=(3, 1.4))
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
    _date_axis(scored)
    _week_bars(rejected, weeks["week_start"], weeks["rejected"], color="tab:red")
    rejected.set_ylabel("rejected")
    rejected.set_xlabel("week")
    _date_axis(rejected)
    return figure


def save_figure(figure: Figure | None, path: Path) -> bool:
    """Write the figure as a PNG (Agg); without a figure, remove an older PNG of that name. True when written."""
    if figure is None:
        path.unlink(missing_ok=True)
        return False
    figure.savefig(path, dpi=DPI, format="png")
    return True


# --- Reading the monitor's metric tables ----------------------------------------------------------------------------


def read_metric_table(full_name: str, columns: Sequence[str]) -> pd.DataFrame | None:
    """``window_start`` (the start of ``window``, naive UTC) and the ``columns`` of a monitor metric table; None when
    the table does not exist. A column the table lacks comes back all null."""
    from deltalake import DeltaTable

    path = table_path(full_name)
    if not DeltaTable.is_deltatable(str(path)):
        return None
    table = DeltaTable(str(path))
    present = {f.name for f in table.schema().fields}
    if "window" not in present:
        raise ReportError(f"{full_name} at {path} has no column 'window': not a monitor metric table")
    wanted = [c for c in dict.fromkeys(columns) if c in present and c != "window"]
    arrow = table.to_pyarrow_table(columns=["window", *wanted])
    frame = arrow.select(wanted).to_pandas()
    for name in columns:
        if name not in frame:
            frame[name] = None
    starts = pd.to_datetime(pd.Series(arrow.column("window").combine_chunks().field("start").to_pandas()))
    if starts.dt.tz is not None:
        starts = starts.dt.tz_convert("UTC").dt.tz_localize(None)
    frame.insert(0, "window_start", starts.to_numpy())
    return frame


def window_rows(profile: pd.DataFrame, *, granularity: str) -> pd.DataFrame:
    """Rows per window and model version as the drift alert counts them (spec/monitoring.py): the ``count`` of the
    profile's whole-table row (``column_name`` ':table', ``log_type`` INPUT, no slice). Columns ``window_start``,
    ``model_version``, ``rows``."""
    chosen = profile[
        (profile["column_name"] == TABLE_COLUMN)
        & (profile["log_type"] == INPUT)
        & (profile["granularity"] == granularity)
        & profile["slice_key"].isna()
    ]
    rows = chosen.groupby(["window_start", MODEL_ID_COL], as_index=False)["count"].max()
    return rows.rename(columns={"count": "rows"})


def drift_rows(frame: pd.DataFrame, *, drift_type: str, granularity: str, profile: pd.DataFrame) -> pd.DataFrame:
    """The PSI of each monitored feature per window and model version, whole table, with the rows that version
    scored in the window (from ``profile``, the profile metric table; NaN without a profile row): ``window_start``,
    ``model_version``, ``column_name``, ``psi``, ``rows``."""
    chosen = frame[
        (frame["granularity"] == granularity)
        & (frame["drift_type"] == drift_type)
        & frame["slice_key"].isna()
        & frame["column_name"].isin(MONITORED_FEATURES)
        & frame["population_stability_index"].notna()
    ]
    chosen = chosen.rename(columns={"population_stability_index": "psi"})
    chosen = chosen[["window_start", MODEL_ID_COL, "column_name", "psi"]]
    sized = chosen.merge(window_rows(profile, granularity=granularity), on=["window_start", MODEL_ID_COL], how="left")
    sized["rows"] = sized["rows"].astype(float)
    return sized.reset_index(drop=True)


DRIFT_COLUMNS = ("granularity", MODEL_ID_COL, "slice_key", "column_name", "drift_type", "population_stability_index")
# What the report and the dashboard read of the profile metric table (model quality, label coverage, window sizes).
PROFILE_COLUMNS = (
    "granularity", MODEL_ID_COL, "log_type", "slice_key", "slice_value", "column_name", "count",
    "num_nulls", "accuracy_score", "roc_auc_score",
)  # fmt: skip


def load_drift(env: Environment | str) -> pd.DataFrame | None:
    """Baseline PSI per feature of the predictions (batch and streaming), weekly windows, whole table, per model
    version, with the rows each version scored in the window (``drift_rows``' columns); None when the monitor has
    not written its metric tables yet."""
    env = ENVIRONMENTS[env] if isinstance(env, str) else env
    monitored = monitored_tables(env)[0]
    frame = read_metric_table(monitored.drift_metrics_table, DRIFT_COLUMNS)
    if frame is None:
        logger.info("report: no drift table %s yet; the report has no drift plot", monitored.drift_metrics_table)
        return None
    profile = read_metric_table(monitored.profile_metrics_table, PROFILE_COLUMNS)
    if profile is None:
        # The monitor writes both tables in one refresh: a drift table alone is a broken warehouse, not "no data".
        raise ReportError(
            f"{monitored.drift_metrics_table} exists but {monitored.profile_metrics_table} does not: the drift "
            f"plot needs the rows per window from it (run mlops monitor --env {env.name} --full)"
        )
    return drift_rows(frame, drift_type=BASELINE, granularity=WEEK, profile=profile)


# --- HTML -----------------------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1150px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; } td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #eee;
       text-align: left; vertical-align: top; }
th { background: #f5f5f5; } .met { color: #1b7f2a; font-weight: 600; } .missed { color: #c62828; font-weight: 700; }
.not-measured { color: #8a6d00; font-weight: 600; } .note { color: #666; } img { max-width: 100%; }
code { background: #f4f4f4; padding: 0.1em 0.3em; border-radius: 3px; }
"""


def html_page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def figure_section(heading: str, caption: str, png: str | None, missing: str) -> str:
    """A plot's heading, caption and image (relative link), or what is missing instead of the image."""
    parts = [f"<h3>{html.escape(heading)}</h3>", f"<p>{html.escape(caption)}</p>"]
    if png:
        parts.append(f'<img src="{html.escape(png)}" alt="{html.escape(heading)}">')
    else:
        parts.append(f'<p class="note">No plot: {html.escape(missing)}</p>')
    return "\n".join(parts)


def _summary_table(lines: list[SummaryLine]) -> str:
    rows = []
    for line in lines:
        css = line.verdict.replace(" ", "-")
        verdict = f'<span class="{css}">{html.escape(line.verdict)}</span>' if line.verdict else ""
        rows.append(
            f"<tr><td>{html.escape(line.label)}</td><td>{html.escape(line.value)}</td>"
            f"<td>{html.escape(line.target)}</td><td>{verdict}</td></tr>"
        )
    head = "<tr><th>measure</th><th>measured</th><th>target</th><th>verdict</th></tr>"
    return f"<table>\n{head}\n" + "\n".join(rows) + "\n</table>"


def _targets_sentence(lines: list[SummaryLine]) -> str:
    verdicts = Counter(line.verdict for line in lines if line.target)
    counts = ", ".join(f"{verdicts[v]} {v}" for v in (MET, MISSED, NOT_MEASURED) if verdicts[v])
    return f"<p>Targets: {html.escape(counts)}.</p>" if counts else ""


def _events_table(events: list[dict[str, Any]]) -> str:
    if not events:
        return '<p class="note">No event recorded.</p>'
    rows = [
        f"<tr><td>{html.escape(str(e.get('week_start', '')))}</td><td>{html.escape(str(e.get('kind', '')))}</td>"
        f"<td>{html.escape(str(e.get('message', '')))}</td></tr>"
        for e in events
    ]
    return "<table>\n<tr><th>week</th><th>kind</th><th>what happened</th></tr>\n" + "\n".join(rows) + "\n</table>"


PATH_LABELS = {
    "mlflow_ui": "MLflow UI (runs, model versions, aliases)",
    "warehouse": "Delta tables (the local warehouse)",
    "predictions_table": "the predictions table",
    "dashboard": "quality and drift per model version and slice over time",
}


def _further(data: dict[str, Any]) -> str:
    paths = data.get("paths") if isinstance(data.get("paths"), dict) else {}
    items = [
        f"<li>{html.escape(PATH_LABELS.get(key, key.replace('_', ' ')))}: <code>{html.escape(str(value))}</code></li>"
        for key, value in paths.items()
        if value
    ]
    env = ENVIRONMENTS.get(str(data.get("env")))
    if env is not None:
        warehouse = paths.get("warehouse")
        for monitored in monitored_tables(env):
            for name in (monitored.profile_metrics_table, monitored.drift_metrics_table):
                where = f" at <code>{html.escape(str(Path(warehouse, *name.split('.'))))}</code>" if warehouse else ""
                items.append(f"<li>monitor metric table <code>{html.escape(name)}</code>{where}</li>")
        if "dashboard" not in paths:
            items.append(f"<li>the dashboard: <code>mlops dashboard --env {html.escape(env.name)}</code></li>")
    return "<ul>\n" + "\n".join(items) + "\n</ul>" if items else '<p class="note">No path recorded.</p>'


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
    events = _events(data)
    monitoring = _monitoring(data)
    return (
        _Plot(
            "quality.png",
            "Model quality: the loop against never retraining and retraining every week",
            "ROC AUC of each week's labelled flights under each policy. Dashed lines: the loop retrained (the new "
            "version above). Shaded: weeks without labels (no value, not 0).",
            lambda: figure_quality(weeks, min_roc_auc=monitoring.min_roc_auc, events=events),
            "no week has a ROC AUC",
        ),
        _Plot(
            "drift.png",
            "Drift per feature",
            "Population stability index of each input feature against the "
            "training data of the model that scored the week (the monitor's drift table: BASELINE drift, whole "
            "table, 1 week windows; the largest over the model versions of the week that scored at least "
            f"{monitoring.min_window_rows} of its flights, as the drift alert takes it).",
            lambda: figure_drift(
                drift,
                threshold=monitoring.max_drift_psi,
                min_rows=monitoring.min_window_rows,
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
            "Flights scored per week by the streaming and the batch job, and the rows "
            "rejected (with a reason, never dropped silently).",
            lambda: figure_scoring(weeks),
            "nothing scored",
        ),
    )


def render_index(data: dict[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` around the PNGs already there (``render_report`` draws them): cheap enough to
    run again once the demo knows its wall time."""
    out_dir = Path(out_dir)
    weeks = weeks_frame(data)
    events = _events(data)
    sections = []
    for plot in _plots(data, None):
        written = (out_dir / plot.file).exists()
        sections.append(figure_section(plot.heading, plot.caption, plot.file if written else None, plot.missing))

    lines = summary_lines(data)
    env_name = str(data.get("env", "?"))
    period = f"{data.get('start', '?')} to {data.get('end', '?')}"
    body = [
        f"<h1>The {html.escape(env_name)} replay, {html.escape(period)}</h1>",
        f'<p class="note">{len(weeks)} weeks replayed on the local engines; seed {html.escape(str(data.get("seed")))}.'
        "</p>",
        "<h2>Summary</h2>",
        _targets_sentence(lines),
        _summary_table(lines),
        "<h2>Plots</h2>",
        *sections,
        "<h2>Events</h2>",
        _events_table(events),
        "<h2>Where to look further</h2>",
        _further(data),
    ]
    index = out_dir / "index.html"
    index.write_text(html_page(f"{env_name} replay report", "\n".join(body)), encoding="utf-8")
    logger.info("report: %s", index)
    return index
