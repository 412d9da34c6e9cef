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

from jobs.core.evaluation import SliceMetric, greater_is_better

PENDING = "PENDING"
PASSED = "PASSED"
FAILED = "FAILED"
ValidationStatus = Literal["PASSED", "FAILED"]


def _check_value(name: str, value: float) -> float:
    if value is None or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


# ---- validation ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricGate:
    """The candidate's ``metric`` must be >= ``threshold`` (<= when lower is better), evaluated with mlflow's
    MetricThreshold."""

    name: str
    metric: str
    threshold: float
    description: str
    greater_is_better: bool = True


def metric_gates(
    thresholds: Mapping[str, float],
    primary_metric: str,
    max_relative_drop_vs_champion: float,
    champion_value: float | None,
) -> list[MetricGate]:
    """A bound per metric of ``thresholds`` (a floor when higher is better, a ceiling otherwise), and, when there is
    a Champion, at most ``max_relative_drop_vs_champion`` worse than it on ``primary_metric``."""
    if not 0.0 <= max_relative_drop_vs_champion <= 1.0:
        raise ValueError(f"max_relative_drop_vs_champion must be 0..1, got {max_relative_drop_vs_champion}")
    gates = []
    for metric, bound in thresholds.items():
        higher = greater_is_better(metric)
        bound = _check_value(f"threshold on {metric}", bound)
        relation, kind = (">=", "min") if higher else ("<=", "max")
        gates.append(MetricGate(f"{kind}_{metric}", metric, bound, f"{metric} must be {relation} {bound:.4f}", higher))
    higher = greater_is_better(primary_metric)
    if champion_value is not None:
        champion = _check_value(f"champion {primary_metric}", champion_value)
        drop = max_relative_drop_vs_champion
        # Worse by the relative drop, in the metric's direction (a score may only fall so far, an error only rise);
        # relative to the size of the Champion's value, since an r2_score may be negative.
        bound = champion - drop * abs(champion) if higher else champion + drop * abs(champion)
        relation, sign = (">=", "-") if higher else ("<=", "+")
        gates.append(
            MetricGate(
                "vs_champion",
                primary_metric,
                bound,
                f"{primary_metric} must be {relation} {bound:.4f} (champion {champion:.4f} {sign} {drop:.0%})",
                higher,
            )
        )
    return gates


def roc_auc_gates(
    min_roc_auc: float, max_relative_drop_vs_champion: float, champion_roc_auc: float | None
) -> list[MetricGate]:
    """A classifier's gates: the absolute floor on roc_auc, and, when there is a Champion, at most
    ``max_relative_drop`` below it."""
    return metric_gates({"roc_auc": min_roc_auc}, "roc_auc", max_relative_drop_vs_champion, champion_roc_auc)


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


def slice_problems(slices: Sequence[SliceMetric], min_rows: int, bound: float) -> list[str]:
    """Slices with at least ``min_rows`` rows whose metric is worse than ``bound``: below it for a metric where
    higher is better (roc_auc), above it otherwise (mean_absolute_error)."""
    problems = []
    for s in slices:
        if s.rows < min_rows or s.score is None:
            continue
        higher = greater_is_better(s.metric)
        if (s.score < bound) if higher else (s.score > bound):
            relation = "<" if higher else ">"
            problems.append(
                f"slice {s.column}={s.value} ({s.rows} rows): {s.metric} {s.score:.4f} {relation} {bound:.4f}"
            )
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
    slice_bound: float,
) -> ValidationOutcome:
    """PASSED when nothing failed; FAILED with every reason otherwise (all checks run, all failures are told).
    ``slice_bound``: what each slice's metric must reach (``slice_problems``)."""
    if min_slice_rows < 1:
        raise ValueError(f"min_slice_rows must be >= 1, got {min_slice_rows}")
    reasons = [*metadata_problems, *metric_failures, *slice_problems(slices, min_slice_rows, slice_bound)]
    if reasons:
        return ValidationOutcome(FAILED, tuple(reasons))
    checked = sum(1 for s in slices if s.rows >= min_slice_rows and s.score is not None)
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
    business_threshold: float | None,
) -> Decision:
    """Promote when the Challenger is no worse than the Champion by more than ``margin`` on ``metric``, in the
    metric's direction (ties promote: the newer model saw newer data). Without a Champion the Challenger must reach
    ``business_threshold``; with none (None), having passed validation is enough."""
    higher = greater_is_better(metric)
    challenger = _check_value(f"challenger {metric}", challenger_metric)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if champion_metric is None and business_threshold is None:
        return Decision(True, f"no champion yet and no business threshold: challenger {metric} {challenger:.4f}")
    if champion_metric is None:
        ok = challenger >= business_threshold if higher else challenger <= business_threshold
        relation = (">=" if ok else "<") if higher else ("<=" if ok else ">")
        return Decision(
            ok,
            f"no champion yet: challenger {metric} {challenger:.4f} {relation} business threshold "
            f"{business_threshold:.4f}",
        )
    champion = _check_value(f"champion {metric}", champion_metric)
    if higher:
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
    champion_value: float | None,
    champion_labelled: int,
    challenger_value: float | None,
    challenger_labelled: int,
    min_labelled: int,
    margin: float,
    retire_below: float,
    current_percent: int,
    ramp_step_percent: int,
    max_share_percent: int,
    metric: str = "roc_auc",
) -> OnlineDecision:
    """Promote the Challenger when, on enough labelled requests each, its ``metric`` is at least the Champion's
    plus ``margin`` (better by it); retire it when it is worse by more than ``retire_below``; in between, ramp its
    traffic share to gather evidence faster (up to ``max_share_percent``), then wait. Before that, wait for labels.

    For a metric where higher is better (roc_auc, r2_score: unitless) the margins are absolute; for an error
    (mean_absolute_error ...), which has the label's unit, they are fractions of the Champion's error, so the same
    config means the same for every model."""
    higher = greater_is_better(metric)
    if min(champion_labelled, challenger_labelled) < min_labelled or None in (champion_value, challenger_value):
        return OnlineDecision(
            "wait",
            f"not enough labelled requests yet: champion {champion_labelled}, challenger {challenger_labelled} "
            f"(need {min_labelled} each{', with both classes' if metric == 'roc_auc' else ''})",
            current_percent,
        )
    champion = _check_value(f"champion {metric}", champion_value)
    challenger = _check_value(f"challenger {metric}", challenger_value)
    compared = (
        f"challenger {metric} {challenger:.4f} vs champion {champion:.4f} on {challenger_labelled} and "
        f"{champion_labelled} labelled requests"
    )
    if higher:
        better, worse = challenger - champion, champion - challenger
        promote_text, retire_text = f"at least the champion + {margin:.4f}", f"{retire_below:.4f}"
    else:
        scale = abs(champion) or 1.0
        better, worse = (champion - challenger) / scale, (challenger - champion) / scale
        promote_text, retire_text = f"at most the champion - {margin:.1%}", f"{retire_below:.1%}"
    if better >= margin:
        return OnlineDecision("promote", f"{compared}: {promote_text}", 100)
    if worse > retire_below:
        return OnlineDecision("retire", f"{compared}: worse by more than {retire_text}", 0)
    if current_percent < max_share_percent:
        share = min(current_percent + ramp_step_percent, max_share_percent)
        return OnlineDecision(
            "ramp", f"{compared}: too close to call, challenger share {current_percent}% -> {share}%", share
        )
    return OnlineDecision(
        "wait", f"{compared}: too close to call at the largest share {current_percent}%", current_percent
    )
