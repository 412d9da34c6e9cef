"""Who may do what in each environment: the grants matrix, as plain data.

Kept apart from the cdktf constructs so the policy checks, the demo summary and the tests read the same intent.
Privileges granted on a catalog are inherited by its schemas, tables, volumes, functions and models.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import Environment

READ_PRIVILEGES: tuple[str, ...] = ("USE_CATALOG", "USE_SCHEMA", "SELECT", "EXECUTE", "READ_VOLUME")
# What the service principal needs to run the jobs: read, write tables, register models, create functions.
JOB_PRIVILEGES: tuple[str, ...] = (
    "USE_CATALOG",
    "USE_SCHEMA",
    "SELECT",
    "EXECUTE",
    "READ_VOLUME",
    "MODIFY",
    "REFRESH",
    "WRITE_VOLUME",
    "CREATE_TABLE",
    "CREATE_MODEL",
    "CREATE_FUNCTION",
    "CREATE_VOLUME",
    "CREATE_MATERIALIZED_VIEW",
)
FULL_PRIVILEGES: tuple[str, ...] = ("ALL_PRIVILEGES",)
# Anything in this set (or any CREATE_*) lets a principal change data or metadata.
WRITE_PRIVILEGES: frozenset[str] = frozenset(
    {"ALL_PRIVILEGES", "MANAGE", "MODIFY", "REFRESH", "WRITE_VOLUME", "WRITE_FILES", "APPLY_TAG"}
)


def is_write_privilege(privilege: str) -> bool:
    return privilege in WRITE_PRIVILEGES or privilege.startswith("CREATE_")


@dataclass(frozen=True)
class CatalogGrant:
    """One principal's privileges on the environment's catalog. ``role`` is a stable key for tests and summaries."""

    role: str
    principal: str
    privileges: tuple[str, ...]


def catalog_grants(env: Environment, service_principal_id: str) -> tuple[CatalogGrant, ...]:
    """The catalog grants of ``env``; ``service_principal_id`` is the SP's application id (a token at synth time)."""
    access = {"write": FULL_PRIVILEGES, "read": READ_PRIVILEGES, "none": ()}[env.data_scientist_access]
    grants = [
        CatalogGrant("ml_engineers", env.ml_engineers_group, FULL_PRIVILEGES),
        CatalogGrant("service_principal", service_principal_id, JOB_PRIVILEGES),
    ]
    if access:
        grants.insert(0, CatalogGrant("data_scientists", env.data_scientists_group, access))
    return tuple(grants)


def model_grants(env: Environment) -> tuple[CatalogGrant, ...]:
    """Grants on the registered model itself: people may load it (EXECUTE); the SP owns it and adds versions."""
    grants = [CatalogGrant("ml_engineers", env.ml_engineers_group, FULL_PRIVILEGES)]
    if env.data_scientist_access != "none":
        privileges = FULL_PRIVILEGES if env.data_scientist_access == "write" else ("EXECUTE",)
        grants.insert(0, CatalogGrant("data_scientists", env.data_scientists_group, privileges))
    return tuple(grants)


def owner(env: Environment) -> str:
    """Catalogs and schemas are owned by the ml-engineers group: never a person."""
    return env.ml_engineers_group
