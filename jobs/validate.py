"""mlops-validate: may this model version become the Challenger?

The version is tagged ``model_validation_status=PENDING`` first, then checked on its held-out period (the
``test_start``/``test_end`` tags written by training, or ``--eval-start``/``--eval-end``):

- metadata: a signature, a description, the training-window and lineage tags;
- metrics: ``mlflow.models.evaluate`` on the period, then ``mlflow.validate_evaluation_results`` with a
  ``MetricThreshold`` on roc_auc >= ``validation.min_roc_auc``, and, when a Champion exists (evaluated on the same
  rows), roc_auc >= champion * (1 - ``validation.max_relative_drop_vs_champion``);
- slices: every origin and carrier with >= ``validation.min_slice_rows`` rows has roc_auc >= ``min_slice_roc_auc``.

It ends ``PASSED`` (alias ``challenger`` set) or ``FAILED`` (no alias) with ``model_validation_reasons``; a crash
after PENDING leaves ``FAILED`` with the crash as the reason. Run modes (``--run-mode``, default the environment's):

- ``enabled`` and ``dry_run``: the checks run, the tags are written, a FAILED version notifies;
- ``disabled``: no checks; the version is tagged PASSED with the reason "validation disabled (run_mode=disabled)"
  and ``model_validation_run_mode=disabled``, so the workflow proceeds and the tags say nothing was checked.

Exit codes: 0 when a status was recorded, PASSED or FAILED (the status is data: the graph's condition task routes
on it); 1 when the version could not be validated (bad input, a crash), which Databricks may retry. A FAILED
verdict is deterministic and must not be retried, so the model graph fails the run in a separate task with no
retries (enabled mode only): ``mlops-validate --require-passed`` reads the recorded status and exits 1 with the
reasons unless it is PASSED.

Task values: ``validation_status`` (PASSED or FAILED), ``model_uri``, ``model_name``, ``model_version``.
"""

from __future__ import annotations

import argparse
import logging
import typing
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from jobs.core import contract
from jobs.core.decisions import (
    FAILED,
    PASSED,
    PENDING,
    ValidationOutcome,
    metadata_problems,
    roc_auc_gates,
    validation_decision,
)
from jobs.core.evaluation import SLICE_COLUMNS, positive_rate_gap, slice_metrics
from jobs.core.model import predict_proba
from jobs.examples import environment_version, evaluation_frame, evaluation_period
from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, check_window, exit_on_failure, iso_date, job_environment, job_parser, run_job
from jobs.platform.registry import CHALLENGER, CHAMPION, ModelRef, parse_model_uri
from models.flight_delay.data import LABEL
from spec.config import RunMode, Validation

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

logger = logging.getLogger("jobs.validate")

RUN_MODES: tuple[str, ...] = typing.get_args(RunMode)
DISABLED_REASON = "validation disabled (run_mode=disabled): no checks ran"


@dataclass(frozen=True)
class ValidationResult:
    model: ModelRef
    run_mode: str
    outcome: ValidationOutcome
    metrics: dict[str, float]


def validate(
    platform: Platform,
    ref: ModelRef,
    run_mode: str,
    eval_start: date | None = None,
    eval_end: date | None = None,
) -> ValidationResult:
    if run_mode not in RUN_MODES:
        raise JobError(f"run mode must be one of {', '.join(RUN_MODES)}, got {run_mode!r}")
    registry = platform.registry
    version = environment_version(platform, ref)

    registry.set_version_tags(
        ref,
        {
            contract.VALIDATION_STATUS: PENDING,
            contract.VALIDATION_RUN_MODE: run_mode,
            contract.VALIDATION_REASONS: "validation running",
        },
    )
    try:
        if run_mode == "disabled":
            outcome, metrics = ValidationOutcome(PASSED, (DISABLED_REASON,)), {}
        else:
            outcome, metrics = _run_checks(platform, ref, version, run_mode, eval_start, eval_end)
    except BaseException as e:
        # Whatever happened, the version must not stay PENDING: it is FAILED, and says why.
        reason = f"validation crashed: {type(e).__name__}: {e}"
        _record(platform, ref, ValidationOutcome(FAILED, (reason,)), run_mode)
        raise
    _record(platform, ref, outcome, run_mode)
    return ValidationResult(ref, run_mode, outcome, metrics)


def _record(platform: Platform, ref: ModelRef, outcome: ValidationOutcome, run_mode: str) -> None:
    """Tags, alias, task values and (FAILED, enabled or dry_run mode) a notification."""
    registry = platform.registry
    registry.set_version_tags(
        ref,
        {
            contract.VALIDATION_STATUS: outcome.status,
            contract.VALIDATION_REASONS: contract.tag_value(outcome.summary()),
        },
    )
    if outcome.passed:
        registry.set_alias(CHALLENGER, ref.version, name=ref.name)
        logger.info("%s PASSED validation (%s): %s", ref.uri, run_mode, outcome.summary())
    else:
        # A version that failed must not stay the Challenger from an earlier validation.
        if registry.alias_version(CHALLENGER, name=ref.name) == ref.version:
            registry.delete_alias(CHALLENGER, name=ref.name)
        logger.warning("%s FAILED validation (%s): %s", ref.uri, run_mode, outcome.summary())
        # dry_run does not fail the run, but a failure that blocks deployment must still reach someone.
        if run_mode in ("enabled", "dry_run"):
            platform.notifier.notify(
                "model_validation_failed",
                f"{ref.uri} failed validation in {platform.env.name} ({run_mode}): {outcome.summary()}",
                {"model_name": ref.name, "model_version": ref.version, "reasons": list(outcome.reasons)},
            )
    values = platform.task_values
    values.set("validation_status", outcome.status)
    values.set("model_uri", ref.uri)
    values.set("model_name", ref.name)
    values.set("model_version", ref.version)


def _run_checks(
    platform: Platform,
    ref: ModelRef,
    version: ModelVersion,
    run_mode: str,
    eval_start: date | None,
    eval_end: date | None,
) -> tuple[ValidationOutcome, dict[str, float]]:
    """Every check, all run even when an earlier one fails; the outcome and the metrics it was decided on."""
    import mlflow
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    cfg: Validation = platform.env.validation
    tags = dict(version.tags or {})
    start, end = evaluation_period(tags, eval_start, eval_end, ref.uri)
    info = mlflow.models.get_model_info(ref.uri)
    problems = metadata_problems(
        has_signature=info.signature is not None,
        description=version.description,
        tags=tags,
        required_tags=contract.REQUIRED_VERSION_TAGS,
    )
    data, lineage = evaluation_frame(platform, start, end)
    champion = platform.registry.alias_version(CHAMPION, name=ref.name)
    if champion == ref.version:
        champion = None
    evaluate_args = dict(
        data=data,
        targets=LABEL,
        model_type="classifier",
        evaluators="default",
        evaluator_config={"log_model_explainability": False, "pos_label": 1},
        extra_metrics=[
            mlflow.models.make_metric(
                eval_fn=lambda predictions, targets, metrics: positive_rate_gap(predictions, targets),
                greater_is_better=False,
                name="positive_rate_gap",
            )
        ],
    )
    with mlflow.start_run(run_name=f"validate {ref.name} v{ref.version}"):
        mlflow.set_tags(
            {
                "job": "mlops-validate",
                "env": platform.env.name,
                "model_name": ref.name,
                "model_version": ref.version,
                "run_mode": run_mode,
                "eval_start": start.isoformat(),
                "eval_end": end.isoformat(),
                **lineage,
            }
        )
        candidate = mlflow.models.evaluate(ref.uri, **evaluate_args)
        champion_roc_auc = None
        if champion is not None:
            with mlflow.start_run(run_name=f"champion v{champion}", nested=True):
                baseline = mlflow.models.evaluate(ModelRef(ref.name, champion).uri, **evaluate_args)
            champion_roc_auc = float(baseline.metrics["roc_auc"])
            mlflow.log_metric("champion_roc_auc", champion_roc_auc)
        failures = []
        for gate in roc_auc_gates(cfg.min_roc_auc, cfg.max_relative_drop_vs_champion, champion_roc_auc):
            threshold = {gate.metric: MetricThreshold(threshold=float(gate.threshold), greater_is_better=True)}
            try:
                mlflow.validate_evaluation_results(threshold, candidate)
            except ModelValidationFailedException:
                failures.append(f"{gate.description}, got {float(candidate.metrics[gate.metric]):.4f}")
        gap_gate = {"positive_rate_gap": MetricThreshold(threshold=cfg.max_positive_rate_gap, greater_is_better=False)}
        try:
            mlflow.validate_evaluation_results(gap_gate, candidate)
        except ModelValidationFailedException:
            failures.append(
                f"positive_rate_gap must be <= {cfg.max_positive_rate_gap:.4f}, "
                f"got {float(candidate.metrics['positive_rate_gap']):.4f}"
            )
        model = mlflow.sklearn.load_model(ref.uri)
        features = data.drop(columns=[LABEL])
        slices = slice_metrics(
            features,
            data[LABEL].to_numpy(),
            predict_proba(model, features),
            SLICE_COLUMNS,
            min_rows=cfg.min_slice_rows,
        )
        mlflow.log_metrics({s.metric_key: s.roc_auc for s in slices if s.roc_auc is not None})
        outcome = validation_decision(
            metadata_problems=problems,
            metric_failures=failures,
            slices=slices,
            min_slice_rows=cfg.min_slice_rows,
            min_slice_roc_auc=cfg.min_slice_roc_auc,
        )
        mlflow.set_tag("validation_status", outcome.status)
        mlflow.log_text("\n".join(outcome.reasons) + "\n", "validation_reasons.txt")
    metrics = {k: float(v) for k, v in candidate.metrics.items() if isinstance(v, int | float)}
    if champion_roc_auc is not None:
        metrics["champion_roc_auc"] = champion_roc_auc
    metrics.update({s.metric_key: s.roc_auc for s in slices if s.roc_auc is not None})
    return outcome, metrics


def require_passed(platform: Platform, ref: ModelRef) -> None:
    """Nothing when the version's recorded status is PASSED; a JobError with the recorded reasons otherwise."""
    tags = dict(environment_version(platform, ref).tags or {})
    status = tags.get(contract.VALIDATION_STATUS)
    if status != PASSED:
        reasons = tags.get(contract.VALIDATION_REASONS) or "no reasons recorded"
        raise JobError(f"{ref.uri} is {status or 'not validated'}, not PASSED: {reasons}")
    logger.info("%s is PASSED", ref.uri)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = job_parser("mlops-validate", "Validate a registered model version before it may become the Challenger.")
    parser.add_argument("--model-uri", type=_model_uri, required=True, help="models:/<catalog>.ml.<model>/<version>")
    parser.add_argument("--run-mode", choices=RUN_MODES, help="default: the environment's validation.run_mode")
    parser.add_argument("--eval-start", type=iso_date, help="default: the version's test_start tag")
    parser.add_argument("--eval-end", type=iso_date, help="default: the version's test_end tag")
    parser.add_argument(
        "--require-passed",
        action="store_true",
        help="check nothing: exit 1 with the recorded reasons unless the version's status is PASSED",
    )
    args = parser.parse_args(argv)
    check_window(parser, args.eval_start, args.eval_end, "evaluation period:")
    return args


def _model_uri(text: str) -> ModelRef:
    try:
        return parse_model_uri(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> int:
        env = job_environment(args)
        platform = build_platform(env)
        if args.require_passed:
            require_passed(platform, args.model_uri)
            return 0
        run_mode = args.run_mode or env.validation.run_mode
        validate(platform, args.model_uri, run_mode, args.eval_start, args.eval_end)
        return 0

    return run_job("mlops-validate", work)


def cli(argv: list[str] | None = None) -> None:
    """The `mlops-validate` console script: a failure exits non-zero, which fails the Databricks task."""
    exit_on_failure(main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
