"""MLflow tracking and the model registry, with the same three-level model names everywhere.

Databricks: tracking ``databricks``, registry ``databricks-uc`` (Unity Catalog). Locally (``local.adapters``): one
SQLite database for both, artifacts under ``.mlops/mlartifacts``. Model versions carry tags (validation status,
lineage) and aliases (``champion``, ``challenger``, ``previous_champion``); everything goes through an
``mlflow.MlflowClient`` built for the configured URIs.

MLflow's fluent API (``start_run``, ``log_model``, ``evaluate``) reads process-wide URIs. They are set in one
place, ``Registry.activate``, which the platform builders call once at the edge; nothing else sets them, and a
``Registry`` given its own client (a test's) never touches them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.exceptions import MlflowException

    from spec.config import Environment

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"

_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>[1-9][0-9]*)$")


@dataclass(frozen=True)
class ModelRef:
    """One registered model version."""

    name: str
    version: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def parse_model_uri(uri: str) -> ModelRef:
    """``models:/<catalog>.<schema>.<model>/<version>`` -> ModelRef; a ValueError naming the URI otherwise."""
    match = _MODEL_URI.match(uri.strip())
    if not match:
        raise ValueError(f"model URI must look like models:/<catalog>.ml.<model>/<version>, got {uri!r}")
    return ModelRef(match["name"], match["version"])


def logged_model_name(name: str) -> dict[str, str]:
    """The keyword that names a logged model: ``name`` in MLflow 3, ``artifact_path`` in MLflow 2 (the runtimes'
    mlflow-skinny 2.22.0 on serverless environment 4 and 2.21.3 on DBR 16.4 LTS ML have no ``name``)."""
    import mlflow

    return {"name": name} if int(mlflow.__version__.split(".")[0]) >= 3 else {"artifact_path": name}


# What a logged scikit-learn model needs to load and predict (the pipeline is cloudpickled).
MODEL_DISTRIBUTIONS = ("cloudpickle", "numpy", "pandas", "scikit-learn", "scipy")


def model_requirements() -> list[str]:
    """The pip requirements of a logged model: MLflow and ``MODEL_DISTRIBUTIONS`` at the versions installed here, as
    MLflow would infer them, without the inference (it loads the model again in a subprocess,
    seconds of every training)."""
    from importlib.metadata import version

    import mlflow

    return [f"mlflow=={mlflow.__version__}", *(f"{name}=={version(name)}" for name in MODEL_DISTRIBUTIONS)]


def is_not_found(error: MlflowException) -> bool:
    # RESOURCE_DOES_NOT_EXIST (SQLite, workspace registry) and NOT_FOUND (Unity Catalog) both map to 404.
    return error.get_http_status_code() == 404


@dataclass(frozen=True)
class RegistryConfig:
    tracking_uri: str
    registry_uri: str
    artifact_root: str | None  # None: the tracking server decides (Databricks)


def databricks_registry_config() -> RegistryConfig:
    return RegistryConfig(tracking_uri="databricks", registry_uri="databricks-uc", artifact_root=None)


class Registry:
    """Experiment, model versions, tags and aliases of one environment."""

    def __init__(self, env: Environment, config: RegistryConfig, client: MlflowClient | None = None) -> None:
        self.env = env
        self.config = config
        self._client = client

    def activate(self) -> None:
        """Point MLflow's process-wide tracking and registry URIs at this registry (the fluent API reads them)."""
        import mlflow

        mlflow.set_tracking_uri(self.config.tracking_uri)
        mlflow.set_registry_uri(self.config.registry_uri)

    @property
    def client(self) -> MlflowClient:
        """The MLflow client, built on first use (a job that never needs MLflow never opens it)."""
        if self._client is None:
            import mlflow

            self._client = mlflow.MlflowClient(
                tracking_uri=self.config.tracking_uri, registry_uri=self.config.registry_uri
            )
        return self._client

    @property
    def model_name(self) -> str:
        return self.env.registered_model

    def use_experiment(self) -> str:
        """Create the environment's experiment when missing, make it the active one, return its id."""
        import mlflow

        name = self.env.experiment_name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            location = None
            if self.config.artifact_root is not None:
                location = f"{self.config.artifact_root.rstrip('/')}/{self.env.name}-{self.env.model_name}"
            experiment_id = self.client.create_experiment(name, artifact_location=location)
            logger.info("created experiment %s (%s) with artifacts at %s", name, experiment_id, location)
        else:
            experiment_id = experiment.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
        return experiment_id

    def get_version(self, ref: ModelRef) -> ModelVersion:
        """The model version, or a ValueError naming ``models:/name/version`` when it does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(ref.name, ref.version)
        except MlflowException as e:
            if is_not_found(e):
                raise ValueError(f"model version {ref.uri!r} does not exist in the registry") from e
            raise

    def version_tags(self, ref: ModelRef) -> dict[str, str]:
        return dict(self.get_version(ref).tags or {})

    def set_version_tags(self, ref: ModelRef, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(ref.name, ref.version, key, str(value))

    def aliases(self, name: str | None = None) -> dict[str, str]:
        """alias -> version of a registered model; empty when the model does not exist yet."""
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name or self.model_name)
        except MlflowException as e:
            if is_not_found(e):
                return {}
            raise
        return {alias: str(version) for alias, version in (model.aliases or {}).items()}

    def alias_version(self, alias: str, name: str | None = None) -> str | None:
        """The version an alias points at, or None when the alias (or the model) does not exist."""
        # Read from the registered model: a missing alias is an ordinary answer, not an error to interpret.
        return self.aliases(name).get(alias)

    def latest_version(self, name: str | None = None) -> str | None:
        """The newest registered version (the highest number), whatever its aliases or validation; None when the
        model has no version (or does not exist)."""
        name = name or self.model_name
        versions = self.client.search_model_versions(f"name = '{name}'")
        return max((str(v.version) for v in versions), key=int, default=None)

    def set_alias(self, alias: str, version: str, name: str | None = None) -> None:
        self.client.set_registered_model_alias(name or self.model_name, alias, str(version))
        logger.info("alias %s of %s -> version %s", alias, name or self.model_name, version)

    def delete_alias(self, alias: str, name: str | None = None) -> None:
        """Remove an alias; a missing alias is already removed."""
        if alias in self.aliases(name):
            self.client.delete_registered_model_alias(name or self.model_name, alias)
            logger.info("alias %s of %s removed", alias, name or self.model_name)
