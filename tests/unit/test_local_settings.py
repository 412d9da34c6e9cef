"""The local runtime's settings: the MLOPS_* variables read in one place, typed, and refused by name when unusable."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from local.adapters import LocalTaskValues
from local.paths import mlops_home
from local.settings import LocalSettings, SettingsError, local_settings


def test_nothing_set_means_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    settings = local_settings({})

    assert settings == LocalSettings(home=tmp_path / ".mlops")
    assert (settings.serving_token, settings.dynamodb_endpoint, settings.notify_webhook_url) == (None, None, None)


def test_every_variable_is_read_and_an_empty_one_counts_as_unset(tmp_path):
    settings = local_settings(
        {
            "MLOPS_HOME": str(tmp_path / "home"),
            "MLOPS_SERVING_TOKEN": " secret \n",
            "MLOPS_DYNAMODB_ENDPOINT": "http://127.0.0.1:8000",
            "MLOPS_NOTIFY_WEBHOOK_URL": "",
            "MLOPS_TASK_VALUES_DIR": str(tmp_path / "values"),
            "MLOPS_TASK_KEY": "publish",
        }
    )

    assert settings.home == tmp_path / "home"
    assert settings.serving_token == "secret"
    assert settings.dynamodb_endpoint == "http://127.0.0.1:8000"
    assert settings.notify_webhook_url is None
    assert (settings.task_values_dir, settings.task_key) == (tmp_path / "values", "publish")
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"MLOPS_DYNAMODB_ENDPOINT": "127.0.0.1:8000"},
            "MLOPS_DYNAMODB_ENDPOINT must be an http(s) URL, got '127.0.0.1:8000'",
        ),
        (
            {"MLOPS_NOTIFY_WEBHOOK_URL": "hooks.example.com"},
            "MLOPS_NOTIFY_WEBHOOK_URL must be an http(s) URL, got 'hooks.example.com'",
        ),
        (
            {"MLOPS_TASK_KEY": "publish"},
            "MLOPS_TASK_KEY is set without MLOPS_TASK_VALUES_DIR: set both (a task values file) or neither",
        ),
        (
            {"MLOPS_TASK_VALUES_DIR": "/tmp/values"},
            "MLOPS_TASK_VALUES_DIR is set without MLOPS_TASK_KEY: set both (a task values file) or neither",
        ),
        (
            {"MLOPS_TASK_VALUES_DIR": "/tmp/values", "MLOPS_TASK_KEY": "a task"},
            "MLOPS_TASK_KEY must be a task key (letters, digits, - _), got 'a task'",
        ),
    ],
)
def test_an_unusable_value_is_refused_naming_the_variable(environ, message):
    with pytest.raises(SettingsError) as error:
        local_settings(environ)
    assert str(error.value) == message


def test_the_settings_follow_a_change_of_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "one"))
    assert mlops_home() == tmp_path / "one"

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "two"))
    assert mlops_home() == tmp_path / "two"
    assert Path(tmp_path / "two").is_dir()


def test_half_a_task_values_file_is_an_error_and_no_silent_memory_only_store(tmp_path):
    # Before, a key without a folder kept the values in memory: the next task never saw them, and nothing was said.
    with pytest.raises(SettingsError, match="MLOPS_TASK_KEY is set without MLOPS_TASK_VALUES_DIR"):
        LocalTaskValues.from_environ({"MLOPS_TASK_KEY": "score"})

    values = LocalTaskValues.from_environ({"MLOPS_TASK_VALUES_DIR": str(tmp_path), "MLOPS_TASK_KEY": "score"})
    assert values.path == tmp_path / "score.json"


def test_a_bad_variable_stops_a_command_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_DYNAMODB_ENDPOINT", "localhost:8000")

    code = main(["land", "--env", "dev", "--model", "flight_delay", "--date", "2013-01-01"])

    assert code == 1
    assert capsys.readouterr().err == (
        "mlops land: MLOPS_DYNAMODB_ENDPOINT must be an http(s) URL, got 'localhost:8000'\n"
    )
