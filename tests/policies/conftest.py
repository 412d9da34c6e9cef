"""Shared fixtures for the policy tests: the real stacks, synthesized once per session, and fixture loading."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(relative: str) -> dict:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A cdktf output directory with every environment's stack, from infra.main.build_app."""
    from infra.main import build_app

    outdir = tmp_path_factory.mktemp("policy-cdktf.out")
    build_app(outdir=str(outdir)).synth()
    assert sorted((outdir / "stacks").glob("*/cdk.tf.json")), "no stack was synthesized"
    return outdir


@pytest.fixture(scope="session")
def _real_stacks(synth_dir) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted((synth_dir / "stacks").glob("*/cdk.tf.json"))}


@pytest.fixture
def real_stacks(_real_stacks) -> dict[str, dict]:
    """A fresh deep copy per test: mutation tests edit it freely."""
    return copy.deepcopy(_real_stacks)
