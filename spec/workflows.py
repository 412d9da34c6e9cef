"""Job graphs as data: written once, rendered to `databricks_job` by the stacks and executed by the local runner.

No CDK import here. The graph types (tasks, dependencies, references) live in spec/graph.py and are importable from
here too; this module builds the project's graphs from an environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from spec.config import Environment
from spec.graph import (
    PACKAGE_NAME,
    AlertTask,
    ConditionOp,
    ConditionTask,
    Dependency,
    JobGraph,
    ModelTrigger,
    RunIf,
    RunJobTask,
    Task,
    WheelTask,
    WorkflowError,
    references,
    resolve,
)

__all__ = [
    "PACKAGE_NAME",
    "AlertTask",
    "ConditionOp",
    "ConditionTask",
    "Dependency",
    "JobGraph",
    "ModelTrigger",
    "RunIf",
    "RunJobTask",
    "Task",
    "WheelTask",
    "WorkflowError",
    "references",
    "resolve",
]

# The graphs of the project ---------------------------------------------------------------------------------------


def _wheel(entry_point: str, env: Environment, *parameters: str) -> WheelTask:
    return WheelTask(entry_point=entry_point, parameters=("--env", env.name, "--model", env.model_name, *parameters))


def train_action(env: Environment) -> WheelTask:
    """mlops-train on the graph's ``training_start``, ``training_end`` and ``max_rows`` job parameters (the model
    workflow's and the integration test's)."""
    return _wheel(
        "mlops-train",
        env,
        "--training-start",
        "{{job.parameters.training_start}}",
        "--training-end",
        "{{job.parameters.training_end}}",
        "--max-rows",
        "{{job.parameters.max_rows}}",
    )


def feature_pipeline(env: Environment) -> JobGraph:
    retries = env.job_retries
    return JobGraph(
        name="feature-pipeline",
        description=f"Loads the sources of {env.model_name} into the raw schema, then refreshes its feature tables.",
        parameters=MappingProxyType({"start_date": "2013-01-01", "end_date": "2013-12-31"}),
        tasks=(
            Task(
                "ingest",
                _wheel(
                    "mlops-ingest",
                    env,
                    "--start-date",
                    "{{job.parameters.start_date}}",
                    "--end-date",
                    "{{job.parameters.end_date}}",
                    "--skip-unchanged",
                ),
                max_retries=retries,
                min_retry_interval_millis=60_000,
                timeout_seconds=1800,
                description="the model's sources, as delivered, into the raw schema (a table already holding them "
                "is left as it is)",
            ),
            Task(
                "features",
                _wheel("mlops-features", env, "--skip-unchanged"),
                depends_on=(Dependency("ingest"),),
                max_retries=retries,
                min_retry_interval_millis=60_000,
                timeout_seconds=1800,
                description="the model's feature tables from its raw tables (tables already computed from the same "
                "raw table versions and model code are left as they are)",
            ),
        ),
        tags=MappingProxyType({"environment": env.name, "model": env.model_name, "stage": "features"}),
    )


def model_training(env: Environment) -> JobGraph:
    retries = env.job_retries
    return JobGraph(
        name="model-training",
        description="Refreshes features, trains, validates and (if validation passed) deploys the model.",
        parameters=MappingProxyType(
            {
                "start_date": "2013-01-01",
                "end_date": "2013-12-31",
                "training_start": "2013-01-01",
                "training_end": "2013-06-30",
                "max_rows": "60000",
            }
        ),
        # Started by the retraining job, with a training window that ends at the latest labelled data.
        tasks=(
            Task(
                "refresh_features",
                RunJobTask(
                    job="feature-pipeline",
                    job_parameters=MappingProxyType(
                        {"start_date": "{{job.parameters.start_date}}", "end_date": "{{job.parameters.end_date}}"}
                    ),
                ),
                max_retries=retries,
                min_retry_interval_millis=60_000,
                # The child run may take its whole job timeout: the parent never abandons it earlier.
                timeout_seconds=feature_pipeline(env).job_timeout_seconds,
                description="runs the feature pipeline job as a child run",
            ),
            Task(
                "train",
                train_action(env),
                depends_on=(Dependency("refresh_features"),),
                max_retries=retries,
                min_retry_interval_millis=60_000,
                timeout_seconds=3600,
                description="fits the model and registers a new version",
            ),
            Task(
                "validate",
                _wheel(
                    "mlops-validate",
                    env,
                    "--model-uri",
                    "{{tasks.train.values.model_uri}}",
                    "--run-mode",
                    env.validation.run_mode,
                ),
                depends_on=(Dependency("train"),),
                max_retries=retries,
                min_retry_interval_millis=60_000,
                timeout_seconds=1800,
                description="gates the version: PASSED gets the challenger alias",
            ),
            Task(
                "validation_passed",
                ConditionTask(left="{{tasks.validate.values.validation_status}}", op="EQUAL_TO", right="PASSED"),
                depends_on=(Dependency("validate"),),
                description="deploy only a version that passed validation",
            ),
            *_training_deploy(env),
            *_validation_failure(env),
        ),
        tags=MappingProxyType({"environment": env.name, "model": env.model_name, "stage": "training"}),
    )


def _training_deploy(env: Environment) -> tuple[Task, ...]:
    """The model workflow's deploy task; none where promotion is approved by hand: the model-deployment job deploys
    the new Challenger there (``model_deployment``)."""
    if env.promotion.approval == "manual":
        return ()
    after = Dependency("validation_passed", outcome="true")
    return (_deploy_task(env, "{{tasks.train.values.model_version}}", "{{tasks.train.values.model_name}}", after),)


def _deploy_task(env: Environment, version: str, name: str, *after: Dependency, key: str = "deploy") -> Task:
    return Task(
        key,
        _wheel("mlops-deploy", env, "--model-name", name, "--model-version", version),
        depends_on=after,
        max_retries=env.job_retries,
        min_retry_interval_millis=60_000,
        timeout_seconds=deploy_timeout_seconds(env),
        description="challenger vs champion; promotes when at least as good (and approved, where that is manual)",
    )


# The model-deployment job's task: named after it, the approval tag of MLflow 3 deployment jobs (jobs/core/contract.py
# APPROVAL), whose approval task's name is the model-version tag a person sets to "approved".
APPROVAL_TASK = "approval"


def model_deployment(env: Environment) -> JobGraph:
    """Where ``promotion.approval`` is manual: the deployment of a validated Challenger, started by the model trigger
    when validation sets the ``challenger`` alias (as MLflow 3 deployment jobs start on a new version), and again
    after a person approved it (`mlops approve` says how). Its one task compares the version with the Champion and
    promotes it only once approved; until then it tags it as waiting and notifies. Locally it runs on demand."""
    return JobGraph(
        name="model-deployment",
        description="Deploys the validated challenger once a person approved it; until then it waits and notifies.",
        # Empty: the version the challenger alias points at.
        parameters=MappingProxyType({"model_version": ""}),
        trigger_model=ModelTrigger(
            securable_name=env.registered_model,
            condition="MODEL_ALIAS_SET",
            aliases=("challenger",),
            min_time_between_triggers_seconds=60,
        ),
        tasks=(_deploy_task(env, "{{job.parameters.model_version}}", env.registered_model, key=APPROVAL_TASK),),
        tags=MappingProxyType({"environment": env.name, "model": env.model_name, "stage": "deployment"}),
    )


# What the deploy task does besides waiting for the endpoint: load both models, score the held-out period, log.
DEPLOY_EVALUATION_SECONDS = 15 * 60


def deploy_timeout_seconds(env: Environment) -> int:
    """The deploy task's timeout: the endpoint wait (one deadline, ``serving.update_timeout_minutes``; see
    jobs.platform.serving.EndpointUpdater) plus the evaluation, so the task never times out mid-wait."""
    return env.serving.update_timeout_minutes * 60 + DEPLOY_EVALUATION_SECONDS


def _validation_failure(env: Environment) -> tuple[Task, ...]:
    """In ``enabled`` mode a FAILED version fails the run, in a task of its own with no retries: the verdict is
    deterministic, a retry would only repeat it. The validate task itself retries crashes (it exits 0 whenever it
    recorded a status). ``dry_run`` records FAILED and lets the run succeed without deploying."""
    if env.validation.run_mode != "enabled":
        return ()
    return (
        Task(
            "validation_failed",
            _wheel("mlops-validate", env, "--model-uri", "{{tasks.train.values.model_uri}}", "--require-passed"),
            depends_on=(Dependency("validation_passed", outcome="false"),),
            max_retries=0,
            timeout_seconds=600,
            description="fails the run with the validation reasons",
            no_retry_reason="a validation verdict is deterministic, a retry repeats it",
        ),
    )


# mlops-publish re-reads rows scored this long before its watermark: a scoring run stamps scored_at before it commits,
# at most its timeout (an hour) earlier. A job parameter, so that a run can narrow it.
PUBLISH_LOOKBACK_MINUTES = "120"


def _publish(env: Environment, after: str) -> Task:
    return Task(
        "publish",
        _wheel("mlops-publish", env, "--lookback-minutes", "{{job.parameters.publish_lookback_minutes}}"),
        depends_on=(Dependency(after),),
        max_retries=env.job_retries,
        min_retry_interval_millis=60_000,
        timeout_seconds=3600,
        description="the latest prediction per key to the online store (DynamoDB)",
    )


def batch_inference(env: Environment) -> JobGraph:
    """Scores the rows of a date range (or every row not scored yet) with the Champion, then publishes."""
    retries = env.job_retries
    return JobGraph(
        name="batch-inference",
        description="Scores rows with the champion into the predictions table, then publishes them online.",
        # Empty dates: every row of the scored raw table that has no prediction yet.
        parameters=MappingProxyType(
            {"start_date": "", "end_date": "", "publish_lookback_minutes": PUBLISH_LOOKBACK_MINUTES}
        ),
        schedule=env.inference.batch_schedule,
        tasks=(
            Task(
                "score",
                _wheel(
                    "mlops-score-batch",
                    env,
                    "--start-date",
                    "{{job.parameters.start_date}}",
                    "--end-date",
                    "{{job.parameters.end_date}}",
                ),
                max_retries=retries,
                min_retry_interval_millis=60_000,
                timeout_seconds=3600,
                description="champion predictions and rejects of the batch, replacing an earlier run of it",
            ),
            _publish(env, "score"),
        ),
        tags=MappingProxyType({"environment": env.name, "model": env.model_name, "stage": "inference"}),
    )


def streaming_inference(env: Environment) -> JobGraph:
    """Scores the files landing in the model's landing folder, micro-batch by micro-batch, exactly once."""
    continuous = env.inference.streaming_mode == "continuous"
    stream = Task(
        "stream",
        _wheel("mlops-score-stream", env, "--trigger", "continuous" if continuous else "available-now"),
        max_retries=env.job_retries,
        min_retry_interval_millis=60_000,
        timeout_seconds=24 * 3600 if continuous else 3600,
        description="Structured Streaming from the landing volume into the predictions table",
    )
    # A continuous stream never ends: the batch job's publish task keeps the online store current then.
    tasks = (stream,) if continuous else (stream, _publish(env, "stream"))
    return JobGraph(
        name="streaming-inference",
        description="Scores rows as their files land, exactly once per micro-batch, into the predictions table.",
        parameters=MappingProxyType({} if continuous else {"publish_lookback_minutes": PUBLISH_LOOKBACK_MINUTES}),
        schedule=None if continuous else env.inference.streaming_schedule,
        continuous=continuous,
        tasks=tasks,
        tags=MappingProxyType({"environment": env.name, "model": env.model_name, "stage": "inference"}),
    )


def _labels_task(env: Environment) -> Task:
    return Task(
        "labels",
        _wheel("mlops-labels", env, "--as-of", "{{job.parameters.as_of}}"),
        max_retries=env.job_retries,
        min_retry_interval_millis=60_000,
        timeout_seconds=3600,
        description="served requests unpacked; the label set on every row whose label is known",
    )


def labels(env: Environment) -> JobGraph:
    """Once labels are known: into the predictions and the served requests. On demand: the daily monitoring graph
    runs the same task first."""
    return JobGraph(
        name="labels",
        description="Unpacks the inference table and joins the known labels into the monitored tables.",
        # Empty: rows whose label is due before today (a replay passes its simulated day).
        parameters=MappingProxyType({"as_of": ""}),
        tasks=(_labels_task(env),),
        tags=MappingProxyType({"environment": env.name, "model": env.model_name, "stage": "monitoring"}),
    )


def daily_monitoring(env: Environment) -> JobGraph:
    """The production day, in order, each step after the one before: labels, then both quality monitors refresh
    (waiting for the refreshes to end), then every SQL alert is evaluated on the fresh metrics, then the retraining
    graph decides. One graph instead of clock offsets between separate schedules, so a slow step delays the next
    instead of being overtaken by it; and no table trigger on a metrics table that only the first refresh creates."""
    from spec.monitoring import alerts

    alert_tasks = tuple(
        Task(
            f"alert_{spec.name}",
            AlertTask(alert=spec.name),
            depends_on=(Dependency("refresh_monitors"),),
            max_retries=env.job_retries,
            min_retry_interval_millis=60_000,
            timeout_seconds=900,
            description=spec.description,
        )
        for spec in alerts(env)
    )
    retrain = retraining(env)
    return JobGraph(
        name="daily-monitoring",
        description="Labels, then the quality monitors' refresh, then the SQL alerts, then the retraining decision.",
        schedule=env.monitoring.schedule,
        parameters=MappingProxyType({"as_of": ""}),
        tasks=(
            _labels_task(env),
            Task(
                "refresh_monitors",
                _wheel("mlops-refresh-monitors", env),
                depends_on=(Dependency("labels"),),
                max_retries=env.job_retries,
                min_retry_interval_millis=60_000,
                timeout_seconds=REFRESH_TIMEOUT_SECONDS,
                description="refreshes every quality monitor and waits until each refresh has ended",
            ),
            *alert_tasks,
            Task(
                "retraining",
                RunJobTask(job="retraining"),
                depends_on=tuple(Dependency(task.key) for task in alert_tasks),
                timeout_seconds=retrain.job_timeout_seconds,
                description="the retraining graph: check, then the model workflow when it says so",
                no_retry_reason="the retraining graph retries its own tasks; a second run could train twice",
            ),
        ),
        tags=MappingProxyType({"environment": env.name, "model": env.model_name, "stage": "monitoring"}),
    )


# A refresh of a monitored table's metrics (both granularities) on Databricks: generous, the refresh task waits.
REFRESH_TIMEOUT_SECONDS = 2 * 3600


def retraining(env: Environment) -> JobGraph:
    """Started by the daily monitoring graph once the alerts have run on fresh metrics: the check runs the alert SQL
    and the Champion's age, and the model workflow runs on a window ending at the latest labelled data if either says
    so."""
    return JobGraph(
        name="retraining",
        description="Retrains on the latest labelled data when the alerts or the champion's age say so.",
        # A second start while one runs is skipped, not queued: the run in progress already retrains.
        max_concurrent_runs=1,
        tasks=(
            Task(
                "check",
                _wheel("mlops-check-retraining", env),
                max_retries=env.job_retries,
                min_retry_interval_millis=60_000,
                timeout_seconds=1800,
                description="the alert queries that start retraining, the champion's age, the training window",
            ),
            Task(
                "should_retrain",
                ConditionTask(left="{{tasks.check.values.retrain}}", op="EQUAL_TO", right="true"),
                depends_on=(Dependency("check"),),
                description="retrain only when an alert holds or the champion is too old",
            ),
            Task(
                "retrain",
                RunJobTask(
                    job="model-training",
                    job_parameters=MappingProxyType(
                        {
                            "training_start": "{{tasks.check.values.training_start}}",
                            "training_end": "{{tasks.check.values.training_end}}",
                            "max_rows": str(env.retraining.max_rows),
                        }
                    ),
                ),
                depends_on=(Dependency("should_retrain", outcome="true"),),
                timeout_seconds=model_training(env).job_timeout_seconds,
                description="the model workflow: train, validate, champion vs challenger",
                no_retry_reason="the model workflow retries its own tasks; a second run would train twice",
            ),
        ),
        tags=MappingProxyType({"environment": env.name, "model": env.model_name, "stage": "retraining"}),
    )


def champion_challenger(env: Environment) -> JobGraph:
    """Champion vs Challenger on the labelled traffic of the serving endpoint: promote, ramp or retire."""
    return JobGraph(
        name="champion-challenger",
        description="Decides on the challenger from the served requests' labelled outcomes.",
        schedule=env.online_evaluation.schedule,
        tasks=(
            Task(
                "decide",
                _wheel("mlops-online-decision", env),
                max_retries=env.job_retries,
                min_retry_interval_millis=60_000,
                timeout_seconds=deploy_timeout_seconds(env),
                description="promote, ramp or retire the challenger, with the reason on its version",
            ),
        ),
        tags=MappingProxyType({"environment": env.name, "model": env.model_name, "stage": "serving"}),
    )


def job_graphs(env: Environment) -> dict[str, JobGraph]:
    """Every graph of ``env`` by name; run-job tasks refer to these names."""
    from spec.integration_test import integration_test

    graphs = {
        graph.name: graph
        for graph in (
            feature_pipeline(env),
            model_training(env),
            batch_inference(env),
            streaming_inference(env),
            labels(env),
            retraining(env),
            daily_monitoring(env),
            champion_challenger(env),
            *((integration_test(env),) if env.integration_test else ()),
            *((model_deployment(env),) if env.promotion.approval == "manual" else ()),
        )
    }
    for graph in graphs.values():
        for task in graph.tasks:
            if isinstance(task.action, RunJobTask) and task.action.job not in graphs:
                raise WorkflowError(f"graph {graph.name!r}: task {task.key!r} runs unknown job {task.action.job!r}")
    check_run_job_timeouts(graphs)
    return graphs


def check_run_job_timeouts(graphs: Mapping[str, JobGraph]) -> None:
    """A run-job task must wait at least as long as its child job may run: else the parent gives up on a child that is
    still within its own timeouts and retries (and a retry of the parent would start a second child)."""
    for graph in graphs.values():
        for task in graph.tasks:
            if not isinstance(task.action, RunJobTask):
                continue
            child = graphs[task.action.job]
            if task.timeout_seconds < child.job_timeout_seconds:
                raise WorkflowError(
                    f"graph {graph.name!r}: task {task.key!r} field 'timeout_seconds' is {task.timeout_seconds}s, "
                    f"shorter than its child job {child.name!r} may run ({child.job_timeout_seconds}s): set it to "
                    f"at least {child.job_timeout_seconds}"
                )
