"""mlops-deploy: Champion versus Challenger, then the serving endpoint.

Refuses (exit 1) a version whose ``model_validation_status`` is not PASSED. Otherwise it scores the version and
the current ``champion`` on the same held-out rows (the version's ``test_start``..``test_end``), logs both to an
MLflow run, and decides with ``promotion_decision``: promote when the Challenger is no worse than the Champion
by more than ``promotion.margin`` on the metric, in its direction; with no Champion yet it must reach the business
threshold. A classifier is compared on ``promotion.metric`` with ``promotion.business_threshold``, a regressor on
its declaration's primary metric with its declared threshold on it (``promotion_terms``). Promotion moves the alias
``champion`` to the version, points ``previous_champion`` at the version it replaced and records it in the version
tag ``previous_champion_version`` (the rollback chain). Then the endpoint is set to serve the Champion, with
``serving.challenger_traffic_percent`` of the traffic for a different validated Challenger (a version that passed
validation but was not promoted keeps the alias ``challenger``).

Serving and rollback (``champion`` back to ``previous_champion``) live in ``jobs.promotion``, which the CLI uses too.

Where ``promotion.approval`` is ``manual`` a version the comparison favours is promoted only once a person approved
it (``jobs.approval.ask_before_promoting``): until then it keeps the ``challenger`` alias, its
``promotion_decision`` tag says "awaiting approval", the environment's destinations are told how to approve it, and
the run succeeds; the next run for it (the model-deployment job) promotes it once approved. A rejected version, or
one no newer than the Champion, is never promoted. ``--model-version`` may be empty: the current Challenger.

Task values: ``promoted`` ("true"/"false"), ``champion_version`` ("" when there is none), ``awaiting_approval``
("true"/"false").
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from jobs.approval import ask_before_promoting
from jobs.core import contract
from jobs.core.approval import approval_gate
from jobs.core.decisions import PASSED, Decision, promotion_decision
from jobs.core.evaluation import quality_metrics
from jobs.core.model import scores
from jobs.examples import environment_version, evaluation_frame, evaluation_period
from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, exit_on_failure, job_environment, job_parser, positive_int, run_job
from jobs.platform.registry import CHALLENGER, CHAMPION, ModelRef
from jobs.promotion import promote, update_serving
from spec.columns import LABEL
from spec.config import Promotion
from spec.model import ModelSpec

logger = logging.getLogger("jobs.deploy")


@dataclass(frozen=True)
class DeployResult:
    model: ModelRef
    decision: Decision
    champion_version: str | None
    previous_champion_version: str | None
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    awaiting_approval: bool = False


def deploy(platform: Platform, ref: ModelRef) -> DeployResult:
    import mlflow

    env, registry = platform.env, platform.registry
    version = environment_version(platform, ref)
    tags = dict(version.tags or {})
    champion = registry.alias_version(CHAMPION)
    status = tags.get(contract.VALIDATION_STATUS)
    if status != PASSED:
        _set_values(platform, promoted=False, champion=champion)
        raise JobError(
            f"refusing to deploy {ref.uri}: its {contract.VALIDATION_STATUS} is {status!r}, not 'PASSED' "
            "(run mlops-validate on it first)"
        )

    if champion == ref.version:
        # A re-run (e.g. a repair after the endpoint update failed): nothing to decide, nothing to re-tag.
        logger.info("%s is already the champion: only the serving endpoint is brought up to date", ref.uri)
        update_serving(platform)
        _set_values(platform, promoted=True, champion=champion)
        return DeployResult(ref, Decision(True, "already the champion"), champion, None, {}, None)

    # Never promoted whatever it scores (rejected, or an older version than the Champion): decided without scoring.
    gate = approval_gate(env.promotion.approval, tags, ref.version, champion)
    if env.promotion.approval == "manual" and gate.action == "refuse":
        logger.info("%s: not promoted: %s", ref.uri, gate.reason)
        return _not_promoted(platform, ref, champion, Decision(False, gate.reason))

    spec = platform.model.spec
    start, end = evaluation_period(tags, None, None, ref.uri)
    data, _, lineage = evaluation_frame(platform, start, end)
    features, y = data.drop(columns=[LABEL]), data[LABEL].to_numpy()

    def measure(uri: str) -> dict[str, float]:
        return quality_metrics(spec.problem_type, y, scores(spec, mlflow.sklearn.load_model(uri), features))

    challenger_metrics = measure(ref.uri)
    champion_metrics = None if champion is None else measure(ModelRef(ref.name, champion).uri)
    promotion = env.promotion
    metric, business_threshold = promotion_terms(spec, promotion)
    decision = promotion_decision(
        challenger_metrics[metric],
        None if champion_metrics is None else champion_metrics[metric],
        metric,
        promotion.margin,
        business_threshold,
        min_gain=promotion.min_gain,
    )
    with mlflow.start_run(run_name=f"deploy {ref.name} v{ref.version}"):
        mlflow.set_tags(
            {
                "job": "mlops-deploy",
                "env": env.name,
                "model_name": ref.name,
                "challenger_version": ref.version,
                "champion_version": champion or "none",
                "eval_start": start.isoformat(),
                "eval_end": end.isoformat(),
                "promoted": str(decision.promote).lower(),
                "decision_reason": decision.reason,
                **lineage,
            }
        )
        mlflow.log_params(
            {
                "metric": metric,
                "margin": promotion.margin,
                "min_gain": promotion.min_gain,
                "business_threshold": str(business_threshold),
            }
        )
        mlflow.log_metrics({f"challenger_{k}": v for k, v in challenger_metrics.items()})
        if champion_metrics is not None:
            mlflow.log_metrics({f"champion_{k}": v for k, v in champion_metrics.items()})
    logger.info("%s: promote=%s (%s)", ref.uri, decision.promote, decision.reason)

    if decision.promote:
        gate = ask_before_promoting(
            platform, ref, metrics=challenger_metrics, reason=decision.reason, source="mlops-deploy", champion=champion
        )
        if gate.action == "wait":
            update_serving(platform)
            _set_values(platform, promoted=False, champion=champion, awaiting=True)
            return DeployResult(
                ref,
                Decision(False, gate.reason),
                champion,
                None,
                challenger_metrics,
                champion_metrics,
                awaiting_approval=True,
            )
        if not gate.promote:
            return _not_promoted(platform, ref, champion, Decision(False, gate.reason))
    previous = None
    if decision.promote:
        previous = promote(platform, ref)
        champion = ref.version
    registry.set_version_tags(
        ref,
        {
            contract.PROMOTION_DECISION: "promoted" if decision.promote else "not promoted",
            contract.PROMOTION_REASON: contract.tag_value(decision.reason),
        },
    )
    update_serving(platform)
    _set_values(platform, promoted=decision.promote, champion=champion)
    return DeployResult(ref, decision, champion, previous, challenger_metrics, champion_metrics)


def promotion_terms(spec: ModelSpec, promotion: Promotion) -> tuple[str, float | None]:
    """The metric the Challenger is compared on and the business threshold it must reach without a Champion: the
    environment's ``promotion`` for a classifier; for a regressor, the primary metric of its declaration and its
    declared threshold on it (None: no threshold, passing validation is enough)."""
    if spec.is_classifier:
        return promotion.metric, promotion.business_threshold
    primary = spec.validation.primary_metric
    return primary, spec.validation.thresholds.get(primary)


def _not_promoted(platform: Platform, ref: ModelRef, champion: str | None, decision: Decision) -> DeployResult:
    platform.registry.set_version_tags(
        ref,
        {contract.PROMOTION_DECISION: "not promoted", contract.PROMOTION_REASON: contract.tag_value(decision.reason)},
    )
    update_serving(platform)
    _set_values(platform, promoted=False, champion=champion)
    return DeployResult(ref, decision, champion, None, {}, None)


def _set_values(platform: Platform, *, promoted: bool, champion: str | None, awaiting: bool = False) -> None:
    platform.task_values.set("promoted", "true" if promoted else "false")
    platform.task_values.set("champion_version", champion or "")
    platform.task_values.set("awaiting_approval", "true" if awaiting else "false")


def optional_version(text: str) -> str:
    """argparse type: a version number, or nothing (an empty job parameter): the current Challenger."""
    return str(positive_int(text)) if text.strip() else ""


def version_to_deploy(platform: Platform, version: str) -> str:
    """``version``, or the Challenger's when empty (the model-deployment job, started for the validated version)."""
    if version:
        return version
    challenger = platform.registry.alias_version(CHALLENGER)
    if challenger is None:
        raise JobError(
            f"no --model-version given and {platform.registry.model_name} has no {CHALLENGER} alias: nothing "
            "validated waits for deployment (run model-training first)"
        )
    return challenger


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-deploy", "Compare a validated version with the Champion, promote it, update serving.")
    parser.add_argument("--model-name", default=None, help="<catalog>.ml.<model> (default: the environment's)")
    parser.add_argument(
        "--model-version", type=optional_version, required=True, help="the registered version ('': the challenger)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        platform = build_platform(job_environment(args))
        name = args.model_name or platform.registry.model_name
        deploy(platform, ModelRef(name, version_to_deploy(platform, args.model_version)))
        return 0

    return run_job("mlops-deploy", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-deploy` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
