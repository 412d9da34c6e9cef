"""Requests the serving endpoint answered, as its inference table logs them, back into rows: the request body's
records, the response's predictions, and the row each request was about (its key, which the caller names in
``client_request_id``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spec.model import ModelSpec

# A key part in a client_request_id: the parts are joined by "#", which no part may hold.
SEPARATOR = "#"
# How a part of each SQL type is written, and the pattern it is read back with. A TIMESTAMP is UTC to the minute.
_MINUTE = "%Y-%m-%dT%H:%MZ"
_PATTERNS = {
    "DATE": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "TIMESTAMP": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z"),
    "BIGINT": re.compile(r"-?\d+"),
    "INT": re.compile(r"-?\d+"),
    "DOUBLE": re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?"),
    "BOOLEAN": re.compile(r"true|false"),
    "STRING": re.compile(r"[^#]+"),
}


def _part(name: str, value: Any, sql_type: str) -> str:
    if value is None:
        raise ValueError(f"key part {name!r} is missing: a request about a row names every part of its key")
    if sql_type == "TIMESTAMP" and isinstance(value, datetime):
        return value.strftime(_MINUTE)
    if sql_type == "DATE" and isinstance(value, date):
        return value.isoformat()
    if sql_type in ("BIGINT", "INT"):
        return str(int(value))
    if sql_type == "DOUBLE":
        return repr(float(value))
    if sql_type == "BOOLEAN":
        return "true" if value else "false"
    text = str(value)
    if not text or SEPARATOR in text:
        raise ValueError(f"key part {name!r} must be a non-empty string without {SEPARATOR!r}, got {text!r}")
    return text


def _parsed(text: str, sql_type: str) -> Any:
    if sql_type == "DATE":
        return date.fromisoformat(text)
    if sql_type == "TIMESTAMP":
        return datetime.strptime(text, _MINUTE)
    if sql_type in ("BIGINT", "INT"):
        return int(text)
    if sql_type == "DOUBLE":
        return float(text)
    if sql_type == "BOOLEAN":
        return text == "true"
    return text


def key_id(spec: ModelSpec, key: Mapping[str, Any]) -> str:
    """A row's key as one string, what a caller sends as ``client_request_id`` so its answer can be labelled: the
    key's parts in ``spec.key`` order joined by "#", a DATE in ISO, a TIMESTAMP in UTC to the minute
    (``2013-03-04T15:00Z``), an integer as digits, a string as is; a ValueError naming a part that is missing or, for a
    string, empty or holding "#"."""
    return SEPARATOR.join(_part(c.name, key[c.name], c.type) for c in spec.key)


def parse_key_id(spec: ModelSpec, text: str | None) -> dict[str, Any] | None:
    """The key in ``text`` (see ``key_id``) with its parts typed, or None when it is not one of the model's keys."""
    parts = (text or "").split(SEPARATOR)
    if len(parts) != len(spec.key):
        return None
    key: dict[str, Any] = {}
    for column, part in zip(spec.key, parts, strict=True):
        if not _PATTERNS[column.type].fullmatch(part):
            return None
        try:
            key[column.name] = _parsed(part, column.type)
        except ValueError:  # a date or an instant that matches the pattern but does not exist (2013-02-30)
            return None
    return key


def request_records(body: str) -> list[dict[str, Any]]:
    """The records of a serving request body in any of the Databricks formats (dataframe_records, dataframe_split,
    instances as records, inputs as columns); a ValueError for anything else."""
    decoded = json.loads(body)
    if not isinstance(decoded, dict):
        raise ValueError("request body is not a JSON object")
    if isinstance(decoded.get("dataframe_records"), list):
        return [dict(r) for r in decoded["dataframe_records"]]
    if isinstance(decoded.get("instances"), list) and all(isinstance(r, dict) for r in decoded["instances"]):
        return [dict(r) for r in decoded["instances"]]
    split = decoded.get("dataframe_split")
    if isinstance(split, dict):
        return [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    inputs = decoded.get("inputs")
    if isinstance(inputs, dict):
        columns = {k: v if isinstance(v, list) else [v] for k, v in inputs.items()}
        rows = len(next(iter(columns.values()), []))
        return [{k: v[i] for k, v in columns.items()} for i in range(rows)]
    raise ValueError("request body has no records in a supported format")


def response_predictions(body: str) -> list[Any]:
    decoded = json.loads(body)
    if not isinstance(decoded, dict) or not isinstance(decoded.get("predictions"), list):
        raise ValueError("response body has no predictions list")
    return decoded["predictions"]
