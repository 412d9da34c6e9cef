"""Reading synthesized stacks (Terraform JSON) the way Terraform does: resources by type, without cdktf's metadata."""

from __future__ import annotations

import json
from pathlib import Path

# The commit the shared synthesis pretends to deploy (tests/conftest.py): wheel paths and job tags carry it.
CODE_VERSION = "0123456789ab"


def load_stacks(outdir: Path) -> dict[str, dict]:
    stacks = {p.name: json.loads((p / "cdk.tf.json").read_text()) for p in sorted((outdir / "stacks").iterdir())}
    assert stacks, f"no stack was synthesized under {outdir}"
    return stacks


def resources(stack: dict, resource_type: str) -> dict[str, dict]:
    """The resources of one type, by logical name, without cdktf's metadata."""
    found = stack.get("resource", {}).get(resource_type, {})
    return {name: {k: v for k, v in body.items() if k != "//"} for name, body in found.items()}


def one(stack: dict, resource_type: str) -> dict:
    found = resources(stack, resource_type)
    assert len(found) == 1, f"expected exactly one {resource_type}, found {sorted(found)}"
    return next(iter(found.values()))


def at_path(stack: dict, resource_type: str, path_suffix: str) -> tuple[str, dict]:
    """The one resource of ``resource_type`` whose construct path ends with ``path_suffix`` (name, body)."""
    found = {
        name: body
        for name, body in stack.get("resource", {}).get(resource_type, {}).items()
        if body["//"]["metadata"]["path"].endswith(path_suffix)
    }
    assert len(found) == 1, f"expected one {resource_type} at */{path_suffix}, found {sorted(found)}"
    name, body = next(iter(found.items()))
    return name, {k: v for k, v in body.items() if k != "//"}


def address(stack: dict, resource_type: str, path_suffix: str) -> str:
    """``<type>.<logical name>`` of the resource at ``path_suffix``: what references and depends_on contain."""
    return f"{resource_type}.{at_path(stack, resource_type, path_suffix)[0]}"


def resolve(stack: dict, text: str) -> str:
    """``text`` with each whole-value reference ``${type.name.attr}`` replaced by the attribute's literal value in
    the stack, followed through chains of references (what Terraform knows at plan time)."""
    import re

    match = re.fullmatch(r"\$\{([a-z_0-9]+)\.([A-Za-z0-9_\-]+)\.([a-z_]+)\}", text)
    if not match:
        return text
    rtype, name, attribute = match.groups()
    value = stack["resource"][rtype][name].get(attribute)
    assert isinstance(value, str), f"{rtype}.{name}.{attribute} is not a literal string in the stack: {value!r}"
    return resolve(stack, value)


def resources_of(stack: dict, resource_type: str, model: str) -> dict[str, dict]:
    """The resources of one type that belong to ``model`` (declared under its construct), by logical name."""
    found = stack.get("resource", {}).get(resource_type, {})
    return {
        name: {k: v for k, v in body.items() if k != "//"}
        for name, body in found.items()
        if f"/{model}/" in body["//"]["metadata"]["path"]
    }
