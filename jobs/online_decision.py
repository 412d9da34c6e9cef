"""mlops-online-decision: Champion vs Challenger on the labelled traffic the serving endpoint answered.

The endpoint sends ``serving.challenger_traffic_percent`` of the requests to the Challenger (a version that passed
validation but was not promoted offline). Once both have ``online_evaluation.min_labelled_requests`` labelled
requests since the Challenger started answering, their quality on them decides
(``jobs.core.decisions.online_decision``): a classifier's ROC AUC, a regressor's primary metric (``online_metric``):

- promote: the Challenger becomes the Champion through the same path as offline promotion (``jobs.promotion``:
  aliases, ``previous_champion`` for rollback); it had to be PASSED to be the Challenger at all;
- retire: the alias ``challenger`` is removed; the endpoint serves the Champion alone;
- ramp: the Challenger's share grows (the version tag ``challenger_traffic_percent``) to gather evidence faster;
- wait: not enough labels yet, or too close to call at the largest share.

The decision and its reason are recorded on the Challenger's version (``online_decision``, ``online_reason``), and the
endpoint is updated. Task values: ``action``, ``reason``, ``champion_version``, ``challenger_version``.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import replace

from jobs.approval import ask_before_promoting
from jobs.core import contract
from jobs.core.decisions import OnlineDecision, online_decision
from jobs.core.evaluation import quality_metrics
from jobs.platform import Platform, build_platform
from jobs.platform.job import exit_on_failure, job_environment, job_parser, run_job
from jobs.platform.registry import CHALLENGER, CHAMPION, ModelRef
from jobs.promotion import challenger_percent, promote, update_serving
from spec.columns import LABEL, PREDICTION, PROBABILITY
from spec.model import ModelSpec

logger = logging.getLogger("jobs.online_decision")


def online_metric(spec: ModelSpec) -> str:
    """What the served versions are compared on: a classifier's ROC AUC (on the probability it answered), a
    regressor's primary metric (on the value it answered)."""
    return "roc_auc" if spec.is_classifier else spec.validation.primary_metric


def labelled_outcomes(platform: Platform, champion: str, challenger: str) -> dict[str, tuple[float | None, int]]:
    """(the online metric, labelled requests) per version, over the time since the Challenger answered its first
    request; the metric is None where it is undefined (no request, one class only)."""
    from pyspark.sql import functions as F

    env, spec = platform.env, platform.model.spec
    metric = online_metric(spec)
    answered = PROBABILITY if spec.is_classifier else PREDICTION
    if not platform.tables.exists(env.served_table):
        return {champion: (None, 0), challenger: (None, 0)}
    served = platform.tables.read(env.served_table).where(F.col("model_version").isin(champion, challenger))
    since = served.where(F.col("model_version") == challenger).agg(F.min("scored_at")).collect()[0][0]
    if since is None:
        return {champion: (None, 0), challenger: (None, 0)}
    rows = (
        served.where((F.col("scored_at") >= F.lit(since)) & F.col(LABEL).isNotNull())
        .select("model_version", LABEL, answered)
        .toPandas()
    )
    outcomes = {}
    for version in (champion, challenger):
        mine = rows[rows["model_version"] == version]
        value = None
        if len(mine):
            value = quality_metrics(spec.problem_type, mine[LABEL].to_numpy(), mine[answered].to_numpy())[metric]
        outcomes[version] = (None if value is None or math.isnan(value) else value, len(mine))
    return outcomes


def decide(platform: Platform) -> OnlineDecision | None:
    env, registry = platform.env, platform.registry
    champion, challenger = registry.alias_version(CHAMPION), registry.alias_version(CHALLENGER)
    if champion is None or challenger is None or challenger == champion:
        logger.info("no challenger beside the champion: nothing to decide")
        _record_values(platform, "none", "no challenger beside the champion", champion, challenger)
        return None
    outcomes = labelled_outcomes(platform, champion, challenger)
    cfg = env.online_evaluation
    decision = online_decision(
        champion_value=outcomes[champion][0],
        champion_labelled=outcomes[champion][1],
        challenger_value=outcomes[challenger][0],
        challenger_labelled=outcomes[challenger][1],
        min_labelled=cfg.min_labelled_requests,
        margin=cfg.margin,
        retire_below=cfg.retire_below,
        current_percent=challenger_percent(platform, challenger),
        ramp_step_percent=cfg.ramp_step_percent,
        max_share_percent=cfg.max_share_percent,
        metric=online_metric(platform.model.spec),
    )
    ref = ModelRef(registry.model_name, challenger)
    if decision.action == "promote":
        # The same gate as an offline promotion: where promotion is approved by hand, an online "promote" asks for
        # approval (tagged and notified once) and the Challenger keeps its share until a person approves it.
        metric = online_metric(platform.model.spec)
        gate = ask_before_promoting(
            platform,
            ref,
            metrics={metric: outcomes[challenger][0]},
            reason=decision.reason,
            source="online decision",
            champion=champion,
        )
        if not gate.promote:
            decision = replace(decision, action="wait", reason=f"{decision.reason}; not promoted: {gate.reason}")
    logger.info("challenger %s: %s (%s)", ref.uri, decision.action, decision.reason)
    if decision.action != "wait":
        registry.set_version_tags(
            ref,
            {
                contract.ONLINE_DECISION: {"promote": "promoted", "retire": "retired", "ramp": "ramped"}[
                    decision.action
                ],
                contract.ONLINE_REASON: contract.tag_value(decision.reason),
            },
        )
    if decision.action == "promote":
        promote(platform, ref)
        registry.set_version_tags(
            ref,
            {
                contract.PROMOTION_DECISION: "promoted online",
                contract.PROMOTION_REASON: contract.tag_value(decision.reason),
            },
        )
        champion = challenger
    elif decision.action == "retire":
        registry.delete_alias(CHALLENGER)
        challenger = None
    elif decision.action == "ramp":
        registry.set_version_tags(ref, {contract.CHALLENGER_TRAFFIC_PERCENT: str(decision.challenger_percent)})
    if decision.action != "wait":
        update_serving(platform)
    _record_values(platform, decision.action, decision.reason, champion, challenger)
    return decision


def _record_values(platform: Platform, action: str, reason: str, champion: str | None, challenger: str | None) -> None:
    values = platform.task_values
    values.set("action", action)
    values.set("reason", reason[:1000])
    values.set("champion_version", champion or "")
    values.set("challenger_version", challenger or "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-online-decision", "Promote, ramp or retire the challenger from labelled served traffic.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        decide(build_platform(job_environment(args)))
        return 0

    return run_job("mlops-online-decision", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-online-decision` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
