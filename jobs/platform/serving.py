"""The model serving endpoint: the jobs declare which model versions it serves and with what share of traffic.

Databricks: a Model Serving endpoint updated through databricks-sdk (created when it does not exist yet).
Locally: the desired state is written to ``$MLOPS_HOME/serving/<env>/<endpoint>.json``, which the local serving
gateway reads; the file is replaced atomically, so the gateway never sees half a configuration.

Both adapters validate the served entities with ``jobs.serving.state.check_entities``, and the local one builds and
writes the file with ``jobs.serving.state`` too: the gateway reads exactly what that module writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jobs.serving.state import ServedEntity, new_state, state_path, write_state

if TYPE_CHECKING:
    from infra.config import Environment
    from jobs.core.decisions import Route

logger = logging.getLogger(__name__)

__all__ = ["DatabricksServing", "LocalServing", "ServedEntity", "Serving", "served_entities_for"]


def served_entities_for(env: Environment, routes: Sequence[Route]) -> list[ServedEntity]:
    """The versions of ``env``'s registered model behind the routes of ``jobs.core.decisions.traffic_split``."""
    return [ServedEntity(r.role, env.registered_model, r.version, r.traffic_percent) for r in routes]


class Serving(Protocol):
    def update_endpoint(self, env: Environment, served: list[ServedEntity]) -> None: ...


class LocalServing:
    """Writes the endpoint's desired state where the local gateway reads it."""

    def __init__(self, root: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.root = root
        self._clock = clock

    def state_path(self, env: Environment) -> Path:
        return state_path(self.root, env.name, env.serving.endpoint_name)

    def update_endpoint(self, env: Environment, served: list[ServedEntity]) -> None:
        """``StateError`` (a ``ValueError``) before anything is written when ``served`` cannot be served."""
        state = new_state(env.name, env.serving.endpoint_name, served, now=self._clock())
        write_state(self.state_path(env), state)
        logger.info("endpoint %s (%s) now serves %s", env.serving.endpoint_name, env.name, _describe(served))


class DatabricksServing:
    """A Model Serving endpoint, through the workspace client: delegates to ``jobs.serving.databricks``, which
    validates the entities, waits for an update in progress, creates a missing endpoint with its AI Gateway
    settings, and waits for the new config to be ready (Databricks keeps serving the old one until then)."""

    def __init__(self, workspace_client: Callable[[], Any]) -> None:
        self._workspace_client = workspace_client

    def update_endpoint(self, env: Environment, served: list[ServedEntity]) -> None:
        from jobs.serving.databricks import DatabricksServing as EndpointAdapter

        EndpointAdapter(self._workspace_client(), env).deploy(served)
        logger.info("endpoint %s (%s) serves %s", env.serving.endpoint_name, env.name, _describe(served))


def _describe(served: Sequence[ServedEntity]) -> str:
    return ", ".join(f"{s.name}={s.model_name}/{s.model_version} ({s.traffic_percent}%)" for s in served)
