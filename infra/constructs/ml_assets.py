"""What the ML work needs in an environment: the workspace folder of the environment (the experiment and the monitors'
dashboards live under it: neither can be created in a folder that does not exist), the MLflow experiment (and who may
read or edit it), the Unity Catalog registered model (with its grants), the serverless SQL warehouse the alerts run
on, and the cluster policy job clusters must use."""

from __future__ import annotations

import json
from collections.abc import Sequence

from cdktn import ITerraformDependable
from cdktn_provider_databricks.cluster_policy import ClusterPolicy
from cdktn_provider_databricks.directory import Directory
from cdktn_provider_databricks.grants import Grants, GrantsGrant
from cdktn_provider_databricks.mlflow_experiment import MlflowExperiment
from cdktn_provider_databricks.permissions import Permissions, PermissionsAccessControl
from cdktn_provider_databricks.registered_model import RegisteredModel
from cdktn_provider_databricks.sql_endpoint import SqlEndpoint
from constructs import Construct

from spec import access
from spec.config import Environment


def cluster_policy_definition(env: Environment) -> dict:
    """Job clusters: the ML runtime, the configured node type, bounded size, tagged with the environment."""
    return {
        "spark_version": {"type": "fixed", "value": env.compute.spark_version},
        "node_type_id": {"type": "fixed", "value": env.compute.node_types[env.cloud]},
        "num_workers": {"type": "range", "maxValue": env.compute.max_workers, "defaultValue": env.compute.num_workers},
        "data_security_mode": {"type": "fixed", "value": "SINGLE_USER"},
        "custom_tags.environment": {"type": "fixed", "value": env.name},
        "cluster_type": {"type": "fixed", "value": "job"},
    }


class MlAssets(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: Environment,
        catalog_name: str,
        schema_name: str,
        service_principal_id: str,
        principal_ready: Sequence[ITerraformDependable],
    ) -> None:
        super().__init__(scope, construct_id)
        # mkdirs: the parents (/Shared/mlops) come with it. The experiment's name refers to its path, so it waits.
        self.folder = Directory(self, "folder", path=env.experiment_folder)
        self.experiment = MlflowExperiment(
            self,
            "experiment",
            name=f"{self.folder.path}/{env.model_name}",
        )
        self.experiment_permissions = Permissions(
            self,
            "experiment_permissions",
            experiment_id=self.experiment.id,
            access_control=[
                *[
                    PermissionsAccessControl(group_name=g.principal, permission_level=g.level)
                    for g in access.experiment_access(env)
                ],
                # The jobs log their runs here.
                PermissionsAccessControl(service_principal_name=service_principal_id, permission_level="CAN_MANAGE"),
            ],
            depends_on=[*principal_ready],
        )
        self.model = RegisteredModel(
            self,
            "registered_model",
            catalog_name=catalog_name,
            schema_name=schema_name,
            name=env.model_name,
            comment=env.model.description,
            # The jobs' service principal owns the model: it registers versions and moves aliases.
            owner=service_principal_id,
            depends_on=[*principal_ready],
        )
        self.model_grants = Grants(
            self,
            "model_grants",
            model=self.model.id,
            grant=[GrantsGrant(principal=g.principal, privileges=list(g.privileges)) for g in access.model_grants(env)],
        )
        self.warehouse = SqlEndpoint(
            self,
            "sql_warehouse",
            name=f"mlops-{env.name}-alerts",
            cluster_size=env.sql_warehouse_size,
            max_num_clusters=1,
            auto_stop_mins=10,
            enable_serverless_compute=True,
            warehouse_type="PRO",
        )
        self.cluster_policy = ClusterPolicy(
            self,
            "cluster_policy",
            name=f"mlops-{env.name}-job-clusters",
            definition=json.dumps(cluster_policy_definition(env), sort_keys=True),
        )
