"""What the inference jobs need besides their job graphs: the landing volume the streaming job reads the model's
streamed files from, and the secret scope holding the online store's AWS credentials.

The scope is declared empty: its values (``aws_access_key_id``, ``aws_secret_access_key``) are put outside Terraform
(``databricks secrets put-secret <scope> <key>``), so no credential is in code, in the synthesized JSON or in the
Terraform state. The jobs' service principal may READ it; ml-engineers MANAGE it.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktn import ITerraformDependable
from cdktn_provider_databricks.schema import Schema
from cdktn_provider_databricks.secret_acl import SecretAcl
from cdktn_provider_databricks.secret_scope import SecretScope
from cdktn_provider_databricks.volume import Volume
from constructs import Construct

from spec.config import Environment


class Inference(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: Environment,
        raw_schema: Schema,
        service_principal_id: str,
        principal_ready: Sequence[ITerraformDependable],
    ) -> None:
        super().__init__(scope, construct_id)
        self.landing = Volume(
            self,
            "landing",
            catalog_name=raw_schema.catalog_name,
            schema_name=raw_schema.name,
            name=env.inference.landing_volume,
            volume_type="MANAGED",
            comment=f"files of {env.model_name}'s {env.model.stream_source or 'streamed'} source for the streaming job",
        )
        # One workspace per environment: the scope needs no environment suffix.
        self.secret_scope = SecretScope(self, "online_store_secrets", name=env.online_store.secret_scope)
        self.secret_acls = [
            SecretAcl(
                self,
                "online_store_secrets_reader",
                scope=self.secret_scope.name,
                principal=service_principal_id,
                permission="READ",
                depends_on=[*principal_ready],
            ),
            SecretAcl(
                self,
                "online_store_secrets_manager",
                scope=self.secret_scope.name,
                principal=env.ml_engineers_group,
                permission="MANAGE",
                depends_on=[*principal_ready],
            ),
        ]
