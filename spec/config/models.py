"""The parts of an environment: workspace, identities, compute, and the settings of each stage of the ML workflow.

Each part validates its own fields (types, ranges, patterns) and the rules among them; the rules that need more
than one part live on ``Environment`` (spec/config/environment.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, model_validator

from spec.base import (
    DYNAMODB_NAME,
    EMAIL,
    ENDPOINT_NAME,
    GIT_REF,
    GITLAB_PROJECT,
    HTTP,
    HTTPS,
    IDENTIFIER,
    REPOSITORY,
    SEGMENT,
    STORAGE_ACCOUNT,
    UUID,
    ConfigModel,
    Problems,
)

Cloud = Literal["azure", "aws", "gcp"]
RunMode = Literal["disabled", "dry_run", "enabled"]
DataScientistAccess = Literal["write", "read", "none"]
StreamingMode = Literal["continuous", "available_now"]
Granularity = Literal[
    "5 minutes", "30 minutes", "1 hour", "1 day", "1 week", "2 weeks", "3 weeks", "4 weeks", "1 month"
]
GRANULARITIES: tuple[str, ...] = get_args(Granularity)

Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
Uuid = Annotated[str, Field(pattern=UUID)]
NonEmpty = Annotated[str, Field(min_length=1)]
Segment = Annotated[str, Field(pattern=SEGMENT)]
Https = Annotated[str, Field(pattern=HTTPS)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Email = Annotated[str, Field(pattern=EMAIL)]


def _quartz(expression: str) -> str:
    if len(expression.split()) not in (6, 7):
        raise ValueError(f"must be a Quartz cron expression with 6 or 7 fields, got {expression!r}")
    return expression


QuartzCron = Annotated[str, AfterValidator(_quartz)]


class AzureWorkspaceSpec(ConfigModel):
    """Parameters to create an Azure Databricks workspace in the optional `workspaces` stack."""

    resource_group: NonEmpty
    location: NonEmpty
    metastore_id: NonEmpty = Field(description="required to assign the Unity Catalog metastore to the workspace")
    sku: Literal["standard", "premium", "trial"] = "premium"


class Workspace(ConfigModel):
    """An existing workspace (host + numeric id), or one the `workspaces` stack creates (``create`` set).

    The host's form depends on the cloud, so the environment checks it (spec/config/environment.py)."""

    host: str | None = None
    workspace_id: Annotated[int, Field(gt=0)] | None = None
    create: AzureWorkspaceSpec | None = None

    @model_validator(mode="after")
    def _host_or_create(self) -> Workspace:
        problems = Problems()
        if self.create is None and not self.host:
            problems.add("host", "is required unless workspace.create is set")
        if self.create is not None and self.host:
            problems.add("host", "must be empty when workspace.create is set")
        problems.raise_any()
        return self


class Account(ConfigModel):
    """The Databricks account (account console host and id); account-level identities live here.

    With ``account_id`` None the stacks take it from the Terraform variable ``databricks_account_id``
    (TF_VAR_databricks_account_id), so the id need not be committed."""

    host: Https = "https://accounts.azuredatabricks.net"
    account_id: Uuid | None = None


class CiFederation(ConfigModel):
    """Workload identity federation for GitHub Actions: a workflow job in the GitHub environment named after the
    Databricks environment exchanges its OIDC token for a Databricks token; no stored secret."""

    issuer: Https = "https://token.actions.githubusercontent.com"
    repository: Annotated[str, Field(pattern=REPOSITORY)] = "example-org/mlops-databricks"

    def subject(self, env: str) -> str:
        return f"repo:{self.repository}:environment:{env}"


class AzureDevOpsFederation(ConfigModel):
    """Workload identity federation for Azure DevOps (DATABRICKS_AUTH_TYPE=azure-devops-oidc): the organization's
    token issuer, one subject per pipeline, Entra ID's token-exchange audience."""

    # The Azure DevOps organization's id.
    organization_id: Uuid = "00000000-0000-0000-0000-000000000000"
    organization: Segment = "example-org"
    project: Segment = "mlops-databricks"
    pipeline: Segment = "mlops-databricks"
    audience: NonEmpty = "api://AzureADTokenExchange"

    @property
    def issuer(self) -> str:
        return f"https://vstoken.dev.azure.com/{self.organization_id}"

    def subject(self) -> str:
        return f"p://{self.organization}/{self.project}/{self.pipeline}"


class GitLabFederation(ConfigModel):
    """Workload identity federation for GitLab CI/CD (DATABRICKS_AUTH_TYPE=env-oidc, the job's ``id_tokens`` token):
    the GitLab instance is the issuer; the subject is GitLab's default ``sub`` claim, which names the project and
    the ref the pipeline runs on. Only pipelines of that ref sign in, so make it a protected branch (or tag) and run
    the environment's CI jobs in a protected GitLab environment (.gitlab-ci.yml). The audience is the Databricks
    account id, which the job requests as its token's ``aud``."""

    # gitlab.com, or a self-managed instance's URL (its OIDC issuer).
    issuer: Https = "https://gitlab.com"
    project_path: Annotated[str, Field(pattern=GITLAB_PROJECT)] = "example-org/mlops-databricks"
    ref_type: Literal["branch", "tag"] = "branch"
    # The ref whose pipelines run the environment's CI jobs: main runs staging's integration test (after the deploy
    # and nightly).
    ref: Annotated[str, Field(pattern=GIT_REF)] = "main"

    def subject(self) -> str:
        return f"project_path:{self.project_path}:ref_type:{self.ref_type}:ref:{self.ref}"


class StateBackend(ConfigModel):
    """Remote Terraform state in an Azure storage container (one key per stack); CI authenticates by OIDC."""

    resource_group: NonEmpty
    storage_account: Annotated[str, Field(pattern=STORAGE_ACCOUNT)]
    container: NonEmpty = "tfstate"


class Runtime(ConfigModel):
    """A Databricks compute the jobs run on, as its release notes describe it: the Python it runs and the pip
    constraints file (runtime/*.txt, sources named in each) of the libraries it preinstalls. The jobs wheel must
    install on it without changing any of them (tests/runtime/test_databricks_runtime.py)."""

    name: NonEmpty
    python: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")]
    libraries: NonEmpty
    # The preinstalled pip package that provides ``pyspark`` (Databricks Connect on serverless); None when Spark is
    # the runtime's own and no pip package (a Databricks Runtime cluster).
    spark_package: str | None
    release_notes: Https


SERVERLESS_PREFIX = "serverless-environment-"

# Every compute a job may be configured to run on, by the name the job declares (serverless environment version,
# or the cluster's spark_version).
RUNTIMES: MappingProxyType[str, Runtime] = MappingProxyType(
    {
        f"{SERVERLESS_PREFIX}3": Runtime(
            name="serverless environment version 3",
            python="3.12.3",
            libraries="runtime/serverless-environment-3.txt",
            spark_package="databricks-connect",
            release_notes="https://docs.databricks.com/aws/en/release-notes/serverless/environment-version/three",
        ),
        f"{SERVERLESS_PREFIX}4": Runtime(
            name="serverless environment version 4",
            python="3.12.3",
            libraries="runtime/serverless-environment-4.txt",
            spark_package="databricks-connect",
            release_notes="https://docs.databricks.com/aws/en/release-notes/serverless/environment-version/four",
        ),
        "16.4.x-cpu-ml-scala2.12": Runtime(
            name="Databricks Runtime 16.4 LTS for Machine Learning",
            python="3.12.3",
            libraries="runtime/dbr-16.4-lts-ml.txt",
            spark_package=None,
            release_notes="https://docs.databricks.com/aws/en/release-notes/runtime/16.4lts-ml",
        ),
    }
)


def _read_only(mapping: Mapping[Cloud, str]) -> Mapping[Cloud, str]:
    return MappingProxyType(dict(mapping))


class Compute(ConfigModel):
    """Serverless job environment by default; a job cluster governed by the cluster policy as the alternative."""

    serverless: bool = True
    serverless_environment_version: str = "4"
    spark_version: str = "16.4.x-cpu-ml-scala2.12"
    num_workers: Annotated[int, Field(ge=0)] = 1
    node_types: Annotated[Mapping[Cloud, NonEmpty], AfterValidator(_read_only)] = Field(
        default_factory=lambda: MappingProxyType(
            {"azure": "Standard_D4ds_v5", "aws": "m6gd.xlarge", "gcp": "n2-standard-4"}
        )
    )
    max_workers: Annotated[int, Field(ge=1)] = 4

    @model_validator(mode="after")
    def _known_runtimes_and_enough_workers(self) -> Compute:
        problems = Problems()
        serverless, cluster = self.runtime_keys
        for field, key in (("serverless_environment_version", serverless), ("spark_version", cluster)):
            if key not in RUNTIMES:
                problems.add(
                    field,
                    f"runs on {key!r}, which has no entry in RUNTIMES (its Python and preinstalled libraries); "
                    f"known: {', '.join(RUNTIMES)}",
                )
        if self.max_workers < self.num_workers:
            problems.add("max_workers", f"must be >= compute.num_workers ({self.num_workers}), got {self.max_workers}")
        problems.raise_any()
        return self

    @property
    def runtime_keys(self) -> tuple[str, str]:
        """The two computes this configuration can run the jobs on (serverless, and the job cluster alternative)."""
        return (f"{SERVERLESS_PREFIX}{self.serverless_environment_version}", self.spark_version)


class Schedule(ConfigModel):
    quartz_cron: QuartzCron
    timezone: NonEmpty = "UTC"
    paused: bool = False


class Validation(ConfigModel):
    """Gates a new model version must pass before it becomes the Challenger.

    ``min_roc_auc``, ``min_slice_roc_auc``, ``min_slice_rows`` and ``max_positive_rate_gap`` are a classifier's; a
    regressor's thresholds and slices are its declaration's (``ModelSpec.validation``), with its slices' error held
    to ``max_slice_error_ratio``. ``max_relative_drop_vs_champion`` applies to both, on the primary metric."""

    run_mode: RunMode = "enabled"
    min_roc_auc: Fraction = 0.62
    # Per slice (the model's validation slices): better than chance wherever there are enough rows to tell. ROC AUC
    # on a few hundred rows has a standard error of about 0.03, so a stricter floor fails sound models on noise.
    min_slice_roc_auc: Fraction = 0.50
    min_slice_rows: Annotated[int, Field(ge=1)] = 500
    max_relative_drop_vs_champion: Fraction = 0.05
    # Custom metric: |share of rows predicted positive - share that were| at the classifier's threshold.
    max_positive_rate_gap: Fraction = 0.25
    # A regressor's slice fails when its mean absolute error is more than this times the whole period's: an error
    # has the label's unit, so the bound is relative (the model is much worse there than on average).
    max_slice_error_ratio: Annotated[float, Field(ge=1.0)] = 2.0


Approval = Literal["automatic", "manual"]


class Promotion(ConfigModel):
    """Challenger vs Champion: promote when challenger >= champion - margin on ``metric``, or, with ``min_gain``,
    only when challenger >= champion + min_gain (at most one of the two is set).

    ``metric`` and ``business_threshold`` are a classifier's; a regressor is compared on its declaration's primary
    metric, in its direction (an error: challenger <= champion + margin, in the label's unit), with its declared
    threshold on that metric, if any, as the business threshold.

    ``min_gain``: a gain on the hold-out smaller than this is not evidence (a hold-out's ROC AUC moves by about 0.01
    from one sample of a few thousand rows to the next): such a version passes validation but is not promoted at
    once; it stays the Challenger, scored in shadow on the production rows, and the online decision promotes or
    retires it on its paired test (``online_evaluation``). In the metric's unit, like ``margin``.

    ``approval``: ``automatic`` promotes a Challenger the comparison favours at once; ``manual`` promotes it only
    once a person of the environment's approvers group approved that version (``mlops approve``, a model-version
    tag; jobs/approval.py), and the deployment waits until then."""

    metric: NonEmpty = "roc_auc"
    margin: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    min_gain: Annotated[float, Field(ge=0.0)] = 0.0
    business_threshold: Fraction = 0.62
    approval: Approval = "automatic"

    @model_validator(mode="after")
    def _one_bar(self) -> Promotion:
        problems = Problems()
        if self.margin > 0 and self.min_gain > 0:
            problems.add(
                "min_gain",
                f"and margin are both set ({self.min_gain} and {self.margin}): a Challenger may be behind the Champion "
                "by margin, or must be ahead by min_gain, not both",
            )
        problems.raise_any()
        return self


class Serving(ConfigModel):
    # None: named after the model (its name with dashes), so two models of an environment never share an endpoint.
    endpoint_name: Annotated[str, Field(pattern=ENDPOINT_NAME)] | None = None
    workload_size: Literal["Small", "Medium", "Large"] = "Small"
    scale_to_zero: bool = True
    challenger_traffic_percent: Annotated[int, Field(ge=0, le=50)] = 0
    # Not the ml-engineers nor a service principal: they manage the endpoint.
    consumers: Annotated[tuple[NonEmpty, ...], Field(min_length=1)] = Field(
        ("model-consumers",), description="the groups or principals that query the endpoint (CAN_QUERY)"
    )
    # How long the deploy job waits for Databricks to roll out a new endpoint config (bounds its task timeout).
    update_timeout_minutes: Annotated[int, Field(ge=5, le=120)] = 30


class Inference(ConfigModel):
    """Batch and streaming scoring with the Champion.

    The batch job runs on ``batch_schedule`` (None: on demand). The streaming job reads the files of the model's
    streamed source that land in the raw schema's volume ``landing_volume``: ``continuous`` runs it as a continuous
    job (a new Champion is picked up when it restarts), ``available_now`` processes what has landed and stops, on
    ``streaming_schedule``."""

    batch_schedule: Schedule | None = None
    streaming_mode: StreamingMode = "available_now"
    streaming_schedule: Schedule | None = None
    landing_volume: Identifier = "landing"
    # Files per micro-batch, at most (a landed file holds a day of rows): a backlog is caught up a week at a time.
    max_files_per_trigger: Annotated[int, Field(ge=1)] = 7

    @model_validator(mode="after")
    def _continuous_runs_unscheduled(self) -> Inference:
        problems = Problems()
        if self.streaming_mode == "continuous" and self.streaming_schedule is not None:
            problems.add("streaming_schedule", "must be None for a continuous stream (it never stops)")
        problems.raise_any()
        return self


class OnlineStore(ConfigModel):
    """The DynamoDB table the latest prediction per key is published to, for low-latency lookups.

    On AWS the credentials come from the Databricks secret scope ``secret_scope`` (keys ``aws_access_key_id`` and
    ``aws_secret_access_key``; the scope is declared by the stack, its values are put outside Terraform). Locally the
    table lives in dynalite (a DynamoDB server) on a loopback port, and ``endpoint_url`` is set at run time."""

    # The environment's name and this make the DynamoDB table's name (3 to 200 of these characters in all).
    # None: ``<model name with dashes>-predictions``, one table per model.
    table_name: Annotated[str, Field(pattern=DYNAMODB_NAME)] | None = None
    region: NonEmpty = "us-east-1"
    endpoint_url: Annotated[str, Field(pattern=HTTP)] | None = None
    create_table: bool = False
    secret_scope: NonEmpty = "mlops-online-store"
    # botocore retries: "adaptive" adds client-side rate limiting to "standard"'s back-off on throttling.
    # max_attempts also bounds the publish's resends of the items a BatchWriteItem leaves unprocessed.
    retry_mode: Literal["standard", "adaptive"] = "adaptive"
    max_attempts: Annotated[int, Field(ge=1)] = 8


class Monitoring(ConfigModel):
    """The quality monitors (Lakehouse Monitoring ``inference_log``) and the thresholds of their SQL alerts.

    An alert fires when its metric breaches the threshold in at least ``alert_breaches`` of the last
    ``alert_windows`` windows of ``alert_granularity``, the latest one included (see spec/monitoring.py)."""

    granularities: Annotated[tuple[Granularity, ...], Field(min_length=1)] = ("1 day", "1 week")
    alert_granularity: Granularity = "1 week"
    # None: the model's own (``ModelSpec.slicing_exprs``).
    slicing_exprs: tuple[NonEmpty, ...] | None = None
    max_drift_psi: Annotated[float, Field(gt=0.0)] = 0.5
    # The model-quality alert's threshold, by problem type (spec/monitoring.py ``quality_rule``): a classifier's ROC
    # AUC below ``min_roc_auc``; a regressor's mean absolute error (in the label's units) above
    # ``max_mean_absolute_error``, which a regression model requires and a classifier must leave unset.
    min_roc_auc: Fraction = 0.65
    max_mean_absolute_error: Annotated[float, Field(gt=0.0)] | None = None
    alert_windows: Annotated[int, Field(ge=1)] = 4
    alert_breaches: Annotated[int, Field(ge=1)] = 2
    # A model's quality counts in a window only with at least this many labelled rows, its drift only with at least
    # this many scored rows.
    min_labelled_rows: Annotated[int, Field(ge=1)] = 500
    min_window_rows: Annotated[int, Field(ge=1)] = 500
    # When the daily-monitoring job starts: labels, then the monitors' refresh, then the alerts, each after the one
    # before (spec/workflows.py daily_monitoring).
    schedule: Schedule = Field(default_factory=lambda: Schedule(quartz_cron="0 0 6 * * ?"))

    @model_validator(mode="after")
    def _alert_windows_are_monitored(self) -> Monitoring:
        problems = Problems()
        if self.alert_granularity not in self.granularities:
            problems.add(
                "alert_granularity",
                f"must be one of monitoring.granularities {self.granularities}, got {self.alert_granularity!r}",
            )
        if self.alert_breaches > self.alert_windows:
            problems.add(
                "alert_breaches",
                f"must be <= monitoring.alert_windows ({self.alert_windows}), got {self.alert_breaches}",
            )
        problems.raise_any()
        return self


class Retraining(ConfigModel):
    """Retraining on the latest labelled data. The retraining job has no schedule or trigger of its own: it is the last
    step of the daily-monitoring job (``monitoring.schedule``; spec/workflows.py ``daily_monitoring``), started as a
    run-job task once the labels, the monitors' refresh and the SQL alerts have run. It retrains when an alert that
    starts retraining holds, or when the Champion's training data ends more than ``max_model_age_days`` before the
    latest labelled event: the schedule, expressed as an age, checked every day by the same run. The window ends at the
    latest labelled event and spans ``window_days``. An alert starts retraining only when the newest version (promoted
    or not) was trained on data ending at least ``alert_cooldown_days`` before the latest labelled event: a model just
    retrained on nearly the same window is not retrained again for an alert that still holds (its windows still count
    the weeks before the retraining)."""

    max_model_age_days: Annotated[int, Field(ge=1)] | None = None
    alert_cooldown_days: Annotated[int, Field(ge=0)] = 0
    window_days: Annotated[int, Field(ge=7)] = 84
    max_rows: Annotated[int, Field(ge=1000)] = 60000


class OnlineEvaluation(ConfigModel):
    """Champion vs Challenger online, on shadow scoring: while a Challenger exists the batch and streaming jobs score
    every row with it too (``<model>_shadow_predictions``; only the Champion's predictions are published and served),
    and the decision compares the two on the rows whose label is known, paired (``jobs.core.paired_test``): a
    classifier's ROC AUC by a paired bootstrap (``bootstrap_resamples`` resamples, ``seed``), a regressor's per-row
    loss by a paired one-sided t-test. Nothing is decided before ``min_paired_rows``; then the Challenger is promoted
    when significantly better at ``significance`` (one-sided), retired when significantly worse or not better after
    ``max_paired_rows``; in between, a Challenger ahead has its share of the served traffic ramped by
    ``ramp_step_percent`` up to ``max_share_percent``, else the decision waits for more rows."""

    min_paired_rows: Annotated[int, Field(ge=30)] = 1000
    max_paired_rows: Annotated[int, Field(ge=30)] = 20000
    significance: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05
    bootstrap_resamples: Annotated[int, Field(ge=100, le=100000)] = 1000
    seed: int = 7
    ramp_step_percent: Annotated[int, Field(ge=1)] = 10
    max_share_percent: Annotated[int, Field(ge=1, le=50)] = 50
    schedule: Schedule = Field(default_factory=lambda: Schedule(quartz_cron="0 0 7 * * ?"))

    @model_validator(mode="after")
    def _ramp_fits_the_share(self) -> OnlineEvaluation:
        problems = Problems()
        if self.ramp_step_percent > self.max_share_percent:
            problems.add(
                "ramp_step_percent",
                f"must be <= online_evaluation.max_share_percent ({self.max_share_percent}), "
                f"got {self.ramp_step_percent}",
            )
        if self.max_paired_rows < self.min_paired_rows:
            problems.add(
                "max_paired_rows",
                f"must be >= online_evaluation.min_paired_rows ({self.min_paired_rows}), got {self.max_paired_rows}",
            )
        problems.raise_any()
        return self


class ModelDeployment(ConfigModel):
    """A model an environment runs (``models/<name>/``), and the settings it has there that differ from the
    environment's: each part given is a partial update of the environment's part of that name (as
    ``Environment.replace`` takes it), validated when the environment is built."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    validation: Mapping[str, Any] | None = None
    promotion: Mapping[str, Any] | None = None
    serving: Mapping[str, Any] | None = None
    inference: Mapping[str, Any] | None = None
    online_store: Mapping[str, Any] | None = None
    monitoring: Mapping[str, Any] | None = None
    retraining: Mapping[str, Any] | None = None
    online_evaluation: Mapping[str, Any] | None = None

    @model_validator(mode="after")
    def _shared_parts_stay_shared(self) -> ModelDeployment:
        problems = Problems()
        for part, field in (("inference", "landing_volume"), ("online_store", "secret_scope")):
            if field in (getattr(self, part) or {}):
                problems.add(
                    f"{part}.{field}",
                    "is the environment's, shared by all its models (one volume, one secret scope): set it on the "
                    "environment, not on a model",
                )
        problems.raise_any()
        return self

    @property
    def overrides(self) -> dict[str, Mapping[str, Any]]:
        return {part: value for part in MODEL_PARTS if (value := getattr(self, part)) is not None}


# The parts of an environment a model may set for itself.
MODEL_PARTS = (
    "validation", "promotion", "serving", "inference", "online_store", "monitoring", "retraining", "online_evaluation"
)  # fmt: skip


class Alerts(ConfigModel):
    emails: tuple[Email, ...] = ()
    webhook_destination_name: NonEmpty | None = None

    @model_validator(mode="after")
    def _someone_hears(self) -> Alerts:
        problems = Problems()
        if not self.emails and not self.webhook_destination_name:
            problems.add("", "needs at least one email or a webhook destination")
        problems.raise_any()
        return self
