"""`mlops init model` end to end: scaffolds of both problem types, written by the command into a temporary copy of the
project's models package, pass their own generated tests on the local Spark session, as `pytest` runs them in a
project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MODELS = {"demo_classifier": "classification", "demo_regressor": "regression"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A root holding a copy of the project's models package (flight_delay included: the environments load it) and
    a scaffold of each problem type, made by the command as a user runs it."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "models", root / "models", ignore=shutil.ignore_patterns("__pycache__"))
    for name, problem in MODELS.items():
        assert main(["init", "model", name, "--problem", problem, "--root", str(root)]) == 0
    return root


def test_the_generated_tests_pass_on_the_local_spark_session(project, tmp_path):
    tests = [project / "tests" / "models" / f"test_{name}.py" for name in MODELS]
    assert all(path.is_file() for path in tests)
    environ = {
        **os.environ,
        # The copy's models package first, so `models.<name>` is the scaffold; the repository's tests package (the
        # session's Spark fixture, tests/conftest.py) after it.
        "PYTHONPATH": os.pathsep.join([str(project), str(REPO)]),
        "MLOPS_HOME": str(tmp_path / "mlops_home"),
    }
    command = [
        str(Path(sys.executable).parent / "pytest"),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.conftest",
        "--rootdir",
        str(project),
        *map(str, tests),
    ]
    result = subprocess.run(command, cwd=project, env=environ, capture_output=True, text=True, timeout=900)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    # Every generated test ran and passed, for both models (which exist only in the copy).
    assert "12 passed" in report, report
