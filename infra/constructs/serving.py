"""The environment's model serving endpoint, as far as Terraform can own it, and who may use it.

The ordering problem: a custom-model endpoint serves registered model *versions*, and no version exists when an
environment is first applied (the registered model is created empty by ``MlAssets``; versions come from the
training job). Declaring ``config.served_entities`` with a bootstrap version therefore fails the first
``cdktn deploy`` of every fresh environment, and afterwards Terraform and the deploy job would fight over versions.

The split chosen here (provider 1.99 documents ``config`` as optional, "can be added and modified after creation",
and an omitted ``config`` as "no change to the endpoint"):

* Terraform creates the endpoint without ``config``: name, AI Gateway inference table, e-mail notifications, tags,
  and the ``databricks_permissions`` on its ``serving_endpoint_id``. This applies on an empty environment.
* The deploy job owns ``config`` (served entities and traffic routes) and sets it through databricks-sdk
  (``jobs.platform.serving.EndpointUpdater``) once a champion exists, using the split from ``env.serving``.
* ``lifecycle.ignore_changes = ["config"]`` states that ownership, so a later plan never proposes to undo a deploy.

See docs/serving.md for the alternatives considered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktn import ITerraformDependable, TerraformResourceLifecycle
from cdktn_provider_databricks.model_serving import (
    ModelServing,
    ModelServingAiGateway,
    ModelServingAiGatewayInferenceTableConfig,
    ModelServingEmailNotifications,
    ModelServingTags,
)
from cdktn_provider_databricks.permissions import Permissions, PermissionsAccessControl
from cdktn_provider_databricks.schema import Schema
from constructs import Construct

from spec.config import ConfigError, Environment


def endpoint_access(env: Environment, service_principal_id: str) -> list[PermissionsAccessControl]:
    """CAN_MANAGE for the ml-engineers group and for the jobs' service principal (the deploy job updates the
    endpoint's config); CAN_QUERY for each consumer group, once (config rejects a consumer that manages it, so
    every environment has someone who only queries)."""
    managers = [
        PermissionsAccessControl(group_name=env.ml_engineers_group, permission_level="CAN_MANAGE"),
        PermissionsAccessControl(service_principal_name=service_principal_id, permission_level="CAN_MANAGE"),
    ]
    consumers = [
        PermissionsAccessControl(group_name=consumer, permission_level="CAN_QUERY")
        for consumer in dict.fromkeys(env.serving.consumers)
    ]
    return managers + consumers


class Serving(Construct):
    """The serving endpoint shell (no served versions: see the module docstring) and its permissions.

    ``schemas`` are the environment's schema resources by name; the endpoint refers to the one holding its
    inference table, ``env.inference_table`` (AI Gateway names it ``<table_name_prefix>_payload``), so it waits for
    it. ``principal_ready`` (the service principal's workspace assignment) comes before the permissions naming it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: Environment,
        service_principal_id: str,
        principal_ready: Sequence[ITerraformDependable],
        schemas: Mapping[str, Schema],
    ) -> None:
        super().__init__(scope, construct_id)
        _, schema, _ = env.inference_table.split(".")
        if schema not in schemas:
            raise ConfigError(
                f"environment {env.name!r}: field 'schemas' must contain {schema!r} "
                "(the serving endpoint's inference table lives there)"
            )
        self.endpoint = ModelServing(
            self,
            "endpoint",
            name=env.endpoint_name,
            description=f"Serves the champion (and challenger) of {env.registered_model}",
            ai_gateway=ModelServingAiGateway(
                inference_table_config=ModelServingAiGatewayInferenceTableConfig(
                    enabled=True,
                    # References: the endpoint waits for the schema its inference table lives in.
                    catalog_name=schemas[schema].catalog_name,
                    schema_name=schemas[schema].name,
                    table_name_prefix=env.inference_table_prefix,
                )
            ),
            email_notifications=(
                ModelServingEmailNotifications(on_update_failure=list(env.alerts.emails)) if env.alerts.emails else None
            ),
            tags=[
                ModelServingTags(key="environment", value=env.name),
                ModelServingTags(key="registered_model", value=env.registered_model),
                ModelServingTags(key="managed-by", value="cdktn"),
            ],
            lifecycle=TerraformResourceLifecycle(ignore_changes=["config"]),
        )
        self.permissions = Permissions(
            self,
            "endpoint_permissions",
            serving_endpoint_id=self.endpoint.serving_endpoint_id,
            access_control=endpoint_access(env, service_principal_id),
            depends_on=[*principal_ready],
        )
