"""The environments themselves: a shared base plus each environment's overrides, built and validated once."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from spec.base import ConfigError
from spec.config.environment import Environment

# The flight-delay model, and who queries its endpoint.
_FLIGHTS: dict[str, Any] = {"name": "flight_delay", "serving": {"consumers": ("flight-ops",)}}

# The airport-delay model (a regressor): its quality alert fires on the mean absolute error of its served hours.
_AIRPORTS: dict[str, Any] = {
    "name": "airport_delay",
    "serving": {"consumers": ("flight-ops",)},
    "monitoring": {"max_mean_absolute_error": 20.0},
}

# The models each environment runs (models/<name>/), in order (a job given no --model runs the first; the CLI asks
# which when there are several). Each is a name, or {"name": ..., "<part>": {...}} with the settings the model has
# there that differ from the environment's (validation, promotion, serving, inference, online_store, monitoring,
# retraining, online_evaluation). Add a model to an environment here and its resources appear in the plan, nothing
# else moves.
# `mlops init model NAME` adds NAME to dev (it edits the tuple literal below: keep each entry a literal).
MODELS: dict[str, tuple[str | dict[str, Any], ...]] = {
    "dev": (_FLIGHTS, _AIRPORTS),
    "staging": (_FLIGHTS,),
    # In prod a retrained flight model is promoted at once only when it beats the Champion on the hold-out by 0.005
    # ROC AUC or more; a smaller gain is within the hold-out's noise, and the online decision settles it on the shadow
    # rows (promotion.min_gain, online_evaluation).
    "prod": ({**_FLIGHTS, "promotion": {"min_gain": 0.005}},),
}

# The shared base: what every environment has unless it overrides it. Parts are given as mappings, so an override
# changes only the fields it names, and a bad value is reported with the environment's name and the field's path.
_BASE: dict[str, Any] = {
    "workspace": {"host": "https://adb-1000000000000000.0.azuredatabricks.net"},
    "state_backend": {"resource_group": "rg-mlops-tfstate", "storage_account": "mlopstfstate"},
    "alerts": {"emails": ("ml-team@example.com",), "webhook_destination_name": "ml-team-webhook"},
}

_OVERRIDES: dict[str, dict[str, Any]] = {
    "dev": {
        "workspace": {"host": "https://adb-1111111111111111.11.azuredatabricks.net"},
        "data_scientist_access": "write",
        "validation": {"run_mode": "dry_run"},
        "job_retries": 0,
    },
    "staging": {
        "workspace": {"host": "https://adb-2222222222222222.12.azuredatabricks.net"},
        "data_scientist_access": "read",
        "read_only_from": ("dev",),
        # .gitlab-ci.yml runs staging's integration test from main (after the deploy, and nightly) as the CI runner.
        "ci_gitlab": {"project_path": "example-org/mlops-databricks"},
    },
    "prod": {
        "workspace": {"host": "https://adb-3333333333333333.13.azuredatabricks.net"},
        "data_scientist_access": "read",
        "read_only_from": ("dev",),
        # At least every four weeks of data; alerts start retraining in between, at most every three weeks.
        "retraining": {"max_model_age_days": 28, "alert_cooldown_days": 21},
        "serving": {"challenger_traffic_percent": 10},
        # A person approves each new Champion (mlops approve; docs/ci-cd.md "Approving a model for prod").
        "promotion": {"approval": "manual"},
        # The integration test runs in staging (CI, nightly): in prod it would deploy and publish a test slice.
        "integration_test": False,
        "inference": {
            "batch_schedule": {"quartz_cron": "0 0 5 * * ?"},
            "streaming_mode": "available_now",
            "streaming_schedule": {"quartz_cron": "0 15 * * * ?"},
        },
        "alerts": {"emails": ("ml-oncall@example.com",), "webhook_destination_name": "ml-oncall-webhook"},
        "job_retries": 2,
    },
}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if both else value
    return merged


def _deployments(entries: tuple[str | dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    return tuple({"name": entry} if isinstance(entry, str) else entry for entry in entries)


def build_environments(
    base: dict[str, Any] = _BASE,
    overrides: dict[str, dict[str, Any]] = _OVERRIDES,
    models: dict[str, tuple[str | dict[str, Any], ...]] = MODELS,
) -> dict[str, Environment]:
    """Each environment: the base, the names derived from the environment's name, then its overrides."""
    envs = {
        name: Environment(
            **_merge(
                base,
                {
                    "name": name,
                    "catalog": name,
                    "service_principal": f"mlops-{name}",
                    # Each catalog keeps its managed tables in a container of its own (an Azure metastore provisioned
                    # automatically has no root storage: a catalog without one cannot be created there).
                    "storage_root": f"abfss://{name}@mlopsdata.dfs.core.windows.net/catalog",
                    "models": _deployments(models.get(name, ())),
                    **values,
                },
            )
        )
        for name, values in overrides.items()
    }
    # Each environment as its first model sees it; every other model's settings are checked now, not at first use.
    envs = {name: env.scoped(env.models[0]) for name, env in envs.items()}
    for env in envs.values():
        env.scoped_models()
    for env in envs.values():
        unknown = [other for other in env.read_only_from if other not in envs]
        if unknown:
            raise ConfigError(
                f"environment {env.name!r}: field 'read_only_from' names an unknown environment {unknown[0]!r}",
                [("read_only_from", f"names an unknown environment {unknown[0]!r}")],
            )
    return envs


ENVIRONMENTS: MappingProxyType[str, Environment] = MappingProxyType(build_environments())


def get_environment(name: str) -> Environment:
    """The environment called ``name``, or a ``ConfigError`` listing the known ones."""
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise ConfigError(f"unknown environment {name!r}; known: {', '.join(ENVIRONMENTS)}") from None
