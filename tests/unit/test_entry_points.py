"""The job entry points fail a Databricks task the only way a python_wheel_task notices: by raising."""

from __future__ import annotations

from importlib import metadata

import pytest

from jobs.platform.job import exit_on_failure
from spec.config import ENVIRONMENTS
from spec.workflows import WheelTask, job_graphs


def _job_scripts() -> dict[str, str]:
    scripts = {
        ep.name: ep.value for ep in metadata.entry_points(group="console_scripts") if ep.name.startswith("mlops-")
    }
    assert scripts, "the project's console scripts are not installed"
    return scripts


def test_every_entry_point_a_graph_uses_is_an_installed_cli_wrapper():
    scripts = _job_scripts()
    used = {
        task.action.entry_point
        for env in ENVIRONMENTS.values()
        for graph in job_graphs(env).values()
        for task in graph.tasks
        if isinstance(task.action, WheelTask)
    }
    assert used, "no wheel task in the graphs"
    assert {name: scripts.get(name, "").rsplit(":", 1)[-1] for name in used} == {name: "cli" for name in used}


def test_a_non_zero_exit_code_raises_and_zero_returns():
    assert exit_on_failure(0) is None
    with pytest.raises(SystemExit) as exit_:
        exit_on_failure(1)
    assert exit_.value.code == 1


def test_a_job_given_a_bad_model_uri_raises_system_exit(monkeypatch, tmp_path):
    from jobs import validate

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        validate.cli(["--env", "dev", "--model-uri", "not-a-model-uri"])
    assert exit_.value.code != 0
