"""`mlops` prints a user's error as one line and exits non-zero; a bug keeps its traceback.

The project's own errors (``spec.errors.MlopsError``) are caught once, in ``cli.main``; the commands no longer catch
``ValueError``, so a stray ``ValueError`` or ``KeyError`` of a bug is not printed as if the user had erred."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from spec.errors import MlopsError

ROOT = Path(__file__).resolve().parents[2]


def test_a_user_error_is_one_line_on_stderr_and_exit_code_1(capsys):
    code = main(["land", "--env", "dev", "--model", "flight_delay", "--date", "2013-02-01", "--to-date", "2013-01-01"])

    assert code == 1
    assert capsys.readouterr().err == "mlops land: start date 2013-02-01 is after end date 2013-01-01\n"


def test_a_missing_serving_token_keeps_the_exit_code_2_of_mlops_predict(mlops_home, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("MLOPS_SERVING_TOKEN", raising=False)
    body = tmp_path / "request.json"
    body.write_text("{}")

    code = main(["predict", "--env", "dev", "--model", "flight_delay", "--json", str(body)])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("mlops predict: no serving token: set MLOPS_SERVING_TOKEN or start the gateway once")
    assert err.count("\n") == 1


@pytest.mark.parametrize("bug", [ValueError("a bug"), KeyError("a bug")])
def test_a_bug_in_a_command_is_not_caught(monkeypatch, bug):
    import local.landing

    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(local.landing, "land_rows", broken)

    with pytest.raises(type(bug)) as raised:
        main(["land", "--env", "dev", "--model", "flight_delay", "--date", "2013-01-01"])
    assert raised.value is bug


def test_from_the_shell_a_user_error_prints_no_traceback():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "land",
            "--env",
            "dev",
            "--model",
            "flight_delay",
            "--date",
            "2013-02-01",
            "--to-date",
            "2013-01-01",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.strip().splitlines() == ["mlops land: start date 2013-02-01 is after end date 2013-01-01"]


def test_the_project_errors_are_mlops_errors_and_not_value_or_runtime_errors():
    from jobs.platform.job import JobError
    from jobs.platform.monitors import MonitorRefreshError
    from jobs.platform.online_store import OnlineStoreError
    from jobs.platform.serving import StateError
    from local.adapters import RunEndedError
    from local.alerts import RetrainingInProgress
    from local.dynalite import DynaliteError
    from local.landing import LandingError
    from local.serving.auth import TokenError
    from local.serving.gateway import HttpError
    from local.serving.payload import PayloadError
    from policies.engine import PolicyEngineError, PolicyInputError
    from spec.config import ConfigError
    from spec.workflows import WorkflowError

    errors = [
        ConfigError, WorkflowError, JobError, MonitorRefreshError, OnlineStoreError, StateError, RunEndedError,
        RetrainingInProgress, DynaliteError, LandingError, TokenError, HttpError, PayloadError, PolicyEngineError,
        PolicyInputError,
    ]  # fmt: skip
    assert [e.__name__ for e in errors if not issubclass(e, MlopsError)] == []
    assert [e.__name__ for e in errors if issubclass(e, ValueError | RuntimeError)] == []
