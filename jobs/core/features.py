"""Hourly weather features per airport, and the point-in-time join that gives each flight the weather known at
its scheduled departure: the latest hour at its origin that is not after the departure hour.

Nothing from after the departure hour can reach a flight: the forward fill of gaps only looks back, and the join
only takes feature rows at or before the flight's hour, within ``max_staleness_hours``.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.core.data import DEPARTURE_HOUR, between_dates, prepare_flights

WEATHER_KEY = ("origin", "time_hour")
WEATHER_FEATURES = ("temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib")
FEATURE_TIME = "feature_time_hour"
# Readings above this are sensor faults (the data has a 1048 mph "wind"): treated as missing.
MAX_PLAUSIBLE_WIND_SPEED_MPH = 100.0
# A gap in the readings is filled from the last reading at most this many hours earlier, and a flight takes
# weather at most this old; older weather is missing, which the model handles.
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
    timestamp: str = DEPARTURE_HOUR,
    max_staleness_hours: int = MAX_STALENESS_HOURS,
) -> DataFrame:
    """Each flight row with the feature row of its ``key`` at the latest ``timestamp`` <= its own (an as-of join).

    Adds ``feature_time_hour`` (when the features were measured) and the feature columns; they are null when no
    feature row is at most ``max_staleness_hours`` old. Flights keep every column and row they had.
    """
    feature_columns = [c for c in features.columns if c not in (key, timestamp)]
    clash = sorted(set(feature_columns + [FEATURE_TIME]) & set(flights.columns))
    if clash:
        raise ValueError(f"flights already have feature columns {clash}")
    # Both sides in one stream ordered by time: feature rows sort before flights of the same hour, so a flight's
    # window ends with the latest feature row at or before its hour. The struct keeps one row's values together.
    feature_rows = features.select(
        F.col(key),
        F.col(timestamp).alias("_ts"),
        F.lit(1).alias("_is_feature"),
        F.struct(F.col(timestamp).alias(FEATURE_TIME), *[F.col(c) for c in feature_columns]).alias("_features"),
    )
    flight_rows = flights.select("*", F.col(timestamp).alias("_ts"), F.lit(0).alias("_is_feature"))
    stream = flight_rows.unionByName(feature_rows, allowMissingColumns=True)
    history = (
        Window.partitionBy(key)
        .orderBy(F.col("_ts").asc(), F.col("_is_feature").desc())
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    latest = F.last(F.col("_features"), ignorenulls=True).over(history)
    fresh = F.col("_latest").getField(FEATURE_TIME) >= F.col("_ts") - F.expr(
        f"INTERVAL {int(max_staleness_hours)} HOURS"
    )
    joined = stream.withColumn("_latest", latest).where(F.col("_is_feature") == 0)
    return joined.select(
        *[F.col(c) for c in flights.columns],
        *[F.when(fresh, F.col("_latest").getField(c)).alias(c) for c in [FEATURE_TIME, *feature_columns]],
    )


def flight_examples(flights: DataFrame, weather_hourly: DataFrame, start: date, end: date) -> DataFrame:
    """Raw flights scheduled in [start, end] that arrived -> labelled examples with their point-in-time weather."""
    prepared = between_dates(prepare_flights(flights), start, end)
    # Only the weather that can reach these flights: from a day before the window (UTC vs local dates) to its end.
    weather = weather_hourly.select(*WEATHER_KEY, *WEATHER_FEATURES).where(
        F.col("time_hour").between(F.lit(start - timedelta(days=1)), F.lit(end + timedelta(days=2)))
    )
    return point_in_time_join(prepared, weather)
