"""An apply simulator: walks a synthesized stack in Terraform's dependency order against a model of a workspace that
starts empty (plus the documented prerequisites), and reports every create-time rule of the Databricks APIs that the
stack breaks. Terraform cannot run here (its provider registry is unreachable), so this is what stands between a green
synth and a first `cdktn deploy` that stops half-way.

Terraform creates a resource once everything it refers to (``${type.name.attr}``) or lists in ``depends_on`` exists,
and in parallel with everything else. So for each resource the simulator asks: does what it needs exist once its
dependencies (``apply_graph.dependencies``) are created, given what the workspace had before (``Prerequisites``) and
what the plan's data sources looked up? Each rule names the page or issue it comes from (``RULES``).

What each resource type creates and needs is modelled for the types the stacks use; a type it does not know needs
nothing (the rules are about the facts above, not about every attribute).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tests.support.apply_graph import dependencies, resources

_REFERENCE = re.compile(r"\$\{([a-z_][a-z0-9_]*)\.([A-Za-z0-9_\-]+)\.([a-z_]+)\}")
_DATA_REFERENCE = re.compile(r"\$\{data\.([a-z_][a-z0-9_]*)\.([A-Za-z0-9_\-]+)\.([a-z_]+)\}")
_RUN_LEVELS = {"CAN_MANAGE_RUN", "CAN_MANAGE", "IS_OWNER"}


@dataclass(frozen=True)
class Rule:
    key: str
    what: str
    source: str


RULES = {
    rule.key: rule
    for rule in (
        Rule(
            "parent_folder",
            "a workspace object (experiment, monitor dashboard folder) is created in a folder that exists",
            "Workspace/MLflow API: RESOURCE_DOES_NOT_EXIST 'Parent directory ... does not exist' "
            "(databricks-industry-solutions/dbdemos#155); databricks_directory creates its parents (mkdirs, "
            "https://docs.databricks.com/api/workspace/workspace/mkdirs)",
        ),
        Rule(
            "trigger_table",
            "a job's table_update trigger names tables that exist when the job is created",
            "Jobs API: 'cannot create job: The table ... does not exist' (databricks/cli#4437)",
        ),
        Rule(
            "principal_exists",
            "a grant, owner, permission, ACL or run_as names a principal that exists in the workspace",
            "https://registry.terraform.io/providers/databricks/databricks/1.138.0/docs/data-sources/group "
            "('cannot find group'); a service principal is usable in a workspace once assigned to it "
            "(https://registry.terraform.io/providers/databricks/databricks/1.138.0/docs/resources/"
            "mws_permission_assignment)",
        ),
        Rule(
            "run_permission",
            "whoever starts a job (CI's identity, a run-job task's run_as) holds CAN_MANAGE_RUN on it, and run_as "
            "names a principal the deployer may use",
            "https://docs.databricks.com/aws/en/security/auth/access-control/#job-acls (CAN_MANAGE_RUN: run now); "
            "https://docs.databricks.com/aws/en/jobs/privileges (run as a service principal needs its "
            "Service Principal User role, which its creator holds)",
        ),
        Rule(
            "securable_exists",
            "a grant, a monitor or a volume names a Unity Catalog securable that exists (created before it)",
            "https://docs.databricks.com/aws/en/data-governance/unity-catalog/manage-privileges/ "
            "(a grant on a missing securable fails: NOT_FOUND)",
        ),
    )
}


@dataclass(frozen=True)
class Finding:
    rule: str
    address: str
    attribute: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.address}.{self.attribute}: {self.message} (see {RULES[self.rule].source})"


@dataclass(frozen=True)
class Prerequisites:
    """What an empty workspace has before the first apply, as the docs state it, plus what the deployer set up
    (``spec.access.deployer_prerequisites``)."""

    folders: frozenset[str] = frozenset({"/", "/Shared", "/Users"})
    groups: frozenset[str] = frozenset({"admins", "users"})
    tables: frozenset[str] = frozenset()
    # The identity CI signs in as, and the jobs (by name) it runs: the run_permission rule checks its grants.
    ci_principal: str | None = None
    ci_jobs: tuple[str, ...] = ()


@dataclass
class _Model:
    stack: dict
    found: dict[str, dict]
    deps: dict[str, set[str]]
    data_groups: set[str] = field(default_factory=set)
    creates: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def literal(self, value: object) -> str | None:
        """``value`` with every reference replaced by what Terraform will know; None when something stays unknown."""
        if not isinstance(value, str):
            return None
        text = _DATA_REFERENCE.sub(lambda m: self._data_attribute(*m.groups()) or "\x00", value)
        text = _REFERENCE.sub(lambda m: self._attribute(*m.groups()) or "\x00", text)
        return None if "\x00" in text else text

    def _data_attribute(self, rtype: str, name: str, attribute: str) -> str | None:
        body = self.stack.get("data", {}).get(rtype, {}).get(name, {})
        if rtype == "databricks_group" and attribute in ("display_name", "id"):
            return f"group:{body.get('display_name')}" if attribute == "id" else body.get("display_name")
        return self.literal(body.get(attribute))

    def _attribute(self, rtype: str, name: str, attribute: str) -> str | None:
        body = self.found.get(f"{rtype}.{name}", {})
        if rtype == "databricks_service_principal" and attribute in ("application_id", "id"):
            return f"sp:{body.get('display_name')}"
        if rtype == "databricks_group" and attribute == "id":
            return f"group:{body.get('display_name')}"
        if rtype == "databricks_directory" and attribute == "workspace_path":
            path = self.literal(body.get("path"))
            return f"/Workspace{path}" if path else None
        if rtype == "databricks_job" and attribute == "id":
            return f"job:{rtype}.{name}"
        if attribute == "id" and rtype in ("databricks_catalog", "databricks_schema", "databricks_registered_model"):
            return self.securable(f"{rtype}.{name}")
        return self.literal(body.get(attribute))

    def securable(self, address: str) -> str | None:
        rtype = address.split(".")[0]
        body = self.found.get(address, {})
        if rtype == "databricks_catalog":
            return self.literal(body.get("name"))
        if rtype == "databricks_schema":
            parts = [self.literal(body.get("catalog_name")), self.literal(body.get("name"))]
        else:
            parts = [self.literal(body.get(k)) for k in ("catalog_name", "schema_name", "name")]
        return ".".join(parts) if all(parts) else None  # type: ignore[arg-type]

    def available(self, address: str) -> set[tuple[str, str]]:
        facts: set[tuple[str, str]] = {("principal", f"group:{g}") for g in self.data_groups}
        for dep in self.deps[address]:
            facts |= self.creates.get(dep, set())
        return facts


def _order(found: dict[str, dict], deps: dict[str, set[str]]) -> list[str]:
    order: list[str] = []
    placed: set[str] = set()
    for address in sorted(found, key=lambda a: len(deps[a])):
        for item in sorted(deps[address] | {address}, key=lambda a: len(deps[a])):
            if item not in placed:
                placed.add(item)
                order.append(item)
    return order


def _principals(model: _Model, address: str, body: dict) -> Iterator[tuple[str, str | None]]:
    """(attribute, principal) for every principal a resource names: ``group:<name>``, ``sp:<name>`` or None."""
    rtype = address.split(".")[0]
    for i, grant in enumerate(body.get("grant", []) if rtype == "databricks_grants" else []):
        yield f"grant[{i}].principal", _as_principal(model, grant.get("principal"))
    for i, control in enumerate(body.get("access_control", []) if rtype == "databricks_permissions" else []):
        for key in ("group_name", "service_principal_name"):
            if key in control:
                yield f"access_control[{i}].{key}", _as_principal(model, control[key])
    if rtype in ("databricks_catalog", "databricks_schema", "databricks_registered_model") and "owner" in body:
        yield "owner", _as_principal(model, body["owner"])
    if rtype == "databricks_secret_acl":
        yield "principal", _as_principal(model, body.get("principal"))
    if rtype in ("databricks_job", "databricks_alert_v2") and "run_as" in body:
        yield "run_as.service_principal_name", _as_principal(model, body["run_as"].get("service_principal_name"))


def _as_principal(model: _Model, value: object) -> str | None:
    text = model.literal(value)
    if text is None or text.startswith(("sp:", "group:")):
        return text
    return None if "@" in text else f"group:{text}"


def _job_runners(model: _Model) -> dict[str, set[str]]:
    """Job address -> the principals that may run it (CAN_MANAGE_RUN or more), from ``databricks_permissions``."""
    runners: dict[str, set[str]] = {}
    for body in model.found.values():
        job = model.literal(body.get("job_id")) if "job_id" in body else None
        if not job or not job.startswith("job:"):
            continue
        for control in body.get("access_control", []):
            if control.get("permission_level") in _RUN_LEVELS:
                for key in ("group_name", "service_principal_name"):
                    if key in control:
                        runners.setdefault(job.removeprefix("job:"), set()).add(str(_as_principal(model, control[key])))
    return runners


def simulate(stack: dict, prerequisites: Prerequisites | None = None) -> list[Finding]:
    """Every create-time rule the stack breaks on an empty workspace with ``prerequisites``."""
    prerequisites = prerequisites or Prerequisites()
    found = resources(stack)
    model = _Model(stack, found, dependencies(stack))
    model.data_groups = {body["display_name"] for body in stack.get("data", {}).get("databricks_group", {}).values()}
    model.data_groups |= set(prerequisites.groups)
    pre: set[tuple[str, str]] = {("folder", f) for f in prerequisites.folders}
    pre |= {("table", t) for t in prerequisites.tables}
    findings: list[Finding] = []

    def need(address: str, attribute: str, rule: str, fact: tuple[str, str], message: str) -> None:
        if fact not in pre and fact not in model.available(address):
            findings.append(Finding(rule, address, attribute, message))

    for address in _order(found, model.deps):
        body = found[address]
        rtype = address.split(".")[0]
        created: set[tuple[str, str]] = set()
        for attribute, principal in _principals(model, address, body):
            if principal is not None:
                need(
                    address,
                    attribute,
                    "principal_exists",
                    ("principal", principal),
                    f"names {principal.split(':', 1)[1]!r}, which does not exist in the workspace when this is "
                    "created: look the group up with a data source (a missing one then fails the plan, naming "
                    "it), or create and assign it before",
                )
        if rtype == "databricks_directory":
            path = model.literal(body.get("path"))
            if path:
                created |= {("folder", str(p)) for p in (PurePosixPath(path), *PurePosixPath(path).parents)}
        elif rtype == "databricks_mlflow_experiment":
            name = model.literal(body.get("name"))
            if name:
                parent = str(PurePosixPath(name).parent)
                need(
                    address,
                    "name",
                    "parent_folder",
                    ("folder", parent),
                    f"is created in {parent}, which no "
                    "databricks_directory it waits for creates: declare the folder and refer to its path",
                )
        elif rtype == "databricks_quality_monitor":
            assets = model.literal(body.get("assets_dir"))
            if assets:
                parent = str(PurePosixPath(assets.removeprefix("/Workspace")).parent)
                need(
                    address,
                    "assets_dir",
                    "parent_folder",
                    ("folder", parent),
                    f"keeps its dashboard under {parent}, which no databricks_directory it waits for creates",
                )
            for attribute in ("table_name", "baseline_table_name"):
                table = model.literal(body.get(attribute))
                if table:
                    need(
                        address,
                        attribute,
                        "securable_exists",
                        ("table", table),
                        f"monitors {table}, which is not created before it",
                    )
            output = model.literal(body.get("output_schema_name"))
            if output:
                need(
                    address,
                    "output_schema_name",
                    "securable_exists",
                    ("schema", output),
                    f"writes its metric tables to {output}, which is not created before it",
                )
        elif rtype == "databricks_sql_table":
            table = model.securable(address)
            if table:
                created.add(("table", table))
        elif rtype in ("databricks_catalog", "databricks_schema", "databricks_volume", "databricks_registered_model"):
            name = model.securable(address)
            if name:
                created.add((rtype.removeprefix("databricks_").replace("registered_", ""), name))
        elif rtype == "databricks_grants":
            for kind in ("catalog", "schema", "model", "volume", "table"):
                if kind in body:
                    name = model.literal(body[kind])
                    if name:
                        need(
                            address,
                            kind,
                            "securable_exists",
                            (kind, name),
                            f"grants on {kind} {name}, which is not created before it: refer to it",
                        )
        elif rtype == "databricks_mws_permission_assignment":
            principal = model.literal(body.get("principal_id"))
            if principal:
                created.add(("principal", principal))
        elif rtype == "databricks_job":
            watched = (body.get("trigger") or {}).get("model", {}).get("securable_name")
            if watched:
                name = model.literal(watched) or watched
                need(
                    address,
                    "trigger.model.securable_name",
                    "securable_exists",
                    ("model", name),
                    f"is triggered by updates of model {name}, which is not created before it: depend on it",
                )
            for table in (body.get("trigger") or {}).get("table_update", {}).get("table_names", []):
                name = model.literal(table) or table
                need(
                    address,
                    "trigger.table_update.table_names",
                    "trigger_table",
                    ("table", name),
                    f"is triggered by {name}, which no resource it waits for creates (a metrics table appears only "
                    "with its monitor's first refresh): start the job otherwise",
                )
            run_as = (body.get("run_as") or {}).get("service_principal_name")
            principal = _as_principal(model, run_as) if run_as else None
            if (
                principal
                and principal.startswith("sp:")
                and not any(
                    a.startswith("databricks_service_principal.") and f"sp:{found[a].get('display_name')}" == principal
                    for a in found
                )
            ):
                findings.append(
                    Finding(
                        "run_permission",
                        address,
                        "run_as.service_principal_name",
                        f"runs as {principal[3:]!r}, which the stack does not create: the deployer "
                        "needs its Service Principal User role (a prerequisite to list)",
                    )
                )
        model.creates[address] = created

    runners = _job_runners(model)
    names = {model.literal(b.get("name")): a for a, b in found.items() if a.startswith("databricks_job.")}
    for address, body in found.items():
        if not address.startswith("databricks_job."):
            continue
        run_as = _as_principal(model, (body.get("run_as") or {}).get("service_principal_name"))
        for i, task in enumerate(body.get("task", [])):
            child = model.literal((task.get("run_job_task") or {}).get("job_id"))
            if child and child.startswith("job:") and run_as not in runners.get(child.removeprefix("job:"), set()):
                findings.append(
                    Finding(
                        "run_permission",
                        address,
                        f"task[{i}].run_job_task.job_id",
                        f"starts {child.removeprefix('job:')} as {run_as}, which has no "
                        "CAN_MANAGE_RUN on it: add it to that job's databricks_permissions",
                    )
                )
    if prerequisites.ci_principal:
        for job_name in prerequisites.ci_jobs:
            job = names.get(job_name)
            if job is None:
                findings.append(
                    Finding(
                        "run_permission",
                        "stack",
                        "databricks_job",
                        f"CI runs the job {job_name!r}, which the stack does not declare",
                    )
                )
            elif prerequisites.ci_principal not in runners.get(job, set()):
                findings.append(
                    Finding(
                        "run_permission",
                        job,
                        "databricks_permissions",
                        f"CI signs in as {prerequisites.ci_principal[3:]!r} to run it, which has no "
                        "CAN_MANAGE_RUN on it: grant it in the job's databricks_permissions",
                    )
                )
    return sorted(set(findings), key=lambda f: (f.rule, f.address, f.attribute))


def rules_broken(findings: Iterable[Finding]) -> set[str]:
    return {f.rule for f in findings}
