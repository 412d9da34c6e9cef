"""Shared fixtures: one Spark session and one synthesis of every stack for the whole test session (of each worker
process under `make test`), and an isolated local state (MLOPS_HOME) per module."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from tests.support.stacks import CODE_VERSION, load_stacks

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

# Variables that would send the jobs' state or effects somewhere else than the test's own MLOPS_HOME.
_OUTSIDE_STATE = (
    "MLOPS_TASK_VALUES_DIR",
    "MLOPS_TASK_KEY",
    "MLOPS_NOTIFY_WEBHOOK_URL",
    "MLOPS_DYNAMODB_ENDPOINT",
    "DATABRICKS_RUNTIME_VERSION",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    # MLflow 3's set_experiment exports the active experiment id: another module's database has no such experiment.
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test`'s workers (pytest-xdist, ``--dist loadfile``) take a test file at a time, but the fault suite as a
    whole: its files share one session's champion, trained by a model workflow killed half-way (tests/faults), which
    a second worker would train again."""
    if config.getvalue("dist") != "loadfile":
        return None  # another --dist given: xdist's own scheduler for it
    from xdist.scheduler import LoadFileScheduling

    class FilesAndTheFaultSuite(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/faults" if nodeid.startswith("tests/faults/") else super()._split_scope(nodeid)

    return FilesAndTheFaultSuite(config, log)


@pytest.fixture(scope="session")
def spark():
    """The process's one local Spark session (the jobs use the same one through ``local.spark.local_spark``)."""
    from local.spark import local_spark

    return local_spark()


@pytest.fixture(scope="module")
def mlops_home(tmp_path_factory):
    """A fresh MLOPS_HOME (warehouse, MLflow database, serving state) for the tests of one module."""
    home = tmp_path_factory.mktemp("mlops_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        for name in _OUTSIDE_STATE:
            patch.delenv(name, raising=False)
        yield home


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """The synth output directory (cdktf.out, as `cdktn synth` writes it): the one synthesis of the session."""
    from infra.main import build_app

    outdir = tmp_path_factory.mktemp("cdktf.out")
    build_app(outdir=str(outdir), code_version=CODE_VERSION).synth()
    return outdir


@pytest.fixture(scope="session")
def _synthesized(synth_dir) -> dict[str, dict]:
    return load_stacks(synth_dir)


@pytest.fixture
def synthesized(_synthesized) -> dict[str, dict]:
    """Every environment's stack as Terraform JSON: a fresh deep copy per test, so mutation tests edit it freely."""
    return copy.deepcopy(_synthesized)
