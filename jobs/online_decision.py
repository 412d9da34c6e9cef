"""mlops-online-decision: Champion vs Challenger on the labelled shadow rows.

While a Challenger exists (a version that passed validation but was not promoted offline: the alias ``challenger``),
the batch and streaming jobs score every row with it too, into ``<model>_shadow_predictions`` (``jobs.scoring``);
only the Champion's predictions are published and served. The labels job labels the predictions table; this job
pairs each shadow row with the Champion's row of the same key and batch (the version the shadow row names as its
Champion), keeps the labelled pairs, and runs the problem type's paired test on them (``jobs.core.paired_test``: a
classifier's ROC AUC difference by a paired bootstrap with a fixed seed, a regressor's per-row loss by a paired
one-sided t-test), then decides (``jobs.core.decisions.online_decision``, settings in ``online_evaluation``):

- promote: significantly better; the Challenger becomes the Champion through the same path as offline promotion
  (``jobs.promotion``: aliases, ``previous_champion`` for rollback), in ``promote_online``; where promotion is
  manual it first passes the approval gate (``jobs.approval.ask_before_promoting``) and waits for a person;
- retire: significantly worse, or not better after ``max_paired_rows``: the alias ``challenger`` is removed and the
  endpoint serves the Champion alone;
- ramp: ahead but not significantly: its share of the served traffic grows (the version tag
  ``challenger_traffic_percent``);
- wait: fewer than ``min_paired_rows`` labelled pairs, or nothing significant yet.

The served traffic (``serving.challenger_traffic_percent`` of the endpoint's requests) is no longer the evidence:
60 requests a week put about 6 on a Challenger, never enough labels to decide; the shadow rows are every scored row.
The split stays, as exposure of the Challenger to the endpoint's callers, and the monitors still watch it per version.

The decision, the test, its statistic, p-values, interval and sample are recorded on the Challenger's version (tags
``online_*``) at every run that has a Challenger, and as task values: ``action``, ``reason``, ``champion_version``,
``challenger_version``, ``test``, ``statistic``, ``p_better``, ``p_worse``, ``ci_low``, ``ci_high``, ``sample``.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import replace

import pandas as pd

from jobs.approval import ask_before_promoting
from jobs.core import contract
from jobs.core.decisions import OnlineDecision, online_decision
from jobs.core.paired_test import PairedComparison, compare
from jobs.platform import Platform, build_platform
from jobs.platform.job import exit_on_failure, job_environment, job_parser, run_job
from jobs.platform.registry import CHALLENGER, CHAMPION, ModelRef
from jobs.promotion import challenger_percent, promote, update_serving
from spec.columns import LABEL
from spec.model import ModelSpec

logger = logging.getLogger("jobs.online_decision")

DONE = {"promote": "promoted", "retire": "retired", "ramp": "ramped", "wait": "waiting"}
CHAMPION_SUFFIX = "_champion"
CHALLENGER_SUFFIX = "_challenger"


def compared_metric(spec: ModelSpec) -> str:
    """What the versions are compared on: a classifier's ROC AUC (on its probability), a regressor's primary metric
    (on its value)."""
    return "roc_auc" if spec.is_classifier else spec.validation.primary_metric


def compared_output(spec: ModelSpec) -> str:
    """The output the test reads: a classifier's probability, a regressor's prediction (``ModelSpec.outputs``)."""
    return spec.outputs[-1]


def paired_rows(platform: Platform, champion: str, challenger: str) -> pd.DataFrame:
    """The labelled rows both versions scored: ``label``, ``<output>_champion``, ``<output>_challenger``, one row per
    (key, batch) of the shadow rows of ``challenger`` scored beside ``champion``."""
    from pyspark.sql import functions as F

    env, tables, spec = platform.env, platform.tables, platform.model.spec
    output = compared_output(spec)
    columns = [f"{output}{CHAMPION_SUFFIX}", f"{output}{CHALLENGER_SUFFIX}", LABEL]
    if not (tables.exists(env.shadow_predictions_table) and tables.exists(env.predictions_table)):
        return pd.DataFrame(columns=columns)
    on = [*spec.key_names, "batch_id", "source"]
    shadow = (
        tables.read(env.shadow_predictions_table, columns=[*on, output, "model_version", "champion_version"])
        .where((F.col("model_version") == challenger) & (F.col("champion_version") == champion))
        .select(*on, F.col(output).alias(columns[1]))
    )
    scored = (
        tables.read(env.predictions_table, columns=[*on, output, "model_version", LABEL])
        .where((F.col("model_version") == champion) & F.col(LABEL).isNotNull())
        .select(*on, F.col(output).alias(columns[0]), LABEL)
    )
    # Ordered so the bootstrap's resamples, drawn by position, are the same for the same rows.
    return scored.join(shadow, on=on).orderBy(*on).select(*columns).toPandas()


def comparison_of(platform: Platform, pairs: pd.DataFrame) -> PairedComparison | None:
    """The paired test on ``pairs``; None below the minimum sample (the decision waits without a test)."""
    spec, cfg = platform.model.spec, platform.env.online_evaluation
    if len(pairs) < cfg.min_paired_rows:
        return None
    output = compared_output(spec)
    return compare(
        spec.problem_type,
        compared_metric(spec),
        pairs[LABEL].to_numpy(dtype="float64"),
        pairs[f"{output}{CHAMPION_SUFFIX}"].to_numpy(dtype="float64"),
        pairs[f"{output}{CHALLENGER_SUFFIX}"].to_numpy(dtype="float64"),
        alpha=cfg.significance,
        resamples=cfg.bootstrap_resamples,
        seed=cfg.seed,
    )


def promote_online(platform: Platform, ref: ModelRef, decision: OnlineDecision) -> bool:
    """Where an online "promote" happens, past the approval gate (``decide``): the Challenger becomes the Champion as
    offline promotion makes one, and says so on the version. True when the Champion changed."""
    promote(platform, ref)
    platform.registry.set_version_tags(
        ref,
        {
            contract.PROMOTION_DECISION: "promoted online",
            contract.PROMOTION_REASON: contract.tag_value(decision.reason),
        },
    )
    return True


def decide(platform: Platform) -> OnlineDecision | None:
    env, registry = platform.env, platform.registry
    champion, challenger = registry.alias_version(CHAMPION), registry.alias_version(CHALLENGER)
    if champion is None or challenger is None or challenger == champion:
        logger.info("no challenger beside the champion: nothing to decide")
        _record_values(platform, "none", "no challenger beside the champion", champion, challenger, None, 0)
        return None
    cfg = env.online_evaluation
    pairs = paired_rows(platform, champion, challenger)
    comparison = comparison_of(platform, pairs)
    decision = online_decision(
        comparison,
        sample=len(pairs),
        min_sample=cfg.min_paired_rows,
        max_sample=cfg.max_paired_rows,
        alpha=cfg.significance,
        current_percent=challenger_percent(platform, challenger),
        ramp_step_percent=cfg.ramp_step_percent,
        max_share_percent=cfg.max_share_percent,
    )
    ref = ModelRef(registry.model_name, challenger)
    if decision.action == "promote":
        # The same gate as an offline promotion: where promotion is approved by hand, an online "promote" asks for
        # approval (tagged and notified once) and the Challenger keeps its share until a person approves it.
        # The person who approves sees the online evidence: the paired test's statistic and p-value (its name is
        # in the reason and on the version's tags).
        assert comparison is not None  # a promote is decided on a test
        gate = ask_before_promoting(
            platform,
            ref,
            metrics={"online_statistic": comparison.statistic, "online_p_better": comparison.p_better},
            reason=decision.reason,
            source="online decision",
            champion=champion,
        )
        if not gate.promote:
            decision = replace(decision, action="wait", reason=f"{decision.reason}; not promoted: {gate.reason}")
    logger.info("challenger %s: %s (%s)", ref.uri, decision.action, decision.reason)
    registry.set_version_tags(ref, _tags(decision, comparison, len(pairs), champion))
    if decision.action == "promote":
        if promote_online(platform, ref, decision):
            champion = challenger
    elif decision.action == "retire":
        registry.delete_alias(CHALLENGER)
        challenger = None
    elif decision.action == "ramp":
        registry.set_version_tags(ref, {contract.CHALLENGER_TRAFFIC_PERCENT: str(decision.challenger_percent)})
    if decision.action != "wait":
        update_serving(platform)
    _record_values(platform, decision.action, decision.reason, champion, challenger, comparison, len(pairs))
    return decision


def _tags(decision: OnlineDecision, comparison: PairedComparison | None, sample: int, champion: str) -> dict[str, str]:
    tags = {
        contract.ONLINE_DECISION: DONE[decision.action],
        contract.ONLINE_REASON: contract.tag_value(decision.reason),
        contract.ONLINE_SAMPLE: str(sample),
        contract.ONLINE_CHAMPION_VERSION: champion,
    }
    if comparison is not None:
        tags.update(
            {
                contract.ONLINE_TEST: contract.tag_value(comparison.test),
                contract.ONLINE_STATISTIC: f"{comparison.statistic:.6g}",
                contract.ONLINE_P_VALUE: f"{min(comparison.p_better, comparison.p_worse):.6g}",
                contract.ONLINE_CI: f"{comparison.ci_low:.6g}..{comparison.ci_high:.6g}",
            }
        )
    return tags


def _record_values(
    platform: Platform,
    action: str,
    reason: str,
    champion: str | None,
    challenger: str | None,
    comparison: PairedComparison | None,
    sample: int,
) -> None:
    values = platform.task_values
    values.set("action", action)
    values.set("reason", reason[:1000])
    values.set("champion_version", champion or "")
    values.set("challenger_version", challenger or "")
    values.set("sample", sample)
    values.set("test", comparison.test if comparison else "")
    for name in ("statistic", "p_better", "p_worse", "ci_low", "ci_high"):
        value = float(getattr(comparison, name)) if comparison else None
        # A task value is JSON: an infinite t (identical losses but for a constant) is said as text.
        values.set(name, "" if value is None else round(value, 6) if math.isfinite(value) else str(value))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser(
        "mlops-online-decision", "Promote, ramp or retire the challenger from its labelled shadow predictions."
    )
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
