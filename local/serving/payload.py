"""The gateway's request contract: the Databricks Model Serving bodies as pydantic models, and the served model's
input read from a valid invocation.

Bodies, each parsed and validated in one pass by ``Model.model_validate_json(body)`` (pydantic-core):

* ``InvocationRequest``, ``POST .../invocations``: exactly one of ``dataframe_split`` (``DataframeSplit``:
  ``columns``, ``data`` with one value per column in each row, optional ``index``), ``dataframe_records`` (a list
  of objects), ``instances`` or ``inputs``; optional ``params`` (an object) and ``client_request_id`` (a string).
  Any other key is an error.
* ``ConfigUpdate``, ``PUT /api/2.0/serving-endpoints/{name}/config``: ``served_entities`` (``name``,
  ``entity_name``, ``entity_version``) and optional ``traffic_config.routes`` (``served_entity_name``, integer
  ``traffic_percentage``). Other Databricks fields (``workload_size``, ...) have no local meaning and are ignored.
* ``ErrorBody``: every answer other than 200, ``{"error_code": ..., "message": ...}``.

``request_error`` words a ``ValidationError`` of these bodies for the caller, naming the field. The JSON parser
refuses bodies nested more than ``MAX_DEPTH`` levels, before anything recurses over them (``json.loads`` raised
``RecursionError`` at about 1,000 levels, a 500).

``InputSpec`` reads a valid invocation against the served model's signature. ``dataframe_split``,
``dataframe_records``, ``instances`` and ``inputs`` are decoded by ``mlflow.pyfunc.scoring_server.
infer_and_parse_data`` (the function ``mlflow models serve`` uses), apart from the records and split bodies of
models whose columns are all doubles and strings, whose frame the gateway builds itself (see ``_DIRECT_DTYPES``).
On top of MLflow, the gateway is strict where MLflow is lenient: columns the model does not take, values of the
wrong JSON type and empty inputs are rejected with a message naming the problem.

A column the signature marks optional may be left out: it is added as missing values (NaN, or None for a
non-numeric column), as if the caller had sent null, so a model that needs every column (a scikit-learn pipeline)
still scores the row. A required column left out is an error.

A served model logged without a signature is read against the model's declaration instead (``declared_schema``:
the features a client sends, strings for categorical ones and doubles for numeric ones, the optional ones optional),
so the same checks hold for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, get_args

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import SERVING_PARAMS_KEY, SUPPORTED_FORMATS, infer_and_parse_data
from mlflow.types import DataType, Schema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jobs.platform.serving import ServedEntity, StateError
from spec.errors import MlopsError
from spec.model import ModelSpec

FORMATS = tuple(sorted(SUPPORTED_FORMATS))
# Databricks accepts a caller-chosen id next to the data; it is logged in the inference table.
CLIENT_REQUEST_ID = "client_request_id"
# pydantic-core's JSON parser (jiter) stops at this depth, counting the body itself as the first level: a body
# nested up to MAX_DEPTH levels is parsed, one nested more deeply is refused (the test pins that limit).
MAX_DEPTH = 200


class PayloadError(MlopsError):
    """The request body is not something the model can score; the message says what is wrong (HTTP 400)."""


# --- bodies -----------------------------------------------------------------------------------------------------


class DataframeSplit(BaseModel):
    """pandas' ``split`` orientation: the column names once, then each row's values in that order."""

    model_config = ConfigDict(extra="forbid")

    columns: list[str]
    data: list[list[Any]]
    index: list[Any] | None = None

    @model_validator(mode="after")
    def _rows_match_columns(self) -> DataframeSplit:
        width = len(self.columns)
        if set(map(len, self.data)) - {width}:
            i, row = next((i, row) for i, row in enumerate(self.data) if len(row) != width)
            raise ValueError(
                f"row {i} of 'dataframe_split.data' has {_values(len(row))}, expected {width} "
                "(one per name in 'columns')"
            )
        return self

    def as_json(self) -> dict[str, Any]:
        """The body as sent, for MLflow's parser."""
        body: dict[str, Any] = {"columns": self.columns, "data": self.data}
        if self.index is not None:
            body["index"] = self.index
        return body


class InvocationRequest(BaseModel):
    """``POST /serving-endpoints/{name}/invocations``: the data in one of MLflow's four formats."""

    model_config = ConfigDict(extra="forbid")
    expected_keys: ClassVar[str] = (
        f"exactly one of {', '.join(FORMATS)} (optionally with {SERVING_PARAMS_KEY!r} and {CLIENT_REQUEST_ID!r})"
    )

    dataframe_split: DataframeSplit | None = None
    dataframe_records: list[dict[str, Any]] | None = None
    instances: Any = None
    inputs: Any = None
    params: dict[str, Any] | None = None
    client_request_id: str | None = None

    @model_validator(mode="after")
    def _one_format_with_rows(self) -> InvocationRequest:
        formats = [key for key in FORMATS if key in self.model_fields_set]
        if len(formats) != 1:
            found = f"got {', '.join(formats)}" if formats else "got none"
            raise ValueError(f"expected exactly one of {', '.join(FORMATS)}; {found}")
        data = self.data
        if (
            data is None
            or (isinstance(data, list | dict) and not data)
            or (isinstance(data, DataframeSplit) and not data.data)
        ):
            raise ValueError(f"{formats[0]!r} is empty; send at least one row")
        return self

    @property
    def format(self) -> str:
        return next(key for key in FORMATS if key in self.model_fields_set)

    @property
    def data(self) -> Any:
        return getattr(self, self.format)


class ServedEntityInput(BaseModel):
    """One of Databricks' ``served_entities``: a registered model version, served under ``name``."""

    name: str
    entity_name: str
    entity_version: str


class TrafficRoute(BaseModel):
    served_entity_name: str
    traffic_percentage: int = Field(strict=True)


class TrafficConfig(BaseModel):
    routes: list[TrafficRoute] | None = None


class ConfigUpdate(BaseModel):
    """``PUT /api/2.0/serving-endpoints/{name}/config``, Databricks' ``update_config`` body."""

    expected_keys: ClassVar[str] = "'served_entities' (optionally with 'traffic_config')"

    served_entities: list[ServedEntityInput]
    traffic_config: TrafficConfig | None = None

    def entities(self) -> list[ServedEntity]:
        """Each served entity with its route's traffic; ``StateError`` if the routes and the entities disagree (one
        entity needs no route: it takes all the traffic). The entities are checked when the state is built."""
        routes = self.traffic_config.routes if self.traffic_config is not None else None
        if routes is None:
            if len(self.served_entities) > 1:
                raise StateError("expected 'traffic_config.routes' when serving several entities")
            percent = {e.name: 100 for e in self.served_entities}
        else:
            percent = {r.served_entity_name: r.traffic_percentage for r in routes}
        unrouted = [e.name for e in self.served_entities if e.name not in percent]
        if unrouted:
            raise StateError(f"served entity {unrouted[0]!r} has no route in traffic_config")
        unknown = sorted(set(percent) - {e.name for e in self.served_entities})
        if unknown:
            raise StateError(f"routes name unknown served entities: {unknown}")
        return [ServedEntity(e.name, e.entity_name, e.entity_version, percent[e.name]) for e in self.served_entities]


class ErrorBody(BaseModel):
    """Every answer other than 200, as Databricks words it."""

    error_code: str
    message: str


# --- validation errors, worded for the caller -----------------------------------------------------------------------

_BODIES: dict[str, type[BaseModel]] = {m.__name__: m for m in (InvocationRequest, ConfigUpdate)}
# pydantic's error types, in JSON's words.
_EXPECTED = {
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
    "dict_type": "a JSON object",
    "list_type": "a JSON array",
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "int_parsing": "an integer",
}
_MOST_PROBLEMS = 3


def request_error(error: ValidationError) -> str:
    """What is wrong with a request body, naming the field: unknown keys first, then up to ``_MOST_PROBLEMS``."""
    body = _BODIES.get(error.title)
    keys = getattr(body, "expected_keys", None)
    problems = error.errors(include_url=False)
    first = problems[0]
    if first["type"] == "json_invalid":
        reason = str(first.get("ctx", {}).get("error", first["msg"]))
        raw = first["input"]
        if isinstance(raw, bytes | str) and not raw.strip():
            return "empty request body" + (f"; send a JSON object with {keys}" if keys else "")
        if reason.startswith("recursion limit exceeded"):
            return f"request body is nested too deeply (more than {MAX_DEPTH} levels)"
        return f"request body is not valid JSON: {reason}"
    if not first["loc"] and first["type"] in _EXPECTED:
        what = f"a JSON object with {keys}" if keys else _EXPECTED[first["type"]]
        return f"request body must be {what}, got {_json_type(first['input'])}"

    unknown: dict[tuple, list[str]] = {}
    for problem in problems:
        if problem["type"] == "extra_forbidden":
            unknown.setdefault(problem["loc"][:-1], []).append(repr(problem["loc"][-1]))
    messages = [_unknown_keys(body, parent, names) for parent, names in unknown.items()]
    messages += [_problem(p) for p in problems if p["type"] != "extra_forbidden"]
    more = len(messages) - _MOST_PROBLEMS
    return "; ".join(messages[:_MOST_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")


def _unknown_keys(body: type[BaseModel] | None, parent: tuple, names: list[str]) -> str:
    if not parent:
        keys = getattr(body, "expected_keys", None)
        return f"unknown key(s) {', '.join(names)}" + (f"; expected {keys}" if keys else "")
    nested = _model_at(body, parent)
    takes = f"; it takes {', '.join(nested.model_fields)}" if nested is not None else ""
    return f"unknown key(s) {', '.join(names)} in {_where(parent)!r}{takes}"


def _problem(problem: Mapping[str, Any]) -> str:
    kind, where = problem["type"], _where(problem["loc"])
    if kind == "value_error":  # raised by the models' validators, whose messages name the field
        return str(problem["ctx"]["error"])
    if kind == "missing":
        return f"{where!r} is required"
    if kind in _EXPECTED:
        return f"{where!r} must be {_EXPECTED[kind]}, got {_json_type(problem['input'])}"
    return f"{where!r}: {problem['msg']}"


def _where(loc: tuple) -> str:
    """``('served_entities', 0, 'name')`` as ``served_entities[0].name``."""
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    return where


def _model_at(body: type[BaseModel] | None, loc: tuple) -> type[BaseModel] | None:
    """The model of the object at ``loc`` inside ``body`` (through lists and optional fields), if it is one."""
    model: Any = body
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = model.model_fields[part].annotation
        while not (isinstance(model, type) and issubclass(model, BaseModel)) and get_args(model):
            model = next((a for a in get_args(model) if a is not type(None)), None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _values(n: int) -> str:
    return f"{n} value" if n == 1 else f"{n} values"


# --- the served model's input ---------------------------------------------------------------------------------------

# JSON value types each MLflow column type accepts (bool is an int in Python, hence the explicit check below).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int, float),
    "long": (int, float),
    "float": (int, float),
    "double": (int, float),
    "string": (str,),
}


# Column types whose JSON values (already checked against ``_JSON_TYPES``) the gateway turns into a column itself,
# with the dtype MLflow's parser casts them to: null is NaN in a double column and None in a string one. MLflow's
# parser builds a frame and then casts it column by column, about 1.4 ms for the 14 columns of the first model this
# project served against 0.13 ms for one ``DataFrame`` built from typed arrays. Other types go through MLflow's parser.
_DIRECT_DTYPES = {"double": np.dtype(np.float64), "string": np.dtype(object)}


def _pandas_dtype(col_type: Any) -> np.dtype:
    return np.dtype(col_type.to_pandas()) if isinstance(col_type, DataType) else np.dtype(object)


def _strings_are_object() -> bool:
    # With pandas' string inference on (the default from pandas 3), MLflow's parser keeps pandas' string dtype.
    return pd.DataFrame({"s": ["a"]})["s"].dtype == object


def declared_schema(model: ModelSpec) -> Schema:
    """What a client sends the model's endpoint, from its declaration: the features it sends, in their order,
    categorical ones as strings and numeric ones as doubles (what ``jobs.core.model.model_frame`` makes of them), the
    optional ones optional."""
    from mlflow.types import ColSpec

    return Schema(
        [
            ColSpec("string" if f.kind == "categorical" else "double", f.name, required=not f.optional)
            for f in model.features
            if f.sent_by_client
        ]
    )


class InputSpec:
    """What a served model accepts, read once from its signature when the model is loaded."""

    def __init__(self, schema: Schema | None) -> None:
        self.schema = schema
        named = schema is not None and schema.has_input_names() and not schema.is_tensor_spec()
        self.columns: tuple[str, ...] = tuple(schema.input_names()) if named else ()
        self._known = frozenset(self.columns)
        self.required: frozenset[str] = frozenset(schema.required_input_names()) if named else frozenset()
        self.optional: tuple[str, ...] = tuple(c for c in self.columns if c not in self.required)
        # MLflow casts JSON values to the signature's types, silently truncating 1.5 to 1 for a long column and
        # turning 123 into "123" for a string one; the gateway rejects such values instead.
        self.json_types: dict[str, tuple[str, tuple[type, ...]]] = {}
        self._dtypes: dict[str, np.dtype] = {}
        if named:
            for col in schema.inputs:
                accepted = _JSON_TYPES.get(str(getattr(col.type, "name", col.type)))
                if accepted is not None:
                    self.json_types[col.name] = (str(col.type.name), accepted)
                self._dtypes[col.name] = _pandas_dtype(col.type)
        self._direct = (
            named
            and all(isinstance(col.type, DataType) and col.type.name in _DIRECT_DTYPES for col in schema.inputs)
            and _strings_are_object()
        )

    def parse(self, request: InvocationRequest | Mapping[str, Any]) -> Any:
        """Model input (a DataFrame for column-based signatures) from a request; ``PayloadError`` if the model
        cannot take it. A mapping (a decoded body) is validated first (``ValidationError`` if invalid)."""
        if not isinstance(request, InvocationRequest):
            request = InvocationRequest.model_validate(request)
        fmt, data = request.format, request.data
        if self.json_types:
            if fmt == "dataframe_records":
                self._check_json_types(r.items() for r in data)
            elif fmt == "dataframe_split":
                self._check_json_types(zip(data.columns, r, strict=True) for r in data.data)
        if self._direct and (frame := self._direct_frame(fmt, data)) is not None:
            return frame
        if isinstance(data, DataframeSplit):
            data = data.as_json()
        try:
            parsed = infer_and_parse_data({fmt: data}, self.schema)
        except MlflowException as e:
            raise PayloadError(e.message) from e
        except (ValueError, TypeError) as e:
            raise PayloadError(f"{fmt!r} could not be read: {e}") from e
        if not self.columns:
            return parsed
        frame = self._as_frame(fmt, parsed)
        self.check_columns(frame)
        return self._with_optional_columns(frame)

    def _direct_frame(self, fmt: str, data: Any) -> pd.DataFrame | None:
        """The frame MLflow's parser builds, in the signature's column order and with absent optional columns
        added, for records or split data whose values ``_check_json_types`` accepted; None for anything else
        (ragged records, a split with an index or repeated columns, unknown or missing required columns), which is
        left to MLflow's parser and ``check_columns`` so the error messages stay theirs."""
        if fmt == "dataframe_records":
            names = data[0].keys()
            if any(r.keys() != names for r in data):
                return None
            rows = len(data)
            values = {c: [r[c] for r in data] for c in names}
        elif fmt == "dataframe_split":
            names, table = data.columns, data.data
            if data.index is not None or len(set(names)) != len(names):
                return None
            rows = len(table)
            values = {c: [r[i] for r in table] for i, c in enumerate(names)}
        else:
            return None
        if not values.keys() <= self._known or not self.required <= values.keys():
            return None
        try:
            return pd.DataFrame(
                {
                    c: np.array(values[c], dtype=self._dtypes[c]) if c in values else self._missing(c, rows)
                    for c in self.columns
                }
            )
        except (TypeError, ValueError, OverflowError):  # e.g. an integer too large for a double: MLflow's message
            return None

    def _missing(self, column: str, rows: int) -> np.ndarray:
        dtype = self._dtypes[column]
        if dtype.kind in "fc":
            return np.full(rows, np.nan, dtype=dtype)
        if dtype.kind == "M":
            return np.full(rows, np.datetime64("NaT"), dtype=dtype)
        return np.full(rows, None, dtype=object)

    def _with_optional_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the optional columns it lacks added as missing values (MLflow's enforcement drops an
        absent optional column, and a pipeline that selects every column then fails)."""
        absent = [c for c in self.optional if c not in frame.columns]
        if not absent:
            return frame
        return frame.assign(**{c: self._missing(c, len(frame)) for c in absent})

    def _as_frame(self, fmt: str, parsed: Any) -> pd.DataFrame:
        if isinstance(parsed, pd.DataFrame):
            return parsed
        try:
            if isinstance(parsed, dict):
                values = {k: np.atleast_1d(v) for k, v in parsed.items()}
                return pd.DataFrame(values)
            if isinstance(parsed, list) and all(isinstance(r, dict) for r in parsed):
                return pd.DataFrame(parsed)
        except ValueError as e:
            raise PayloadError(f"{fmt!r} is not a table: {e}") from e
        raise PayloadError(
            f"this model takes named columns ({', '.join(self.columns)}); send {fmt!r} as records "
            "([{column: value}, ...]) or as {column: [values]}, or use 'dataframe_split'"
        )

    def _check_json_types(self, rows: Iterable[Iterable[tuple[str, Any]]]) -> None:
        """``PayloadError`` for a null in a required column or a value of the wrong JSON type, naming the row."""
        for i, items in enumerate(rows):
            for column, value in items:
                if value is None:
                    if column in self.required:
                        raise PayloadError(f"column {column!r} is required, got null in row {i}")
                    continue
                expected = self.json_types.get(column)
                if expected is None:
                    continue
                type_name, accepted = expected
                if isinstance(value, bool) and bool not in accepted or not isinstance(value, accepted):
                    raise PayloadError(
                        f"column {column!r} expects {type_name}, got {value!r} ({type(value).__name__}) in row {i}"
                    )
                if type_name in ("integer", "long") and isinstance(value, float) and not value.is_integer():
                    raise PayloadError(f"column {column!r} expects {type_name}, got {value!r} in row {i}")

    def check_columns(self, frame: pd.DataFrame) -> None:
        if len(frame) == 0:
            raise PayloadError("the input has no rows; send at least one row")
        present = {str(c) for c in frame.columns}
        missing = sorted(self.required - present)
        extra = sorted(present - self._known)
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            problems.append(f"unexpected column(s) {', '.join(extra)}")
        if problems:
            raise PayloadError(f"{'; '.join(problems)}; the model takes {', '.join(self.columns)}")
