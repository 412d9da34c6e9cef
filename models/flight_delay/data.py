"""Flights -> labelled examples, known at scheduled departure.

The label is ``arr_delay > 15`` minutes. Cancelled or diverted flights have no arrival delay: they are not
examples (neither late nor on time). Only what the schedule says is kept: nothing measured after departure
(``dep_time``, ``dep_delay``, ``arr_time``, ``air_time``, ``arr_delay`` itself) leaves this module.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from models.flight_delay.columns import (
    ARRIVAL_DELAY_THRESHOLD_MINUTES,
    DEPARTURE_HOUR,
    SCHEDULED_DATE,
    SCHEDULED_DEPARTURE,
)
from spec.columns import LABEL


def scheduled_date(flights: DataFrame) -> Column:
    """The local (New York) scheduled departure date of a raw flight row."""
    return F.make_date(flights["year"].cast("int"), flights["month"].cast("int"), flights["day"].cast("int"))


def scheduled_departure(flights: DataFrame) -> Column:
    """The exact scheduled departure of a raw flight row (UTC timestamp): its scheduled hour ``time_hour`` plus the
    minutes of ``sched_dep_time`` (local HHMM; New York is whole hours from UTC, so its minutes are the UTC ones).

    Missing or impossible minutes give the start of the hour: never later than the real scheduled departure, so
    the point-in-time join can only be stricter, never leak.
    """
    hhmm = F.nanvl(flights["sched_dep_time"].cast("double"), F.lit(None).cast("double"))
    minute = F.floor(hhmm % 100)
    minutes = F.when(minute.between(0, 59), minute).otherwise(F.lit(0)).cast("int")
    return flights["time_hour"].cast("timestamp") + F.make_dt_interval(mins=minutes)


def _schedule(flights: DataFrame) -> list[Column]:
    """The flight key and what the schedule tells, from the raw columns (``SCHEDULE_COLUMNS``)."""
    sched_date = scheduled_date(flights)
    return [
        sched_date.alias(SCHEDULED_DATE),
        F.col("time_hour").cast("timestamp").alias(DEPARTURE_HOUR),
        scheduled_departure(flights).alias(SCHEDULED_DEPARTURE),
        F.col("carrier").cast("string").alias("carrier"),
        F.col("flight").cast("long").alias("flight"),
        F.col("origin").cast("string").alias("origin"),
        F.col("dest").cast("string").alias("dest"),
        F.col("distance").cast("double").alias("distance"),
        F.col("hour").cast("int").alias("sched_hour"),
        F.col("month").cast("int").alias("month"),
        F.dayofweek(sched_date).alias("day_of_week"),
    ]


def arrived(flights: DataFrame) -> Column:
    """The flight arrived: it has an arrival delay. Missing is null, or NaN when pandas data reached Spark without
    Arrow: both mean "did not arrive" (cancelled or diverted)."""
    return F.col("arr_delay").isNotNull() & ~F.isnan(F.col("arr_delay"))


def prepare_flights(flights: DataFrame) -> DataFrame:
    """Raw flights -> one row per flight that arrived, with the label and what the schedule tells."""
    return flights.where(arrived(flights)).select(
        *_schedule(flights),
        (F.col("arr_delay") > ARRIVAL_DELAY_THRESHOLD_MINUTES).cast("int").alias(LABEL),
    )


def scheduled_flights(flights: DataFrame) -> DataFrame:
    """Raw or landed flights -> one row per scheduled flight, with what the schedule tells and no label: what is
    scored, before anyone knows whether it will arrive (cancelled flights are scored too)."""
    return flights.select(*_schedule(flights))


def flight_labels(flights: DataFrame) -> DataFrame:
    """Raw flights -> the flight key with the arrival delay and the label, for the flights that arrived: what the
    labels job joins into the predictions once the flights are over."""
    return flights.where(arrived(flights)).select(
        scheduled_date(flights).alias(SCHEDULED_DATE),
        F.col("time_hour").cast("timestamp").alias(DEPARTURE_HOUR),
        F.col("carrier").cast("string").alias("carrier"),
        F.col("flight").cast("long").alias("flight"),
        F.col("origin").cast("string").alias("origin"),
        F.col("dest").cast("string").alias("dest"),
        F.col("arr_delay").cast("double").alias("arr_delay"),
        (F.col("arr_delay") > ARRIVAL_DELAY_THRESHOLD_MINUTES).cast("int").alias(LABEL),
    )


def hours_around(start: date, end: date) -> list[tuple[str, str, datetime]]:
    """What to load of an hourly table (``time_hour``, UTC) for flights scheduled (New York dates) in [start, end]:
    a day either side, which covers the time zone and the weather of the evening before. A narrowing of what is
    read (the tables port's ``filters``); the exact window is applied after."""
    return [
        ("time_hour", ">=", datetime.combine(start - timedelta(days=1), datetime.min.time(), UTC)),
        ("time_hour", "<", datetime.combine(end + timedelta(days=2), datetime.min.time(), UTC)),
    ]


def between_dates(df: DataFrame, start: date, end: date, column: str = SCHEDULED_DATE) -> DataFrame:
    """Rows whose ``column`` date lies in [start, end] (both inclusive)."""
    if start > end:
        raise ValueError(f"start date {start} is after end date {end}")
    return df.where(F.col(column).between(F.lit(start), F.lit(end)))
