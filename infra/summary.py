"""A per-environment summary of synthesized stacks: resource counts by type and grants per principal.

Reads the Terraform JSON only (no CDK Terrain import), so it also works on a `cdktf.out/` written by `cdktn synth`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_SP_REFERENCE = re.compile(r"^\$\{databricks_service_principal\.([^.]+)\.application_id\}$")


@dataclass(frozen=True)
class StackSummary:
    name: str
    resource_counts: dict[str, int]
    # securable ("catalog prod", "model prod.ml.<model>") -> principal -> privileges
    grants: dict[str, dict[str, list[str]]]
    bindings: list[tuple[str, str]]


def load_stacks(outdir: Path) -> dict[str, dict]:
    stacks_dir = Path(outdir) / "stacks"
    if not stacks_dir.is_dir():
        raise FileNotFoundError(
            f"no synthesized stacks under {stacks_dir}; run `mlops synth` or `npx cdktn synth` first"
        )
    return {p.name: json.loads((p / "cdk.tf.json").read_text()) for p in sorted(stacks_dir.iterdir()) if p.is_dir()}


def _principal_label(stack: dict, principal: str) -> str:
    match = _SP_REFERENCE.match(principal)
    if not match:
        return principal
    sp = stack["resource"]["databricks_service_principal"][match.group(1)]
    return f"{sp['display_name']} (service principal)"


def _securable_label(stack: dict, grants_body: dict) -> str:
    for kind in ("catalog", "schema", "model", "table"):
        if kind in grants_body:
            reference = grants_body[kind]
            match = re.match(r"^\$\{(databricks_\w+)\.([^.]+)\.\w+\}$", reference)
            if match:
                target = stack["resource"][match.group(1)][match.group(2)]
                parts = [target.get("catalog_name"), target.get("schema_name"), target.get("name")]
                resolved = [p for p in parts if p and not p.startswith("${")]
                reference = ".".join(resolved) if len(resolved) == len([p for p in parts if p]) else target["name"]
            return f"{kind} {reference}"
    return "other"


def summarize(name: str, stack: dict) -> StackSummary:
    resources = stack.get("resource", {})
    counts = Counter({rtype: len(bodies) for rtype, bodies in resources.items()})
    grants: dict[str, dict[str, list[str]]] = {}
    for body in resources.get("databricks_grants", {}).values():
        securable = _securable_label(stack, body)
        for grant in body["grant"]:
            grants.setdefault(securable, {})[_principal_label(stack, grant["principal"])] = list(grant["privileges"])
    bindings = sorted(
        (str(b["workspace_id"]), b["binding_type"]) for b in resources.get("databricks_workspace_binding", {}).values()
    )
    return StackSummary(name, dict(sorted(counts.items())), grants, bindings)
