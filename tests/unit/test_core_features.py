"""Examples and features: the label, the scheduled-date window, the hourly weather features and the point-in-time
join. The property that matters most: nothing observed after scheduled departure reaches a flight. A weather row of
hour H is the report of about H:51 (precipitation accumulated up to it), so it is available only from H + 1h."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from jobs.core.split import deterministic_sample, held_out_start
from models.flight_delay.columns import FEATURE_COLUMNS, FLIGHT_KEY
from models.flight_delay.data import (
    LABEL,
    SCHEDULED_DEPARTURE,
    between_dates,
    prepare_flights,
)
from models.flight_delay.features import (
    FEATURE_TIME,
    WEATHER_FEATURES,
    flight_examples,
    point_in_time_join,
    weather_features,
)

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


def flight_row(origin: str, n: int, arr_delay: float | None, minute: int = 0, **overrides) -> dict:
    """A raw flight from ``origin`` scheduled at ``minute`` past hour ``n`` after T0."""
    t = hour(n)
    return (
        dict(
            year=t.year,
            month=t.month,
            day=t.day,
            dep_time=1.0,
            sched_dep_time=t.hour * 100 + minute,
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
            minute=minute,
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


def test_the_exact_scheduled_departure_is_the_scheduled_hour_plus_the_minutes_of_sched_dep_time(spark):
    flights = flights_df(
        spark,
        [
            flight_row("EWR", 7, 1.0, flight=1, minute=5),
            flight_row("EWR", 7, 1.0, flight=2),
            flight_row("EWR", 7, 1.0, flight=3, sched_dep_time=None),  # unknown minutes: the start of the hour
            flight_row("EWR", 7, 1.0, flight=4, sched_dep_time=1775),  # not a minute: the start of the hour
        ],
    )

    departures = {r["flight"]: r[SCHEDULED_DEPARTURE] for r in prepare_flights(flights).collect()}

    assert departures == {1: hour(7) + timedelta(minutes=5), 2: hour(7), 3: hour(7), 4: hour(7)}


def test_a_flight_gets_the_latest_weather_of_its_origin_available_at_its_scheduled_departure(spark):
    # Given readings at 14:00, 16:00 and 17:00 (UTC): each available one hour later, at the end of its hour
    weather = weather_features(
        weather_df(
            spark,
            [
                weather_row("EWR", 4, temp=14.0),
                weather_row("EWR", 6, temp=16.0),
                weather_row("EWR", 7, temp=17.0),  # the report of ~17:51: after every 17:xx departure
                weather_row("JFK", 6, temp=99.0),  # another airport
            ],
        )
    )
    flights = prepare_flights(
        flights_df(
            spark,
            [
                flight_row("EWR", 7, 1.0, flight=1, minute=5),  # 17:05: the 16:00 row, not the 17:00 one
                flight_row("EWR", 7, 1.0, flight=2),  # 17:00 sharp: the 16:00 row, available exactly then
                flight_row("EWR", 6, 1.0, flight=3, minute=59),  # 16:59: the 16:00 row is not available yet
                flight_row("EWR", 8, 1.0, flight=4),  # 18:00 sharp: the 17:00 row
                flight_row("JFK", 7, 1.0, flight=5, minute=30),
                flight_row("LGA", 7, 1.0, flight=6),  # no weather at all for this airport
            ],
        )
    )

    # When
    joined = {r["flight"]: r for r in point_in_time_join(flights, weather).collect()}

    # Then
    assert {f: (r["temp"], r[FEATURE_TIME]) for f, r in joined.items()} == {
        1: (16.0, hour(6)),
        2: (16.0, hour(6)),
        3: (14.0, hour(4)),
        4: (17.0, hour(7)),
        5: (99.0, hour(6)),
        6: (None, None),
    }


def test_weather_measured_more_than_the_staleness_limit_before_departure_is_missing(spark):
    # Given readings at 10:00 and then none until 20:00 (UTC)
    weather = weather_features(weather_df(spark, [weather_row("EWR", 0, temp=10.0), weather_row("EWR", 10, temp=20.0)]))
    flights = prepare_flights(
        flights_df(
            spark,
            [
                flight_row("EWR", 6, 1.0, flight=1),  # 16:00: the 10:00 row is 6 hours old, the limit
                flight_row("EWR", 6, 1.0, flight=2, minute=5),  # 16:05: 6 h 05 min old
                flight_row("EWR", 10, 1.0, flight=3, minute=30),  # 20:30: 20:00 not available yet, 10:00 too old
                flight_row("EWR", 11, 1.0, flight=4),  # 21:00: the 20:00 row
            ],
        )
    )

    # When
    joined = {r["flight"]: r for r in point_in_time_join(flights, weather, max_staleness_hours=6).collect()}

    # Then
    assert {f: (r["temp"], r[FEATURE_TIME]) for f, r in joined.items()} == {
        1: (10.0, hour(0)),
        2: (None, None),
        3: (None, None),
        4: (20.0, hour(10)),
    }


def test_no_flight_ever_sees_weather_that_became_available_after_its_scheduled_departure(spark):
    # Given readings every 3 hours, and flights at every hour at minutes 0, 5, 30 and 59
    readings = [weather_row(o, n, temp=float(n)) for o in ("EWR", "JFK") for n in range(0, 48, 3)]
    departures = [
        flight_row(o, n, 1.0, flight=i, minute=(0, 5, 30, 59)[i % 4])
        for i, (o, n) in enumerate((o, n) for o in ("EWR", "JFK") for n in range(48))
    ]
    weather = weather_features(weather_df(spark, readings))
    flights = prepare_flights(flights_df(spark, departures))

    # When
    joined = point_in_time_join(flights, weather).collect()

    # Then every flight is there; those of the first hour have no earlier reading, all others have one
    assert len(joined) == len(departures)
    with_weather = [r for r in joined if r[FEATURE_TIME] is not None]
    assert len(with_weather) == len(departures) - 2
    available_from = [r[FEATURE_TIME] + timedelta(hours=1) for r in with_weather]
    assert all(t <= r[SCHEDULED_DEPARTURE] for t, r in zip(available_from, with_weather, strict=True))
    # temp encodes the reading's hour: each flight got the latest reading of an hour ending by its departure.
    assert all(r["temp"] == float(((r["time_hour"] - T0) // timedelta(hours=1) - 1) // 3 * 3) for r in with_weather)


def test_join_refuses_flights_that_already_have_feature_columns(spark):
    weather = weather_features(weather_df(spark, [weather_row("EWR", 0)]))
    flights = prepare_flights(flights_df(spark, [flight_row("EWR", 0, 1.0)])).withColumnRenamed("distance", "temp")

    with pytest.raises(ValueError, match=r"flights already have feature columns \['temp'\]"):
        point_in_time_join(flights, weather)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_staleness_hours": -1}, "max_staleness_hours must be >= 0, got -1"),
        ({"available_after": timedelta(hours=-1)}, "available_after must not be negative, got -1 day, 23:00:00"),
        ({"departure": "dep_minute"}, r"flights lack the columns \['dep_minute'\] of the point-in-time join"),
    ],
)
def test_join_rejects_arguments_that_would_lose_its_guarantee(spark, arguments, message):
    weather = weather_features(weather_df(spark, [weather_row("EWR", 0)]))
    flights = prepare_flights(flights_df(spark, [flight_row("EWR", 1, 1.0)]))

    with pytest.raises(ValueError, match=message):
        point_in_time_join(flights, weather, **arguments)


def test_flight_examples_have_the_model_columns_and_the_label(spark):
    weather = weather_features(weather_df(spark, [weather_row("EWR", -1, temp=5.0)]))
    flights = flights_df(spark, [flight_row("EWR", 0, 20.0), flight_row("EWR", 0, None, flight=2)])

    examples = flight_examples(flights, weather, date(2013, 1, 1), date(2013, 1, 1)).collect()

    assert len(examples) == 1
    assert set(FEATURE_COLUMNS) | {LABEL} <= set(examples[0].asDict())
    assert (examples[0]["temp"], examples[0][LABEL]) == (5.0, 1)


# ---- sampling and the time split --------------------------------------------------------------------------------


def test_deterministic_sample_picks_the_same_rows_however_the_data_is_partitioned(spark):
    flights = prepare_flights(flights_df(spark, [flight_row("EWR", n % 24, 1.0, flight=n) for n in range(200)]))

    one = {r["flight"] for r in deterministic_sample(flights.repartition(1), 50, seed=7, key=FLIGHT_KEY).collect()}
    four = {r["flight"] for r in deterministic_sample(flights.repartition(4), 50, seed=7, key=FLIGHT_KEY).collect()}
    other_seed = {r["flight"] for r in deterministic_sample(flights, 50, seed=8, key=FLIGHT_KEY).collect()}

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
