"""The decisions of the model lifecycle, as pure functions with their reasons.

- validation: may this new version become the Challenger? (metadata, metric gates, slices)
- promotion: should the Challenger replace the Champion?
- traffic: how the serving endpoint splits requests between Champion and Challenger
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from jobs.core.evaluation import SliceMetric

PENDING = "PENDING"
PASSED = "PASSED"
FAILED = "FAILED"
ValidationStatus = Literal["PASSED", "FAILED"]

# Whether a larger value of a metric is better; promotion and gates compare in that direction.
GREATER_IS_BETTER = {"roc_auc": True, "accuracy": True, "log_loss": False}


def _direction(metric: str) -> bool:
    try:
        return GREATER_IS_BETTER[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(GREATER_IS_BETTER)}") from None


def _check_value(name: str, value: float) -> float:
    if value is None or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


# ---- validation ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricGate:
    """The candidate's ``metric`` must be >= ``threshold`` (evaluated with mlflow's MetricThreshold)."""

    name: str
    metric: str
    threshold: float
    description: str


def roc_auc_gates(
    min_roc_auc: float, max_relative_drop_vs_champion: float, champion_roc_auc: float | None
) -> list[MetricGate]:
    """The absolute floor, and, when there is a Champion, at most ``max_relative_drop`` below it."""
    gates = [MetricGate("min_roc_auc", "roc_auc", min_roc_auc, f"roc_auc must be >= {min_roc_auc:.4f}")]
    if champion_roc_auc is not None:
        champion = _check_value("champion roc_auc", champion_roc_auc)
        floor = champion * (1.0 - max_relative_drop_vs_champion)
        gates.append(
            MetricGate(
                "vs_champion",
                "roc_auc",
                floor,
                f"roc_auc must be >= {floor:.4f} (champion {champion:.4f} - {max_relative_drop_vs_champion:.0%})",
            )
        )
    return gates


def metadata_problems(
    *, has_signature: bool, description: str | None, tags: Mapping[str, str], required_tags: Sequence[str]
) -> list[str]:
    """What the model version lacks to be served and traced: a signature, a description, lineage tags."""
    problems = []
    if not has_signature:
        problems.append("model has no signature")
    if not (description or "").strip():
        problems.append("model version has no description")
    missing = [t for t in required_tags if not str(tags.get(t, "")).strip()]
    if missing:
        problems.append(f"model version lacks the tags {', '.join(missing)}")
    return problems


def slice_problems(slices: Sequence[SliceMetric], min_rows: int, min_roc_auc: float) -> list[str]:
    """Slices with at least ``min_rows`` rows whose ROC AUC is below ``min_roc_auc``."""
    problems = []
    for s in slices:
        if s.rows >= min_rows and s.roc_auc is not None and s.roc_auc < min_roc_auc:
            problems.append(f"slice {s.column}={s.value} ({s.rows} rows): roc_auc {s.roc_auc:.4f} < {min_roc_auc:.4f}")
    return problems


@dataclass(frozen=True)
class ValidationOutcome:
    status: ValidationStatus
    reasons: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def summary(self) -> str:
        return "; ".join(self.reasons)


def validation_decision(
    *,
    metadata_problems: Sequence[str],
    metric_failures: Sequence[str],
    slices: Sequence[SliceMetric],
    min_slice_rows: int,
    min_slice_roc_auc: float,
) -> ValidationOutcome:
    """PASSED when nothing failed; FAILED with every reason otherwise (all checks run, all failures are told)."""
    if min_slice_rows < 1:
        raise ValueError(f"min_slice_rows must be >= 1, got {min_slice_rows}")
    reasons = [*metadata_problems, *metric_failures, *slice_problems(slices, min_slice_rows, min_slice_roc_auc)]
    if reasons:
        return ValidationOutcome(FAILED, tuple(reasons))
    checked = sum(1 for s in slices if s.rows >= min_slice_rows and s.roc_auc is not None)
    return ValidationOutcome(
        PASSED, (f"metadata, metric gates and {checked} slices with >= {min_slice_rows} rows passed",)
    )


# ---- promotion ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def promotion_decision(
    challenger_metric: float,
    champion_metric: float | None,
    metric: str,
    margin: float,
    business_threshold: float,
) -> Decision:
    """Promote when the Challenger is no worse than the Champion minus ``margin`` on ``metric`` (ties promote:
    the newer model saw newer data). Without a Champion the Challenger must reach ``business_threshold``."""
    greater_is_better = _direction(metric)
    challenger = _check_value(f"challenger {metric}", challenger_metric)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if champion_metric is None:
        ok = challenger >= business_threshold if greater_is_better else challenger <= business_threshold
        relation = (">=" if ok else "<") if greater_is_better else ("<=" if ok else ">")
        return Decision(
            ok,
            f"no champion yet: challenger {metric} {challenger:.4f} {relation} business threshold "
            f"{business_threshold:.4f}",
        )
    champion = _check_value(f"champion {metric}", champion_metric)
    if greater_is_better:
        bar = champion - margin
        ok = challenger >= bar
        relation = ">=" if ok else "<"
        bar_text = f"champion {champion:.4f} - margin {margin:.4f}"
    else:
        bar = champion + margin
        ok = challenger <= bar
        relation = "<=" if ok else ">"
        bar_text = f"champion {champion:.4f} + margin {margin:.4f}"
    return Decision(ok, f"challenger {metric} {challenger:.4f} {relation} {bar_text}")


# ---- serving ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    role: str  # "champion" or "challenger": the served entity's name
    version: str
    traffic_percent: int


def traffic_split(champion_version: str | None, challenger_version: str | None, challenger_percent: int) -> list[Route]:
    """The Champion takes all traffic, except ``challenger_percent`` for a different Challenger (A/B evidence)."""
    if not 0 <= challenger_percent <= 100:
        raise ValueError(f"challenger_percent must be 0..100, got {challenger_percent}")
    if champion_version is None:
        return []
    if challenger_version is None or challenger_version == champion_version or challenger_percent == 0:
        return [Route("champion", champion_version, 100)]
    return [
        Route("champion", champion_version, 100 - challenger_percent),
        Route("challenger", challenger_version, challenger_percent),
    ]


# ---- online: Champion vs Challenger on labelled served traffic ---------------------------------------------------

OnlineAction = Literal["wait", "promote", "retire", "ramp"]


@dataclass(frozen=True)
class OnlineDecision:
    action: OnlineAction
    reason: str
    challenger_percent: int


def online_decision(
    *,
    champion_roc_auc: float | None,
    champion_labelled: int,
    challenger_roc_auc: float | None,
    challenger_labelled: int,
    min_labelled: int,
    margin: float,
    retire_below: float,
    current_percent: int,
    ramp_step_percent: int,
    max_share_percent: int,
) -> OnlineDecision:
    """Promote the Challenger when, on enough labelled requests each, its ROC AUC is at least the Champion's plus
    ``margin``; retire it when it is worse by more than ``retire_below``; in between, ramp its traffic share to
    gather evidence faster (up to ``max_share_percent``), then wait. Before that, wait for labels."""
    if min(champion_labelled, challenger_labelled) < min_labelled or None in (champion_roc_auc, challenger_roc_auc):
        return OnlineDecision(
            "wait",
            f"not enough labelled requests yet: champion {champion_labelled}, challenger {challenger_labelled} "
            f"(need {min_labelled} each, with both classes)",
            current_percent,
        )
    champion = _check_value("champion roc_auc", champion_roc_auc)
    challenger = _check_value("challenger roc_auc", challenger_roc_auc)
    compared = (
        f"challenger roc_auc {challenger:.4f} vs champion {champion:.4f} on {challenger_labelled} and "
        f"{champion_labelled} labelled requests"
    )
    if challenger >= champion + margin:
        return OnlineDecision("promote", f"{compared}: at least the champion + {margin:.4f}", 100)
    if challenger < champion - retire_below:
        return OnlineDecision("retire", f"{compared}: worse by more than {retire_below:.4f}", 0)
    if current_percent < max_share_percent:
        share = min(current_percent + ramp_step_percent, max_share_percent)
        return OnlineDecision(
            "ramp", f"{compared}: too close to call, challenger share {current_percent}% -> {share}%", share
        )
    return OnlineDecision(
        "wait", f"{compared}: too close to call at the largest share {current_percent}%", current_percent
    )
