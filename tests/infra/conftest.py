"""Synthesizes every stack once per test session; tests read the Terraform JSON, as Terraform would."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

CODE_VERSION = "0123456789ab"


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> dict[str, dict]:
    from infra.main import build_app

    outdir = tmp_path_factory.mktemp("cdktf.out")
    build_app(outdir=str(outdir), code_version=CODE_VERSION).synth()
    stacks = {p.name: json.loads((p / "cdk.tf.json").read_text()) for p in sorted((outdir / "stacks").iterdir())}
    assert stacks, "no stack was synthesized"
    return stacks


def resources(stack: dict, resource_type: str) -> dict[str, dict]:
    """The resources of one type, by logical name, without cdktf's metadata."""
    found = stack.get("resource", {}).get(resource_type, {})
    return {name: {k: v for k, v in body.items() if k != "//"} for name, body in found.items()}


def one(stack: dict, resource_type: str) -> dict:
    found = resources(stack, resource_type)
    assert len(found) == 1, f"expected exactly one {resource_type}, found {sorted(found)}"
    return next(iter(found.values()))
