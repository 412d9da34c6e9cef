"""Requests the serving endpoint answered, as its inference table logs them, back into rows: the request body's
records, the response's predictions, and the flight each request was about (the caller's ``client_request_id``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

# sched_date # carrier # flight # origin # dest # time_hour (UTC, to the minute)
_KEY = re.compile(
    r"^(?P<sched_date>\d{4}-\d{2}-\d{2})#(?P<carrier>[A-Z0-9]{2})#(?P<flight>\d+)#(?P<origin>[A-Z]{3})"
    r"#(?P<dest>[A-Z]{3})#(?P<time_hour>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z)$"
)


def flight_key_id(key: Mapping[str, Any]) -> str:
    """The flight key as one string, what a caller sends as ``client_request_id`` so its answer can be labelled."""
    time_hour = key["time_hour"]
    stamp = time_hour.strftime("%Y-%m-%dT%H:%MZ") if isinstance(time_hour, datetime) else str(time_hour)
    sched_date = key["sched_date"]
    day = sched_date.isoformat() if isinstance(sched_date, date) else str(sched_date)
    return f"{day}#{key['carrier']}#{int(key['flight'])}#{key['origin']}#{key['dest']}#{stamp}"


def parse_flight_key_id(text: str | None) -> dict[str, Any] | None:
    """The flight key in ``text`` (see ``flight_key_id``), or None when it is not one."""
    match = _KEY.match(text or "")
    if not match:
        return None
    return {
        "sched_date": date.fromisoformat(match["sched_date"]),
        "carrier": match["carrier"],
        "flight": int(match["flight"]),
        "origin": match["origin"],
        "dest": match["dest"],
        "time_hour": datetime.strptime(match["time_hour"], "%Y-%m-%dT%H:%MZ"),
    }


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
