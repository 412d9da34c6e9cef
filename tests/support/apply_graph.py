"""Terraform's apply order, read from a synthesized stack: what each resource waits for, and where it does not.

Terraform creates a resource after everything it refers to (``${type.name.attr}``) or lists in ``depends_on``, and
in parallel with everything else. A resource that names another resource of the same stack by a literal string
(``catalog_name = "prod"``) instead of a reference therefore races it: the catalog may not exist yet. The same goes
for a workspace object that names the jobs' service principal before its workspace assignment exists.

``literal_names`` and ``principal_races`` report those, as (resource address, attribute path, explanation).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_REFERENCE = re.compile(r"\$\{([a-z_][a-z0-9_]*)\.([A-Za-z0-9_\-]+)(?:\.[^}]*)?\}")
# Keys whose values are prose or labels, never the name of another resource.
_FREE_TEXT = frozenset({"//", "comment", "description", "tags", "custom_tags", "properties", "lifecycle", "provider"})
_ACCOUNT_PROVIDER = "databricks.account"


@dataclass(frozen=True)
class Finding:
    address: str
    attribute: str
    message: str


def resources(stack: dict) -> dict[str, dict]:
    """Every resource by address ``type.name``."""
    return {
        f"{rtype}.{name}": body for rtype, bodies in stack.get("resource", {}).items() for name, body in bodies.items()
    }


def _leaves(value: object, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key not in _FREE_TEXT:
                yield from _leaves(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _leaves(inner, f"{path}[{i}]")


def direct_dependencies(body: dict, known: set[str]) -> set[str]:
    found = {f"{t}.{n}" for _, text in _leaves(body) for t, n in _REFERENCE.findall(text)}
    found |= set(body.get("depends_on", []))
    return found & known


def dependencies(stack: dict) -> dict[str, set[str]]:
    """Each resource's transitive dependencies: everything Terraform creates before it."""
    found = resources(stack)
    direct = {address: direct_dependencies(body, set(found)) for address, body in found.items()}
    closed: dict[str, set[str]] = {}

    def close(address: str, visiting: frozenset[str]) -> set[str]:
        if address not in closed:
            result: set[str] = set()
            for dep in direct[address] - visiting:
                result |= {dep} | close(dep, visiting | {address})
            closed[address] = result
        return closed[address]

    for address in found:
        close(address, frozenset())
    return closed


def _literal(value: object) -> str | None:
    return value if isinstance(value, str) and "${" not in value else None


def declared_names(stack: dict) -> dict[str, list[re.Pattern[str]]]:
    """For each resource that creates something other resources name, the patterns of a literal mention of it:
    the catalog ``c`` (``c``, ``c.<...>``, ``/Volumes/c/...``), a schema ``c.s``, a volume, a registered model, a
    service principal's display name, a SQL warehouse's name."""
    found = resources(stack)
    catalogs = {
        address: _literal(body.get("name"))
        for address, body in found.items()
        if address.startswith("databricks_catalog.")
    }

    def catalog_of(body: dict) -> str | None:
        literal = _literal(body.get("catalog_name"))
        if literal:
            return literal
        match = _REFERENCE.search(str(body.get("catalog_name", "")))
        if match:
            target = found.get(f"{match.group(1)}.{match.group(2)}", {})
            return _literal(target.get("name")) if match.group(1) == "databricks_catalog" else catalog_of(target)
        return None

    def schema_of(body: dict) -> str | None:
        literal = _literal(body.get("schema_name"))
        if literal:
            return literal
        match = _REFERENCE.search(str(body.get("schema_name", "")))
        return _literal(found.get(f"{match.group(1)}.{match.group(2)}", {}).get("name")) if match else None

    def dotted(*parts: str) -> list[re.Pattern[str]]:
        name = ".".join(parts)
        patterns = [re.compile(rf"^{re.escape(name)}(\..+)?$")]
        patterns.append(re.compile(rf"/Volumes/{re.escape('/'.join(parts))}(/|$)"))
        return patterns

    names: dict[str, list[re.Pattern[str]]] = {}
    for address, catalog in catalogs.items():
        if catalog:
            names[address] = dotted(catalog)
    for address, body in found.items():
        rtype = address.split(".")[0]
        if rtype in ("databricks_schema", "databricks_volume", "databricks_registered_model"):
            catalog, own = catalog_of(body), _literal(body.get("name"))
            parts = [catalog, own] if rtype == "databricks_schema" else [catalog, schema_of(body), own]
            if all(parts):
                names[address] = dotted(*parts)
        elif rtype == "databricks_service_principal" and _literal(body.get("display_name")):
            names[address] = [re.compile(rf"^{re.escape(body['display_name'])}$")]
        elif rtype == "databricks_sql_endpoint" and _literal(body.get("name")):
            names[address] = [re.compile(rf"^{re.escape(body['name'])}$")]
    return names


def literal_names(stack: dict) -> list[Finding]:
    """Attributes that name another resource of the stack literally while the resource does not wait for it."""
    found = resources(stack)
    names = declared_names(stack)
    deps = dependencies(stack)
    findings = []
    for address, body in found.items():
        for attribute, text in _leaves(body):
            if attribute == "name" or attribute.startswith("depends_on"):
                continue
            for target, patterns in names.items():
                if target != address and target not in deps[address] and any(p.search(text) for p in patterns):
                    findings.append(
                        Finding(
                            address,
                            attribute,
                            f"{address}.{attribute} = {text!r} names {target} literally but does not wait for it: "
                            f"refer to it (${{{target}.<attribute>}}) or add it to depends_on",
                        )
                    )
    # A literal catalog_name/schema_name pair names the schema even when each part alone is ambiguous.
    return sorted(set(findings), key=lambda f: (f.address, f.attribute))


def principal_races(stack: dict) -> list[Finding]:
    """Workspace objects that name a service principal of the stack before its workspace assignment exists."""
    found = resources(stack)
    deps = dependencies(stack)
    assignments = {
        address: body for address, body in found.items() if address.startswith("databricks_mws_permission_assignment.")
    }
    findings = []
    for address, body in found.items():
        if body.get("provider") == _ACCOUNT_PROVIDER:
            continue  # account-level objects (the assignment, the federation policy) come with the principal
        for attribute, text in _leaves(body):
            for rtype, name in _REFERENCE.findall(text):
                principal = f"{rtype}.{name}"
                if rtype != "databricks_service_principal":
                    continue
                waits = [a for a, b in assignments.items() if principal in direct_dependencies(b, set(found))]
                if not waits:
                    findings.append(Finding(address, attribute, f"{principal} has no workspace assignment"))
                elif not set(waits) & deps[address]:
                    findings.append(
                        Finding(
                            address,
                            attribute,
                            f"{address}.{attribute} names {principal} but does not wait for its workspace "
                            f"assignment {waits[0]}: add it to depends_on",
                        )
                    )
    return sorted(set(findings), key=lambda f: (f.address, f.attribute))
