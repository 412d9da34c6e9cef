"""Flights -> airport-hours: the key, what the schedule says of each hour, and the label.

An airport-hour is a New York airport (``origin``) and a UTC hour (``hour_start``, the flights' ``time_hour``) in
which at least one flight is scheduled to leave it; ``obs_date`` is the local scheduled date of its flights. What the
schedule says is known long in advance: how many flights are scheduled in the hour, in the hour before and in the
hour after (a cancelled flight was scheduled: it counts), the local hour of day, weekday and month. The label is
measured: the mean ``dep_delay`` of the flights that departed; a cancelled flight (``dep_delay`` missing) has no
delay and is left out of it, and an hour whose flights were all cancelled has no label.

The neighbouring hours are counted over the rows given, so the counts of a window's first and last hours need the
hours just outside it: ``airport_hours`` counts before it narrows to the window (the callers hand it a day either
side). At local midnight no flight is scheduled, so a day's own rows give its counts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from models.airport_delay.errors import AirportDelayDataError
from spec.columns import LABEL

OBS_DATE = "obs_date"
ORIGIN = "origin"
HOUR_START = "hour_start"
KEY = (OBS_DATE, ORIGIN, HOUR_START)
SCHEDULE_FEATURES = (
    "hour_of_day",
    "weekday",
    "month_of_year",
    "scheduled_departures",
    "scheduled_departures_prev_hour",
    "scheduled_departures_next_hour",
)
DEPARTED = "departed_count"
CANCELLED = "cancelled_count"
# What the rows must carry: the schedule's columns (a landed file has them), and the delay for the label.
SCHEDULE_INPUT = ("year", "month", "day", "hour", "origin", "time_hour")
DELAY_INPUT = "dep_delay"

_HOUR = timedelta(hours=1)


def _require(rows: DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise AirportDelayDataError(f"{what} lack the columns {missing} (they have {rows.columns})")


def _delay(rows: DataFrame) -> Column:
    """The departure delay, null when the flight was cancelled: missing is null, or NaN when pandas data reached
    Spark without Arrow."""
    return F.nanvl(rows[DELAY_INPUT].cast("double"), F.lit(None).cast("double"))


def _flight_rows(rows: DataFrame, with_delay: bool) -> DataFrame:
    _require(rows, SCHEDULE_INPUT + ((DELAY_INPUT,) if with_delay else ()), "flight rows")
    columns = [
        F.make_date(rows["year"].cast("int"), rows["month"].cast("int"), rows["day"].cast("int")).alias(OBS_DATE),
        rows["origin"].cast("string").alias(ORIGIN),
        rows["time_hour"].cast("timestamp").alias(HOUR_START),
        rows["hour"].cast("int").alias("_local_hour"),
    ]
    if with_delay:
        columns.append(_delay(rows).alias("_delay"))
    return rows.select(*columns).where(
        F.col(ORIGIN).isNotNull() & F.col(HOUR_START).isNotNull() & F.col(OBS_DATE).isNotNull()
    )


def airport_hours(rows: DataFrame, start: date | None, end: date | None, *, with_label: bool) -> DataFrame:
    """Raw or landed flight rows -> one row per airport-hour with a scheduled departure, local dates in [start, end]
    (all when either is None): the key and ``SCHEDULE_FEATURES``; with ``with_label``, also the label and its
    details, for the hours where at least one flight departed (only those)."""
    if start is not None and end is not None and start > end:
        raise AirportDelayDataError(f"start date {start} is after end date {end}")
    flights = _flight_rows(rows, with_label)
    if start is not None and end is not None:
        # The neighbours of the window's edge hours, and no more.
        flights = flights.where(
            F.col(OBS_DATE).between(F.lit(start - timedelta(days=1)), F.lit(end + timedelta(days=1)))
        )
    measures = [F.count(F.lit(1)).alias("scheduled_departures"), F.min("_local_hour").alias("hour_of_day")]
    if with_label:
        measures += [
            F.avg("_delay").alias(LABEL),
            F.count("_delay").alias(DEPARTED),
            F.sum(F.when(F.col("_delay").isNull(), 1).otherwise(0)).cast("long").alias(CANCELLED),
        ]
    hours = flights.groupBy(*KEY).agg(*measures)
    # Hours with a scheduled departure, in order per airport: the row before (after) is the neighbouring hour only if
    # it is exactly an hour earlier (later); otherwise nothing was scheduled in that hour.
    by_airport = Window.partitionBy(ORIGIN).orderBy(HOUR_START)
    count = F.col("scheduled_departures")

    def neighbour(shift: Callable[..., Column], hour: Column) -> Column:
        adjacent = shift(HOUR_START, 1).over(by_airport) == hour
        return F.when(adjacent, shift(count, 1).over(by_airport)).otherwise(F.lit(0)).cast("double")

    out = hours.select(
        *KEY,
        F.col("hour_of_day").cast("double").alias("hour_of_day"),
        F.dayofweek(OBS_DATE).cast("double").alias("weekday"),
        F.month(OBS_DATE).cast("double").alias("month_of_year"),
        count.cast("double").alias("scheduled_departures"),
        neighbour(F.lag, F.col(HOUR_START) - F.lit(_HOUR)).alias("scheduled_departures_prev_hour"),
        neighbour(F.lead, F.col(HOUR_START) + F.lit(_HOUR)).alias("scheduled_departures_next_hour"),
        *((F.col(LABEL), F.col(DEPARTED), F.col(CANCELLED)) if with_label else ()),
    )
    if with_label:
        out = out.where(F.col(DEPARTED) > 0)
    if start is not None and end is not None:
        out = out.where(F.col(OBS_DATE).between(F.lit(start), F.lit(end)))
    return out


def hour_labels(rows: DataFrame, start: date, end: date) -> DataFrame:
    """Raw flight rows -> the key, the label and its details of the airport-hours of [start, end] with a label."""
    return airport_hours(rows, start, end, with_label=True).select(*KEY, LABEL, DEPARTED, CANCELLED)


def hours_around(start: date, end: date, column: str = "time_hour") -> list[tuple[str, str, datetime]]:
    """What to read of an hourly table (``column``, UTC) for the airport-hours of the local dates [start, end]: from
    two days before (UTC against local dates, the previous day's last hours, the weather's lead and staleness) to two
    days after. A narrowing of what is read (the tables port's ``filters``); the exact window is applied after."""
    return [
        (column, ">=", datetime.combine(start - timedelta(days=2), datetime.min.time(), UTC)),
        (column, "<", datetime.combine(end + timedelta(days=2), datetime.min.time(), UTC)),
    ]
