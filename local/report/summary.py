"""The replay's measures as verdict lines: each target stated with the measured number and a verdict (``met``,
``missed`` or ``not measured`` when the data to decide is absent): the report never claims a target it did not
measure. ``summary_rows`` gives the same lines as (label, value) pairs for the terminal.

Plain data and pandas only (an import contract keeps matplotlib and jinja2 out): the terminal summary draws nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd

from local.report.weeks import POLICIES, events, second_half_start, weeks_frame

# The demo's targets.
MAX_SHORTFALL_TO_WEEKLY = 0.01  # the loop's mean weekly ROC AUC at most this far below retraining every week
MAX_RETRAIN_FRACTION = 1 / 3  # retrains in at most a third of the weeks
MAX_WALL_SECONDS = 600.0  # the whole demo under 10 minutes

MET, MISSED, NOT_MEASURED = "met", "missed", "not measured"


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
    half = second_half_start(data, weeks)
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
    rollbacks = sum(1 for e in events(data) if e.get("kind") == "rollback")
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


def targets_counts(lines: list[SummaryLine]) -> str:
    """How many targets were met, missed and not measured ("3 met, 1 missed"); "" when no line has a target."""
    verdicts = Counter(line.verdict for line in lines if line.target)
    return ", ".join(f"{verdicts[v]} {v}" for v in (MET, MISSED, NOT_MEASURED) if verdicts[v])
