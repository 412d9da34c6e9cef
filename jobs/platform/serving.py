"""The model serving endpoint: the jobs declare which model versions it serves and with what share of traffic.

``ServedEntity`` and ``check_entities`` are the one description of a desired endpoint config, for both adapters.
Databricks: ``DatabricksServing`` updates the Model Serving endpoint that Terraform created (infra/constructs/
serving.py) through databricks-sdk and waits for the new config, within ``serving.update_timeout_minutes``.
Locally: the local runtime writes the state file the local gateway reads (``local.serving.state``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from spec.errors import MlopsError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import ServedEntityInput, ServingEndpointDetailed, TrafficConfig

    from jobs.core.decisions import Route
    from spec.config import Environment

logger = logging.getLogger(__name__)

__all__ = [
    "DatabricksServing",
    "ServedEntity",
    "Serving",
    "StateError",
    "check_entities",
    "describe",
    "served_entities_for",
]

_ENTITY_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_VERSION = re.compile(r"^[1-9][0-9]*$")


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


class StateError(MlopsError):
    """A desired endpoint config is invalid; the message says which field and why."""


def check_entities(entities: Sequence[ServedEntity], *, where: str) -> None:
    """``StateError`` naming ``where`` and the field unless ``entities`` can be served: at least
    one, unique names, a model name, positive integer versions, and traffic that adds up to 100 percent."""
    if not entities:
        raise StateError(f"{where}: 'served_entities' must not be empty")
    names = [e.name for e in entities]
    if len(set(names)) != len(names):
        raise StateError(f"{where}: served entity names must be unique, got {names}")
    for entity in entities:
        if not _ENTITY_NAME.match(entity.name):
            raise StateError(f"{where}: served entity name {entity.name!r} must be letters, digits, - or _")
        if not entity.model_name:
            raise StateError(f"{where}: served entity {entity.name!r} has no model_name")
        if not _VERSION.match(entity.model_version):
            raise StateError(
                f"{where}: served entity {entity.name!r} model_version must be a positive integer string, "
                f"got {entity.model_version!r}"
            )
        if not 0 <= entity.traffic_percent <= 100:
            raise StateError(
                f"{where}: served entity {entity.name!r} traffic_percent must be within 0..100, "
                f"got {entity.traffic_percent}"
            )
    total = sum(e.traffic_percent for e in entities)
    if total != 100:
        raise StateError(f"{where}: traffic_percent of the served entities must add up to 100 percent, got {total}")


def served_entities_for(env: Environment, routes: Sequence[Route]) -> list[ServedEntity]:
    """The versions of ``env``'s registered model behind the routes of ``jobs.core.decisions.traffic_split``."""
    return [ServedEntity(r.role, env.registered_model, r.version, r.traffic_percent) for r in routes]


def describe(served: Sequence[ServedEntity]) -> str:
    return ", ".join(f"{s.name}={s.model_name}/{s.model_version} ({s.traffic_percent}%)" for s in served)


class Serving(Protocol):
    def update_endpoint(self, env: Environment, served: list[ServedEntity]) -> None: ...

    def served(self, env: Environment) -> list[ServedEntity]:
        """What the endpoint serves now, once its config is live (empty when it serves nothing yet)."""
        ...

    def query(self, env: Environment, records: list[dict[str, Any]], client_request_id: str) -> list[Any]:
        """The endpoint's predictions for ``records`` (``dataframe_records``), sent as a client sends them, with
        ``client_request_id`` (what the inference table records beside the request)."""
        ...


class DatabricksServing:
    """The serving port on Databricks: a factory of the workspace client, called when an update is made."""

    def __init__(self, workspace_client: Callable[[], Any]) -> None:
        self._workspace_client = workspace_client

    def update_endpoint(self, env: Environment, served: list[ServedEntity]) -> None:
        EndpointUpdater(self._workspace_client(), env).deploy(served)
        logger.info("endpoint %s (%s) serves %s", env.endpoint_name, env.name, describe(served))

    def served(self, env: Environment) -> list[ServedEntity]:
        """The entities of the endpoint's live config with their traffic; empty unless it is READY with one."""
        from databricks.sdk.service.serving import EndpointStateReady

        endpoint = EndpointUpdater(self._workspace_client(), env).describe()
        config = endpoint.config if endpoint is not None else None
        ready = endpoint is not None and endpoint.state is not None and endpoint.state.ready == EndpointStateReady.READY
        if not ready or config is None or not config.served_entities:
            return []
        percent = {
            route.served_entity_name or route.served_model_name: route.traffic_percentage or 0
            for route in (config.traffic_config.routes if config.traffic_config else None) or []
        }
        return [
            ServedEntity(e.name or "", e.entity_name or "", e.entity_version or "", percent.get(e.name, 0))
            for e in config.served_entities
        ]

    def query(self, env: Environment, records: list[dict[str, Any]], client_request_id: str) -> list[Any]:
        return EndpointUpdater(self._workspace_client(), env).query(records, client_request_id=client_request_id)


def served_entities_input(env: Environment, entities: Sequence[ServedEntity]) -> list[ServedEntityInput]:
    from databricks.sdk.service.serving import ServedEntityInput

    return [
        ServedEntityInput(
            name=e.name,
            entity_name=e.model_name,
            entity_version=e.model_version,
            workload_size=env.serving.workload_size,
            scale_to_zero_enabled=env.serving.scale_to_zero,
        )
        for e in entities
    ]


def traffic_config(entities: Sequence[ServedEntity]) -> TrafficConfig:
    from databricks.sdk.service.serving import Route, TrafficConfig

    return TrafficConfig(
        routes=[Route(served_entity_name=e.name, traffic_percentage=e.traffic_percent) for e in entities]
    )


class EndpointUpdater:
    """Points ``env``'s endpoint at served entities through databricks-sdk. The client is passed in (built once, at
    the edge). Every wait shares one deadline, ``serving.update_timeout_minutes`` from the first call: the deploy
    task's timeout (spec/workflows.py) is that plus the time to evaluate, so the task never times out mid-wait."""

    def __init__(
        self,
        client: WorkspaceClient,
        env: Environment,
        *,
        timeout: timedelta | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._env = env
        self._timeout = timeout or timedelta(minutes=env.serving.update_timeout_minutes)
        self._clock = clock

    @property
    def endpoint_name(self) -> str:
        return self._env.endpoint_name

    def deploy(self, entities: Sequence[ServedEntity]) -> ServingEndpointDetailed:
        """Point the endpoint at ``entities`` with their traffic split; wait until the update is done.

        Raises ``StateError`` before any call when ``entities`` cannot be served, ``LookupError``
        when the endpoint does not exist (Terraform creates it), and ``RuntimeError`` when the update fails, is
        canceled or outlasts the timeout (Databricks keeps the previous config serving)."""
        from databricks.sdk.errors import NotFound, OperationFailed
        from databricks.sdk.service.serving import EndpointStateConfigUpdate

        name = self.endpoint_name
        check_entities(entities, where=f"endpoint {name!r} (env {self._env.name!r})")
        deadline = self._clock() + self._timeout.total_seconds()
        api = self._client.serving_endpoints
        try:
            current = api.get(name)
        except NotFound as e:
            raise LookupError(
                f"serving endpoint {name!r} does not exist in the {self._env.name} workspace: it is created by "
                f"Terraform, run `npx cdktn deploy {self._env.name}` first"
            ) from e
        try:
            if current.state is not None and current.state.config_update == EndpointStateConfigUpdate.IN_PROGRESS:
                # The API rejects a config update while another one is in progress: wait for it first.
                logger.info("serving endpoint %s is updating; waiting before the new config", name)
                api.wait_get_serving_endpoint_not_updating(name, timeout=self._remaining(deadline))
            logger.info("updating serving endpoint %s: %s", name, describe(entities))
            return api.update_config_and_wait(
                name,
                served_entities=served_entities_input(self._env, entities),
                traffic_config=traffic_config(entities),
                timeout=self._remaining(deadline),
            )
        except (OperationFailed, TimeoutError) as e:
            raise RuntimeError(
                f"serving endpoint {name}: the config update did not complete within "
                f"{self._timeout.total_seconds() / 60:.0f} minutes ({e}); the previous config keeps serving. "
                "See the endpoint's events and build logs in the workspace."
            ) from e

    def _remaining(self, deadline: float) -> timedelta:
        left = deadline - self._clock()
        if left <= 0:
            raise TimeoutError(f"the {self._timeout} allowed for the endpoint update are used up")
        return timedelta(seconds=left)

    def query(self, records: list[dict[str, Any]], *, client_request_id: str | None = None) -> list[Any]:
        """Predictions for ``records`` (the ``dataframe_records`` format)."""
        from databricks.sdk.errors import NotFound

        try:
            response = self._client.serving_endpoints.query(
                self.endpoint_name, dataframe_records=records, client_request_id=client_request_id
            )
        except NotFound as e:
            raise LookupError(f"serving endpoint {self.endpoint_name!r} does not exist in this workspace") from e
        return list(response.predictions or [])

    def describe(self) -> ServingEndpointDetailed | None:
        """The endpoint as the workspace reports it, or None when it does not exist."""
        from databricks.sdk.errors import NotFound

        try:
            return self._client.serving_endpoints.get(self.endpoint_name)
        except NotFound:
            return None
