"""Shared fixtures for the policy tests: the real stacks (the session's one synthesis, tests/conftest.py) and fixture
loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(relative: str) -> dict:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


@pytest.fixture
def real_stacks(synthesized) -> dict[str, dict]:
    """Every environment's stack, a fresh deep copy per test: mutation tests edit it freely."""
    return synthesized
