"""Landing for the streaming job on this machine: a day of the model's streamed source (``ModelSpec.stream_source``)
per file, in the landing folder the streaming job reads.

Only the declared landing columns land (``ModelSpec.landing_columns``), cast to their declared types: what is known
when a row arrives. The label reaches the predictions later, through the labels job, as in production.

The rows come from the package's ``load_sources``. A package may also define ``landing_days(rows) -> pandas.Series``
(optional): the day each row of its streamed source lands on; then the window is read once and split by day,
otherwise it is read a day at a time (``load_sources(day, day)``), which costs a read of the sources per day.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa

from jobs.platform import landing as platform_landing
from local.adapters import LocalLanding
from local.paths import landing_dir
from spec.config import Environment
from spec.errors import MlopsError
from spec.model import ModelSpec


def landing_arrow_schema(model: ModelSpec) -> pa.Schema:
    """The model's landing columns as the Arrow schema the files are written with; a ``LandingError`` when the model
    streams nothing."""
    _streamed_source(model)
    return platform_landing.landing_arrow_schema(model)


class LandingError(MlopsError):
    """Nothing can be landed for the days asked (an empty or reversed window, or a model that streams nothing)."""


def _streamed_source(model: ModelSpec) -> str:
    if model.stream_source is None:
        raise LandingError(
            f"model {model.name!r} streams no source (its declaration has no stream_source): nothing lands for it; "
            "score it in batch (`mlops run batch-inference`)"
        )
    return model.stream_source


def land_rows(env: Environment, start: date, end: date) -> list[Path]:
    """One file per day of [start, end] with the rows of that day of the environment's model's streamed source (a
    day without rows lands no file); a day landed again replaces its file. Returns the files written."""
    from jobs.platform.model import load_model

    model = env.model
    source = _streamed_source(model)
    if start > end:
        raise LandingError(f"start date {start} is after end date {end}")
    landing = LocalLanding(landing_dir(env.name, source))
    written, found = [], 0
    for day, table in platform_landing.daily_tables(load_model(model.name), source, start, end):
        found += table.num_rows
        written.append(landing.land(table, day.isoformat()))
    if not found:
        raise LandingError(f"model {model.name!r} has no {source} rows between {start} and {end}")
    return written
