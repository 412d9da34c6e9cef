"""The model serving endpoint: the jobs declare which model versions it serves and with what share of traffic.

Databricks: a Model Serving endpoint updated through databricks-sdk (created when it does not exist yet).
Locally: the desired state is written to ``$MLOPS_HOME/serving/<env>/<endpoint>.json``, which the local serving
gateway reads; the file is replaced atomically, so the gateway never sees half a configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jobs.platform.files import write_json_atomically

if TYPE_CHECKING:
    from infra.config import Environment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedEntity:
    """One model version behind the endpoint and its share of the traffic (percent)."""

    name: str
    model_name: str
    model_version: str
    traffic_percent: int

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.model_version}"


def check_served(served: Sequence[ServedEntity]) -> None:
    """A ValueError unless the entities have unique names and their traffic adds up to 100 percent."""
    if not served:
        raise ValueError("an endpoint must serve at least one model version")
    names = [s.name for s in served]
    if len(set(names)) != len(names):
        raise ValueError(f"served entity names must be unique, got {names}")
    for s in served:
        if not 0 <= s.traffic_percent <= 100:
            raise ValueError(f"served entity {s.name!r}: traffic_percent must be 0..100, got {s.traffic_percent}")
    total = sum(s.traffic_percent for s in served)
    if total != 100:
        raise ValueError(f"traffic of the served entities must add up to 100 percent, got {total}")


class Serving(Protocol):
    def update_endpoint(self, env: Environment, served: list[ServedEntity]) -> None: ...


class LocalServing:
    """Writes the endpoint's desired state where the local gateway reads it."""

    def __init__(self, root: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.root = root
        self._clock = clock

    def state_path(self, env: Environment) -> Path:
        return self.root / env.name / f"{env.serving.endpoint_name}.json"

    def update_endpoint(self, env: Environment, served: list[ServedEntity]) -> None:
        check_served(served)
        path = self.state_path(env)
        document = {
            "endpoint": env.serving.endpoint_name,
            "env": env.name,
            "served_entities": [asdict(s) for s in served],
            "updated_at": self._clock().isoformat(),
        }
        write_json_atomically(path, document)
        logger.info("endpoint %s (%s) now serves %s", env.serving.endpoint_name, env.name, _describe(served))


class DatabricksServing:
    """A Model Serving endpoint, through the workspace client: delegates to ``jobs.serving.databricks``, which
    waits for an update in progress, creates a missing endpoint with its AI Gateway settings, and waits for the new
    config to be ready (Databricks keeps serving the old one until then)."""

    def __init__(self, workspace_client: Callable[[], Any]) -> None:
        self._workspace_client = workspace_client

    def update_endpoint(self, env: Environment, served: list[ServedEntity]) -> None:
        from jobs.serving.databricks import DatabricksServing as EndpointAdapter

        check_served(served)
        EndpointAdapter(self._workspace_client(), env).deploy(served)
        logger.info("endpoint %s (%s) serves %s", env.serving.endpoint_name, env.name, _describe(served))


def _describe(served: Sequence[ServedEntity]) -> str:
    return ", ".join(f"{s.name}={s.model_name}/{s.model_version} ({s.traffic_percent}%)" for s in served)
