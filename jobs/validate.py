"""mlops-validate: may this model version become the Challenger?

The version is tagged ``model_validation_status=PENDING`` first, then checked on its held-out period (the
``test_start``/``test_end`` tags written by training, or ``--eval-start``/``--eval-end``):

- metadata: a signature, a description, the training-window tags and a lineage tag for every table evaluated on;
- metrics: ``mlflow.models.evaluate`` on the period (as a classifier or a regressor, by the model's problem type)
  logs the version's metrics, curves and evaluation table on the validation run. The gates (``jobs.core.decisions``)
  are judged on the metrics of the model's declaration (``spec.model.METRICS``, computed by
  ``jobs.core.evaluation.quality_metrics`` as training, deployment and the online decision compute them; MLflow
  names some of them differently, ``accuracy_score`` for ``accuracy``): the thresholds of the declaration
  (``ModelSpec.validation.thresholds``: a floor for a metric where higher is better, a ceiling for an error), and,
  when a Champion exists, the primary metric at most ``validation.max_relative_drop_vs_champion`` worse than the
  Champion's on the same rows. The Champion is scored, not evaluated again: its curves were logged when it was
  validated. A classifier's ``positive_rate_gap`` (an MLflow custom metric) must be <= ``max_positive_rate_gap``,
  checked by ``mlflow.validate_evaluation_results``;
- slices: every value of the declared slice columns with enough rows: a classifier's roc_auc >=
  ``validation.min_slice_roc_auc`` (slices of >= ``validation.min_slice_rows`` rows), a regressor's
  mean_absolute_error <= ``validation.max_slice_error_ratio`` times the whole period's (slices of >= the
  declaration's ``min_slice_rows``).

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
    MetricGate,
    ValidationOutcome,
    metadata_problems,
    metric_gates,
    validation_decision,
)
from jobs.core.evaluation import SLICE_METRIC, positive_rate_gap, quality_metrics, slice_metrics
from jobs.core.model import scores
from jobs.examples import environment_version, evaluation_frame, evaluation_period
from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError, check_window, exit_on_failure, iso_date, job_environment, job_parser, run_job
from jobs.platform.registry import CHALLENGER, CHAMPION, ModelRef, parse_model_uri
from spec.columns import LABEL
from spec.config import RunMode, Validation
from spec.model import ModelSpec

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


def gates(spec: ModelSpec, cfg: Validation, champion_value: float | None) -> list[MetricGate]:
    """The metric gates of a version of ``spec``: a classifier's are the environment's (``validation.min_roc_auc``,
    which config tightens per environment, beside its declaration's other thresholds), a regressor's its
    declaration's thresholds; both, with a Champion, at most ``max_relative_drop_vs_champion`` worse than it on the
    primary metric (in the metric's direction)."""
    thresholds = dict(spec.validation.thresholds)
    primary = spec.validation.primary_metric
    if spec.is_classifier:
        thresholds = {"roc_auc": cfg.min_roc_auc, **{m: v for m, v in thresholds.items() if m != "roc_auc"}}
    return metric_gates(thresholds, primary, cfg.max_relative_drop_vs_champion, champion_value)


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
    spec = platform.model.spec
    primary = spec.validation.primary_metric
    tags = dict(version.tags or {})
    start, end = evaluation_period(tags, eval_start, eval_end, ref.uri)
    info = mlflow.models.get_model_info(ref.uri)
    data, slice_values, lineage = evaluation_frame(platform, start, end)
    problems = metadata_problems(
        has_signature=info.signature is not None,
        description=version.description,
        tags=tags,
        # The version must say where its data came from: a lineage tag for every table it is evaluated on.
        required_tags=(*contract.REQUIRED_VERSION_TAGS, *sorted(lineage)),
    )
    champion = platform.registry.alias_version(CHAMPION, name=ref.name)
    if champion == ref.version:
        champion = None
    evaluate_args: dict = dict(data=data, targets=LABEL, evaluators="default")
    if spec.is_classifier:
        evaluate_args.update(
            model_type="classifier",
            evaluator_config={"log_model_explainability": False, "pos_label": 1},
            extra_metrics=[
                mlflow.models.make_metric(
                    eval_fn=lambda predictions, targets, metrics: positive_rate_gap(predictions, targets),
                    greater_is_better=False,
                    name="positive_rate_gap",
                )
            ],
        )
    else:
        evaluate_args.update(model_type="regressor", evaluator_config={"log_model_explainability": False})
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
        labels = data[LABEL].to_numpy()
        features = data.drop(columns=[LABEL])
        candidate_scores = scores(spec, mlflow.sklearn.load_model(ref.uri), features)
        judged = quality_metrics(spec.problem_type, labels, candidate_scores)
        champion_value = None
        if champion is not None:
            champion_model = mlflow.sklearn.load_model(ModelRef(ref.name, champion).uri)
            champion_value = quality_metrics(spec.problem_type, labels, scores(spec, champion_model, features))[primary]
            mlflow.log_metric(f"champion_{primary}", champion_value)
        failures = [
            f"{gate.description}, got {judged[gate.metric]:.4f}"
            for gate in gates(spec, cfg, champion_value)
            if not gate.passes(judged[gate.metric])
        ]
        if spec.is_classifier:
            gap = {"positive_rate_gap": MetricThreshold(threshold=cfg.max_positive_rate_gap, greater_is_better=False)}
            try:
                mlflow.validate_evaluation_results(gap, candidate)
            except ModelValidationFailedException:
                failures.append(
                    f"positive_rate_gap must be <= {cfg.max_positive_rate_gap:.4f}, "
                    f"got {float(candidate.metrics['positive_rate_gap']):.4f}"
                )
        slice_metric = SLICE_METRIC[spec.problem_type]
        if spec.is_classifier:
            min_slice_rows, slice_bound = cfg.min_slice_rows, cfg.min_slice_roc_auc
        else:
            # An error has the label's unit: a slice is judged against the whole period's error, not a constant.
            min_slice_rows = spec.validation.min_slice_rows
            slice_bound = cfg.max_slice_error_ratio * judged[slice_metric]
        slices = slice_metrics(
            slice_values,
            labels,
            candidate_scores,
            spec.validation.slices,
            min_rows=min_slice_rows,
            metric=slice_metric,
        )
        mlflow.log_metrics({s.metric_key: s.score for s in slices if s.score is not None})
        outcome = validation_decision(
            metadata_problems=problems,
            metric_failures=failures,
            slices=slices,
            min_slice_rows=min_slice_rows,
            slice_bound=slice_bound,
        )
        mlflow.set_tag("validation_status", outcome.status)
        mlflow.log_text("\n".join(outcome.reasons) + "\n", "validation_reasons.txt")
    metrics = {k: float(v) for k, v in candidate.metrics.items() if isinstance(v, int | float)}
    if champion_value is not None:
        metrics[f"champion_{primary}"] = champion_value
    metrics.update({s.metric_key: s.score for s in slices if s.score is not None})
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
