"""The decisions of the model lifecycle, as pure functions with their reasons.

- validation: may this new version become the Challenger? (metadata, metric gates, slices)
- promotion: should the Challenger replace the Champion?
- traffic: how the serving endpoint splits requests between Champion and Challenger
- online: promote, retire, ramp or wait, from the paired test on the labelled shadow rows
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from jobs.core.evaluation import SliceMetric, greater_is_better
from jobs.core.paired_test import PairedComparison

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
    """The candidate's ``metric`` must be >= ``threshold`` (<= when lower is better), as mlflow's MetricThreshold
    judges a threshold."""

    name: str
    metric: str
    threshold: float
    description: str
    greater_is_better: bool = True

    def passes(self, value: float) -> bool:
        """Whether ``value`` is on the right side of the bound, the bound included; a missing value (NaN, as an ROC
        AUC on one class) never passes."""
        if value is None or math.isnan(value):
            return False
        return value >= self.threshold if self.greater_is_better else value <= self.threshold


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
    min_gain: float = 0.0,
) -> Decision:
    """Promote when the Challenger is no worse than the Champion by more than ``margin`` on ``metric``, in the
    metric's direction (ties promote: the newer model saw newer data), or, with ``min_gain``, only when it is better
    by at least ``min_gain`` (a smaller gain is left to the online decision). Without a Champion the Challenger must
    reach ``business_threshold``; with none (None), having passed validation is enough."""
    higher = greater_is_better(metric)
    challenger = _check_value(f"challenger {metric}", challenger_metric)
    if margin < 0 or min_gain < 0:
        raise ValueError(f"margin and min_gain must be >= 0, got {margin} and {min_gain}")
    if margin > 0 and min_gain > 0:
        raise ValueError(f"margin and min_gain are both set ({margin} and {min_gain}): set one")
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
    if min_gain > 0:
        bar = champion + min_gain if higher else champion - min_gain
        ok = challenger >= bar if higher else challenger <= bar
        relation = (">=" if ok else "<") if higher else ("<=" if ok else ">")
        sign = "+" if higher else "-"
        return Decision(
            ok,
            f"challenger {metric} {challenger:.4f} {relation} champion {champion:.4f} {sign} min_gain {min_gain:.4f}",
        )
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


# ---- online: Champion vs Challenger on the labelled shadow rows ----------------------------------------------

OnlineAction = Literal["wait", "promote", "retire", "ramp"]


@dataclass(frozen=True)
class OnlineDecision:
    action: OnlineAction
    reason: str
    challenger_percent: int


def online_decision(
    comparison: PairedComparison | None,
    *,
    sample: int,
    min_sample: int,
    max_sample: int,
    alpha: float,
    current_percent: int,
    ramp_step_percent: int,
    max_share_percent: int,
) -> OnlineDecision:
    """What the paired test on ``sample`` labelled shadow rows says (``jobs.core.paired_test``):

    - wait: fewer than ``min_sample`` rows (``comparison`` may then be None);
    - promote: the Challenger is significantly better (one-sided p-value below ``alpha``);
    - retire: significantly worse, or not significantly better on ``max_sample`` rows (it had its chance);
    - ramp: better on the rows so far but not significantly: its share of the served traffic grows by
      ``ramp_step_percent`` up to ``max_share_percent`` (more exposure to the endpoint's callers, not more evidence:
      the shadow rows are the evidence);
    - wait: otherwise (not better, not significantly worse, or at the largest share), for more rows.
    """
    if min_sample < 1 or max_sample < min_sample:
        raise ValueError(f"need 1 <= min_sample <= max_sample, got {min_sample} and {max_sample}")
    if sample < min_sample or comparison is None:
        return OnlineDecision(
            "wait", f"{sample} labelled shadow rows, fewer than the {min_sample} the test needs", current_percent
        )
    told = comparison.describe()
    if comparison.p_better < alpha:
        return OnlineDecision("promote", f"significantly better at {alpha}: {told}", 100)
    if comparison.p_worse < alpha:
        return OnlineDecision("retire", f"significantly worse at {alpha}: {told}", 0)
    if sample >= max_sample:
        return OnlineDecision("retire", f"not significantly better after {max_sample} rows: {told}", 0)
    if comparison.difference > 0 and current_percent < max_share_percent:
        share = min(current_percent + ramp_step_percent, max_share_percent)
        return OnlineDecision("ramp", f"promising, share {current_percent}% -> {share}%: {told}", share)
    return OnlineDecision("wait", f"not significant yet: {told}", current_percent)
