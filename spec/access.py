"""Who may do what in each environment: the grants matrix, as plain data.

Kept apart from the CDK constructs so the policy checks, the demo summary and the tests read the same intent.
Privileges granted on a catalog are inherited by its schemas, tables, volumes, functions and models.
"""

from __future__ import annotations

from dataclasses import dataclass

from spec.config import Environment

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


# What the approvers group needs where a promotion is approved by hand: set the approval tag on the registered model's
# versions (APPLY_TAG, "add and edit tags on an object", on the model) and read them (EXECUTE on the model, and
# USE_CATALOG / USE_SCHEMA to reach it). The jobs' service principal owns the model and sets its other tags.
APPROVAL_PRIVILEGES: tuple[str, ...] = ("APPLY_TAG", "EXECUTE")
APPROVAL_PATH_PRIVILEGES: tuple[str, ...] = ("USE_CATALOG", "USE_SCHEMA")
# Any of these lets a principal set tags on a model version (inherited from the catalog or the schema too).
TAGGING_PRIVILEGES: frozenset[str] = frozenset({"ALL_PRIVILEGES", "APPLY_TAG", "MANAGE"})


def has_manual_approval(env: Environment) -> bool:
    """Whether any model of ``env`` is promoted only with a person's approval (``promotion.approval``)."""
    return any(scoped.promotion.approval == "manual" for scoped in env.scoped_models())


def _with_approvers(
    grants: list[CatalogGrant], env: Environment, privileges: tuple[str, ...]
) -> tuple[CatalogGrant, ...]:
    """``grants`` with the approvers group holding ``privileges`` too (merged into its grant when it has one)."""
    for i, grant in enumerate(grants):
        if grant.principal == env.approvers:
            if "ALL_PRIVILEGES" not in grant.privileges:
                merged = tuple(dict.fromkeys((*grant.privileges, *privileges)))
                grants[i] = CatalogGrant(grant.role, grant.principal, merged)
            return tuple(grants)
    return (*grants, CatalogGrant("approvers", env.approvers, privileges))


def catalog_grants(env: Environment, service_principal_id: str) -> tuple[CatalogGrant, ...]:
    """The catalog grants of ``env``; ``service_principal_id`` is the SP's application id (a token at synth time)."""
    access = {"write": FULL_PRIVILEGES, "read": READ_PRIVILEGES, "none": ()}[env.data_scientist_access]
    grants = [
        CatalogGrant("ml_engineers", env.ml_engineers_group, FULL_PRIVILEGES),
        CatalogGrant("service_principal", service_principal_id, JOB_PRIVILEGES),
    ]
    if access:
        grants.insert(0, CatalogGrant("data_scientists", env.data_scientists_group, access))
    if has_manual_approval(env):
        return _with_approvers(grants, env, APPROVAL_PATH_PRIVILEGES)
    return tuple(grants)


def model_grants(env: Environment) -> tuple[CatalogGrant, ...]:
    """Grants on the registered model itself: people may load it (EXECUTE); the SP owns it and adds versions. Where
    the model's promotion is approved by hand, the approvers group may tag its versions (APPLY_TAG)."""
    grants = [CatalogGrant("ml_engineers", env.ml_engineers_group, FULL_PRIVILEGES)]
    if env.data_scientist_access != "none":
        privileges = FULL_PRIVILEGES if env.data_scientist_access == "write" else ("EXECUTE",)
        grants.insert(0, CatalogGrant("data_scientists", env.data_scientists_group, privileges))
    if env.promotion.approval == "manual":
        return _with_approvers(grants, env, APPROVAL_PRIVILEGES)
    return tuple(grants)


def owner(env: Environment) -> str:
    """Catalogs and schemas are owned by the ml-engineers group: never a person."""
    return env.ml_engineers_group


@dataclass(frozen=True)
class ObjectPermission:
    """One group's permission level on a workspace object (a job, an experiment): ``databricks_permissions``."""

    principal: str
    level: str


# The jobs CI runs in an environment (the integration test of each model after the staging deploy and nightly on main,
# .github/workflows/ and its Azure DevOps twin): the CI runner (``Environment.ci_service_principal``) gets
# CAN_MANAGE_RUN on these and on nothing else. The integration-test graph starts no child job, so that is all it needs.
CI_JOBS: tuple[str, ...] = ("integration-test",)


def job_access(env: Environment) -> tuple[ObjectPermission, ...]:
    """ml-engineers manage the jobs; data scientists run them in dev and only see them (and their runs) elsewhere.
    The jobs' service principal runs them (``run_as``) and the deployer owns them."""
    level = {"write": "CAN_MANAGE_RUN", "read": "CAN_VIEW", "none": None}[env.data_scientist_access]
    grants = [ObjectPermission(env.ml_engineers_group, "CAN_MANAGE")]
    if level:
        grants.insert(0, ObjectPermission(env.data_scientists_group, level))
    return tuple(grants)


def experiment_access(env: Environment) -> tuple[ObjectPermission, ...]:
    """ml-engineers manage the experiment; data scientists edit it in dev and only read its runs elsewhere. The
    jobs' service principal, which logs the runs, manages it too (granted by application id in the construct)."""
    level = {"write": "CAN_EDIT", "read": "CAN_READ", "none": None}[env.data_scientist_access]
    grants = [ObjectPermission(env.ml_engineers_group, "CAN_MANAGE")]
    if level:
        grants.insert(0, ObjectPermission(env.data_scientists_group, level))
    return tuple(grants)


@dataclass(frozen=True)
class Prerequisite:
    """What the deploying principal must hold before ``cdktn deploy <env>``: granted outside the stacks, because the
    stacks cannot grant their own deployer what it needs to create them."""

    scope: str
    grant: str
    why: str


def deployer_prerequisites(env: Environment) -> tuple[Prerequisite, ...]:
    rows = [
        Prerequisite(
            "account",
            "account admin",
            f"creates the jobs' service principal {env.service_principal} and the CI runner "
            f"{env.ci_service_principal}, their workspace assignments and the CI runner's federation policies (as "
            "creator it is also the jobs' principal's manager, so it may set it as run_as)",
        ),
        Prerequisite("metastore", "CREATE_CATALOG", f"creates the catalog {env.catalog}"),
        Prerequisite(
            f"group {env.ml_engineers_group}",
            "member",
            f"the group owns {env.catalog} and its schemas: as a member the deployer creates the schemas, the volume "
            "and the registered model under them and sets their grants (databricks_grants is authoritative)",
        ),
        Prerequisite(
            "workspace",
            "workspace admin",
            "creates the jobs, cluster policy, SQL warehouse, serving endpoint, notification destinations, "
            "workspace bindings and object permissions",
        ),
    ]
    if not env.create_groups:
        rows.append(
            Prerequisite(
                "account",
                f"groups {', '.join(env.groups)}",
                "exist and are assigned to the workspace: the stack looks each up (a missing one fails the plan with "
                "its name) and grants to it; set create_groups for the stack to create them",
            )
        )
    if env.storage_root:
        rows.append(
            Prerequisite(
                f"external location of {env.storage_root}",
                "CREATE_MANAGED_STORAGE",
                f"the catalog {env.catalog} keeps its managed tables there",
            )
        )
    return tuple(rows)
