"""The base of every configuration model: frozen, no unknown field, and a ``ConfigError`` naming the field.

pydantic validates each model from its declaration (types, ``Literal``, ranges, patterns) and its model validators
(the rules across fields). Whatever it rejects is re-raised as one ``ConfigError`` whose message names the
environment (or the model, when one is built on its own) and the dotted path of every field at fault, e.g.
``environment 'prod': field 'monitoring.min_window_rows' must be >= 1, got 0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from spec.errors import MlopsError

# Patterns the models share, and how an error message says what they mean (pydantic would print the regex).
IDENTIFIER = r"^[a-z][a-z0-9_]*$"
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
HTTPS = r"^https://"
# One segment of a federation subject: neither a path separator nor a space.
SEGMENT = r"^[^/\s]+$"
REPOSITORY = r"^[^/\s]+/[^/\s]+$"
GITLAB_PROJECT = r"^[^/\s:]+(/[^/\s:]+)+$"
# A branch or tag in a GitLab subject claim, whose parts are separated by ':'.
GIT_REF = r"^[^\s:]+$"
STORAGE_ROOT = r"^(abfss|s3|gs)://[^/\s]+"
ENDPOINT_NAME = r"^[a-z][a-z0-9-]*$"
HTTP = r"^https?://"
STORAGE_ACCOUNT = r"^[a-z0-9]{3,24}$"
WORKSPACE_PATH = r"^/"
DYNAMODB_NAME = r"^[A-Za-z0-9_.-]+$"
PATTERN_MEANINGS = {
    IDENTIFIER: "a lowercase identifier (letters, digits and underscores, starting with a letter)",
    UUID: "a UUID (lowercase hex)",
    EMAIL: "an email address",
    HTTPS: "an https URL",
    SEGMENT: "a name without '/' or spaces",
    REPOSITORY: "<owner>/<repo>",
    GITLAB_PROJECT: "<group>/<project> (subgroups allowed: <group>/<subgroup>/<project>)",
    GIT_REF: "a branch or tag name without spaces or ':'",
    STORAGE_ROOT: "an abfss://, s3:// or gs:// location",
    ENDPOINT_NAME: "lowercase letters, digits and dashes, starting with a letter",
    HTTP: "an http(s) URL",
    STORAGE_ACCOUNT: "an Azure storage account name (3 to 24 lowercase letters and digits)",
    WORKSPACE_PATH: "a workspace path starting with '/'",
    DYNAMODB_NAME: "letters, digits, '_', '-' and '.' only (a DynamoDB table name)",
}


class ConfigError(MlopsError):
    """A configuration value is invalid; the message names the environment (or the model) and the field.

    ``problems`` holds each ``(field, problem)`` pair, the field as a dotted path from the environment."""

    def __init__(self, message: str, problems: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class FieldProblems(ValueError):
    """Raised by a model validator: the fields (dotted, relative to the model) it finds at fault, and why.

    A ``ValueError`` because pydantic turns that into a validation error at the model's location; ``ConfigError``
    then joins the two paths, so a rule across fields still names the field a person must change."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field} {problem}" for field, problem in problems))
        self.problems = tuple(problems)


class Problems:
    """Collects a model validator's findings, so one error reports every rule broken, not only the first."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, field: str, problem: str) -> None:
        self.found.append((field, problem))

    def raise_any(self) -> None:
        if self.found:
            raise FieldProblems(self.found)


class _RaisesConfigError(type(BaseModel)):
    """Turns pydantic's ValidationError into a ConfigError where a model is built, and only there.

    Not in ``__init__``: pydantic calls a model's own ``__init__`` for every nested model it validates, which would
    turn the nested error into a ConfigError before the environment could add its name and the path to the field."""

    def __call__(cls, *args: Any, **data: Any) -> Any:
        try:
            return super().__call__(*args, **data)
        except ValidationError as error:
            raise config_error(cls._subject(data), error, cls) from error


class ConfigModel(BaseModel, metaclass=_RaisesConfigError):
    """Frozen plain data: no unknown field, every value validated on construction and on ``replace``."""

    # protected_namespaces: ``model_name`` is a field of Environment, not a pydantic method.
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    @classmethod
    def _subject(cls, data: Mapping[str, Any]) -> str:
        """Who the error message is about: the environment, or the model built on its own."""
        return cls.__name__

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as error:
            raise config_error(cls._subject(obj if isinstance(obj, Mapping) else {}), error, cls) from error

    def replace(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` (as ``dataclasses.replace``). A mapping given for a field that holds a
        model updates that model's fields (recursively), so ``env.replace(monitoring={"min_window_rows": 0})`` is
        checked, and named, as part of the environment."""
        return type(self)(**self._merged(changes))

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's copy, except that an update is validated (pydantic's own skips validation): a frozen config
        never holds a value its rules refuse."""
        return self.replace(**update) if update else super().model_copy(deep=deep)

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields}

    def _merged(self, change: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = self._fields()
        for name, value in change.items():
            current = values.get(name)
            values[name] = current._merged(value) if isinstance(current, ConfigModel) and _is_update(value) else value
        return values


def _is_update(change: Any) -> bool:
    return isinstance(change, Mapping) and not isinstance(change, BaseModel)


def config_error(subject: str, error: ValidationError, model: type[BaseModel] | None = None) -> ConfigError:
    """One ``ConfigError`` for every problem pydantic found, each with its dotted field path (and the field's
    description, where it says what the value is for)."""
    problems: list[tuple[str, str]] = []
    for detail in error.errors():
        location = _dotted(detail["loc"])
        cause = (detail.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblems):
            problems += [(_join(location, field), problem) for field, problem in cause.problems]
        else:
            described = _description(model, detail["loc"])
            problems.append((location, _problem(detail) + (f" ({described})" if described else "")))
    message = "; ".join(f"field {field!r} {problem}" if field else problem for field, problem in problems)
    return ConfigError(f"{subject}: {message}", problems)


def _description(model: type[BaseModel] | None, location: Sequence[int | str]) -> str | None:
    """The ``Field(description=...)`` of the field at ``location``, found through the nested models."""
    info = None
    for part in location:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        nested = [t for t in (info.annotation, *get_args(info.annotation)) if isinstance(t, type)]
        model = next((t for t in nested if issubclass(t, BaseModel)), None)
    return info.description if info is not None else None


def _dotted(location: Sequence[int | str]) -> str:
    """pydantic's location as a person writes it: ``compute.node_types[ibm]``, ``alerts.emails[0]``."""
    parts: list[str] = []
    for part in location:
        if part == "[key]" and parts:  # the key of a mapping is at fault, not its value
            parts[-1] = f"[{parts[-1].lstrip('.')}]"
        elif isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}" if parts else str(part))
    return "".join(parts)


def _join(base: str, field: str) -> str:
    return f"{base}.{field}" if base and field else base or field


def _problem(detail: Mapping[str, Any]) -> str:
    """pydantic's finding, said as the rest of the project says it: "must be ..., got ..."."""
    kind, ctx, value = detail["type"], detail.get("ctx") or {}, detail.get("input")
    got = "" if isinstance(value, Mapping | BaseModel) else f", got {value!r}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", detail["msg"]))
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}{got}"
    if kind == "greater_than":
        return f"must be > {ctx['gt']}{got}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']}{got}"
    if kind == "less_than":
        return f"must be < {ctx['lt']}{got}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}{got}"
    if kind == "string_pattern_mismatch":
        pattern = ctx["pattern"]
        return f"must be {PATTERN_MEANINGS.get(pattern, f'text matching {pattern}')}{got}"
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return f"must not be empty{got}"
    return f"{detail['msg'][:1].lower()}{detail['msg'][1:]}{got}"
