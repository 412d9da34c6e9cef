"""An environment (dev, staging, prod): its parts, the rules across them, and the names derived from it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from spec.base import STORAGE_ROOT, WORKSPACE_PATH, ConfigError, ConfigModel, Problems
from spec.config.models import (
    Account,
    Alerts,
    AzureDevOpsFederation,
    CiFederation,
    Cloud,
    Compute,
    DataScientistAccess,
    GitLabFederation,
    Identifier,
    Inference,
    ModelDeployment,
    Monitoring,
    NonEmpty,
    OnlineEvaluation,
    OnlineStore,
    Promotion,
    Retraining,
    Serving,
    StateBackend,
    Validation,
    Workspace,
)

if TYPE_CHECKING:
    from spec.model import ModelSpec

# raw: the models' sources and the landing volume; features: their feature tables; ml: models, predictions,
# artifacts; monitoring: the inference tables and the monitors' metric tables.
REQUIRED_SCHEMAS = ("raw", "features", "ml", "monitoring")
_AZURE_HOST = re.compile(r"^https://adb-(\d+)\.\d+\.azuredatabricks\.net/?$")
# DynamoDB's rule for a table name, which is the environment's name and online_store.table_name.
_DYNAMODB_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,200}$")
# The SQL warehouse's cluster_size values the Databricks API accepts.
WarehouseSize = Literal[
    "2X-Small", "X-Small", "Small", "Medium", "Large", "X-Large", "2X-Large", "3X-Large", "4X-Large"
]


class Environment(ConfigModel):
    name: Identifier
    catalog: Identifier
    workspace: Workspace
    account: Account = Field(default_factory=Account)
    # How CI reaches the environment as its CI runner (``ci_service_principal``): GitHub Actions, Azure DevOps,
    # GitLab CI/CD (None: no federation policy for that CI; GitLab's is set where a GitLab pipeline runs CI jobs).
    ci_federation: CiFederation | None = Field(default_factory=CiFederation)
    ci_azure_devops: AzureDevOpsFederation | None = Field(default_factory=AzureDevOpsFederation)
    ci_gitlab: GitLabFederation | None = None
    # None keeps state in a local file (fine for a try-out); set it for anything shared.
    state_backend: StateBackend | None = None
    cloud: Cloud = "azure"
    schemas: tuple[Identifier, ...] = REQUIRED_SCHEMAS
    # The catalog's managed storage (abfss://, s3:// or gs://). Required when the metastore has no root storage
    # (e.g. an auto-provisioned Azure metastore); None uses the metastore's.
    storage_root: Annotated[str, Field(pattern=STORAGE_ROOT)] | None = None
    data_scientists_group: NonEmpty = "data-scientists"
    ml_engineers_group: NonEmpty = "ml-engineers"
    data_scientist_access: DataScientistAccess = "read"
    # Who may approve a model version for promotion where ``promotion.approval`` is ``manual`` (the Unity Catalog
    # grant that lets them tag the registered model's versions): None is the ml-engineers group.
    approvers_group: NonEmpty | None = None
    # The groups named above (and the serving consumers) must exist in the account, assigned to the workspace: the
    # stack looks each up by a data source, so a missing one fails the plan with its name. True: the stack creates
    # them (account-level, assigned to the workspace) instead.
    create_groups: bool = False
    service_principal: NonEmpty = Field(description="the service principal that runs the jobs")
    # Catalogs of this environment that another environment's workspace may read (bound BINDING_TYPE_READ_ONLY).
    read_only_from: tuple[Identifier, ...] = ()
    compute: Compute = Field(default_factory=Compute)
    # The models the environment runs (models/<name>/), each with the settings it has here that differ from the
    # environment's. Every model gets its own registered model, experiment, jobs, endpoint, monitors, alerts and
    # online table, all named after it.
    models: Annotated[tuple[ModelDeployment, ...], Field(min_length=1)]
    # The model this value is about (one of ``models``; the first when not given): every model-derived name below is
    # this model's. ``with_model(name)`` is the environment as another of its models sees it.
    model_name: Identifier = ""
    experiment_dir: Annotated[str, Field(pattern=WORKSPACE_PATH)] = "/Shared/mlops"
    validation: Validation = Field(default_factory=Validation)
    promotion: Promotion = Field(default_factory=Promotion)
    serving: Serving = Field(default_factory=Serving)
    inference: Inference = Field(default_factory=Inference)
    online_store: OnlineStore = Field(default_factory=OnlineStore)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    retraining: Retraining = Field(default_factory=Retraining)
    online_evaluation: OnlineEvaluation = Field(default_factory=OnlineEvaluation)
    alerts: Alerts = Field(default_factory=Alerts)
    job_retries: Annotated[int, Field(ge=0)] = 1
    # Whether the environment has the integration-test graph (spec/integration_test.py). Not where real traffic is
    # served: the graph trains, deploys to the endpoint and publishes to the online store from a test slice.
    integration_test: bool = True
    sql_warehouse_size: WarehouseSize = "2X-Small"
    # The value before a model's own settings were applied (set by ``scoped``): what ``with_model`` starts from. A
    # ``replace`` of a scoped value starts afresh from that value.
    _unscoped: Environment | None = PrivateAttr(default=None)

    @classmethod
    def _subject(cls, data: Mapping[str, Any]) -> str:
        return f"environment {data.get('name')!r}"

    @model_validator(mode="before")
    @classmethod
    def _first_model_by_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("model_name"):
            models = data.get("models") or ()
            first = models[0] if models else None
            name = first.get("name") if isinstance(first, Mapping) else getattr(first, "name", None)
            if name:
                return {**data, "model_name": name}
        return data

    @model_validator(mode="after")
    def _rules_across_fields(self) -> Environment:
        problems = Problems()
        self._check_schemas(problems)
        self._check_workspace(problems)
        self._check_identities(problems)
        if self.cloud not in self.compute.node_types:
            problems.add("compute.node_types", f"has no node type for cloud {self.cloud!r}")
        if self.inference.streaming_mode == "continuous" and self.compute.serverless:
            problems.add(
                "inference.streaming_mode",
                "cannot be continuous on serverless compute (serverless streams support only the availableNow "
                "trigger, and a continuous job cannot retry its tasks): use streaming_mode='available_now' with a "
                "streaming_schedule, or compute.serverless=False for a continuous stream on a job cluster",
            )
        if not _DYNAMODB_TABLE.match(self.online_table_name):
            problems.add(
                "online_store.table_name",
                f"makes the DynamoDB table name {self.online_table_name!r} invalid (3 to 200 characters)",
            )
        if self.storage_root is None and self.workspace.create is not None:
            problems.add(
                "storage_root",
                "is required when the workspaces stack creates the workspace (an automatically provisioned Azure "
                "metastore has no root storage, so the catalog needs its own): set an abfss:// location",
            )
        if self.name in self.read_only_from:
            problems.add("read_only_from", "must not contain the environment itself")
        self._check_models(problems)
        problems.raise_any()
        return self

    def _check_models(self, problems: Problems) -> None:
        names = self.model_names
        if len(set(names)) != len(names):
            problems.add("models", f"names a model more than once: {list(names)}")
        if self.model_name not in names:
            problems.add("model_name", f"must be one of the models {list(names)}, got {self.model_name!r}")
        # spec.model builds on this package (its ConfigModel): imported here, not at the top, so either loads first.
        from spec.model import load_model_spec

        owners: dict[str, str] = {}
        for i, name in enumerate(names):
            try:
                spec = load_model_spec(name)
            except ConfigError as e:
                problems.add(f"models[{i}].name", f"names no valid model: {e}")
                continue
            # Raw and feature tables are named by the model's declaration: two models must not write the same one.
            for table in (*(f"raw.{s}" for s in spec.sources), *(f"features.{f}" for f in spec.feature_tables)):
                if table in owners and owners[table] != name:
                    problems.add(
                        f"models[{i}].name",
                        f"model {name!r} declares the table {table}, which model {owners[table]!r} writes too: rename "
                        "one of them in its models/<name>/spec.py",
                    )
                owners.setdefault(table, name)

    def _check_schemas(self, problems: Problems) -> None:
        if len(set(self.schemas)) != len(self.schemas):
            problems.add("schemas", "has duplicates")
        missing = [s for s in REQUIRED_SCHEMAS if s not in self.schemas]
        if missing:
            problems.add("schemas", f"must contain {missing} (the jobs' tables, the model and the volumes live there)")

    def _check_identities(self, problems: Problems) -> None:
        if self.data_scientists_group == self.ml_engineers_group:
            problems.add("ml_engineers_group", "must differ from data_scientists_group")
        managers = {self.ml_engineers_group, self.service_principal} & set(self.serving.consumers)
        if managers:
            problems.add(
                "serving.consumers",
                f"must not name {sorted(managers)}: they manage the endpoint already; name the group or principal "
                "that queries it",
            )

    def _check_workspace(self, problems: Problems) -> None:
        ws = self.workspace
        if ws.create is not None:
            if self.cloud != "azure":
                problems.add("workspace.create", f"is only supported on azure, not {self.cloud!r}")
            return
        match = _AZURE_HOST.match(ws.host or "")
        if self.cloud == "azure" and not match:
            problems.add("workspace.host", f"must look like https://adb-<id>.<n>.azuredatabricks.net, got {ws.host!r}")
        elif ws.workspace_id is None and match is None:
            problems.add("workspace.workspace_id", "is required when it cannot be read from the host")
        elif match and ws.workspace_id is not None and int(match.group(1)) != ws.workspace_id:
            problems.add("workspace.workspace_id", f"{ws.workspace_id} does not match the host's id {match.group(1)}")

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)

    def with_model(self, name: str | None) -> Environment:
        """The environment as its model ``name`` sees it (None: this value's model): ``model_name`` set, and the
        model's own settings (``models[...]``) applied over the environment's. A ``ConfigError`` naming the models
        the environment runs when it does not run ``name``."""
        if name is None or name == self.model_name:
            return self
        deployment = next((m for m in self.models if m.name == name), None)
        if deployment is None:
            raise ConfigError(
                f"environment {self.name!r} runs no model {name!r}; it runs: {', '.join(self.model_names)} "
                "(config: spec/config/environments.py, field 'models')",
                [("models", f"has no model {name!r}")],
            )
        return (self._unscoped or self).scoped(deployment)

    def scoped(self, deployment: ModelDeployment) -> Environment:
        """This environment with ``deployment``'s settings applied over its own (build_environments scopes each
        environment to its first model this way; ``with_model`` to any other, from the same unscoped value)."""
        try:
            scoped = self.replace(model_name=deployment.name, **deployment.overrides)
        except ConfigError as e:
            index = self.model_names.index(deployment.name)
            problems = [(f"models[{index}].{field}", problem) for field, problem in e.problems]
            message = "; ".join(f"field {field!r} {problem}" for field, problem in problems)
            raise ConfigError(f"environment {self.name!r}: {message}", problems) from e
        scoped._unscoped = self._unscoped or self
        return scoped

    def _all_scoped(self) -> tuple[Environment, ...]:
        # Before build_environments scoped it (a value being validated), the environment stands for its first model.
        return self.scoped_models() if self._unscoped is not None else (self,)

    def scoped_models(self) -> tuple[Environment, ...]:
        """The environment as each of its models sees it, in the order of ``models``."""
        return tuple(self.with_model(name) for name in self.model_names)

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
        """Every group the stack names (grants, permissions, owners, ACLs), for all the environment's models: looked
        up, or created by the stack."""
        consumers = [c for scoped in self._all_scoped() for c in scoped.serving.consumers]
        named = (self.data_scientists_group, self.ml_engineers_group, self.approvers, *consumers)
        principals = {self.service_principal, self.ci_service_principal}
        return tuple(dict.fromkeys(g for g in named if g not in principals))

    @property
    def approvers(self) -> str:
        """The group whose members approve or reject a model version for promotion (``promotion.approval``)."""
        return self.approvers_group or self.ml_engineers_group

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
    def model(self) -> ModelSpec:
        """The declaration of the model this environment runs (models/<model_name>/spec.py)."""
        from spec.model import load_model_spec

        return load_model_spec(self.model_name)

    @property
    def registered_model(self) -> str:
        return f"{self.catalog}.ml.{self.model_name}"

    @property
    def experiment_name(self) -> str:
        return f"{self.experiment_folder}/{self.model_name}"

    def source_table(self, source: str) -> str:
        """A raw table of the model's (``ModelSpec.sources``): the ingest job writes it."""
        return self.table("raw", source)

    def feature_table(self, name: str) -> str:
        """A feature table of the model's (``ModelSpec.feature_tables``): the features job writes it."""
        return self.table("features", name)

    @property
    def inference_table(self) -> str:
        """The serving endpoint's inference table: AI Gateway names it ``<prefix>_payload`` in the schema Terraform
        configures; the local gateway writes a Delta table of the same name."""
        return self.table("monitoring", f"{self.inference_table_prefix}_payload")

    @property
    def predictions_table(self) -> str:
        """What the batch and streaming jobs score: one row per key, batch or micro-batch, with the model version."""
        return self.table("ml", f"{self.model_name}_predictions")

    @property
    def shadow_predictions_table(self) -> str:
        """The Challenger's predictions beside the Champion's (shadow scoring, while there is a Challenger): the same
        key and batch as the predictions table's rows, the version that scored them and the Champion's version beside
        it. Never published, never served: the online decision's evidence."""
        return self.table("ml", f"{self.model_name}_shadow_predictions")

    @property
    def rejects_table(self) -> str:
        """Rows that could not be scored, with the reason (never silently dropped)."""
        return self.table("ml", f"{self.model_name}_prediction_rejects")

    @property
    def baseline_table(self) -> str:
        """What each model version was trained on, scored by it: the monitors' baseline (per model version)."""
        return self.table("ml", f"{self.model_name}_baseline")

    @property
    def served_table(self) -> str:
        """The serving endpoint's answers, one row per scored record, unpacked from its inference table."""
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
        """Where the model's streamed source lands for the streaming job: a folder per model in the raw schema's
        landing volume."""
        return f"/Volumes/{self.catalog}/raw/{self.inference.landing_volume}/{self.model_name}"

    @property
    def online_table_name(self) -> str:
        """The DynamoDB table of this environment's model: named after the environment and the model."""
        return f"{self.name}-{self.online_store.table_name or self._dashed_model + '-predictions'}"

    @property
    def endpoint_name(self) -> str:
        """The serving endpoint of this environment's model: ``serving.endpoint_name``, else the model's name."""
        return self.serving.endpoint_name or self._dashed_model

    @property
    def _dashed_model(self) -> str:
        return self.model_name.replace("_", "-")

    @property
    def inference_table_prefix(self) -> str:
        return self.endpoint_name.replace("-", "_")

    def table(self, schema: str, name: str) -> str:
        if schema not in self.schemas:
            raise ConfigError(f"environment {self.name!r}: field 'schemas' has no schema {schema!r}")
        return f"{self.catalog}.{schema}.{name}"
