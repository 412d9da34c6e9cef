"""Examples and features: the label, the scheduled-date window, the hourly weather features and the point-in-time
join. The property that matters most: nothing measured after scheduled departure reaches a flight."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from jobs.core.data import (
    LABEL,
    between_dates,
    deterministic_sample,
    held_out_start,
    prepare_flights,
)
from jobs.core.features import (
    FEATURE_TIME,
    WEATHER_FEATURES,
    flight_examples,
    point_in_time_join,
    weather_features,
)
from jobs.core.model import FEATURE_COLUMNS

T0 = datetime(2013, 1, 1, 10)  # UTC; the session time zone is UTC
POST_DEPARTURE = ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time", "tailnum")


def hour(n: int) -> datetime:
    return T0 + timedelta(hours=n)


_WEATHER_SCHEMA = (
    "origin string, temp double, dewp double, humid double, wind_speed double, precip double, pressure double, "
    "visib double, wind_dir double, wind_gust double, time_hour timestamp"
)
_FLIGHT_SCHEMA = (
    "year long, month long, day long, dep_time double, sched_dep_time long, dep_delay double, arr_time double, "
    "sched_arr_time long, arr_delay double, carrier string, flight long, tailnum string, origin string, "
    "dest string, air_time double, distance long, hour long, minute long, time_hour timestamp"
)


def weather_row(origin: str, n: int, **values: float | None) -> dict:
    """A raw weather reading of ``origin`` at hour ``n`` after T0; every feature 1.0 unless given."""
    return (
        {c: 1.0 for c in WEATHER_FEATURES}
        | {"wind_dir": 10.0, "wind_gust": None}
        | values
        | {"origin": origin, "time_hour": hour(n)}
    )


def flight_row(origin: str, n: int, arr_delay: float | None, **overrides) -> dict:
    """A raw flight from ``origin`` scheduled at hour ``n`` after T0."""
    t = hour(n)
    return (
        dict(
            year=t.year,
            month=t.month,
            day=t.day,
            dep_time=1.0,
            sched_dep_time=500,
            dep_delay=3.0,
            arr_time=2.0,
            sched_arr_time=800,
            arr_delay=arr_delay,
            carrier="UA",
            flight=1,
            tailnum="N1",
            origin=origin,
            dest="IAH",
            air_time=100.0,
            distance=1400,
            hour=t.hour,
            minute=0,
            time_hour=t,
        )
        | overrides
    )


def weather_df(spark, rows: list[dict]):
    return spark.createDataFrame(rows, schema=_WEATHER_SCHEMA)


def flights_df(spark, rows: list[dict]):
    return spark.createDataFrame(rows, schema=_FLIGHT_SCHEMA)


# ---- the label and what the schedule tells ---------------------------------------------------------------------


def test_label_is_arrival_more_than_15_minutes_late_and_cancelled_flights_are_not_examples(spark):
    flights = flights_df(
        spark,
        [
            flight_row("EWR", 0, 15.0, flight=1),
            flight_row("EWR", 0, 16.0, flight=2),
            flight_row("EWR", 0, -5.0, flight=3),
            flight_row("EWR", 0, None, flight=4),  # cancelled or diverted: no arrival delay
            flight_row("EWR", 0, float("nan"), flight=5),  # pandas' missing value, reached Spark as NaN
        ],
    )

    prepared = {r["flight"]: r[LABEL] for r in prepare_flights(flights).collect()}

    assert prepared == {1: 0, 2: 1, 3: 0}


def test_prepared_flights_carry_nothing_measured_after_departure(spark):
    flights = flights_df(spark, [flight_row("EWR", 0, 30.0)])

    prepared = prepare_flights(flights)

    assert set(prepared.columns).isdisjoint(POST_DEPARTURE)
    assert set(FEATURE_COLUMNS).isdisjoint(POST_DEPARTURE)
    row = prepared.first()
    assert (row["sched_date"], row["sched_hour"], row["month"], row["day_of_week"]) == (date(2013, 1, 1), 10, 1, 3)


def test_window_of_scheduled_dates_is_inclusive(spark):
    flights = flights_df(spark, [flight_row("EWR", 24 * d, 1.0, flight=d) for d in range(5)])

    kept = between_dates(prepare_flights(flights), date(2013, 1, 2), date(2013, 1, 4))

    assert sorted(r["flight"] for r in kept.collect()) == [1, 2, 3]


def test_window_that_ends_before_it_starts_is_an_error(spark):
    flights = prepare_flights(flights_df(spark, [flight_row("EWR", 0, 1.0)]))

    with pytest.raises(ValueError, match="after end date"):
        between_dates(flights, date(2013, 2, 1), date(2013, 1, 1))


# ---- hourly weather features -----------------------------------------------------------------------------------


def test_weather_features_average_duplicates_drop_implausible_wind_and_fill_only_from_the_past(spark):
    rows = [
        weather_row("EWR", 0, temp=30.0, pressure=1000.0),
        weather_row("EWR", 0, temp=32.0, pressure=1000.0),  # a duplicate reading of the same hour
        weather_row("EWR", 1, temp=33.0, pressure=float("nan"), wind_speed=1048.0, precip=None),
        weather_row("EWR", 2, temp=34.0, pressure=1010.0),
        weather_row("EWR", 20, temp=35.0, pressure=None),  # 18 hours after the last pressure reading
        weather_row("JFK", 1, temp=50.0, pressure=None),  # another airport: nothing to fill from
    ]

    features = {(r["origin"], r["time_hour"]): r for r in weather_features(weather_df(spark, rows)).collect()}

    assert sorted(features) == [
        ("EWR", hour(0)),
        ("EWR", hour(1)),
        ("EWR", hour(2)),
        ("EWR", hour(20)),
        ("JFK", hour(1)),
    ]
    assert features[("EWR", hour(0))]["temp"] == 31.0
    ewr1 = features[("EWR", hour(1))]
    assert (ewr1["pressure"], ewr1["precip"]) == (1000.0, 0.0)  # filled from hour 0, not from the later hour 2
    # The implausible reading is dropped; the gap is filled from hour 0's reading, never from hour 2's.
    assert ewr1["wind_speed"] == 1.0
    assert features[("EWR", hour(20))]["pressure"] is None
    assert features[("JFK", hour(1))]["pressure"] is None


# ---- the point-in-time join ------------------------------------------------------------------------------------


def test_a_flight_gets_the_weather_of_its_origin_at_the_latest_hour_not_after_departure(spark):
    weather = weather_features(
        weather_df(
            spark,
            [
                weather_row("EWR", 0, temp=10.0),
                weather_row("EWR", 2, temp=12.0),
                weather_row("EWR", 3, temp=13.0),  # after the flights below: must never be used
                weather_row("JFK", 2, temp=99.0),  # another airport
            ],
        )
    )
    flights = prepare_flights(
        flights_df(
            spark,
            [
                flight_row("EWR", 0, 1.0, flight=1),  # same hour as a reading: that reading
                flight_row("EWR", 1, 1.0, flight=2),  # no reading at 1: the one of hour 0
                flight_row("EWR", 2, 1.0, flight=3),
                flight_row("EWR", 10, 1.0, flight=4),  # latest reading (hour 3) 7 hours old: missing
                flight_row("LGA", 2, 1.0, flight=5),  # no weather at all for this airport
            ],
        )
    )

    joined = {r["flight"]: r for r in point_in_time_join(flights, weather).collect()}

    assert sorted(joined) == [1, 2, 3, 4, 5]
    assert {f: (r["temp"], r[FEATURE_TIME]) for f, r in joined.items()} == {
        1: (10.0, hour(0)),
        2: (10.0, hour(0)),
        3: (12.0, hour(2)),
        4: (None, None),
        5: (None, None),
    }


def test_no_flight_ever_sees_weather_measured_after_its_departure_hour(spark):
    readings = [weather_row(o, n, temp=float(n)) for o in ("EWR", "JFK") for n in range(0, 48, 3)]
    departures = [
        flight_row(o, n, 1.0, flight=i) for i, (o, n) in enumerate((o, n) for o in ("EWR", "JFK") for n in range(48))
    ]
    weather = weather_features(weather_df(spark, readings))
    flights = prepare_flights(flights_df(spark, departures))

    joined = point_in_time_join(flights, weather).collect()

    assert len(joined) == len(departures)
    with_weather = [r for r in joined if r[FEATURE_TIME] is not None]
    assert len(with_weather) == len(departures)
    assert all(r[FEATURE_TIME] <= r["time_hour"] < r[FEATURE_TIME] + timedelta(hours=3) for r in with_weather)
    # temp encodes the reading's hour, so it identifies which reading each flight got.
    assert all(r["temp"] == float((r["time_hour"] - T0).total_seconds() // 3600 // 3 * 3) for r in with_weather)


def test_join_refuses_flights_that_already_have_feature_columns(spark):
    weather = weather_features(weather_df(spark, [weather_row("EWR", 0)]))
    flights = prepare_flights(flights_df(spark, [flight_row("EWR", 0, 1.0)])).withColumnRenamed("distance", "temp")

    with pytest.raises(ValueError, match=r"flights already have feature columns \['temp'\]"):
        point_in_time_join(flights, weather)


def test_flight_examples_have_the_model_columns_and_the_label(spark):
    weather = weather_features(weather_df(spark, [weather_row("EWR", 0, temp=5.0)]))
    flights = flights_df(spark, [flight_row("EWR", 0, 20.0), flight_row("EWR", 0, None, flight=2)])

    examples = flight_examples(flights, weather, date(2013, 1, 1), date(2013, 1, 1)).collect()

    assert len(examples) == 1
    assert set(FEATURE_COLUMNS) | {LABEL} <= set(examples[0].asDict())
    assert (examples[0]["temp"], examples[0][LABEL]) == (5.0, 1)


# ---- sampling and the time split --------------------------------------------------------------------------------


def test_deterministic_sample_picks_the_same_rows_however_the_data_is_partitioned(spark):
    flights = prepare_flights(flights_df(spark, [flight_row("EWR", n % 24, 1.0, flight=n) for n in range(200)]))

    one = {r["flight"] for r in deterministic_sample(flights.repartition(1), 50, seed=7).collect()}
    four = {r["flight"] for r in deterministic_sample(flights.repartition(4), 50, seed=7).collect()}
    other_seed = {r["flight"] for r in deterministic_sample(flights, 50, seed=8).collect()}

    assert len(one) == 50
    assert one == four
    assert one != other_seed


def test_test_period_is_the_last_whole_days_holding_the_test_fraction():
    daily = {date(2013, 1, d): 10 for d in range(1, 11)}  # 100 rows over 10 days

    assert held_out_start(daily, 0.2) == date(2013, 1, 9)
    assert held_out_start(daily, 0.25) == date(2013, 1, 8)  # 30 rows: at least the fraction
    assert held_out_start({date(2013, 1, 1): 5, date(2013, 1, 2): 95}, 0.2) == date(2013, 1, 2)
    assert held_out_start({date(2013, 1, 1): 95, date(2013, 1, 2): 5}, 0.2) == date(2013, 1, 2)


@pytest.mark.parametrize(
    ("daily", "fraction", "message"),
    [
        ({}, 0.2, "at least 2 days, got 0"),
        ({date(2013, 1, 1): 10}, 0.2, "at least 2 days, got 1"),
        ({date(2013, 1, 1): 10, date(2013, 1, 2): 10}, 1.0, "strictly between 0 and 1"),
    ],
)
def test_time_split_rejects_what_cannot_be_split(daily, fraction, message):
    with pytest.raises(ValueError, match=message):
        held_out_start(daily, fraction)
