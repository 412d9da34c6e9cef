"""The local runtime's settings: the ``MLOPS_*`` variables of the process, read in this one place, typed, checked.

    MLOPS_HOME                 where the local state lives (default ``.mlops`` in the working directory)
    MLOPS_SERVING_TOKEN        the serving gateway's bearer token (else the token file under MLOPS_HOME)
    MLOPS_DYNAMODB_ENDPOINT    the local DynamoDB (dynalite) the online store writes to, an http(s) URL
    MLOPS_NOTIFY_WEBHOOK_URL   where alert and job notifications are POSTed, an http(s) URL
    MLOPS_TASK_VALUES_DIR      with MLOPS_TASK_KEY: the task values file of a job run outside the local runner
    MLOPS_TASK_KEY

An empty value counts as unset. A bad value is a ``SettingsError`` naming the variable, raised where the settings are
read, before anything is written. ``local_settings`` parses each distinct set of values once and looks the variables
up on every call, not once per process: the CLI starts a local DynamoDB (and the tests a fresh home) and exports its
variable for the jobs it runs. The jobs on Databricks read their arguments, not these.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jobs.platform.notify import WEBHOOK_URL_ENV
from spec.errors import MlopsError

HOME_ENV = "MLOPS_HOME"
SERVING_TOKEN_ENV = "MLOPS_SERVING_TOKEN"
DYNAMODB_ENDPOINT_ENV = "MLOPS_DYNAMODB_ENDPOINT"
TASK_VALUES_DIR_ENV = "MLOPS_TASK_VALUES_DIR"
TASK_KEY_ENV = "MLOPS_TASK_KEY"
DEFAULT_HOME = ".mlops"

_HTTP_URL = r"^https?://[^\s/]+"
# A Databricks task key: the runner names the task values file after it.
_TASK_KEY = r"^[A-Za-z0-9_\-]{1,100}$"


class SettingsError(MlopsError):
    """A variable of the local runtime has a value it cannot use; the message names the variable."""


class LocalSettings(BaseModel):
    """What the local runtime reads from its process environment, by the variables' names."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    home: Path = Field(Path(DEFAULT_HOME), alias=HOME_ENV)
    serving_token: str | None = Field(None, alias=SERVING_TOKEN_ENV, repr=False)
    dynamodb_endpoint: Annotated[str, Field(pattern=_HTTP_URL)] | None = Field(None, alias=DYNAMODB_ENDPOINT_ENV)
    notify_webhook_url: Annotated[str, Field(pattern=_HTTP_URL)] | None = Field(None, alias=WEBHOOK_URL_ENV)
    task_values_dir: Path | None = Field(None, alias=TASK_VALUES_DIR_ENV)
    task_key: Annotated[str, Field(pattern=_TASK_KEY)] | None = Field(None, alias=TASK_KEY_ENV)

    @model_validator(mode="after")
    def _task_values_need_both(self) -> Self:
        # One without the other used to keep task values in memory only, silently: a later task never saw them.
        if (self.task_values_dir is None) != (self.task_key is None):
            given, missing = (
                (TASK_VALUES_DIR_ENV, TASK_KEY_ENV) if self.task_key is None else (TASK_KEY_ENV, TASK_VALUES_DIR_ENV)
            )
            raise ValueError(f"{given} is set without {missing}: set both (a task values file) or neither")
        return self

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> LocalSettings:
        """The settings in ``environ``; a ``SettingsError`` naming each variable whose value is unusable."""
        names = {info.alias for info in cls.model_fields.values()}
        given = {name: environ[name].strip() for name in names if environ.get(name, "").strip()}
        try:
            settings = cls.model_validate(given)
        except ValidationError as error:
            raise SettingsError(_message(error)) from error
        return settings.model_copy(update={"home": settings.home.expanduser().resolve()})


def _message(error: ValidationError) -> str:
    problems = []
    for detail in error.errors():
        name = detail["loc"][0] if detail["loc"] else None
        if detail["type"] == "string_pattern_mismatch":
            what = "an http(s) URL" if detail["ctx"]["pattern"] == _HTTP_URL else "a task key (letters, digits, - _)"
            problems.append(f"{name} must be {what}, got {detail['input']!r}")
        elif detail["type"] == "value_error":
            problems.append(str(detail["ctx"]["error"]))
        else:
            problems.append(f"{name}: {detail['msg']}, got {detail['input']!r}")
    return "; ".join(problems)


def local_settings(environ: Mapping[str, str] | None = None) -> LocalSettings:
    """The local runtime's settings in ``environ`` (default: the process's environment) as they are now."""
    environ = os.environ if environ is None else environ
    # The working directory too: a relative MLOPS_HOME resolves against it.
    return _parsed(tuple(environ.get(name) for name in _NAMES), os.getcwd())


_NAMES = tuple(info.alias for info in LocalSettings.model_fields.values() if info.alias)


@lru_cache(maxsize=16)
def _parsed(values: tuple[str | None, ...], cwd: str) -> LocalSettings:
    return LocalSettings.from_environ({name: value for name, value in zip(_NAMES, values, strict=True) if value})
