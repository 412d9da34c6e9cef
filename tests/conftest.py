"""Shared fixtures: one Spark session for the whole test session, and an isolated local state (MLOPS_HOME)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

# Variables that would send the jobs' state or effects somewhere else than the test's own MLOPS_HOME.
_OUTSIDE_STATE = (
    "MLOPS_TASK_VALUES_DIR",
    "MLOPS_TASK_KEY",
    "MLOPS_NOTIFY_WEBHOOK_URL",
    "DATABRICKS_RUNTIME_VERSION",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
)


@pytest.fixture(scope="session")
def spark():
    """The process's one local Spark session (the jobs use the same one through ``get_spark``)."""
    from jobs.platform.spark import get_spark

    return get_spark()


@pytest.fixture(scope="module")
def mlops_home(tmp_path_factory):
    """A fresh MLOPS_HOME (warehouse, MLflow database, serving state) for the tests of one module."""
    home = tmp_path_factory.mktemp("mlops_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        for name in _OUTSIDE_STATE:
            patch.delenv(name, raising=False)
        yield home
