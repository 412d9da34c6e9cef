"""The integration-test graph: every pipeline of a model on a small slice, in the order of a model's life, each step
followed by a check of what it wrote (``mlops-integration-check``, jobs/integration_check.py). One graph per environment
and model like the others (``spec.workflows.job_graphs`` lists it), rendered by the stacks and run by the local runner;
CI runs it in staging (docs/integration-test.md). Its own module: spec/workflows.py holds the production graphs.
"""

from __future__ import annotations

from types import MappingProxyType

from spec.config import Environment
from spec.graph import AlertTask, Dependency, JobGraph, Task, WheelTask
from spec.workflows import (
    PUBLISH_LOOKBACK_MINUTES,
    REFRESH_TIMEOUT_SECONDS,
    _wheel,
    deploy_timeout_seconds,
    train_action,
)

# The integration test's slice: two months of training (the regressor's R2 on one month's hold-out is below its
# threshold), a few thousand rows, a few days scored in batch and streamed, labels due after them. Job parameters, so
# that a run can move or widen it.
INTEGRATION_SLICE = MappingProxyType(
    {
        "start_date": "2013-02-01",
        "end_date": "2013-04-10",
        "training_start": "2013-02-01",
        "training_end": "2013-03-31",
        "max_rows": "6000",
        "score_start": "2013-04-01",
        "score_end": "2013-04-02",
        "land_start": "2013-04-03",
        "land_end": "2013-04-04",
        "as_of": "2013-04-06",
        # How long the requests' rows may take to reach the inference table (AI Gateway writes it within the hour).
        "inference_wait_minutes": "60",
    }
)
# What the check after each step asserts: jobs/integration_check.py; the checks are deterministic, a retry repeats them.
_CHECK_NO_RETRY = "a check reads what its step wrote: a retry would read the same"


def integration_test(env: Environment) -> JobGraph:
    """Every pipeline of the model on a small slice, in the order of a model's life, each step followed by a check of
    what it wrote (``mlops-integration-check --step <step>``): features, training, validation, deployment to the
    environment's endpoint, requests through that endpoint, batch and streaming scoring, publishing, labels, the
    monitors' refresh and the SQL alerts. A check that finds something missing fails the run, naming the step."""
    from spec.monitoring import alerts

    retries = env.job_retries
    since = ("--since", "{{tasks.start.values.started_at}}")
    versions = ("--versions", "{{tasks.start.values.table_versions}}")
    window = ("--start-date", "{{job.parameters.start_date}}", "--end-date", "{{job.parameters.end_date}}")
    model = ("--model-version", "{{tasks.check_train.values.model_version}}")
    tasks: list[Task] = [
        Task(
            "start",
            _wheel("mlops-integration-check", env, "--step", "start"),
            timeout_seconds=600,
            description="records when the run started and the tables' versions, which the checks compare with",
            no_retry_reason=_CHECK_NO_RETRY,
        )
    ]

    def step(key: str, action: WheelTask | AlertTask, after: str, timeout: int, description: str) -> None:
        tasks.append(
            Task(
                key,
                action,
                depends_on=(Dependency(after),),
                max_retries=retries,
                min_retry_interval_millis=60_000,
                timeout_seconds=timeout,
                description=description,
            )
        )

    def check(name: str, after: str | tuple[str, ...], *arguments: str, timeout: int = 900) -> str:
        key = f"check_{name}"
        upstream = (after,) if isinstance(after, str) else after
        tasks.append(
            Task(
                key,
                _wheel("mlops-integration-check", env, "--step", name, *since, *arguments),
                depends_on=tuple(Dependency(u) for u in upstream),
                timeout_seconds=timeout,
                description=f"asserts what the {name} step wrote in this run",
                no_retry_reason=_CHECK_NO_RETRY,
            )
        )
        return key

    step("ingest", _wheel("mlops-ingest", env, *window), "start", 1800, "the slice of the model's sources")
    step("features", _wheel("mlops-features", env), check("ingest", "ingest", *versions, *window), 1800, "features")
    step(
        "train",
        train_action(env),
        check("features", "features", *versions, *window),
        3600,
        "a new version on the slice",
    )
    validate = _wheel(
        "mlops-validate",
        env,
        "--model-uri",
        "{{tasks.check_train.values.model_uri}}",
        "--run-mode",
        env.validation.run_mode,
    )
    step("validate", validate, check("train", "train"), 1800, "gates the new version")
    deploy = _wheel(
        "mlops-deploy",
        env,
        "--model-name",
        "{{tasks.check_train.values.model_name}}",
        *model,
    )
    step("deploy", deploy, check("validate", "validate", *model), deploy_timeout_seconds(env), "to the endpoint")
    check("deploy", "deploy", *model)
    # The requests step sends and checks at once: what it asserts is the endpoint's answer and the inference table.
    requests = check(
        "requests",
        "check_deploy",
        "--inference-wait-minutes",
        "{{job.parameters.inference_wait_minutes}}",
        timeout=3 * 3600,
    )
    score = _wheel(
        "mlops-score-batch",
        env,
        "--start-date",
        "{{job.parameters.score_start}}",
        "--end-date",
        "{{job.parameters.score_end}}",
    )
    step("score_batch", score, requests, 3600, "the champion scores the batch slice")
    land = _wheel(
        "mlops-land",
        env,
        "--start-date",
        "{{job.parameters.land_start}}",
        "--end-date",
        "{{job.parameters.land_end}}",
    )
    step("land", land, check("score_batch", "score_batch"), 1800, "the streamed slice lands as a file")
    stream = _wheel("mlops-score-stream", env, "--trigger", "available-now")
    step("score_stream", stream, "land", 3600, "the streaming job scores what landed")
    publish = _wheel("mlops-publish", env, "--lookback-minutes", PUBLISH_LOOKBACK_MINUTES)
    step("publish", publish, check("score_stream", "score_stream"), 3600, "the run's predictions online")
    labels = _wheel("mlops-labels", env, "--as-of", "{{job.parameters.as_of}}")
    step("labels", labels, check("publish", "publish"), 3600, "the slice's labels")
    refresh = _wheel("mlops-refresh-monitors", env)
    step("refresh_monitors", refresh, check("labels", "labels"), REFRESH_TIMEOUT_SECONDS, "the monitors")
    monitors = check(
        "monitors",
        "refresh_monitors",
        *versions,
        "--start-date",
        "{{job.parameters.score_start}}",
        "--end-date",
        "{{job.parameters.land_end}}",
    )
    alert_keys = []
    for spec in alerts(env):
        alert_keys.append(f"alert_{spec.name}")
        step(alert_keys[-1], AlertTask(alert=spec.name), monitors, 900, spec.description)
    check("alerts", tuple(alert_keys) or monitors)
    return JobGraph(
        name="integration-test",
        description="Every pipeline of the model on a small slice, in order, each step checked; a missing output "
        "fails the run naming the step.",
        parameters=INTEGRATION_SLICE,
        tasks=tuple(tasks),
        tags=MappingProxyType({"environment": env.name, "model": env.model_name, "stage": "integration-test"}),
    )
