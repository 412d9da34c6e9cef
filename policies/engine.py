"""Evaluates the Rego rules of this folder in-process (regopy, i.e. rego-cpp), with no OPA binary.

Each ``policies/<rule>.rego`` is ``package mlops.<rule>`` and defines ``findings`` (a set of
``{"address", "msg"}``) and ``deny`` (their messages, for conftest / ``opa eval``). ``lib.rego`` turns a synthesized
``cdk.tf.json``, a ``terraform show -json`` plan or an already normalized document into one list of resources, so the
same rules run over all three (see the comment at the top of ``lib.rego`` and ``docs/policies.md``).

The rules' configuration (``data.mlops.config``) is built from ``spec.config.ENVIRONMENTS`` by :func:`policy_data`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regopy import Input, Interpreter, NodeKind
from regopy.rego_shared import (
    rego_free_output,
    rego_node_get,
    rego_node_size,
    rego_node_type,
    rego_node_value,
    rego_output_node,
    rego_output_ok,
    rego_output_string,
    rego_query,
)

from spec import access
from spec.config import ENVIRONMENTS, Environment
from spec.errors import MlopsError

POLICY_DIR = Path(__file__).resolve().parent
LIB_MODULE = "lib"
_PACKAGE = re.compile(r"^package\s+([\w.]+)\s*$", re.MULTILINE)


@dataclass(frozen=True, order=True)
class Violation:
    """One finding: which rule, which resource (Terraform address) and what to do about it."""

    rule: str
    address: str
    message: str


class PolicyInputError(MlopsError):
    """The document cannot be checked: its environment is unknown or has no configuration."""


class PolicyEngineError(MlopsError):
    """The Rego interpreter failed (a rule does not compile or a built-in raised)."""


def rule_names(policy_dir: Path = POLICY_DIR) -> list[str]:
    """The rules, by file stem; each file must declare ``package mlops.<stem>``."""
    names = []
    for path in sorted(policy_dir.glob("*.rego")):
        match = _PACKAGE.search(path.read_text(encoding="utf-8"))
        expected = f"mlops.{path.stem}"
        if not match or match.group(1) != expected:
            found = match.group(1) if match else "no package line"
            raise PolicyEngineError(f"{path.name}: expected 'package {expected}', found {found!r}")
        if path.stem != LIB_MODULE:
            names.append(path.stem)
    if not names:
        raise PolicyEngineError(f"no rules (*.rego besides {LIB_MODULE}.rego) in {policy_dir}")
    return names


def _environment_config(env: Environment) -> dict[str, Any]:
    return {
        "catalog": env.catalog,
        "data_scientists_group": env.data_scientists_group,
        "service_principal": env.service_principal,
        # A string: ids above 2**53 do not survive JSON numbers; None when the `workspaces` stack creates it.
        "workspace_id": None if env.workspace_id is None else str(env.workspace_id),
        "read_only_from": list(env.read_only_from),
        # Promotions wait for a person of the approvers group (promotion.approval manual, for any model).
        "manual_approval": access.has_manual_approval(env),
        "approvers_group": env.approvers,
    }


def policy_config(environments: Mapping[str, Environment] = ENVIRONMENTS) -> dict[str, Any]:
    """What the rules need to know about the environments, taken from ``spec.config`` and ``spec.access``."""
    return {
        "protected_environments": [name for name, env in environments.items() if env.data_scientist_access != "write"],
        "read_privileges": list(access.READ_PRIVILEGES),
        "write_privileges": sorted(access.WRITE_PRIVILEGES),
        "tagging_privileges": sorted(access.TAGGING_PRIVILEGES),
        "environments": {name: _environment_config(env) for name, env in environments.items()},
    }


def policy_data(environments: Mapping[str, Environment] = ENVIRONMENTS) -> dict[str, Any]:
    """The data document for conftest / opa (``--data FILE``): ``data.mlops.config``."""
    return {"mlops": {"config": policy_config(environments)}}


class _Session:
    """One interpreter with every module, the config and one input loaded."""

    def __init__(self, document: Mapping[str, Any], config: Mapping[str, Any], policy_dir: Path) -> None:
        self.rules = rule_names(policy_dir)
        self._rego = Interpreter()
        for path in sorted(policy_dir.glob("*.rego")):
            self._rego.add_module(path.name, path.read_text(encoding="utf-8"))
        self._rego.add_data({"mlops": {"config": dict(config)}})
        self._rego.set_input(Input(dict(document)))

    def value(self, query: str) -> Any:
        """The value of ``query``, or None when it is undefined.

        Read node by node: regopy's ``Output`` parses rego-cpp's JSON text, which does not escape quotes inside
        strings (a cluster policy definition is a JSON string) and prints floats with six decimals.
        """
        output = rego_query(self._rego._impl, query)
        try:
            if not rego_output_ok(output):
                raise PolicyEngineError(f"{query}: {rego_output_string(output)}")
            # Results > Result > Terms > value. Walked by hand: asking rego-cpp for the expressions of an undefined
            # result aborts the process (std::out_of_range).
            results = rego_output_node(output)
            if rego_node_type(results) != NodeKind.Results or rego_node_size(results) == 0:
                return None
            terms = rego_node_get(rego_node_get(results, 0), 0)
            if rego_node_type(terms) != NodeKind.Terms or rego_node_size(terms) == 0:
                return None
            return _to_python(rego_node_get(terms, 0))
        finally:
            rego_free_output(output)


def _to_python(node: Any) -> Any:
    kind = rego_node_type(node)
    if kind in (NodeKind.Term, NodeKind.Scalar):
        return _to_python(rego_node_get(node, 0))
    children = [rego_node_get(node, i) for i in range(rego_node_size(node))]
    if kind == NodeKind.Object:
        items = [(rego_node_get(item, 0), rego_node_get(item, 1)) for item in children]
        return {_to_python(key): _to_python(value) for key, value in items}
    if kind in (NodeKind.Array, NodeKind.Set):
        return [_to_python(child) for child in children]
    if kind == NodeKind.String:
        return _string(rego_node_value(node))
    if kind == NodeKind.Int:
        return int(rego_node_value(node))
    if kind == NodeKind.Float:
        return float(rego_node_value(node))
    if kind == NodeKind.Boolean:
        return rego_node_value(node) == "true"
    if kind == NodeKind.Null:
        return None
    raise PolicyEngineError(f"unexpected Rego value of kind {NodeKind(kind).name}")


def _string(raw: str) -> str:
    # A string a built-in returned (concat, format_int) comes back as its JSON token, quotes included.
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw[1:-1]
    return raw


def evaluate(
    document: Mapping[str, Any],
    *,
    environment: str | None = None,
    config: Mapping[str, Any] | None = None,
    policy_dir: Path = POLICY_DIR,
) -> list[Violation]:
    """Every violation in ``document`` (a cdk.tf.json, a plan JSON or a normalized document), sorted.

    ``environment`` names the stack when the document does not (a plan); ``config`` defaults to
    :func:`policy_config` of ``spec.config``. Raises :class:`PolicyInputError` when the environment cannot be
    told or has no configuration: a rule that cannot see its configuration would pass silently.
    """
    if not isinstance(document, Mapping):
        raise PolicyInputError(f"a policy input must be a JSON object, got {type(document).__name__}")
    config = policy_config() if config is None else config
    if environment is not None:
        document = {**document, "environment": environment}
    session = _Session(document, config, policy_dir)
    env = session.value("data.mlops.lib.environment")
    if env is None:
        raise PolicyInputError(
            "cannot tell which environment this document is for: pass environment= (mlops policy --env)"
        )
    if env not in config.get("environments", {}):
        known = ", ".join(config.get("environments", {}))
        raise PolicyInputError(f"environment {env!r} has no policy configuration; known: {known}")
    # One query for all rules: each query evaluates lib.resources afresh.
    query = "{" + ", ".join(f'"{rule}": data.mlops.{rule}.findings' for rule in session.rules) + "}"
    findings = session.value(query)
    if findings is None:
        raise PolicyEngineError(f"the rules evaluated to undefined: {query}")
    return sorted({Violation(rule, f["address"], f["msg"]) for rule in session.rules for f in findings[rule]})


def environment_of(document: Mapping[str, Any], policy_dir: Path = POLICY_DIR) -> str | None:
    """The environment ``lib.rego`` reads from ``document`` (None when it cannot tell)."""
    return _Session(document, policy_config(), policy_dir).value("data.mlops.lib.environment")


def normalized(document: Mapping[str, Any], policy_dir: Path = POLICY_DIR) -> dict[str, Any]:
    """The document as the rules see it: ``{"environment", "resources", "providers"}`` (for debugging and docs)."""
    session = _Session(document, policy_config(), policy_dir)
    view = session.value('{"resources": data.mlops.lib.resources, "providers": data.mlops.lib.providers}')
    return {"environment": session.value("data.mlops.lib.environment"), **view}


def load(path: Path) -> dict[str, Any]:
    """Reads a JSON document (cdk.tf.json or plan), with the file named in the error."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise PolicyInputError(f"{path}: cannot read a JSON document: {e}") from e
    if not isinstance(document, dict):
        raise PolicyInputError(f"{path}: a policy input must be a JSON object")
    return document
