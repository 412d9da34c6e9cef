"""The serving port on Databricks: create or update the model serving endpoint with databricks-sdk, and query it.

Terraform (infra/constructs/serving.py) normally creates the endpoint without a ``config`` and owns its
permissions, AI Gateway inference table and notifications; this adapter owns the served entities and the traffic
routes. When the endpoint does not exist yet (a workspace where the stack was not applied), it is created here with
the same AI Gateway settings, and a warning says to import it into Terraform.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from databricks.sdk.errors import NotFound, OperationFailed
from databricks.sdk.service.serving import (
    AiGatewayConfig,
    AiGatewayInferenceTableConfig,
    EmailNotifications,
    EndpointCoreConfigInput,
    EndpointStateConfigUpdate,
    EndpointTag,
    Route,
    ServedEntityInput,
    ServingEndpointDetailed,
    TrafficConfig,
)

from infra.config import Environment
from jobs.serving.state import ServedEntity, check_entities, inference_table_config

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=40)


def served_entities_input(env: Environment, entities: Sequence[ServedEntity]) -> list[ServedEntityInput]:
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
    return TrafficConfig(
        routes=[Route(served_entity_name=e.name, traffic_percentage=e.traffic_percent) for e in entities]
    )


def ai_gateway(env: Environment) -> AiGatewayConfig:
    """The inference table Terraform declares for the endpoint: ``env.inference_table``."""
    return AiGatewayConfig(inference_table_config=AiGatewayInferenceTableConfig(**inference_table_config(env)))


class DatabricksServing:
    """Deploys served entities to ``env``'s endpoint. The client is passed in (built once, at the edge)."""

    def __init__(self, client: WorkspaceClient, env: Environment, *, timeout: timedelta = DEFAULT_TIMEOUT) -> None:
        self._client = client
        self._env = env
        self._timeout = timeout

    @property
    def endpoint_name(self) -> str:
        return self._env.serving.endpoint_name

    def deploy(self, entities: Sequence[ServedEntity]) -> ServingEndpointDetailed:
        """Point the endpoint at ``entities`` with their traffic split; wait until the update is done.

        Raises ``StateError`` (a ``ValueError``) before any call when ``entities`` cannot be served, and
        ``RuntimeError`` when the update fails or is canceled (Databricks keeps the previous config serving).
        """
        name = self.endpoint_name
        check_entities(entities, where=f"endpoint {name!r} (env {self._env.name!r})")
        api = self._client.serving_endpoints
        try:
            current = api.get(name)
        except NotFound:
            logger.warning(
                "serving endpoint %s does not exist: creating it here; import it into the %s stack "
                "(terraform import databricks_model_serving.<address> %s) so Terraform owns its permissions",
                name,
                self._env.name,
                name,
            )
            return api.create_and_wait(
                name,
                config=EndpointCoreConfigInput(
                    name=name,
                    served_entities=served_entities_input(self._env, entities),
                    traffic_config=traffic_config(entities),
                ),
                ai_gateway=ai_gateway(self._env),
                email_notifications=EmailNotifications(on_update_failure=list(self._env.alerts.emails)),
                tags=[
                    EndpointTag(key="environment", value=self._env.name),
                    EndpointTag(key="registered_model", value=self._env.registered_model),
                ],
                timeout=self._timeout,
            )
        if current.state is not None and current.state.config_update == EndpointStateConfigUpdate.IN_PROGRESS:
            # The API rejects a config update while another one is in progress: wait for it first.
            logger.info("serving endpoint %s is updating; waiting before the new config", name)
            api.wait_get_serving_endpoint_not_updating(name, timeout=self._timeout)
        logger.info(
            "updating serving endpoint %s: %s",
            name,
            ", ".join(f"{e.name}={e.model_name}/{e.model_version} ({e.traffic_percent}%)" for e in entities),
        )
        try:
            return api.update_config_and_wait(
                name,
                served_entities=served_entities_input(self._env, entities),
                traffic_config=traffic_config(entities),
                timeout=self._timeout,
            )
        except OperationFailed as e:
            raise RuntimeError(
                f"serving endpoint {name}: the config update did not complete ({e}); the previous config keeps "
                "serving. See the endpoint's events and build logs in the workspace."
            ) from e

    def query(self, records: list[dict[str, Any]]) -> list[Any]:
        """Predictions for ``records`` (the ``dataframe_records`` format)."""
        try:
            response = self._client.serving_endpoints.query(self.endpoint_name, dataframe_records=records)
        except NotFound as e:
            raise LookupError(f"serving endpoint {self.endpoint_name!r} does not exist in this workspace") from e
        return list(response.predictions or [])

    def describe(self) -> ServingEndpointDetailed | None:
        """The endpoint as the workspace reports it, or None when it does not exist."""
        try:
            return self._client.serving_endpoints.get(self.endpoint_name)
        except NotFound:
            return None
