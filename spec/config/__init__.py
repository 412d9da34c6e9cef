"""The environments (dev, staging, prod) as frozen pydantic models: the one source of truth.

Nothing here imports CDK Terrain (cdktn), reads environment variables or touches the network, so the local runtime,
the jobs and the tests can import it freely. Every other module loops over ``ENVIRONMENTS``; no environment name is
typed again. A bad value is a ``ConfigError`` naming the environment and the field (spec/base.py); change a
value with ``env.replace(field=value)``, which validates, as construction does.

    (spec/base.py    the model base, ConfigError and its messages, shared with spec/model.py)
    models.py        the parts of an environment (workspace, compute, serving, monitoring, ...), RUNTIMES
    environment.py   Environment: the rules across its parts and the names derived from it
    environments.py  ENVIRONMENTS (a shared base plus each environment's overrides), get_environment
"""

from spec.base import ConfigError, ConfigModel
from spec.config.environment import REQUIRED_SCHEMAS, Environment, WarehouseSize
from spec.config.environments import ENVIRONMENTS, build_environments, get_environment
from spec.config.models import (
    GRANULARITIES,
    RUNTIMES,
    SERVERLESS_PREFIX,
    Account,
    Alerts,
    Approval,
    AzureDevOpsFederation,
    AzureWorkspaceSpec,
    CiFederation,
    Cloud,
    Compute,
    DataScientistAccess,
    GitLabFederation,
    Granularity,
    Inference,
    Monitoring,
    OnlineEvaluation,
    OnlineStore,
    Promotion,
    Retraining,
    RunMode,
    Runtime,
    Schedule,
    Serving,
    StateBackend,
    StreamingMode,
    Validation,
    Workspace,
)

__all__ = [
    "ENVIRONMENTS",
    "GRANULARITIES",
    "REQUIRED_SCHEMAS",
    "RUNTIMES",
    "SERVERLESS_PREFIX",
    "Account",
    "Alerts",
    "Approval",
    "AzureDevOpsFederation",
    "AzureWorkspaceSpec",
    "CiFederation",
    "Cloud",
    "Compute",
    "ConfigError",
    "ConfigModel",
    "DataScientistAccess",
    "Environment",
    "GitLabFederation",
    "Granularity",
    "Inference",
    "Monitoring",
    "OnlineEvaluation",
    "OnlineStore",
    "Promotion",
    "Retraining",
    "RunMode",
    "Runtime",
    "Schedule",
    "Serving",
    "StateBackend",
    "StreamingMode",
    "Validation",
    "WarehouseSize",
    "Workspace",
    "build_environments",
    "get_environment",
]
