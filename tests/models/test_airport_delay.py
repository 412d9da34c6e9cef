"""The airport-delay model (models/airport_delay): its declaration loads, its airport-hours and labels are right on
hand-checked rows and on real days, the weather reaches an hour only an hour before it starts, what is scored is what
is trained on, and its estimator beats the mean predictor on a held-out month."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from sklearn.metrics import mean_absolute_error, r2_score

from jobs.platform.model import load_model
from models.airport_delay import examples, labels, load_sources, row_checks, scoring_rows, source_filters
from models.airport_delay.errors import AirportDelayDataError
from models.airport_delay.hours import airport_hours
from models.airport_delay.spec import SPEC
from models.airport_delay.weather import OBSERVED_HOUR, weather_hourly, with_weather
from spec.columns import LABEL
from spec.errors import MlopsError
from spec.model import load_model_spec

_FLIGHT_SCHEMA = (
    "year bigint, month bigint, day bigint, hour bigint, minute bigint, sched_dep_time bigint, carrier string, "
    "flight bigint, origin string, dep_delay double, time_hour timestamp"
)
_WEATHER_SCHEMA = (
    "origin string, time_hour timestamp, temp double, dewp double, humid double, wind_speed double, precip double, "
    "pressure double, visib double"
)
LABEL_COLUMNS = (LABEL, "departed_count", "cancelled_count")


def _flight(local: datetime, origin: str, delay: float | None, flight: int) -> tuple:
    """A raw flight row scheduled at local (New York, EST in winter: UTC-5) time ``local``."""
    utc_hour = local.replace(minute=0) + timedelta(hours=5)
    hhmm = local.hour * 100 + local.minute
    return (local.year, local.month, local.day, local.hour, local.minute, hhmm, "UA", flight, origin, delay, utc_hour)


def _weather(origin: str, hour: datetime, temp: float, wind: float | None = 5.0) -> tuple:
    return (origin, hour, temp, 20.0, 50.0, wind, 0.0, 1010.0, 10.0)


def _by_key(df) -> dict[tuple, dict]:
    return {(r["obs_date"], r["origin"], r["hour_start"]): r.asDict() for r in df.collect()}


# The declaration and the package.


def test_the_declaration_loads_as_a_regression_model_keyed_by_airport_hour():
    spec = load_model_spec("airport_delay")

    assert spec is SPEC
    assert spec.problem_type == "regression"
    assert spec.key_names == ("obs_date", "origin", "hour_start")
    assert (spec.event_date, spec.event_time) == ("obs_date", "hour_start")
    assert spec.outputs == ("prediction",)
    assert spec.label_delay_days == 1
    assert spec.validation.primary_metric == "mean_absolute_error"
    assert dict(spec.prediction_column_types)[LABEL] == "DOUBLE"
    assert not set(spec.feature_names) & {"dep_delay", *spec.label_detail_names}


def test_the_platform_loads_the_package_with_every_callable():
    package = load_model("airport_delay")

    assert package.spec is SPEC
    assert package.scored_source == "airport_flights"
    estimator = package.build_estimator(seed=3, max_iter=7)
    assert estimator.named_steps["regress"].max_iter == 7
    assert estimator.named_steps["regress"].random_state == 3
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        package.build_estimator(depth=3)


def test_the_sources_are_the_flights_of_the_window_and_the_weather_of_the_day_before():
    frames = load_sources(date(2013, 2, 8), date(2013, 2, 9))

    flights, weather = frames["airport_flights"], frames["airport_weather"]
    assert sorted(frames) == ["airport_flights", "airport_weather"]
    assert set(zip(flights["month"], flights["day"], strict=True)) == {(2, 8), (2, 9)}
    assert set(zip(weather["month"], weather["day"], strict=True)) == {(2, 7), (2, 8), (2, 9)}
    assert str(flights["time_hour"].dtype) == "datetime64[ns, UTC]"
    with pytest.raises(MlopsError, match="after end date"):
        load_sources(date(2013, 2, 9), date(2013, 2, 8))


def test_source_filters_cover_the_tables_of_the_model():
    filters = source_filters(date(2013, 3, 1), date(2013, 3, 31))

    assert sorted(filters) == sorted((*SPEC.sources, *SPEC.feature_tables))
    assert filters["airport_weather_hourly"][0][0] == OBSERVED_HOUR


# Airport-hours and their labels, on hand-checked rows.


@pytest.fixture(scope="module")
def hand_rows(spark):
    """Local times (EST): EWR 05:xx three flights (2 and 4 minutes late, one cancelled), 06:xx two flights both
    cancelled (one null, one NaN: both mean cancelled), 07:10 one flight 10 minutes late; JFK 05:30 one flight 5
    minutes early; and EWR 23:50 the day before, outside the window, 30 minutes late."""
    nan = float("nan")
    rows = [
        _flight(datetime(2013, 1, 2, 5, 0), "EWR", 2.0, 1),
        _flight(datetime(2013, 1, 2, 5, 15), "EWR", 4.0, 2),
        _flight(datetime(2013, 1, 2, 5, 45), "EWR", None, 3),
        _flight(datetime(2013, 1, 2, 6, 0), "EWR", None, 4),
        _flight(datetime(2013, 1, 2, 6, 30), "EWR", nan, 5),
        _flight(datetime(2013, 1, 2, 7, 10), "EWR", 10.0, 6),
        _flight(datetime(2013, 1, 2, 5, 30), "JFK", -5.0, 7),
        _flight(datetime(2013, 1, 1, 23, 50), "EWR", 30.0, 8),
        # EWR 00:05 on the window's day: its previous hour (23:xx) is the day before's.
        _flight(datetime(2013, 1, 2, 0, 5), "EWR", 0.0, 9),
    ]
    return spark.createDataFrame(rows, _FLIGHT_SCHEMA)


def test_examples_of_a_window_count_the_schedule_and_average_the_departed(spark, hand_rows):
    weather = weather_hourly(spark.createDataFrame([], _WEATHER_SCHEMA))
    day = date(2013, 1, 2)

    got = _by_key(examples({"airport_flights": hand_rows}, {"airport_weather_hourly": weather}, day, day))

    ewr5 = got.pop((day, "EWR", datetime(2013, 1, 2, 10)))
    assert (ewr5["scheduled_departures"], ewr5["departed_count"], ewr5["cancelled_count"]) == (3.0, 2, 1)
    assert ewr5[LABEL] == pytest.approx(3.0)  # (2 + 4) / 2: the cancelled flight is no delay of 0
    assert (ewr5["scheduled_departures_prev_hour"], ewr5["scheduled_departures_next_hour"]) == (0.0, 2.0)
    assert (ewr5["hour_of_day"], ewr5["weekday"], ewr5["month_of_year"]) == (5.0, 4.0, 1.0)  # a Wednesday
    ewr7 = got.pop((day, "EWR", datetime(2013, 1, 2, 12)))
    # The all-cancelled 06:00 hour was scheduled: it counts as the previous hour's load.
    assert (ewr7[LABEL], ewr7["scheduled_departures_prev_hour"], ewr7["scheduled_departures_next_hour"]) == (
        10.0,
        2.0,
        0.0,
    )
    jfk5 = got.pop((day, "JFK", datetime(2013, 1, 2, 10)))
    assert (jfk5[LABEL], jfk5["scheduled_departures"], jfk5["departed_count"]) == (-5.0, 1.0, 1)
    ewr0 = got.pop((day, "EWR", datetime(2013, 1, 2, 5)))
    assert (ewr0[LABEL], ewr0["scheduled_departures_prev_hour"]) == (0.0, 1.0)  # the day before's 23:50
    # The all-cancelled hour has no label, so it is no example; the day before is outside the window.
    assert got == {}


def test_labels_are_the_examples_label_columns(spark, hand_rows):
    day = date(2013, 1, 2)
    weather = weather_hourly(spark.createDataFrame([], _WEATHER_SCHEMA))

    got = _by_key(labels({"airport_flights": hand_rows}, day, day))
    built = _by_key(examples({"airport_flights": hand_rows}, {"airport_weather_hourly": weather}, day, day))

    assert len(got) == 4
    assert got == {k: {c: v[c] for c in ("obs_date", "origin", "hour_start", *LABEL_COLUMNS)} for k, v in built.items()}


def test_scoring_rows_score_every_scheduled_hour_even_an_all_cancelled_one(spark, hand_rows):
    day = date(2013, 1, 2)
    weather = weather_hourly(spark.createDataFrame([], _WEATHER_SCHEMA))
    landed = hand_rows.drop("dep_delay")

    got = _by_key(scoring_rows(landed, {"airport_weather_hourly": weather}, day, day))

    assert len(got) == 5
    ewr6 = got[(day, "EWR", datetime(2013, 1, 2, 11))]
    assert (ewr6["scheduled_departures"], ewr6["scheduled_departures_prev_hour"]) == (2.0, 3.0)
    assert not set(LABEL_COLUMNS) & set(ewr6)


def test_row_checks_pass_the_scored_hours_and_name_what_is_wrong_with_a_bad_one(spark, hand_rows):
    day = date(2013, 1, 2)
    weather = weather_hourly(spark.createDataFrame([], _WEATHER_SCHEMA))
    scored = scoring_rows(hand_rows, {"airport_weather_hourly": weather}, day, day)
    bad = scored.limit(1).withColumn("hour_of_day", F.lit(24.0)).withColumn("scheduled_departures", F.lit(0.0))

    def reasons(rows) -> list[list[str]]:
        flagged = [F.when(failed, F.lit(reason)) for failed, reason in row_checks()]
        return [sorted(r for r in row[0] if r) for row in rows.select(F.array(*flagged)).collect()]

    assert reasons(scored) == [[]] * 5
    assert reasons(bad) == [["hour of day missing or outside 0..23", "no scheduled departure in the hour"]]


def test_rows_without_the_schedule_columns_are_refused_by_name(spark, hand_rows):
    with pytest.raises(AirportDelayDataError, match=r"lack the columns \['dep_delay'\]"):
        airport_hours(hand_rows.drop("dep_delay"), date(2013, 1, 2), date(2013, 1, 2), with_label=True)
    with pytest.raises(AirportDelayDataError, match="after end date"):
        airport_hours(hand_rows, date(2013, 1, 3), date(2013, 1, 2), with_label=True)


# The point-in-time rule: the hour starting at H gets weather reported by H - 1h, so from rows of hours <= H - 2h.

H = datetime(2013, 1, 2, 15)  # UTC: the airport-hour under test starts here


def _one_hour(spark):
    return spark.createDataFrame([(date(2013, 1, 2), "EWR", H)], "obs_date date, origin string, hour_start timestamp")


def _weather_at(spark, rows: list[tuple]) -> object:
    return weather_hourly(spark.createDataFrame(rows, _WEATHER_SCHEMA))


def _temp_at_h(spark, hours_back: list[int], **kwargs) -> float | None:
    """The temperature the hour H gets when reports exist for these hours before it (each report's temperature is
    its number of hours back, so the value tells which report was used)."""
    weather = _weather_at(spark, [_weather("EWR", H - timedelta(hours=n), float(n)) for n in hours_back])
    (row,) = with_weather(_one_hour(spark), weather, **kwargs).collect()
    return row["temperature_f"]


def test_the_hour_gets_the_latest_report_available_an_hour_before_it_starts(spark):
    # Reports of H, H - 1h and H - 2h exist: only H - 2h was available at H - 1h (reported by its end, H - 1h).
    assert _temp_at_h(spark, [0, 1, 2, 3]) == 2.0


def test_a_report_of_the_hour_itself_or_the_hour_before_never_reaches_the_hour(spark):
    # Fails if the join leaks: the only reports are measured during the hour or after the cut-off.
    assert _temp_at_h(spark, [0]) is None
    assert _temp_at_h(spark, [1]) is None
    assert _temp_at_h(spark, [0, 1]) is None
    assert _temp_at_h(spark, [-1, -2]) is None  # reports after the hour, naturally


def test_a_report_older_than_six_hours_at_the_cut_off_is_stale(spark):
    assert _temp_at_h(spark, [7, 9]) == 7.0  # reported during H - 7h: six hours before the cut-off H - 1h
    assert _temp_at_h(spark, [8, 9]) is None
    assert _temp_at_h(spark, [8], max_staleness_hours=7) == 8.0


def test_each_reading_is_the_latest_non_missing_one_and_other_airports_never_mix(spark):
    weather = _weather_at(
        spark,
        [
            _weather("EWR", H - timedelta(hours=2), 2.0, wind=None),
            _weather("EWR", H - timedelta(hours=3), 3.0, wind=33.0),
            _weather("EWR", H - timedelta(hours=4), 4.0, wind=1048.0),  # a sensor fault: no reading
            _weather("JFK", H - timedelta(hours=2), 99.0, wind=99.0),
        ],
    )

    (row,) = with_weather(_one_hour(spark), weather).collect()

    assert (row["temperature_f"], row["wind_speed_mph"]) == (2.0, 33.0)


def test_examples_take_the_weather_an_hour_ahead_end_to_end(spark, hand_rows):
    # EWR 07:10 local is the hour starting 12:00 UTC: the 10:00 report is the latest it may see, the 11:00 and 12:00
    # ones (a storm) never.
    weather = _weather_at(
        spark,
        [
            _weather("EWR", datetime(2013, 1, 2, 10), 1.0, wind=4.0),
            _weather("EWR", datetime(2013, 1, 2, 11), 50.0, wind=60.0),
            _weather("EWR", datetime(2013, 1, 2, 12), 50.0, wind=60.0),
        ],
    )
    day = date(2013, 1, 2)

    got = _by_key(examples({"airport_flights": hand_rows}, {"airport_weather_hourly": weather}, day, day))

    ewr7 = got[(day, "EWR", datetime(2013, 1, 2, 12))]
    assert (ewr7["temperature_f"], ewr7["wind_speed_mph"]) == (1.0, 4.0)
    assert got[(day, "EWR", datetime(2013, 1, 2, 10))]["temperature_f"] is None  # 05:00 local: nothing by 09:00 UTC


@pytest.mark.parametrize("bad", [{"lead_hours": -1}, {"max_staleness_hours": 0}])
def test_a_join_that_could_see_nothing_or_the_future_is_refused(spark, bad):
    with pytest.raises(AirportDelayDataError, match=next(iter(bad))):
        with_weather(_one_hour(spark), _weather_at(spark, []), **bad)


# Real days: the blizzard of 8-9 February 2013 (35 airport-hours with every flight cancelled).

BLIZZARD = (date(2013, 2, 8), date(2013, 2, 9))


@pytest.fixture(scope="module")
def blizzard(spark):
    frames = load_sources(date(2013, 2, 7), date(2013, 2, 10))
    sources = {name: spark.createDataFrame(frame) for name, frame in frames.items()}
    features = {"airport_weather_hourly": weather_hourly(sources["airport_weather"])}
    return frames, sources, features


def test_examples_of_real_days_match_an_independent_count(blizzard):
    frames, sources, features = blizzard
    flights = frames["airport_flights"]
    flights = flights[pd.to_datetime(flights[["year", "month", "day"]]).dt.date.between(*BLIZZARD)]
    expected = flights.groupby(["origin", "time_hour"]).agg(
        n=("flight", "size"), departed=("dep_delay", "count"), mean=("dep_delay", "mean")
    )

    got = examples(sources, features, *BLIZZARD).toPandas()

    assert (expected["departed"] == 0).sum() == 35
    labelled = expected[expected["departed"] > 0]
    assert len(got) == len(labelled)
    got = got.set_index([got["origin"], pd.to_datetime(got["hour_start"], utc=True)]).sort_index()
    labelled = labelled.sort_index()
    assert list(got.index) == list(labelled.index)
    assert np.allclose(got[LABEL], labelled["mean"])
    assert (got["scheduled_departures"].to_numpy() == labelled["n"].to_numpy()).all()
    assert (got["departed_count"].to_numpy() == labelled["departed"].to_numpy()).all()


def test_a_days_examples_do_not_depend_on_the_window_around_it(blizzard):
    _, sources, features = blizzard
    day_one, day_two = BLIZZARD

    together = examples(sources, features, day_one, day_two).toPandas()
    apart = pd.concat(
        [examples(sources, features, day, day).toPandas() for day in (day_one, day_two)], ignore_index=True
    )

    key = list(SPEC.key_names)
    assert len(together) > 0
    pd.testing.assert_frame_equal(
        together.sort_values(key).reset_index(drop=True), apart.sort_values(key).reset_index(drop=True)
    )


def test_scoring_rows_are_the_examples_without_their_labels(blizzard):
    frames, sources, features = blizzard
    landed_columns = [c.name for c in SPEC.landing_columns]
    landed = sources["airport_flights"].select(*landed_columns)

    built = examples(sources, features, *BLIZZARD).toPandas()
    scored = scoring_rows(landed, features, *BLIZZARD).toPandas()

    key = list(SPEC.key_names)
    assert sorted(scored.columns) == sorted([c for c in built.columns if c not in LABEL_COLUMNS])
    merged = scored.merge(built, on=key, how="left", suffixes=("", "_built"), indicator=True)
    # Every labelled hour is scored with exactly its example's features; the only others are the 35 hours whose
    # flights were all cancelled.
    assert (merged["_merge"] == "left_only").sum() == 35
    both = merged[merged["_merge"] == "both"]
    assert len(both) == len(built)
    for column in SPEC.feature_names:
        if column in key:
            continue
        a, b = both[column], both[f"{column}_built"]
        assert ((a == b) | (a.isna() & b.isna())).all(), column


# The estimator on a held-out month.


def _frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The model frame as the platform builds it: categoricals as strings, numerics as float64."""
    out = pd.DataFrame(index=rows.index)
    for column in SPEC.categorical_features:
        out[column] = rows[column].astype("string").fillna("").astype(object)
    for column in SPEC.numeric_features:
        out[column] = pd.to_numeric(rows[column], errors="coerce").astype("float64")
    return out


def test_the_estimator_beats_the_mean_and_meets_the_threshold_a_shuffled_model_misses(spark):
    frames = load_sources(date(2013, 1, 1), date(2013, 3, 31))
    sources = {name: spark.createDataFrame(frame) for name, frame in frames.items()}
    features = {"airport_weather_hourly": weather_hourly(sources["airport_weather"])}
    quarter = examples(sources, features, date(2013, 1, 1), date(2013, 3, 31)).toPandas()
    # One Spark job, split here: a day's examples do not depend on the window around it (tested above).
    in_march = pd.to_datetime(quarter["obs_date"]).dt.month == 3
    train, test = quarter[~in_march], quarter[in_march]
    package = load_model("airport_delay")
    y = train[LABEL].to_numpy()
    max_mae = SPEC.validation.thresholds["mean_absolute_error"]
    min_r2 = SPEC.validation.thresholds["r2_score"]

    model = package.build_estimator(seed=0).fit(_frame(train), y)
    shuffled = package.build_estimator(seed=0).fit(_frame(train), np.random.default_rng(0).permutation(y))

    predicted, predicted_shuffled = model.predict(_frame(test)), shuffled.predict(_frame(test))
    mae = mean_absolute_error(test[LABEL], predicted)
    baseline = mean_absolute_error(test[LABEL], np.full(len(test), y.mean()))
    assert len(train) > 3000 and len(test) > 1500
    assert math.isfinite(mae) and mae < baseline
    assert mae <= max_mae and r2_score(test[LABEL], predicted) >= min_r2
    # A model of shuffled labels misses the thresholds (its error is within them in March: r2 tells it apart).
    assert r2_score(test[LABEL], predicted_shuffled) < min_r2
